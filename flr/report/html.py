"""The HTML report: one self-contained page (images embedded, no network), printable on A4.

Built from the JSON result (the public contract) plus figures as PNG bytes; it shows the verdict with
reasons and sources, the volumes with thresholds, the checks, the tumours, the figures and the
provenance. It never shows a patient name, ID or birth date unless the caller passes them explicitly.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TypeGuard

from flr.anatomy import roman_numeral, segment_list
from flr.model import DISCLAIMER as _DISCLAIMER

if TYPE_CHECKING:
    from flr.rules import Rulebook

#: The report's disclaimer: flr's one disclaimer, plus what a reader of images should do.
DISCLAIMER = f"{_DISCLAIMER} Check every measurement on the images."


_Number = (int, float)


@dataclass(frozen=True)
class Thresholds:
    """The volume thresholds the report shows, from the active rulebook (percent 0-100; None: no such rule).

    ``sflr_percent`` maps a liver condition (or ``"any"``) to the minimum sFLR; ``flr_body_weight_rules`` and
    ``sflr_rules`` are the ids of the rules that test each fact, whose reasons carry the threshold applied to
    this case (:meth:`applied_flr_body_weight`, :meth:`applied_sflr`).
    """

    rulebook_id: str
    flr_body_weight_percent: float | None
    sflr_percent: Mapping[str, float]
    flr_body_weight_rules: tuple[str, ...] = ()
    sflr_rules: tuple[str, ...] = ()

    @classmethod
    def from_rulebook(cls, rulebook: Rulebook) -> Thresholds:
        """The thresholds of the rules testing each fact: FLR/body weight a plain number (the rule testing that
        fact alone first, else the ``flr_body_weight_percent`` entry of a keyed threshold); sFLR the first number or
        mapping by liver condition (entries naming another fact left out)."""
        bw_rules = rulebook.thresholds_for("flr_body_weight_percent")
        sflr_rules = rulebook.thresholds_for("sflr_percent")
        bw = next((float(t) for _, t in bw_rules if _is_number(t)), None)
        if bw is None:
            bw = next((float(t["flr_body_weight_percent"]) for _, t in bw_rules
                       if isinstance(t, Mapping) and _is_number(t.get("flr_body_weight_percent"))), None)
        sflr: dict[str, float] = {}
        for _, t in sflr_rules:
            if _is_number(t):
                sflr = {"any": float(t)}
                break
            if isinstance(t, Mapping):
                sflr = {str(k): float(v) for k, v in t.items() if _is_number(v) and not str(k).endswith("_percent")}
                if sflr:
                    break
        return cls(rulebook.id, bw, sflr, tuple(i for i, _ in bw_rules if i), tuple(i for i, _ in sflr_rules if i))

    def text(self, fact: str) -> str:
        """The threshold cell of the volumes table for ``fact``."""
        if fact == "flr_body_weight_percent" and self.flr_body_weight_percent is not None:
            return f"≥ {self.flr_body_weight_percent:g} % ({self.rulebook_id} rulebook)"
        if fact == "sflr_percent" and self.sflr_percent:
            parts = [f"{v:g} %" + ("" if k == "any" else f" {k.replace('_', ' ')}")
                     for k, v in self.sflr_percent.items()]
            return "≥ " + ", ".join(parts) + f" ({self.rulebook_id} rulebook)"
        return ""

    def _reasons(self, verdict: Mapping[str, Any] | None, rules: Sequence[str]) -> list[Mapping[str, Any]]:
        """The reasons of ``rules`` that applied (not ``not_applicable``), plain-number thresholds first."""
        found = [r for r in (verdict or {}).get("reasons") or () if isinstance(r, Mapping) and r.get("rule") in rules
                 and r.get("status") != "not_applicable"]
        return sorted(found, key=lambda r: not _is_number(r.get("threshold")))

    def applied_flr_body_weight(self, verdict: Mapping[str, Any] | None) -> float | None:
        """The FLR/body-weight minimum (percent) applied to this case: from the judging rule's reason, else the
        rulebook's."""
        for r in self._reasons(verdict, self.flr_body_weight_rules):
            t = r.get("threshold")
            if _is_number(t):
                return float(t)
            if isinstance(t, Mapping):
                for key in ("flr_body_weight_at_least", "flr_body_weight_percent"):
                    if _is_number(t.get(key)):
                        return float(t[key])
        return self.flr_body_weight_percent

    def applied_sflr(self, verdict: Mapping[str, Any] | None) -> tuple[float, str] | None:
        """(minimum sFLR percent, the liver condition it is for, "" if any) applied to this case: from the judging
        rule's reason, else the rulebook's when it has one for any liver; None when it depends on a condition the
        case was not judged on."""
        for r in self._reasons(verdict, self.sflr_rules):
            t = r.get("threshold")
            if _is_number(t):
                return float(t), ""
            if isinstance(t, Mapping):
                keys = ["sflr_at_least"] + (["at_least"] if r.get("rule") not in self.flr_body_weight_rules else [])
                for key in keys:
                    if _is_number(t.get(key)):
                        return float(t[key]), str(t.get("liver_condition") or "").replace("_", " ")
        if set(self.sflr_percent) == {"any"}:
            return self.sflr_percent["any"], ""
        return None


