"""Write the HTML report (with figures) and the JSON result of an assessment into a folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flr.anatomy import SEGMENT_CODES
from flr.errors import InputFileError, OutputError
from flr.image import Image
from flr.report.html import Figure, Thresholds, render_report
from flr.results import Assessment, SupplyCheck

if TYPE_CHECKING:
    from flr.report.figures import VolumeBar
    from flr.rules import Rulebook

#: The files a report folder holds (an existing folder may hold only these: it is replaced whole).
REPORT_FILES = ("report.html", "result.json")


def active_rulebook(assessment: Assessment, rulebook: Rulebook | None = None) -> Rulebook:
    """The rulebook whose thresholds the report draws: the one given, else the verdict's built-in rulebook
    (when its hash matches), else the default one.
    """
    from flr.rules import load_rulebook, rulebook_sha256

    if rulebook is not None:
        return rulebook
    v = assessment.verdict
    if v is not None:
        try:
            book = load_rulebook(v.rulebook_id)
        except InputFileError:
            book = None
        if book is not None and rulebook_sha256(book) == v.rulebook_sha256:
            return book
    return load_rulebook("default")


#: Context drawn around the liver and its vessels (mm): the figures show the assessment's box grown by this.
DISPLAY_MARGIN_MM = 15.0


class _View:
    """What the figures draw from (issue 14, item 5: the assessment's crops, no whole-grid array): the display
    box (the assessment's box grown by :data:`DISPLAY_MARGIN_MM`, clipped to the grid), its geometry, and
    each array of the assessment on it."""

    def __init__(self, assessment: Assessment) -> None:
        arr = assessment.arrays
        assert arr is not None
        g = assessment.geometry
        shape = np.array(g.shape_zyx)
        if arr.box is None:
            self.box: tuple[slice, ...] = tuple(slice(0, int(n)) for n in shape)
        else:
            grow = np.ceil(DISPLAY_MARGIN_MM / np.asarray(g.spacing_zyx_mm)).astype(int)
            lo = np.maximum([b.start for b in arr.box] - grow, 0)
            hi = np.minimum([b.stop for b in arr.box] + grow, shape)
            self.box = tuple(slice(int(a), int(z)) for a, z in zip(lo, hi, strict=True))
        self.offset = np.array([b.start for b in self.box])
        self.geometry = g.cropped(self.box)
        self._arr = arr

    def on_box(self, crop: np.ndarray) -> np.ndarray:
        """An array of the assessment's box, placed on the display box (0 / False around it)."""
        box = self._arr.box
        if box is None:
            return crop[self.box]
        out = np.zeros(self.geometry.shape_zyx, crop.dtype)
        out[tuple(slice(b.start - o, b.stop - o) for b, o in zip(box, self.offset, strict=True))] = crop
        return out

    def array(self, name: str) -> np.ndarray:
        return self.on_box(getattr(self._arr, f"crop_{name}"))

    def mapping(self, name: str) -> dict[str, np.ndarray]:
        return {k: self.on_box(v) for k, v in getattr(self._arr, f"crop_{name}").items()}

    def grid_index(self, view: str, index: int) -> int:
        """A slice number of the display box as a slice number of the whole grid."""
        from flr.report.figures import FIXED_AXIS

        return int(index + self.offset[FIXED_AXIS[view]])


def _picks(view: _View) -> list[tuple[str, str, int]]:
    """(title, view, index on the display box) of the report's slices (:func:`slices_to_draw`)."""
    from flr.report import figures as fg

    g = view.geometry
    tumors = view.array("tumors")
    picks = fg.pick_slices(g, view.array("liver"), tumors if tumors.any() else None)
    at_risk = view.mapping("at_risk")
    for check in [k for k in fg.SYSTEMS if k in at_risk]:
        mask = at_risk[check]
        if any(fg.at_risk_planes({check: mask}, g, v, index) for _, v, index in picks):
            continue
        index = fg.at_risk_slice(mask, g, "axial")
        if index is not None:
            picks.append((f"Axial through the {fg.SYSTEM_LABELS[check]} territory at risk", "axial", index))
    return picks


def slices_to_draw(assessment: Assessment) -> list[tuple[str, str, int]]:
    """(title, view, index) of the report's slices, indices of the whole grid: through the liver centre and each
    tumour (:func:`flr.report.figures.pick_slices`), then, for each vessel system whose territory at risk none of
    those shows, the axial slice holding most of it.
    """
    if assessment.arrays is None:
        return []
    view = _View(assessment)
    return [(title, v, view.grid_index(v, index)) for title, v, index in _picks(view)]


def make_figures(assessment: Assessment, ct: Image | None, thresholds: Thresholds) -> list[Figure]:
    """Slices (:func:`slices_to_draw`), the segment volume chart and a remnant projection, drawn from the
    assessment's crops on the display box (:class:`_View`)."""
    from flr.report import figures as fg

    if assessment.arrays is None:
        return []
    view = _View(assessment)
    g = view.geometry
    margin_points = [(t.tumor_point_mm, t.remnant_point_mm, t.margin_mm) for t in assessment.tumors
                     if t.tumor_point_mm is not None and t.remnant_point_mm is not None and t.margin_mm is not None]
    ct_hu = ct.region(view.box) if ct is not None else None  # a CT opened lazily decodes the box alone
    at_risk_ml = {name: c.at_risk_ml for name, c in assessment.checks.items() if isinstance(c, SupplyCheck)}
    ablation_box = view.array("ablation")
    ablation = ablation_box if np.any(ablation_box) else None
    territory, removed, tumors, at_risk = (view.array("territory"), view.array("removed"), view.array("tumors"),
                                           view.mapping("at_risk"))
    out = []
    for title, v, index in _picks(view):
        png = fg.slice_png(ct_hu, g, view=v, index=index, segment_map=territory, segment_names=SEGMENT_CODES,
                           resected=removed, tumors=tumors, margin_points=margin_points,
                           at_risk=at_risk, at_risk_ml=at_risk_ml, ablation=ablation, title=title)
        caption = (f"{v} slice {view.grid_index(v, index)}; segments by numeral, resected parenchyma hatched, "
                   "tumours outlined red")
        if ablation is not None:
            caption += ", ablation zones dashed white"
        if any(np.any(m) for m in at_risk.values()):
            caption += "; remnant at risk hatched in its vessel system's colour"
        out.append(Figure(title, png, caption, kind="slice"))
    out.append(_volume_chart(assessment, thresholds))
    out.append(Figure("Remnant (anterior projection)",
                      fg.remnant_projection_png(view.array("functional"), removed, g, tumors=tumors,
                                                remnant_label="functional remnant"),
                      "functional remnant in colour, resected parenchyma grey, tumours red", kind="projection"))
    return out


def volume_bars(assessment: Assessment) -> tuple[list[VolumeBar], VolumeBar]:
    """The segment chart's bars (mL): per segment its functional remnant, the rest of its remnant (tumour left,
    ablation zone, territory at risk) and its resected part; the total bar the assessment's own totals, whose
    functional part is the functional remnant the FLR rules judge (``remnant.functional_volume_ml``).
    """
    from flr.report.figures import VolumeBar

    lv, r = assessment.liver, assessment.remnant
    functional = r.functional_segments_ml or {}
    bars = []
    for name, total in lv.segments_ml.items():
        resected = lv.segments_resected_ml.get(name, 0.0)
        kept = functional.get(name, 0.0)
        bars.append(VolumeBar(name, kept, max(total - resected - kept, 0.0), resected))
    return bars, VolumeBar("total", r.functional_volume_ml, max(r.volume_ml - r.functional_volume_ml, 0.0),
                           lv.resected_volume_ml)


def _volume_chart(assessment: Assessment, thresholds: Thresholds) -> Figure:
    """Functional remnant, rest of the remnant and resected volume per segment (mL), with the rulebook's
    FLR/body-weight line and, where the estimated total liver volume is known, its sFLR line."""
    from flr.report import figures as fg

    bars, total = volume_bars(assessment)
    weight = assessment.body.weight_kg
    percent = thresholds.flr_body_weight_percent
    line_ml = weight * 10.0 * percent if weight and percent is not None else None  # 1 g/mL: 1 % of W kg = 10 W mL
    label = f"FLR {percent:g}% of body weight ({thresholds.rulebook_id})" if line_ml is not None else ""
    caption = "functional remnant (what the FLR rules judge), the rest of the remnant and the resected parenchyma " \
              "per segment" + (f"; line: {percent:g}% of {weight:g} kg, the {thresholds.rulebook_id} rulebook's " \
                               "threshold" if line_ml is not None else "")
    lines = []
    telv = assessment.body.telv_ml
    sflr = thresholds.applied_sflr(assessment.verdict.to_dict() if assessment.verdict is not None else None)
    if telv and sflr is not None:
        minimum, condition = sflr
        lines.append((telv * minimum / 100.0, f"sFLR {minimum:g}% of TELV ({thresholds.rulebook_id})"))
        caption += f"; dotted: sFLR {minimum:g}% of the estimated total liver volume {telv:,.0f} mL" + (
            f" ({condition})" if condition else "")
    png = fg.volume_bar_png(bars, total=total, threshold_ml=line_ml, threshold_label=label, lines=lines)
    return Figure("Segment volumes", png, caption, kind="chart")


def write_report(assessment: Assessment, out_dir: Path, *, ct: Image | None = None,
                 identifiers: dict[str, str] | None = None, rulebook: Rulebook | None = None) -> dict[str, Path]:
    """Write ``report.html`` and ``result.json`` into ``out_dir`` (created if missing), each atomically.

    The commands pass the staged temporary folder of :mod:`pipelines.outputs`, so the two files appear under the
    final name together.
    """
    from flr.io import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(exist_ok=True)
    thresholds = Thresholds.from_rulebook(active_rulebook(assessment, rulebook))
    result = assessment.to_dict()
    if identifiers:
        result["identifiers"] = dict(identifiers)
    ident_text = ", ".join(f"{k}: {v}" for k, v in (identifiers or {}).items())
    html = render_report(result, make_figures(assessment, ct, thresholds), identifiers=ident_text,
                         thresholds=thresholds)
    json_path = write_json_atomic(result, out_dir / "result.json")
    html_path = write_text_atomic(html, out_dir / "report.html")
    return {"report": html_path, "json": json_path}


def report_from_result(result_path: Path, labels: Sequence[str], out_dir: Path, *, ct: Path | None = None,
                       series_uid: str | None = None, include_identifiers: bool = False) -> dict[str, Path]:
    """Re-draw the report of a saved assessment: the saved result is shown, the images come from the inputs.

    The inputs must be the ones the JSON was computed from: the plan is re-applied to them (for the
    figures' masks) and the remnant volume is checked against the saved one. ``out_dir`` is checked before
    anything is read and written whole (:mod:`pipelines.outputs`); the paths returned are under ``out_dir``.
    """
    from flr.assessment import assess
    from flr.io import read_dicom_identifiers
    from pipelines.assess import read_assessment
    from pipelines.inputs import input_paths, load_case
    from pipelines.outputs import Output, OutputSet

    outputs = OutputSet([Output("--out", out_dir, folder=True, writes=REPORT_FILES)],
                        inputs=[result_path, *input_paths(labels, ct)])
    with outputs.staged() as staged:
        saved = read_assessment(result_path)
        ct_image, maps = load_case(labels, ct=ct, series_uid=series_uid)
        fresh = assess(maps, saved.plan, ct=ct_image)
        expected_ml = saved.remnant.volume_ml
        if abs(fresh.remnant.volume_ml - expected_ml) > 1e-6 * max(1.0, expected_ml):
            raise InputFileError(f"{result_path}: computed from other inputs (remnant {expected_ml:.1f} mL there, "
                                 f"{fresh.remnant.volume_ml:.1f} mL from these labels)")
        identifiers = read_dicom_identifiers(ct_image) if include_identifiers and ct_image is not None else None
        with staged.writing("--out") as folder:
            write_report(saved.with_arrays(fresh.arrays), folder, ct=ct_image, identifiers=identifiers)
    return {"report": Path(out_dir) / "report.html", "json": Path(out_dir) / "result.json"}
