"""Single-case assessment workflow: read the inputs, apply the plan, judge the remnant, format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flr.assess import Assessment, Body, assess
from flr.errors import PlanError
from flr.plan import resection_plan
from pipelines.inputs import load_case

DISCLAIMER = "flr supports the multidisciplinary team's decision; it does not replace it."


def run_assess(labels: Sequence[str], *, ct: Path | None = None, plan_name: str | None = None,
               resect: str | None = None, include_caudate: bool = False, wedges: Sequence[str] = (),
               ablations: Sequence[str] = (), body: Body | None = None, series_uid: str | None = None,
               resample: str | None = None, patient: Path | None = None, rules: str | None = None,
               report_dir: Path | None = None, include_identifiers: bool = False,
               export_dir: Path | None = None) -> Assessment:
    """Read ``PATH[:SCHEME]`` label maps (and the CT), build the plan and assess it.

    With ``patient`` (a YAML/JSON file) or ``rules`` (a rulebook name or file) the rulebook is evaluated
    and the verdict attached; the patient's weight and height serve as ``body`` unless one is given.
    """
    if plan_name and resect:
        raise PlanError(f"give either --plan {plan_name!r} or --resect {resect!r}, not both")
    plan = resection_plan(plan_name or resect, include_caudate=include_caudate, wedges=wedges, ablations=ablations)
    rulebook = person = None
    if patient is not None or rules is not None:
        from flr.patient import load_patient
        from flr.rules import load_rulebook

        rulebook = load_rulebook(rules or "default")
        person = load_patient(patient) if patient is not None else None
        if body is None and person is not None and person.weight_kg is not None:
            body = Body(person.weight_kg, person.height_cm)
    ct_image, maps = load_case(labels, ct=ct, series_uid=series_uid, resample=resample)
    result = assess(maps, plan, ct=ct_image, body=body)
    if rulebook is not None:
        from flr.assess import judge

        scan_date = _study_date(ct_image) if ct_image is not None else None
        result = judge(result, person, rulebook, scan_date=scan_date)
    if export_dir is not None:
        from pipelines.export import export_plan

        export_plan(result, export_dir, ct=ct_image)
    if report_dir is not None:
        from flr.io import read_dicom_identifiers
        from pipelines.report import write_report

        identifiers = read_dicom_identifiers(ct_image) if include_identifiers and ct_image is not None else None
        write_report(result, report_dir, ct=ct_image, identifiers=identifiers)
    return result


def _study_date(image: Any) -> Any:
    import datetime as dt

    text = str(image.metadata.get("study_date") or "")
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a (needs weight and height)" if unit == "%" else "n/a"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def format_summary(a: Assessment) -> str:
    """A readable terminal summary of an assessment."""
    r, lv = a.remnant, a.liver
    lines = [DISCLAIMER, f"plan: {a.plan.name}"]
    lines.append(f"liver {_fmt(lv['total_volume_ml'], 'mL')}, tumour {_fmt(lv['tumor_volume_ml'], 'mL')}, "
                 f"functional liver {_fmt(lv['functional_volume_ml'], 'mL')}, resected "
                 f"{_fmt(lv['resected_volume_ml'], 'mL')}")
    seg_names = ", ".join(s.rsplit("_", 1)[1] for s in r["segments"])
    lines.append(f"remnant (segments {seg_names}): {_fmt(r['volume_ml'], 'mL')}; functional remnant "
                 f"{_fmt(r['functional_volume_ml'], 'mL')} = {_fmt(r['percent_of_functional_liver'], '%')} of "
                 "functional liver")
    lines.append(f"sFLR {_fmt(r['sflr_percent'], '%')}; FLR/body weight {_fmt(r['flr_body_weight_percent'], '%', 2)}")
    if r["islands_count"]:
        listed = ", ".join(_fmt(v, "mL") for v in r["islands_ml"][:5])
        lines.append(f"islands cut off from the remnant (not functional): {r['islands_count']} pieces, "
                     f"{_fmt(r['islands_total_ml'], 'mL', 2)} in total" + (f"; largest {listed}" if listed else ""))
    lines.append("checks:")
    for name, chk in a.checks.items():
        lines.append(f"  {name:<24} {chk['status'].upper():<13} {chk['detail']}")
    if a.tumors:
        lines.append("tumours:")
        lines.append(f"  {'id':>3} {'volume_ml':>10}  {'segments':<10} {'fate':<9} margin")
        for t in a.tumors:
            segs = "/".join(s.rsplit("_", 1)[1] for s in t["segments"]) or "?"
            margin = (f"{t['margin_mm']:.1f} mm ({t['margin_class']})" if t.get("margin_mm") is not None else "")
            lines.append(f"  {t['id']:>3} {t['volume_ml']:>10.1f}  {segs:<10} {t['fate']:<9} {margin}")
    if a.verdict:
        v = a.verdict
        lines.append(f"verdict ({v['rulebook']['id']} rulebook v{v['rulebook']['version']}): "
                     f"{v['status'].upper().replace('_', ' ')}")
        if v.get("strategies"):
            lines.append("  strategies: " + ", ".join(s.replace("_", " ") for s in v["strategies"]))
        for r in v["reasons"]:
            if r["status"] in ("fail", "not_assessed"):
                value = "" if r.get("value") is None else f" (value {r['value']}, threshold {r.get('threshold')})"
                lines.append(f"  {r['status'].upper():<13} {r['rule']}: {r['statement']}{value} [{r['source']}]")
        if v.get("missing_inputs"):
            lines.append("  missing inputs: " + "; ".join(
                f"{m['fact']} (needs {', '.join(m['needs'])})" for m in v["missing_inputs"]))
        lines.extend(f"  caution: {c['rule'] if isinstance(c, dict) else c}" for c in v.get("cautions", []))
        lines.extend(f"  guidance: {g['text']}" for g in v.get("primary_guidance", []))
    lines.extend(f"warning: {w}" for w in a.to_dict()["warnings"])
    return "\n".join(lines)


def run_compare(before: Path, after: Path, weeks: float) -> dict[str, Any]:
    """Read two assessment JSON files and compare the remnant before and after portal vein embolization."""
    import json

    from flr.errors import InputFileError
    from flr.scores import compare_pve

    loaded = []
    for path in (before, after):
        try:
            loaded.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputFileError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"{path}: not an flr assessment JSON ({exc})") from None
        if "remnant" not in loaded[-1]:
            raise InputFileError(f"{path}: not an flr assessment JSON (no 'remnant'); run flr assess --json first")
    return compare_pve(loaded[0], loaded[1], weeks)
