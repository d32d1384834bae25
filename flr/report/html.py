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
from typing import Any

DISCLAIMER = ("flr is decision support for the multidisciplinary team: it supports the team's decision and "
              "does not replace it. Check every measurement on the images.")


@dataclass(frozen=True)
class Figure:
    title: str
    png: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")




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


def _roman(name: str) -> str:
    seg = name.rsplit("_", 1)[-1]
    base = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "7": "VII", "8": "VIII"}
    return base.get(seg[0], seg) + seg[1:] if seg else name


def render_report(result: Mapping[str, Any], figures: Sequence[Figure] = (), *, identifiers: str = "",
                  analysed: str | None = None) -> str:
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
        fmt=_fmt, ml=lambda v: "—" if v is None else f"{v:,.{2 if abs(v) < 1 else 1}f} mL",
        pct=lambda v, d=1: "—" if v is None else f"{v:.{d}f} %", roman=_roman)