def _is_number(value: Any) -> TypeGuard[float]:
    """A threshold that is a number (an int or a float, not a bool)."""
    return isinstance(value, _Number) and not isinstance(value, bool)


def _builtin_thresholds(result: Mapping[str, Any]) -> Thresholds | None:
    """The thresholds of the verdict's rulebook when it is a built-in one (same hash); None otherwise."""
    book = ((result.get("verdict") or {}).get("rulebook") or {})
    if not book.get("id"):
        return None
    from flr.errors import FlrError
    from flr.rules import load_rulebook, rulebook_sha256

    try:
        rulebook = load_rulebook(str(book["id"]))
    except (FlrError, OSError, ValueError):
        return None
    return Thresholds.from_rulebook(rulebook) if rulebook_sha256(rulebook) == book.get("sha256") else None


@dataclass(frozen=True)
class Figure:
    """A figure of the report: its PNG and its ``kind`` (a key of :data:`flr.report.figures.PRINT_WIDTH_MM`: the
    width it is printed at, which its text was sized for)."""

    title: str
    png: bytes
    caption: str = ""
    kind: str = "slice"

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")




@dataclass(frozen=True)
class VolumeLine:
    """A line of the summary's volumes: what, its value, the threshold applied, whether the value meets it
    (``"meets"``, ``"below"``, or ``""`` where there is no value or no threshold)."""

    id: str
    label: str
    value: str
    threshold: str = ""
    met: str = ""


@dataclass(frozen=True)
class RuleNote:
    """A rule the summary names: its id, its status (``caution`` for a failed caution rule) and what it found."""

    rule: str
    status: str
    text: str

    @property
    def name(self) -> str:
        return self.rule.replace("_", " ")


