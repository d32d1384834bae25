"""Write the HTML report (with figures) and the JSON result of an assessment into a folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flr.assess import SEGMENT_CODES, Assessment
from flr.errors import InputFileError
from flr.image import Image
from flr.report.html import Figure, render_report


def make_figures(assessment: Assessment, ct: Image | None) -> list[Figure]:
    """Slices through the liver centre and each tumour, the segment volume chart and a remnant projection."""
    from flr.report import figures as fg

    arr = assessment.arrays
    if not arr:
        return []
    g = assessment.volumetry.geometry
    territory, removed, tumors = arr["territory"], arr["removed"], arr["tumors"]
    margin_points = [(t["tumor_point_mm"], t["remnant_point_mm"], t["margin_mm"]) for t in assessment.tumors
                     if t.get("tumor_point_mm") is not None and t.get("margin_mm") is not None]
    ct_hu = np.asarray(ct.array) if ct is not None else None
    out = []
    for title, view, index in fg.pick_slices(g, arr["liver"], tumors if tumors.any() else None):
        png = fg.slice_png(ct_hu, g, view=view, index=index, segment_map=territory, segment_names=SEGMENT_CODES,
                           resected=removed, tumors=tumors, margin_points=margin_points, title=title)
        out.append(Figure(title, png, f"{view} slice {index}; resected parenchyma hatched, tumours outlined"))
    rows = []
    for code, name in SEGMENT_CODES.items():
        seg = territory == code
        if seg.any():
            gone = int(np.count_nonzero(seg & removed))
            rows.append((name, (int(np.count_nonzero(seg)) - gone) * g.voxel_volume_ml, gone * g.voxel_volume_ml))
    weight = assessment.body.get("weight_kg")
    threshold = weight * 10.0 if weight else None  # 1% of body weight in mL at 1 g/mL
    out.append(Figure("Segment volumes", fg.volume_bar_png(rows, threshold_ml=threshold,
                                                           threshold_label="FLR 1% of body weight"),
                      "remnant and resected parenchyma per segment" + (
                          f"; line: 1% of {weight:g} kg" if weight else "")))
    out.append(Figure("Remnant (anterior projection)",
                      fg.remnant_projection_png(arr["functional"], removed, g, tumors=tumors),
                      "functional remnant in colour, resected parenchyma grey, tumours red"))
    return out


def write_report(assessment: Assessment, out_dir: Path, *, ct: Image | None = None,
                 identifiers: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``report.html`` and ``result.json`` into ``out_dir`` (created), each atomically."""
    from flr.io import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputFileError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = assessment.to_dict()
    if identifiers:
        result["identifiers"] = dict(identifiers)
    ident_text = ", ".join(f"{k}: {v}" for k, v in (identifiers or {}).items())
    html = render_report(result, make_figures(assessment, ct), identifiers=ident_text)
    json_path = write_json_atomic(result, out_dir / "result.json")
    html_path = write_text_atomic(html, out_dir / "report.html")
    return {"report": html_path, "json": json_path}


def report_from_result(result_path: Path, labels: Sequence[str], out_dir: Path, *, ct: Path | None = None,
                       series_uid: str | None = None, include_identifiers: bool = False) -> dict[str, Path]:
    """Re-draw the report of a saved assessment: the plan comes from the JSON, the images from the inputs.

    The inputs must be the ones the JSON was computed from: the remnant volume is checked.
    """
    from dataclasses import replace

    from flr.assess import assess
    from flr.io import read_dicom_identifiers
    from flr.plan import Plan
    from pipelines.inputs import load_case

    try:
        saved: dict[str, Any] = json.loads(Path(result_path).read_text(encoding="utf-8"))
        p = saved["plan"]
    except FileNotFoundError:
        raise InputFileError(f"{result_path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{result_path}: not an flr assessment JSON ({exc})") from None
    plan = Plan(p["name"], tuple(p["resected_segments"]), bool(p.get("include_caudate")),
                tuple((w["tumor_id"], w["margin_mm"]) for w in p.get("wedges", [])),
                tuple((a["tumor_id"], a["margin_mm"]) for a in p.get("ablations", [])))
    ct_image, maps = load_case(labels, ct=ct, series_uid=series_uid)
    fresh = assess(maps, plan, ct=ct_image)
    expected_ml = saved["remnant"]["volume_ml"]
    if abs(fresh.remnant["volume_ml"] - expected_ml) > 1e-6 * max(1.0, expected_ml):
        raise InputFileError(f"{result_path}: computed from other inputs (remnant {expected_ml:.1f} mL there, "
                             f"{fresh.remnant['volume_ml']:.1f} mL from these labels)")
    restored = replace(fresh, body=saved.get("body", {}), remnant=saved["remnant"], checks=saved["checks"],
                       patient=saved.get("patient", {}), facts=saved.get("facts", {}),
                       verdict=saved.get("verdict", {}))
    identifiers = read_dicom_identifiers(ct_image) if include_identifiers and ct_image is not None else None
    return write_report(restored, out_dir, ct=ct_image, identifiers=identifiers)
