"""Single-case assessment workflow: one request object in, the typed assessment out, and its summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flr.anatomy import segment_list
from flr.assessment import Body, BsaFormula, TelvFormula, assess, judge
from flr.errors import InputFileError, PlanError, one_line
from flr.image import Image
from flr.model import DISCLAIMER
from flr.plan import Plan, resection_plan
from flr.results import Assessment
from pipelines.inputs import input_paths, load_case
from pipelines.outputs import Output, OutputSet, Staging

if TYPE_CHECKING:
    from flr.patient import Patient
    from flr.rules import Rulebook


@dataclass(frozen=True)
class AssessRequest:
    """Everything ``flr assess`` was asked to do, built once by the command line (or a batch runner).

    Body size: ``weight_kg``/``height_cm`` given here win over the patient file's; the formulas apply to
    whichever is used. Outputs: ``export_dir`` (``--export``), ``report_dir`` (``--report``) and ``json_out``
    (``--json``; ``-`` is standard output) are written as one set (:mod:`pipelines.outputs`).
    """

    labels: tuple[str, ...]
    plan: Plan
    ct: Path | None = None
    series_uid: str | None = None
    resample: str | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    bsa_formula: BsaFormula = "mosteller"
    telv_formula: TelvFormula = "vauthey"
    patient: Path | None = None
    rules: str | None = None
    report_dir: Path | None = None
    include_identifiers: bool = False
    export_dir: Path | None = None
    json_out: Path | None = None
    strict: bool = False
    anatomical_vessel_seeds: bool = False
    #: ``--scan-date``: the CT's date when it has no DICOM StudyDate and the patient file no ``scan_date``
    scan_date: dt.date | None = None

    def body(self, patient: Patient | None) -> Body:
        """The body size used: the request's weight/height, else the patient file's, with the formulas."""
        if self.weight_kg is not None:
            return Body(weight_kg=self.weight_kg, height_cm=self.height_cm, bsa_formula=self.bsa_formula,
                        telv_formula=self.telv_formula)
        return Body.from_patient(patient, bsa_formula=self.bsa_formula, telv_formula=self.telv_formula)


    def input_paths(self) -> list[str]:
        """Every path the request reads (label maps and their schemes, CT, patient file, rulebook file)."""
        rules_file = self.rules if self.rules is not None and Path(self.rules).exists() else None
        return input_paths(self.labels, self.ct, self.patient, rules_file)

    def outputs(self) -> OutputSet:
        """The request's outputs as one set: export folder, report folder, JSON (written in that order)."""
        from pipelines.export import EXPORT_FILES
        from pipelines.report import REPORT_FILES

        return OutputSet([
            Output("--export", self.export_dir, folder=True, writes=EXPORT_FILES) if self.export_dir else None,
            Output("--report", self.report_dir, folder=True, writes=REPORT_FILES) if self.report_dir else None,
            Output("--json", self.json_out) if self.json_out is not None else None,
        ], inputs=self.input_paths())


def cli_plan(plan_name: str | None = None, resect: str | None = None, *, include_caudate: bool = False,
             wedges: Sequence[str] = (), ablations: Sequence[str] = (), take_plane_veins: bool = False) -> Plan:
    """The plan of the command line's parts: ``--plan`` or ``--resect``, ``--include-caudate``, ``--wedge``,
    ``--ablate``, ``--take-plane-veins``."""
    if plan_name and resect:
        raise PlanError(f"give either --plan {plan_name!r} or --resect {resect!r}, not both")
    return resection_plan(plan_name or resect, include_caudate=include_caudate, wedges=wedges, ablations=ablations,
                          keep_plane_vessels=not take_plane_veins)


def run_assess(request: AssessRequest) -> Assessment:
    """Read the inputs, assess the plan, judge it with the rulebook (when a patient or rules are given), and
    write the export, the report and the JSON when asked.

    The outputs are checked before any input is read and written as one set (:mod:`pipelines.outputs`): a run
    that fails leaves the previous outputs as they were.
    """
    with request.outputs().staged() as staged:
        rulebook: Rulebook | None = None
        person: Patient | None = None
        if request.patient is not None or request.rules is not None:
            from flr.patient import load_patient
            from flr.rules import load_rulebook

            rulebook = load_rulebook(request.rules or "default")
            person = load_patient(request.patient) if request.patient is not None else None
        ct_image, maps = load_case(request.labels, ct=request.ct, series_uid=request.series_uid,
                                   resample=request.resample)
        result = assess(maps, request.plan, ct=ct_image, body=request.body(person), strict=request.strict,
                        anatomical_vessel_seeds=request.anatomical_vessel_seeds)
        if rulebook is not None:
            # the scan's date: DICOM StudyDate, else the patient file's scan_date, else --scan-date (issue 13)
            scan = study_date(ct_image) or (person.scan_date if person is not None else None) or request.scan_date
            result = judge(result, person, rulebook, scan_date=scan)
        _write_outputs(request, staged, result, ct_image, rulebook)
    return result