@dataclass(frozen=True)
class CheckLine:
    """A check of the assessment in the summary: name, status, detail."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Summary:
    """The report's first screen: the verdict (or that there is none), the volumes against the active rulebook's
    thresholds, a line per check, and the rules the team must look at."""

    status: str
    status_text: str
    scope_text: str
    rulebook: str
    strategies: tuple[str, ...]
    missing: tuple[str, ...]
    failed: tuple[RuleNote, ...]
    not_assessed: tuple[RuleNote, ...]
    cautions: tuple[RuleNote, ...]
    volumes: tuple[VolumeLine, ...]
    volume_rules: tuple[RuleNote, ...]
    checks: tuple[CheckLine, ...]


#: What a verdict's scope says next to its status.
_SCOPE_TEXT = {"plan": "— this plan", "patient": "— the patient"}


def _reason_note(reason: Mapping[str, Any]) -> RuleNote:
    status = str(reason.get("status"))
    if status == "fail" and reason.get("on_fail") == "caution":
        status = "caution"
    if reason.get("detail"):
        text = str(reason["detail"])
    elif reason.get("value") is not None and reason.get("threshold") is not None:
        text = f"value {_fmt(reason.get('value'))}, threshold {_fmt(reason.get('threshold'))}"
        text = text if len(text) <= _SHORT else ""   # a long one is in the rule's row
    else:
        text = ""
    return RuleNote(str(reason.get("rule")), status, text)


#: The longest value-and-threshold text the summary repeats beside a rule's name.
_SHORT = 48


def _met(value: Any, minimum: float | None) -> str:
    if value is None or minimum is None:
        return ""
    return "meets" if float(value) >= minimum else "below"


def _volume_lines(result: Mapping[str, Any], thresholds: Thresholds | None) -> tuple[VolumeLine, ...]:
    liver: Mapping[str, Any] = result.get("liver") or {}
    remnant: Mapping[str, Any] = result.get("remnant") or {}
    verdict = result.get("verdict")
    total = liver.get("total_volume_ml")
    volume = remnant.get("volume_ml")
    of_liver = f" · {100.0 * volume / total:.1f} % of the liver" if volume is not None and total else ""
    segments = ", ".join(roman_numeral(n) for n in remnant.get("segments") or ())
    functional = remnant.get("functional_volume_ml")
    percent = remnant.get("percent_of_functional_liver")
    lines = [VolumeLine("summary-remnant", f"Remnant (segments {segments})", _ml(volume) + of_liver),
             VolumeLine("summary-flr", "Functional remnant (FLR)",
                        _ml(functional) + (f" · {percent:.1f} % of functional liver" if percent is not None else ""))]
    sflr, bw = remnant.get("sflr_percent"), remnant.get("flr_body_weight_percent")
    sflr_text, sflr_min, bw_text, bw_min = "", None, "", None
    if thresholds is not None:
        book = f"{thresholds.rulebook_id} rulebook"
        applied = thresholds.applied_sflr(verdict)
        if applied is not None:
            sflr_min = applied[0]
            sflr_text = f"≥ {applied[0]:g} % ({applied[1]}; {book})" if applied[1] else f"≥ {applied[0]:g} % ({book})"
        else:
            sflr_text = thresholds.text("sflr_percent")
        bw_min = thresholds.applied_flr_body_weight(verdict)
        bw_text = f"≥ {bw_min:.2f} % ({book})" if bw_min is not None else ""
    lines.append(VolumeLine("summary-sflr", "sFLR (FLR / TELV)",
                            f"{sflr:.1f} %" if sflr is not None else "n/a (needs weight and height)",
                            sflr_text, _met(sflr, sflr_min)))
    lines.append(VolumeLine("summary-flr-bw", "FLR / body weight",
                            f"{bw:.2f} %" if bw is not None else "n/a (needs weight)", bw_text, _met(bw, bw_min)))
    return tuple(lines)


def summary(result: Mapping[str, Any], thresholds: Thresholds | None = None) -> Summary:
    """The summary box of an assessment result (the dict of ``Assessment.to_dict()``), its thresholds from
    ``thresholds`` (the active rulebook's)."""
    verdict: Mapping[str, Any] | None = result.get("verdict")
    checks = tuple(CheckLine(str(name), str(c.get("status")), str(c.get("detail") or ""))
                   for name, c in (result.get("checks") or {}).items() if isinstance(c, Mapping))
    volumes = _volume_lines(result, thresholds)
    if verdict is None:
        return Summary("not_judged", "NOT JUDGED", "", "", (), (), (), (), (), volumes, (), checks)
    reasons = [r for r in verdict.get("reasons") or () if isinstance(r, Mapping)]
    by_rule = {str(r.get("rule")): r for r in reasons}
    notes = [_reason_note(r) for r in reasons]
    volume_rules = set(thresholds.flr_body_weight_rules + thresholds.sflr_rules) if thresholds is not None else set()
    book = verdict.get("rulebook") or {}
    missing = tuple(f"{m.get('fact')} (needs {', '.join(m.get('needs') or ())})" if isinstance(m, Mapping) else str(m)
                    for m in verdict.get("missing_inputs") or ())
    status = str(verdict.get("status"))
    return Summary(
        status=status, status_text=status.replace("_", " ").upper(),
        scope_text=_SCOPE_TEXT.get(str(verdict.get("scope")), ""),
        rulebook=f"{book.get('id', '?')} rulebook v{book.get('version', '?')}",
        strategies=tuple(str(s).replace("_", " ") for s in verdict.get("strategies") or ()),
        missing=missing,
        failed=tuple(n for n in notes if n.status == "fail"),
        not_assessed=tuple(n for n in notes if n.status == "not_assessed"),
        cautions=tuple(_reason_note(by_rule[c]) if c in by_rule else RuleNote(str(c), "caution", "")
                       for c in verdict.get("cautions") or ()),
        volumes=volumes,
        volume_rules=tuple(n for n, r in zip(notes, reasons, strict=True)
                           if r.get("rule") in volume_rules and r.get("status") != "not_applicable"),
        checks=checks)


@dataclass(frozen=True)
class RuleGroup:
    """Rules of one outcome, as the report lists them: failures and cautions first, not applicable folded."""

    kind: str
    title: str
    reasons: tuple[Mapping[str, Any], ...]

    @property
    def folded(self) -> bool:
        """Closed by default (a ``<details>`` whose summary counts the rules, and names the passed ones): rules
        that passed or do not apply to this case."""
        return self.kind in ("pass", "not_applicable")


#: The order and the heading of each group of rules.
_GROUPS = (("fail", "Failed"), ("caution", "Cautions: failed, for the team to weigh"),
           ("not_assessed", "Not assessed"), ("inferred", "Judged on inferred input"), ("pass", "Passed"),
           ("not_applicable", "Not applicable to this case"))


def rule_groups(verdict: Mapping[str, Any] | None) -> tuple[RuleGroup, ...]:
    """Every reason of ``verdict`` in one group by outcome (a failed caution rule under ``caution``), in
    :data:`_GROUPS` order; an outcome flr does not know yet is grouped under its own name before the passes."""
    reasons = [r for r in (verdict or {}).get("reasons") or () if isinstance(r, Mapping)]
    kinds: dict[str, list[Mapping[str, Any]]] = {}
    for r in reasons:
        kind = _reason_note(r).status
        kinds.setdefault(kind, []).append(r)
    known = [k for k, _ in _GROUPS]
    order = known[:4] + [k for k in kinds if k not in known] + known[4:]
    titles = dict(_GROUPS)
    return tuple(RuleGroup(k, titles.get(k, k.replace("_", " ").capitalize()), tuple(kinds[k]))
                 for k in order if k in kinds)


#: The reduction each system's lost territory makes in the remnant: (name, key in ``remnant``, what is cut off).
_LOST = (("Devascularized", "devascularized_ml", ("inflow", "arterial_inflow"), "portal or arterial branch"),
         ("Congested", "congested_ml", ("outflow",), "hepatic-venous branch"),
         ("Undrained", "undrained_ml", ("biliary_drainage",), "bile duct branch"))


@dataclass(frozen=True)
class LostRow:
    """One line of the remnant's lost supply: ``value_ml`` None where no system behind it was assessed."""

    label: str
    value_ml: float | None
    note: str


@dataclass(frozen=True)
class SegmentAtRisk:
    """One system's territory at risk within one remnant segment (mL, percent 0-100 of the segment)."""

    at_risk_ml: float | None
    at_risk_percent: float | None
    own_branch: bool | None


@dataclass(frozen=True)
class SegmentRow:
    """A remnant segment: its remnant volume, what each assessed system puts at risk, what stays functional (mL)."""

    name: str
    volume_ml: float | None
    functional_ml: float | None
    systems: Mapping[str, SegmentAtRisk]


@dataclass(frozen=True)
class SystemRow:
    """A vessel system as the report lists it: status, the remnant at risk and how the system was built."""

    check: str
    label: str
    colour: str
    status: str
    at_risk_ml: float | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class TerritoryTables:
    """The report's tables of territories at risk, from the JSON result alone (no arrays needed).

    ``lost`` the remnant devascularized, congested (and undrained, where bile ducts were given), ``at_risk_ml``
    their union (None when no system was assessed), ``systems`` every vessel check made, ``assessed`` those with
    territories (the columns of ``segments``).
    """

    lost: tuple[LostRow, ...]
    at_risk_ml: float | None
    systems: tuple[SystemRow, ...]
    assessed: tuple[str, ...]
    segments: tuple[SegmentRow, ...]
    segment_fail_percent: float


def _system_notes(check: Mapping[str, Any]) -> tuple[str, ...]:
    """How the system was built and what the plan cut, in words (the reason alone for a system not assessed)."""
    sysm = check.get("system")
    if check.get("status") == "not_assessed" or not isinstance(sysm, Mapping):
        return (str(check.get("detail") or "not assessed"),)
    notes = [f"source: {sysm.get('source', '—')}"]
    separation = sysm.get("separation")
    if isinstance(separation, Mapping) and separation.get("detail"):
        notes.append(f"separation: {separation['detail']}")
    if sysm.get("branches") is not None:
        notes.append(f"{sysm['branches']} branches, {_fmt(float(sysm.get('total_length_mm') or 0.0), 0)} mm of "
                     "centerline")
    gaps = sysm.get("bridged_gaps_mm") or ()
    bridges = int(sysm.get("bridges") or 0)
    notes.append(f"{bridges} gap{'s' if bridges != 1 else ''} bridged"
                 + (f" ({', '.join(f'{float(g):.1f}' for g in gaps)} mm)" if gaps else ""))
    debris = int(sysm.get("debris_count") or 0)
    notes.append(f"{debris} debris piece{'s' if debris != 1 else ''} left out"
                 + (f" ({_ml(sysm.get('debris_ml'))})" if debris else ""))
    if sysm.get("disconnected_ml"):
        notes.append(f"{_ml(sysm['disconnected_ml'])} of vessel not connected to the root")
    joins = sysm.get("assumed_joins_mm") or ()
    if joins:
        notes.append(f"fragmented mask: {len(joins)} pieces assumed to join the nearest part of the tree (up to "
                     f"{max(float(j) for j in joins):.0f} mm); an interruption would not be seen")
    if sysm.get("cut_points") is not None:
        notes.append(f"plan: {sysm['cut_points']} centerline points cut, {sysm.get('lost_points', 0)} lost"
                     + (f", {sysm['kept_on_plane_points']} kept on the plane" if sysm.get("kept_on_plane_points")
                        else ""))
    own = [roman_numeral(n) for n, seg in (check.get("segments") or {}).items()
           if isinstance(seg, Mapping) and seg.get("own_branch") is False]
    if own:
        notes.append(f"no branch of its own in segment{'s' if len(own) > 1 else ''} {', '.join(own)}: "
                     "supplied by the nearest branches")
    return tuple(notes)


def territory_tables(result: Mapping[str, Any]) -> TerritoryTables:
    """The tables of territories at risk of an assessment result (the dict of ``Assessment.to_dict()``).

    Works on a result read back from JSON, also one written before territories (round 1): a value absent
    there is None, shown as "—".
    """
    from flr.report.figures import SYSTEM_COLOURS, SYSTEM_LABELS, SYSTEMS
    from flr.territories import SEGMENT_FAIL_FRACTION

    checks: Mapping[str, Any] = result.get("checks") or {}
    remnant: Mapping[str, Any] = result.get("remnant") or {}
    made = [k for k in SYSTEMS if isinstance(checks.get(k), Mapping)]
    # a system not assessed, or only inferred from another (no mask of its own), has no territory to show
    assessed = tuple(k for k in made if checks[k].get("status") not in ("not_assessed", "inferred"))
    lost = []
    for label, key, behind, branch in _LOST:
        present = [k for k in behind if k in made]
        if not present:
            continue
        value = remnant.get(key)
        if key == "undrained_ml" and value is None:
            continue  # bile ducts only where given
        judged = [k for k in present if k in assessed]
        if not judged:  # no system behind this line was assessed: its 0.0 is no measurement
            reasons = "; ".join(str(checks[k].get("detail") or "not assessed") for k in present)
            lost.append(LostRow(label, None, f"not assessed: {reasons}"))
            continue
        lost.append(LostRow(label, None if value is None else float(value),
                            f"remnant whose {branch} the plan cuts off"))
    systems = tuple(SystemRow(k, SYSTEM_LABELS[k], SYSTEM_COLOURS[k], str(checks[k].get("status")),
                              checks[k].get("at_risk_ml"), _system_notes(checks[k])) for k in made)
    functional: Mapping[str, Any] = remnant.get("functional_segments_ml") or {}
    names = list(remnant.get("segments") or ())
    for k in made:
        names += [n for n in (checks[k].get("segments") or {}) if n not in names]
    rows = []
    for name in names:
        per: dict[str, SegmentAtRisk] = {}
        volume = None
        for k in assessed:
            seg = (checks[k].get("segments") or {}).get(name) or {}
            fraction = seg.get("at_risk_fraction")
            per[k] = SegmentAtRisk(seg.get("at_risk_ml"), None if fraction is None else 100.0 * float(fraction),
                                   seg.get("own_branch"))
            volume = seg.get("volume_ml") if volume is None else volume
        rows.append(SegmentRow(name, volume, functional.get(name), per))
    at_risk = remnant.get("at_risk_ml") if assessed else None   # no system assessed: its 0.0 is no measurement
    return TerritoryTables(tuple(lost), at_risk, systems, assessed, tuple(rows),
                           100.0 * SEGMENT_FAIL_FRACTION)


def _ml(v: Any) -> str:
    return "—" if v is None else f"{v:,.{2 if abs(v) < 1 else 1}f} mL"


def input_name(record: Mapping[str, Any]) -> str:
    """What the report's provenance shows for an input: its file name only, never the folders above it (a PACS
    export names folders after the patient, ``DOE^JANE_12345/``); a DICOM folder, whose own name may be such a
    folder, is shown as ``DICOM folder``. The JSON result keeps the path as given.

    >>> input_name({"path": "/data/DOE^JANE_12345/labels.nii.gz", "format": "nifti"})
    'labels.nii.gz'
    >>> input_name({"path": "DOE^JANE_12345", "format": "dicom-folder"})
    'DICOM folder'
    """
    if record.get("format") == "dicom-folder":
        return "DICOM folder"
    path = str(record.get("path") or "")
    return PurePath(path.replace("\\", "/")).name or "—"


def _fmt(value: Any, digits: int = 1) -> str:
    """A value as the report shows it: ``digits`` decimals (one more below 10, none added to a whole number), never
    float noise; names with spaces for underscores.

    >>> _fmt(0.8831328125000001), _fmt(41.2267), _fmt(9.0), _fmt({"liver_condition": "chemotherapy_up_to_12_weeks"})
    ('0.88', '41.2', '9.0', 'liver condition: chemotherapy up to 12 weeks')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer():
            return f"{value:,.{digits}f}"
        return f"{value:,.{digits + 1 if abs(value) < 10 else digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{str(k).replace('_', ' ')}: {_fmt(v, digits)}" for k, v in value.items())
    return str(value).replace("_", " ")


def render_report(result: Mapping[str, Any], figures: Sequence[Figure] = (), *, identifiers: str = "",
                  analysed: str | None = None, thresholds: Thresholds | None = None) -> str:
    """The report page for an assessment result (the dict of ``Assessment.to_dict()``)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["round"] = lambda v, n=1: round(float(v), n)
    from importlib import resources

    from flr.report.figures import PRINT_WIDTH_MM

    template = env.from_string(resources.files("flr.report").joinpath("report.html.j2").read_text(encoding="utf-8"))
    if thresholds is None:
        thresholds = _builtin_thresholds(result)
    return template.render(
        summary=summary(result, thresholds), rule_groups=rule_groups(result.get("verdict")),
        print_widths=PRINT_WIDTH_MM,
        plan=result["plan"], liver=result["liver"], remnant=result["remnant"], checks=result["checks"],
        tumors=result.get("tumors", []), verdict=result.get("verdict"), body=result.get("body") or None,
        inputs=result.get("inputs", []), warnings=result.get("warnings", []), figures=list(figures),
        flr_version=result.get("flr_version"), schema_version=result.get("schema_version"),
        analysed=analysed or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        identifiers=identifiers, disclaimer=DISCLAIMER,
        territories=territory_tables(result),
        fmt=_fmt, input_name=input_name, ml=_ml,
        pct=lambda v, d=1: "—" if v is None else f"{v:.{d}f} %", roman=roman_numeral, segments=segment_list,
        threshold=(thresholds.text if thresholds is not None else (lambda _fact: "")))
