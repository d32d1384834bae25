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
        fmt=_fmt, input_name=input_name, ml=lambda v: "—" if v is None else f"{v:,.{2 if abs(v) < 1 else 1}f} mL",
        pct=lambda v, d=1: "—" if v is None else f"{v:.{d}f} %", roman=roman_numeral, segments=segment_list,
        threshold=(thresholds.text if thresholds is not None else (lambda _fact: "")))
