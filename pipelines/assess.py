"""Single-case assessment workflow: read the inputs, apply the plan, judge the remnant, format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flr.assess import Assessment, Body, assess
from flr.errors import PlanError
from flr.io import read_image, read_label_map
from flr.plan import resection_plan
from flr.schemes import split_labels_argument

DISCLAIMER = "flr supports the multidisciplinary team's decision; it does not replace it."


def run_assess(labels: Sequence[str], *, ct: Path | None = None, plan_name: str | None = None,
               resect: str | None = None, include_caudate: bool = False, wedges: Sequence[str] = (),
               ablations: Sequence[str] = (), body: Body | None = None, series_uid: str | None = None,
               resample: bool = False) -> Assessment:
    """Read ``PATH[:SCHEME]`` label maps (and the CT), build the plan and assess it."""
    if plan_name and resect:
        raise PlanError(f"give either --plan {plan_name!r} or --resect {resect!r}, not both")
    plan = resection_plan(plan_name or resect, include_caudate=include_caudate, wedges=wedges, ablations=ablations)
    ct_image = read_image(ct, series_uid=series_uid, resample=resample) if ct is not None else None
    maps = []
    for arg in labels:
        path, scheme = split_labels_argument(arg)
        maps.append(read_label_map(path, scheme, series_uid=series_uid))
    return assess(maps, plan, ct=ct_image, body=body)


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
    lines.extend(f"warning: {w}" for w in a.to_dict()["warnings"])
    return "\n".join(lines)