def _write_outputs(request: AssessRequest, staged: Staging, result: Assessment, ct_image: Image | None,
                   rulebook: Rulebook | None) -> None:
    """Write the requested outputs into their staged temporaries."""
    if request.export_dir is not None:
        from pipelines.export import export_plan

        with staged.writing("--export") as folder:
            export_plan(result, folder, ct=ct_image)
    if request.report_dir is not None:
        from flr.io import read_dicom_identifiers
        from pipelines.report import write_report

        identifiers = read_dicom_identifiers(ct_image) if request.include_identifiers and ct_image else None
        with staged.writing("--report") as folder:
            write_report(result, folder, ct=ct_image, identifiers=identifiers, rulebook=rulebook)
    if request.json_out is not None:
        staged.write_json("--json", result.to_dict())


def study_date(image: Image | None) -> dt.date | None:
    """The CT's study date (DICOM ``StudyDate``), or None."""
    return _parse_study_date(str(image.metadata.get("study_date") or "") if image is not None else "")


def _parse_study_date(text: str | None) -> dt.date | None:
    """A DICOM date ``YYYYMMDD`` (None when absent or malformed)."""
    text = text or ""
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a (needs weight and height)" if unit == "%" else "n/a"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def _display(value: Any) -> str:
    """A rule's value or threshold as the terminal shows it: at most 2 decimals (a whole number without), a
    mapping as ``key value`` pairs, a list joined; the JSON keeps the full value.

    >>> _display(0.8831328125000001), _display(10.0), _display({"at_least": 20, "liver_condition": "normal"})
    ('0.88', '10', 'at_least 20, liver_condition normal')
    """
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        if 0 < abs(value) < 0.005:
            return "< 0.01" if value > 0 else "> -0.01"
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k} {_display(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value)
    return str(value)


def _verdict_lines(a: Assessment) -> list[str]:
    v = a.verdict
    if v is None:
        return []
    scope = getattr(v, "scope", None)
    judged = {"plan": " (this plan)", "patient": " (the patient)"}.get(str(scope), "")
    lines = [f"verdict ({v.rulebook_id} rulebook v{v.rulebook_version}): {v.status.upper().replace('_', ' ')}{judged}"]
    if v.strategies:
        lines.append("  strategies: " + ", ".join(s.replace("_", " ") for s in v.strategies))
    for r in v.reasons:
        if r.status in ("fail", "not_assessed"):
            value = "" if r.value is None else f" (value {_display(r.value)}, threshold {_display(r.threshold)})"
            lines.append(f"  {r.status.upper():<13} {r.rule}: {r.statement}{value} [{r.source}]")
    if v.missing_inputs:
        lines.append("  missing inputs: " + "; ".join(
            f"{m['fact']} (needs {', '.join(m['needs'])})" for m in v.missing_inputs))
    lines.extend(f"  caution: {c}" for c in v.cautions)
    lines.extend(f"  guidance: {g['text']}" for g in v.primary_guidance)
    return lines


def format_summary(a: Assessment) -> str:
    """A readable terminal summary of an assessment."""
    r, lv = a.remnant, a.liver
    lines = [DISCLAIMER, f"plan: {a.plan.name}"]
    lines.append(f"liver {_fmt(lv.total_volume_ml, 'mL')}, tumour {_fmt(lv.tumor_volume_ml, 'mL')}, "
                 f"functional liver {_fmt(lv.functional_volume_ml, 'mL')}, resected "
                 f"{_fmt(lv.resected_volume_ml, 'mL')}")
    lines.append(f"remnant (segments {segment_list(r.segments)}): {_fmt(r.volume_ml, 'mL')}; functional remnant "
                 f"{_fmt(r.functional_volume_ml, 'mL')} = {_fmt(r.percent_of_functional_liver, '%')} of "
                 "functional liver")
    lines.append(f"sFLR {_fmt(r.sflr_percent, '%')}; FLR/body weight {_fmt(r.flr_body_weight_percent, '%', 2)}")
    if r.islands_count:
        listed = ", ".join(_fmt(v, "mL") for v in r.islands_ml[:5])
        lines.append(f"islands cut off from the remnant (not functional): {r.islands_count} pieces, "
                     f"{_fmt(r.islands_total_ml, 'mL', 2)} in total" + (f"; largest {listed}" if listed else ""))
    lines.append("checks:")
    lines.extend(f"  {name:<24} {chk.status.upper():<13} {chk.detail}" for name, chk in a.checks.items())
    if a.tumors:
        lines.append("tumours:")
        lines.append(f"  {'id':>3} {'volume_ml':>10} {'max_mm':>7}  {'segments':<10} {'fate':<9} margin")
        for t in a.tumors:
            margin = f"{t.margin_mm:.1f} mm ({t.margin_class})" if t.margin_mm is not None else ""
            segs = segment_list(t.segments, "/") or "?"
            size = f"{t.max_diameter_mm:.1f}" if t.max_diameter_mm is not None else "?"
            lines.append(f"  {t.id:>3} {t.volume_ml:>10.1f} {size:>7}  {segs:<10} {t.fate:<9} {margin}")
        lines.extend(f"  note: tumour {t.id}: {t.note}" for t in a.tumors if t.note)
    lines.extend(_verdict_lines(a))
    lines.extend(f"warning: {w}" for w in a.warnings)
    return "\n".join(lines)


#: Largest saved assessment read back (an assessment of a real case is some tens of kB).
MAX_RESULT_BYTES = 20_000_000


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number flr writes")


def read_assessment(path: Path) -> Assessment:
    """A saved assessment JSON, checked against the assessment schema (one-line error naming every bad field).

    Raises
    ------
    InputFileError
        Missing, a folder, over :data:`MAX_RESULT_BYTES`, not UTF-8 JSON (``NaN``/``Infinity`` included: flr never
        writes them), or not an assessment.
    ResultFormatError
        An assessment that does not match the schema (e.g. ``remnant: null``).
    """
    import json

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a saved assessment JSON")
    try:
        size = path.stat().st_size
        if size <= MAX_RESULT_BYTES:
            with path.open("rb") as fh:  # bounded: a device or a file growing meanwhile cannot fill the memory
                blob = fh.read(MAX_RESULT_BYTES + 1)
            size = max(size, len(blob))
        if size > MAX_RESULT_BYTES:
            raise InputFileError(f"{path}: {size / 1e6:.1f} MB is over the {MAX_RESULT_BYTES / 1e6:.0f} MB limit of "
                                 "a saved assessment; is this the right file?")
        data = json.loads(blob.decode("utf-8"), parse_constant=_refuse_constant)
    except InputFileError:
        raise
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError: a ValueError
        raise InputFileError(f"{path}: not an flr assessment JSON ({one_line(exc, 200)})") from None
    if not isinstance(data, dict) or data.get("kind") != "assessment":
        raise InputFileError(f"{path}: not an flr assessment JSON (kind is not 'assessment'); "
                             "run flr assess --json first")
    return Assessment.from_dict(data, source=str(path))


def run_compare(before: Path, after: Path, weeks: float | None, *, json_out: Path | None = None,
                pve_date: dt.date | None = None, scan_date: dt.date | None = None) -> dict[str, Any]:
    """Read two assessment JSON files and compare the remnant before and after portal vein embolization
    (written to ``json_out`` when given, ``-``: standard output; checked before the inputs are read).

    Weeks since PVE: ``weeks``, else from ``pve_date`` to AFTER's scan date (its CT's DICOM StudyDate, else
    ``scan_date``); without them the KGR is missing (never measured to today).
    """
    from flr.errors import PatientValueError
    from flr.scores import compare_pve

    outputs = OutputSet([Output("--json", json_out) if json_out is not None else None], inputs=[before, after])
    with outputs.staged() as staged:
        # both files are validated against the assessment schema first; compare_pve reads their JSON form
        later = read_assessment(after)
        if weeks is None and pve_date is not None:
            dicom = [d for d in (_parse_study_date(i.study_date) for i in later.inputs if i.role == "ct") if d]
            scan = dicom[0] if dicom else scan_date
            if scan is not None:
                if scan <= pve_date:
                    raise PatientValueError(f"scan date {scan.isoformat()} is not after the PVE date "
                                            f"{pve_date.isoformat()}; the post-PVE scan must follow the embolization")
                weeks = (scan - pve_date).days / 7.0
        result = compare_pve(read_assessment(before).to_dict(), later.to_dict(), weeks)
        if json_out is not None:
            staged.write_json("--json", result)
    return result
