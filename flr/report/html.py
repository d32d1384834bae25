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
from typing import TYPE_CHECKING, Any

from flr.anatomy import roman_numeral, segment_list
from flr.model import DISCLAIMER as _DISCLAIMER

if TYPE_CHECKING:
    from flr.rules import Rulebook

#: The report's disclaimer: flr's one disclaimer, plus what a reader of images should do.
DISCLAIMER = f"{_DISCLAIMER} Check every measurement on the images."


@dataclass(frozen=True)
class Thresholds:
    """The volume thresholds the report shows, from the active rulebook (percent 0-100; None: no such rule).

    ``sflr_percent`` maps a liver condition (or ``"any"``) to the minimum sFLR.
    """

    rulebook_id: str
    flr_body_weight_percent: float | None
    sflr_percent: Mapping[str, float]

    @classmethod
    def from_rulebook(cls, rulebook: Rulebook) -> Thresholds:
        """The first rule testing each fact (its threshold as a number, or a mapping by liver condition)."""
        bw = _first_threshold(rulebook, "flr_body_weight_percent")
        sflr = _first_threshold(rulebook, "sflr_percent")
        return cls(rulebook.id, float(bw) if isinstance(bw, (int, float)) else None,
                   {str(k): float(v) for k, v in sflr.items()} if isinstance(sflr, Mapping)
                   else ({"any": float(sflr)} if isinstance(sflr, (int, float)) else {}))

    def text(self, fact: str) -> str:
        """The threshold cell of the volumes table for ``fact``."""
        if fact == "flr_body_weight_percent" and self.flr_body_weight_percent is not None:
            return f"≥ {self.flr_body_weight_percent:g} % ({self.rulebook_id} rulebook)"
        if fact == "sflr_percent" and self.sflr_percent:
            parts = [f"{v:g} %" + ("" if k == "any" else f" {k.replace('_', ' ')}")
                     for k, v in self.sflr_percent.items()]
            return "≥ " + ", ".join(parts) + f" ({self.rulebook_id} rulebook)"
        return ""


def _first_threshold(rulebook: Rulebook, fact: str) -> Any:
    for rule_id, threshold in rulebook.thresholds_for(fact):
        if threshold is not None and rule_id:
            return threshold
    return None


@dataclass(frozen=True)
class Figure:
    title: str
    png: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")




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
    assessed = tuple(k for k in made if checks[k].get("status") != "not_assessed")
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
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.{digits + 1 if abs(value) < 10 else digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_fmt(v, digits)}" for k, v in value.items())
    return str(value)


def render_report(result: Mapping[str, Any], figures: Sequence[Figure] = (), *, identifiers: str = "",
                  analysed: str | None = None, thresholds: Thresholds | None = None) -> str:
    """The report page for an assessment result (the dict of ``Assessment.to_dict()``)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["round"] = lambda v, n=1: round(float(v), n)
    from importlib import resources

    template = env.from_string(resources.files("flr.report").joinpath("report.html.j2").read_text(encoding="utf-8"))
    return template.render(
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
