"""Report figures: CT slices with Couinaud segments, volume bars and a remnant projection, as PNG bytes.

Pure functions: arrays (indexed ``(z, y, x)``) and a :class:`~flr.image.Geometry` in, PNG bytes out;
nothing here writes a file or touches pyplot's global state (each figure is a
:class:`matplotlib.figure.Figure` drawn by the Agg canvas).

Display convention (radiological)
    axial: patient right on the image left, anterior at the top; coronal: patient right on the image
    left, superior at the top. Slices are only transposed and flipped, never resampled, so an oblique
    grid is shown as close to the convention as the grid allows, and the orientation letters at the
    edges name the dominant patient direction of each edge, computed from the direction matrix after
    the display transform (never assumed). Pixels keep their physical aspect ratio (extent in mm).

>>> import numpy as np
>>> from flr.image import Geometry
>>> ras = Geometry(shape_zyx=(2, 3, 4), direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))   # RAS-stored
>>> orientation_labels(ras, "axial")
{'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
>>> display_slice(np.arange(24).reshape(2, 3, 4), ras, "axial", 0)[0].tolist()   # both axes flipped
[11, 10, 9, 8]
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flr.anatomy import SEGMENT_BY_NAME, SEGMENTS, roman_numeral
from flr.image import Geometry, patient_side

__all__ = [
    "ABLATION_COLOUR",
    "MIN_TEXT_PT",
    "PRINT_WIDTH_MM",
    "SEGMENT_COLOURS",
    "SYSTEM_COLOURS",
    "SYSTEM_HATCHES",
    "SYSTEM_LABELS",
    "VolumeBar",
    "at_risk_planes",
    "at_risk_slice",
    "display_slice",
    "orientation_labels",
    "pick_slices",
    "remnant_projection_figure",
    "remnant_projection_png",
    "segment_colour",
    "segment_label",
    "slice_figure",
    "slice_png",
    "volume_bar_figure",
    "volume_bar_png",
]

VIEWS: tuple[str, ...] = ("axial", "coronal")

#: The report's colour of each canonical segment: ten hues apart (orange, pink, amber, cyan, brown, blue, green,
#: violet; lime and dark teal for IVa and IVb), none of them the tumour red, the resected grey or the margin
#: yellow. Pairwise CIE76 delta-E >= 37 as drawn, >= 19 as tints over the liver's grey (tests pin >= 35 / >= 18),
#: and face-adjacent segments (Couinaud: I-II, II-III, III-IV, IV-V, V-VI, VI-VII, VII-VIII, ...) differ by
#: >= 78 degrees of hue, so neighbours never read as one colour (the registry's Paired colours gave II and III
#: a dark and a light blue).
#: One colour per canonical segment in code order (:data:`flr.anatomy.SEGMENTS`: 1..8, 4a, 4b).
SEGMENT_COLOURS: tuple[str, ...] = tuple(seg.colour for seg in SEGMENTS)
#: Opacity of a segment's tint over the CT (the CT stays readable under it).
SEGMENT_TINT_ALPHA = 0.38
_EXTRA_COLOURS: tuple[str, ...] = ("#8dd3c7", "#bebada", "#80b1d3", "#fdb462", "#fccde5", "#ccebc5")
REMNANT_COLOUR = "#2e8b57"
RESECTED_COLOUR = "#9e9e9e"
TUMOUR_COLOUR = "#ff1a1a"
MARGIN_COLOUR = "#ffff33"
#: Ablation zones: a dashed white outline (the tumour's red outline and the segment's tint stay visible inside).
ABLATION_COLOUR = "#ffffff"
THRESHOLD_COLOUR = "#d62728"
#: The sFLR minimum (as mL of the estimated total liver volume) on the segment chart.
SFLR_LINE_COLOUR = "#1f3a93"
#: Not functional remnant on the segment chart (tumour left, ablation zones, territories at risk, islands).
OTHER_REMNANT_COLOUR = "#a9d8b8"

#: Vessel systems in the order the report lists them (the supply checks of :class:`flr.results.Checks`).
SYSTEMS: tuple[str, ...] = ("inflow", "outflow", "arterial_inflow", "biliary_drainage")
#: What each system's territory at risk is called in legends and tables.
SYSTEM_LABELS: dict[str, str] = {"inflow": "portal inflow", "outflow": "hepatic-venous outflow",
                                 "arterial_inflow": "arterial inflow", "biliary_drainage": "biliary drainage"}
#: One colour per vessel system, from the Okabe-Ito palette (distinguishable with the common colour-vision
#: deficiencies, and clear of the tumour red and the margin yellow): sky blue, orange, reddish purple, bluish green.
SYSTEM_COLOURS: dict[str, str] = {"inflow": "#56b4e9", "outflow": "#e69f00", "arterial_inflow": "#cc79a7",
                                  "biliary_drainage": "#009e73"}
#: One hatch direction per system as well, so overlapping territories (and a grey print) stay apart; the
#: resected part keeps "///".
SYSTEM_HATCHES: dict[str, str] = {"inflow": "\\\\\\", "outflow": "|||", "arterial_inflow": "---",
                                  "biliary_drainage": "xxx"}

#: Where the image axes of :func:`slice_png` and :func:`remnant_projection_png` sit, as fractions of the figure's
#: square top (width x width: title and image) (left, bottom, width, height); the drawn image is that box shrunk
#: to the physical aspect, centred. The legend, when there is one, is a strip under the square.
IMAGE_AXES_RECT: tuple[float, float, float, float] = (0.02, 0.02, 0.96, 0.90)

#: The width (mm) the report prints each kind of figure at on A4 (its print style is written from these): two
#: slices or projections side by side, the segment chart across the page.
PRINT_WIDTH_MM: Mapping[str, float] = {"slice": 88.0, "projection": 88.0, "chart": 180.0}
#: The smallest text size (pt) of any figure once printed at :data:`PRINT_WIDTH_MM`.
MIN_TEXT_PT = 9.0


def text_pt(kind: str, figure_width_in: float, printed_pt: float = MIN_TEXT_PT) -> float:
    """The font size (pt of the figure's own inches) that prints at ``printed_pt`` on a figure of ``kind``
    ``figure_width_in`` wide, shown at :data:`PRINT_WIDTH_MM`.

    >>> round(text_pt("slice", 6.0), 2)   # a 6-inch slice printed 88 mm wide
    15.59
    """
    return printed_pt * figure_width_in * 25.4 / PRINT_WIDTH_MM[kind]



# ------------------------------------------------------------------------------------------------
# Display transform
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """How a plane of a (z, y, x) volume becomes a displayed image (rows top->bottom, cols left->right)."""

    fixed_axis: int       # array axis held fixed (0 = z, 1 = y, 2 = x)
    row_axis: int         # array axis that runs down the displayed image
    col_axis: int         # array axis that runs across it
    flip_rows: bool
    flip_cols: bool
    row_dir: np.ndarray   # LPS unit vector of one displayed row down
    col_dir: np.ndarray   # LPS unit vector of one displayed column right
    row_mm: float         # spacing along displayed rows
    col_mm: float         # spacing along displayed columns

    def orient(self, plane: np.ndarray) -> np.ndarray:
        """Turn a 2-D plane (the volume's axes other than ``fixed_axis``, in array order) into the display."""
        in_plane = [a for a in (0, 1, 2) if a != self.fixed_axis]
        out = plane.T if in_plane[0] != self.row_axis else plane
        if self.flip_rows:
            out = out[::-1, :]
        if self.flip_cols:
            out = out[:, ::-1]
        return out

    def to_display(self, index_zyx: np.ndarray, shape_zyx: Sequence[int]) -> tuple[float, float]:
        """Displayed (row, col) of a fractional (z, y, x) index (pixel centres at integers)."""
        r = float(index_zyx[self.row_axis])
        c = float(index_zyx[self.col_axis])
        if self.flip_rows:
            r = shape_zyx[self.row_axis] - 1 - r
        if self.flip_cols:
            c = shape_zyx[self.col_axis] - 1 - c
        return r, c


#: LPS unit vectors wanted (column right, row down) for each view.
_TARGETS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "axial": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),     # right = L, down = P
    "coronal": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),  # right = L, down = I
}
#: The array axis (z, y, x) each view holds fixed: its slice number counts along it.
FIXED_AXIS = {"axial": 0, "coronal": 1}


def _check_view(view: str) -> str:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return view


def _plan(geometry: Geometry, view: str, fixed_axis: int | None = None) -> _Plan:
    """Choose transpose and flips so the displayed axes point as close as possible to the view's targets."""
    col_target, row_target = _TARGETS[_check_view(view)]
    fixed = FIXED_AXIS[view] if fixed_axis is None else fixed_axis
    d = geometry.direction_matrix
    spacing = geometry.spacing_mm

    def direction(axis: int) -> np.ndarray:  # array axis (z, y, x) -> LPS column of index axis (x, y, z)
        return d[:, 2 - axis]

    a0, a1 = (a for a in (0, 1, 2) if a != fixed)
    candidates = [(a0, a1), (a1, a0)]  # (row axis, col axis); the first keeps the array's order
    scores = [abs(direction(c) @ col_target) + abs(direction(r) @ row_target) for r, c in candidates]
    row_axis, col_axis = candidates[int(np.argmax(scores))]  # ties keep the array order
    flip_rows = bool(direction(row_axis) @ row_target < 0)
    flip_cols = bool(direction(col_axis) @ col_target < 0)
    return _Plan(
        fixed_axis=fixed, row_axis=row_axis, col_axis=col_axis, flip_rows=flip_rows, flip_cols=flip_cols,
        row_dir=direction(row_axis) * (-1.0 if flip_rows else 1.0),
        col_dir=direction(col_axis) * (-1.0 if flip_cols else 1.0),
        row_mm=spacing[2 - row_axis], col_mm=spacing[2 - col_axis],
    )


def _letter(vector: np.ndarray) -> str:
    """Patient side ('R', 'L', 'A', 'P', 'I', 'S') of the dominant LPS component of ``vector``."""
    return patient_side(vector, letter=True)


def _labels_of(plan: _Plan) -> dict[str, str]:
    return {"left": _letter(-plan.col_dir), "right": _letter(plan.col_dir),
            "top": _letter(-plan.row_dir), "bottom": _letter(plan.row_dir)}


def _check_volume(volume: np.ndarray, geometry: Geometry, what: str) -> np.ndarray:
    arr = np.asarray(volume)
    if arr.shape != geometry.shape_zyx:
        raise ValueError(f"{what} has shape {arr.shape}, but the geometry is (z, y, x) {geometry.shape_zyx}")
    return arr


def _check_index(geometry: Geometry, view: str, index: int) -> int:
    axis = FIXED_AXIS[_check_view(view)]
    n = geometry.shape_zyx[axis]
    i = int(index)
    if not 0 <= i < n:
        raise IndexError(f"{view} slice index {index} outside 0..{n - 1} ({'zyx'[axis]} axis of {n})")
    return i


def display_slice(volume: np.ndarray, geometry: Geometry, view: str, index: int) -> np.ndarray:
    """The slice as displayed: ``view`` "axial" (fixed z index) or "coronal" (fixed y index).

    Transposed and flipped (never resampled) so that, as far as the grid allows, patient right is on
    the image left and anterior (axial) or superior (coronal) at the top. Returns a view when possible.
    The plane is always the stored one: on a grid whose y index does not run anterior-posterior the
    "coronal" slice is another plane, and :func:`orientation_labels` names its edges truthfully.
    """
    arr = _check_volume(volume, geometry, "volume")
    i = _check_index(geometry, view, index)
    plan = _plan(geometry, view)
    return plan.orient(np.take(arr, i, axis=plan.fixed_axis))


def orientation_labels(geometry: Geometry, view: str) -> dict[str, str]:
    """Patient side at each edge of the displayed ``view``: ``{"left", "right", "top", "bottom"} -> letter``.

    Computed from the direction matrix after the display transform; on an oblique grid each edge gets
    its dominant LPS direction.
    """
    return _labels_of(_plan(geometry, view))


# ------------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------------


def _new_figure(width_in: float, height_in: float, dpi: int = 100) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def segment_label(name: str) -> str:
    """Roman numeral of a canonical segment name ("liver_segment_4a" -> "IVa"); other names unchanged."""
    return roman_numeral(name)


def segment_colour(name: str, code: int = 0) -> str:
    """The report's colour of a canonical segment name (:data:`SEGMENT_COLOURS`); another name (a label the
    registry does not know) gets one of a few extra colours by its ``code``."""
    if name in SEGMENT_BY_NAME:
        return SEGMENT_BY_NAME[name].colour
    return _EXTRA_COLOURS[code % len(_EXTRA_COLOURS)]


def _extent(plan: _Plan, shape_2d: tuple[int, ...]) -> tuple[float, float, float, float]:
    """imshow extent in mm (left, right, bottom, top) with pixel (r, c) centred at ((c+.5)*col_mm, (r+.5)*row_mm)."""
    n_rows, n_cols = shape_2d
    return (0.0, n_cols * plan.col_mm, n_rows * plan.row_mm, 0.0)


def _mm(plan: _Plan, row: float, col: float) -> tuple[float, float]:
    return (col + 0.5) * plan.col_mm, (row + 0.5) * plan.row_mm


def _orientation_text(ax: Any, labels: Mapping[str, str], fontsize: float) -> None:
    style = {"color": "white", "fontsize": fontsize, "fontweight": "bold", "transform": ax.transAxes,
             "bbox": {"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 1.5}}
    ax.text(0.01, 0.5, labels["left"], ha="left", va="center", **style)
    ax.text(0.99, 0.5, labels["right"], ha="right", va="center", **style)
    ax.text(0.5, 0.99, labels["top"], ha="center", va="top", **style)
    ax.text(0.5, 0.01, labels["bottom"], ha="center", va="bottom", **style)


def _outline(ax: Any, mask: np.ndarray, extent: tuple[float, ...], colour: str, width: float = 1.5) -> None:
    if mask.any() and not mask.all():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=width,
                   extent=extent, origin="upper")


def _rgba(hex_colour: str, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    r, g, b, _ = to_rgba(hex_colour)
    return np.array([r, g, b, alpha])


# ------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------


def _draw_segments(ax: Any, plan: _Plan, seg2d: np.ndarray, segment_names: Mapping[int, str],
                   res2d: np.ndarray | None, extent: tuple[float, float, float, float], fontsize: float) -> list[Any]:
    """Tint each segment of the slice and label it with its numeral on a box of its colour (the segments' key:
    not repeated in the legend), dim and hatch the resected part; the legend handles."""
    from matplotlib.patches import Patch

    handles: list[Any] = []
    overlay = np.zeros((*seg2d.shape, 4), np.float32)
    codes = sorted(int(c) for c in np.unique(seg2d) if c and int(c) in segment_names)
    for code in codes:
        name = segment_names[code]
        colour = segment_colour(name, code)
        mask = seg2d == code
        overlay[mask] = _rgba(colour, SEGMENT_TINT_ALPHA)
        rows, cols = np.nonzero(mask)
        x, y = _mm(plan, float(rows.mean()), float(cols.mean()))
        ax.text(x, y, segment_label(name), ha="center", va="center", fontsize=fontsize, fontweight="bold",
                color="white", bbox={"facecolor": colour, "alpha": 0.75, "edgecolor": "none", "pad": 1.2})
    resected = res2d is not None and bool(res2d.any())
    if resected:
        dim = np.asarray(res2d).astype(bool)
        overlay[dim] = overlay[dim] * 0.5 + _rgba("#000000", 0.5) * 0.5
        overlay[dim, 3] = 0.55
    ax.imshow(overlay, extent=extent, origin="upper", interpolation="nearest", aspect="equal")
    if resected:
        res = np.asarray(res2d)
        ax.contourf(res.astype(np.float32), levels=[0.5, 1.5], colors="none", hatches=["///"],
                    extent=extent, origin="upper")
        _outline(ax, res.astype(bool), extent, "white", 1.0)
        handles.append(Patch(facecolor="#444444", edgecolor="white", hatch="///", label="resected"))
    return handles


def at_risk_planes(at_risk: Mapping[str, np.ndarray], geometry: Geometry, view: str,
                   index: int) -> dict[str, np.ndarray]:
    """The displayed slice of each system's territory at risk: ``{check: bool (rows, cols)}``, as :func:`slice_png`
    hatches it (the same transpose and flips as :func:`display_slice`; systems in :data:`SYSTEMS` order, then any
    other key). A system with no voxel at risk on this slice is left out.
    """
    order = [k for k in SYSTEMS if k in at_risk] + [k for k in at_risk if k not in SYSTEMS]
    out: dict[str, np.ndarray] = {}
    for check in order:
        mask = _check_volume(at_risk[check], geometry, f"at_risk[{check!r}]")
        plane = display_slice(mask, geometry, view, index) != 0
        if plane.any():
            out[check] = plane
    return out


def at_risk_slice(mask: np.ndarray, geometry: Geometry, view: str = "axial") -> int | None:
    """Index of the ``view`` slice holding most of ``mask`` (the first of equals); None for an empty mask."""
    arr = _check_volume(mask, geometry, "at-risk mask") != 0
    axis = FIXED_AXIS[_check_view(view)]
    counts = arr.sum(axis=tuple(a for a in (0, 1, 2) if a != axis))
    return int(np.argmax(counts)) if counts.any() else None


def _system_style(check: str, code: int) -> tuple[str, str]:
    colour = SYSTEM_COLOURS.get(check, _EXTRA_COLOURS[code % len(_EXTRA_COLOURS)])
    return colour, SYSTEM_HATCHES.get(check, "++")


#: Sub-voxels per voxel edge of the grid the territories at risk are contoured on: the contour then runs on the
#: voxel edges and cuts each convex corner by 1 / (2 * 4) voxel only (on the voxel grid itself, by half a voxel).
_AT_RISK_UPSAMPLE = 4


def _voxel_edge_grid(plan: _Plan, plane: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """``plane`` cropped to its box plus one voxel, each voxel repeated ``_AT_RISK_UPSAMPLE`` times along both
    axes, as float, and its imshow-style extent (mm): contour level 0.5 of it follows the voxel edges."""
    k = _AT_RISK_UPSAMPLE
    box = _bbox(plane)
    assert box is not None
    (r0, r1), (c0, c1) = ((s.start - 1, s.stop + 1) for s in box)
    crop = np.zeros((r1 - r0, c1 - c0), np.float32)
    crop[1:-1, 1:-1] = plane[box]
    fine = np.repeat(np.repeat(crop, k, axis=0), k, axis=1)
    return fine, (c0 * plan.col_mm, c1 * plan.col_mm, r1 * plan.row_mm, r0 * plan.row_mm)


def _draw_at_risk(ax: Any, plan: _Plan, planes: Mapping[str, np.ndarray]) -> None:
    """Hatch and outline each system's territory at risk in the system's colour (no fill: the segment shows),
    along the voxel edges (:func:`_voxel_edge_grid`)."""
    for code, (check, plane) in enumerate(planes.items()):
        colour, hatch = _system_style(check, code)
        fine, extent = _voxel_edge_grid(plan, plane)
        cs = ax.contourf(fine, levels=[0.5, 1.5], colors="none", hatches=[hatch], extent=extent, origin="upper")
        cs.set_edgecolor(colour)   # matplotlib < 3.11 takes the hatch colour from the edge colour
        cs.set_linewidth(0.0)
        if hasattr(cs, "set_hatchcolor"):
            cs.set_hatchcolor(colour)
        if hasattr(cs, "set_hatch_linewidth"):
            cs.set_hatch_linewidth(1.6)
        ax.contour(fine, levels=[0.5], colors=[colour], linewidths=1.0, extent=extent, origin="upper")


def _at_risk_handles(at_risk: Mapping[str, np.ndarray], planes: Mapping[str, np.ndarray],
                     at_risk_ml: Mapping[str, float | None]) -> list[Any]:
    """A legend entry per system with a territory at risk anywhere, its mL, and whether this slice shows it."""
    from matplotlib.patches import Patch

    handles = []
    order = [k for k in SYSTEMS if k in at_risk] + [k for k in at_risk if k not in SYSTEMS]
    for code, check in enumerate(order):
        ml = at_risk_ml.get(check)
        if check not in planes and not (ml or np.any(at_risk[check])):
            continue
        colour, hatch = _system_style(check, code)
        text = f"{SYSTEM_LABELS.get(check, check.replace('_', ' '))} at risk"
        if ml is not None:
            text += f" {float(ml):.1f} mL"
        if check not in planes:
            text += "\n(not on this slice)"
        handles.append(Patch(facecolor="none", edgecolor=colour, hatch=hatch, label=text))
    return handles


def _draw_margins(ax: Any, plan: _Plan, geometry: Geometry, index: int,
                  margin_points: Sequence[tuple[tuple[float, float, float], tuple[float, float, float], float]],
                  fontsize: float) -> bool:
    """Draw each margin whose segment passes within half a slice of slice ``index``; whether any was drawn."""
    inverse = np.linalg.inv(geometry.affine_lps)
    drawn = False
    for p_tumour, p_remnant, distance_mm in margin_points:
        ends = [(inverse[:3, :3] @ np.asarray(p, dtype=float) + inverse[:3, 3])[::-1]  # (z, y, x)
                for p in (p_tumour, p_remnant)]
        fixed = [e[plan.fixed_axis] for e in ends]
        if min(fixed) > index + 0.5 or max(fixed) < index - 0.5:
            continue
        (x0, y0), (x1, y1) = (_mm(plan, *plan.to_display(e, geometry.shape_zyx)) for e in ends)
        ax.plot([x0, x1], [y0, y1], color=MARGIN_COLOUR, lw=2.0, marker="o", ms=3)
        ax.text((x0 + x1) / 2.0, (y0 + y1) / 2.0, f" {float(distance_mm):.1f} mm", color=MARGIN_COLOUR,
                fontsize=fontsize, fontweight="bold", ha="left", va="bottom",
                bbox={"facecolor": "black", "alpha": 0.5, "edgecolor": "none", "pad": 0.8})
        drawn = True
    return drawn


#: The slice figure's width (= the height of its square top), inches at 100 dpi.
_SLICE_IN = 6.0


def _ct_axes(ct2d: np.ndarray | None, shape: tuple[int, ...], level: float, width: float,
             extent: tuple[float, float, float, float]) -> tuple[Any, Any]:
    """A 6 x 6 inch figure whose image axes show the CT slice in grey at (level, width) HU, black without one."""
    fig = _new_figure(_SLICE_IN, _SLICE_IN)
    ax = fig.add_axes(IMAGE_AXES_RECT)
    ax.set_axis_off()
    ax.set_facecolor("black")
    grey = np.zeros(shape, np.float32) if ct2d is None else ct2d.astype(np.float32)
    ax.imshow(grey, cmap="gray", vmin=level - width / 2.0, vmax=level + width / 2.0, extent=extent,
              origin="upper", interpolation="nearest", aspect="equal")
    return fig, ax


def _plane_of(volume: np.ndarray | None, geometry: Geometry, plan: _Plan, index: int, what: str) -> np.ndarray | None:
    """Slice ``index`` of ``volume`` (checked to lie on ``geometry``) as displayed; None for None."""
    if volume is None:
        return None
    return plan.orient(np.take(_check_volume(volume, geometry, what), index, axis=plan.fixed_axis))


def slice_figure(
    ct_hu: np.ndarray | None,
    geometry: Geometry,
    *,
    view: str,
    index: int,
    segment_map: np.ndarray,
    segment_names: Mapping[int, str],
    resected: np.ndarray | None = None,
    tumors: np.ndarray | None = None,
    margin_points: Sequence[tuple[tuple[float, float, float], tuple[float, float, float], float]] = (),
    at_risk: Mapping[str, np.ndarray] | None = None,
    at_risk_ml: Mapping[str, float | None] | None = None,
    ablation: np.ndarray | None = None,
    title: str = "",
    window: tuple[float, float] = (80.0, 150.0),
) -> Any:
    """One CT slice with the Couinaud segments, the resected part, the territories at risk, ablation zones,
    tumours and margins: a :class:`matplotlib.figure.Figure` 600 pixels wide, its square top the title and the
    image, the legend in a strip under it (:func:`slice_png` is its PNG).

    Its text prints at >= :data:`MIN_TEXT_PT` at :data:`PRINT_WIDTH_MM` ``["slice"]``; the segments are keyed by
    their numerals on the image (each on a box of its colour).

    Parameters
    ----------
    ct_hu : ndarray (z, y, x) of HU, optional
        Shown in grey with ``window`` = (level, width) in HU (liver: 80, 150); black when None.
    geometry : Geometry
        Grid of every array.
    view, index : str, int
        "axial" (fixed z index) or "coronal" (fixed y index) and the slice index.
    segment_map : ndarray (z, y, x) of int
        Segment code per voxel (0 = none); ``segment_names`` maps codes to canonical names
        (``liver_segment_4a`` ...). Each segment present in the slice is tinted in its own colour and
        labelled with its Roman numeral at its in-slice centroid; codes absent from ``segment_names``
        are not drawn.
    resected : ndarray (z, y, x) of bool, optional
        Resected parenchyma, dimmed and hatched.
    tumors : ndarray (z, y, x), optional
        Nonzero on tumour voxels; outlined in red.
    margin_points : sequence of (tumour point, remnant point, distance in mm)
        Points in LPS mm. Each pair whose connecting segment passes within half a slice of the displayed
        slice is drawn (projected onto it) with its distance.
    at_risk : mapping of check name -> ndarray (z, y, x) of bool, optional
        Each vessel system's territory at risk in the remnant (``Assessment.arrays.at_risk``): hatched and
        outlined in the system's colour (:data:`SYSTEM_COLOURS`, :data:`SYSTEM_HATCHES`) exactly on the voxels
        of :func:`at_risk_planes`.
    at_risk_ml : mapping of check name -> mL, optional
        The volume at risk of each system (the whole remnant, not the slice), shown in the legend.
    ablation : ndarray (z, y, x) of bool, optional
        Ablation zones (``Assessment.arrays.ablation``): outlined dashed in :data:`ABLATION_COLOUR`, in the legend
        when the slice shows one.
    title : str
        Figure title.
    """
    plan = _plan(geometry, view)
    i = _check_index(geometry, view, index)
    level, width = (float(v) for v in window)
    if not width > 0:
        raise ValueError(f"window width must be positive HU, got {width}")

    seg2d, ct2d, res2d, tum2d, abl2d = (_plane_of(volume, geometry, plan, i, what) for volume, what in (
        (segment_map, "segment_map"), (ct_hu, "ct_hu"), (resected, "resected"), (tumors, "tumors"),
        (ablation, "ablation")))
    assert seg2d is not None
    extent = _extent(plan, seg2d.shape)

    fig, ax = _ct_axes(ct2d, seg2d.shape, level, width, extent)
    handles = _draw_segments(ax, plan, seg2d, segment_names, res2d, extent, text_pt("slice", _SLICE_IN))
    if at_risk:
        planes = at_risk_planes(at_risk, geometry, view, i)
        _draw_at_risk(ax, plan, planes)
        handles.extend(_at_risk_handles(at_risk, planes, at_risk_ml or {}))
    handles.extend(_draw_lesions(ax, plan, geometry, i, tum2d, abl2d, extent, margin_points))
    _finish_slice(fig, ax, plan, extent, handles, title or f"{view} slice {i}")
    return fig


def slice_png(ct_hu: np.ndarray | None, geometry: Geometry, **kwargs: Any) -> bytes:
    """:func:`slice_figure` as PNG bytes (600 pixels wide; 600 high without a legend, taller with one)."""
    return _png(slice_figure(ct_hu, geometry, **kwargs))


#: The ablation zone's outline: width (pt) and dash pattern (on, off; in line widths).
_ABLATION_LINE = (2.5, (0, (2.5, 1.5)))


def _draw_ablation(ax: Any, plan: _Plan, abl2d: np.ndarray) -> Any:
    """Outline the ablation zones of the slice along their voxel edges (:func:`_voxel_edge_grid`), dashed; their
    legend handle (a dashed white line on a dark swatch, as on the CT)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    width, dashes = _ABLATION_LINE
    fine, extent = _voxel_edge_grid(plan, abl2d)
    cs = ax.contour(fine, levels=[0.5], colors=[ABLATION_COLOUR], linewidths=width, extent=extent, origin="upper")
    cs.set_linestyle(dashes)
    swatch = Patch(facecolor="#333333", edgecolor="none")
    line = Line2D([], [], color=ABLATION_COLOUR, lw=width, linestyle=dashes)
    return _LabelledTuple((swatch, line), "ablation zone")


class _LabelledTuple(tuple[Any, ...]):
    """Legend handles drawn on top of each other (matplotlib's HandlerTuple) that carry their label."""

    _label: str

    def __new__(cls, handles: Sequence[Any], label: str) -> _LabelledTuple:
        out = super().__new__(cls, handles)
        out._label = label
        return out

    def get_label(self) -> str:
        return self._label


def _draw_lesions(ax: Any, plan: _Plan, geometry: Geometry, index: int, tum2d: np.ndarray | None,
                  abl2d: np.ndarray | None, extent: tuple[float, float, float, float],
                  margin_points: Sequence[tuple[tuple[float, float, float], tuple[float, float, float], float]]
                  ) -> list[Any]:
    """Outline the ablation zones dashed white and the tumours red, and draw the margins of slice ``index``; their
    legend handles."""
    from matplotlib.lines import Line2D

    handles: list[Any] = []
    if abl2d is not None and np.any(abl2d):
        handles.append(_draw_ablation(ax, plan, np.asarray(abl2d) != 0))
    if tum2d is not None and np.any(tum2d):
        _outline(ax, tum2d != 0, extent, TUMOUR_COLOUR, 1.8)
        handles.append(Line2D([], [], color=TUMOUR_COLOUR, lw=1.8, label="tumour"))
    if _draw_margins(ax, plan, geometry, index, margin_points, text_pt("slice", _SLICE_IN)):
        handles.append(Line2D([], [], color=MARGIN_COLOUR, lw=2.0, marker="o", ms=3, label="margin"))
    return handles


def _finish_slice(fig: Any, ax: Any, plan: _Plan, extent: tuple[float, float, float, float], handles: list[Any],
                  title: str) -> None:
    """Limits at the image's edges, orientation letters, the title, and the legend under the image."""
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    _orientation_text(ax, _labels_of(plan), text_pt("slice", _SLICE_IN, 10.0))
    fig.suptitle(title, fontsize=text_pt("slice", _SLICE_IN, 10.0))
    _legend_below(fig, handles, text_pt("slice", _SLICE_IN))


def _legend_below(fig: Any, handles: Sequence[Any], fontsize: float) -> None:
    """Put the legend in a strip under the figure, growing the figure downward so that everything already drawn
    keeps its pixels; labels wrap to the figure's width. No handles: no legend, the figure unchanged."""
    import textwrap

    if not handles:
        return
    w_in, h_in = (float(v) for v in fig.get_size_inches())
    pad_in = 0.12
    # a character of DejaVu Sans is about 0.6 em wide on average; the handle and its gap take about 3 em
    per_line = max(12, int((w_in * 72.0 - 2 * pad_in * 72.0) / (0.6 * fontsize)) - 5)
    labels = ["\n".join(textwrap.fill(part, per_line) for part in h.get_label().split("\n")) for h in handles]
    legend = fig.legend(handles=list(handles), labels=labels, loc="upper left", fontsize=fontsize, ncol=1,
                        frameon=False, borderaxespad=0.0, borderpad=0.0, handlelength=1.6,
                        bbox_to_anchor=(pad_in, 0.0), bbox_transform=fig.dpi_scale_trans)
    extra_px = int(np.ceil(legend.get_window_extent(fig.canvas.get_renderer()).height + 2 * pad_in * fig.dpi))
    extra_in = extra_px / fig.dpi
    new_h = h_in + extra_in
    for ax in fig.axes:    # same pixels from the top: fractions of the taller figure
        left, bottom, width, height = ax.get_position(original=True).bounds
        ax.set_position((left, (bottom * h_in + extra_in) / new_h, width, height * h_in / new_h))
    for text in fig.texts:
        x, y = text.get_position()
        text.set_position((x, (y * h_in + extra_in) / new_h))
    fig.set_size_inches(w_in, new_h)
    legend.set_bbox_to_anchor((pad_in, extra_in - pad_in), transform=fig.dpi_scale_trans)


@dataclass(frozen=True)
class VolumeBar:
    """One bar of the segment chart (mL): the functional remnant (bottom), the rest of the remnant (tumour left,
    ablation zones, territories at risk, islands) above it, the resected part on top."""

    name: str
    functional_ml: float
    other_remnant_ml: float = 0.0
    resected_ml: float = 0.0


#: The segment chart's size (inches at 100 dpi: 700 x 460 pixels; the legend takes the bottom 90).
_CHART_IN = (7.0, 4.6)


def _bar(row: VolumeBar | Sequence[Any]) -> VolumeBar:
    if isinstance(row, VolumeBar):
        return row
    name, functional, resected = row
    return VolumeBar(str(name), float(functional), 0.0, float(resected))


def volume_bar_figure(rows: Sequence[VolumeBar | tuple[str, float, float]], *, total: VolumeBar | None = None,
                      threshold_ml: float | None = None, threshold_label: str = "",
                      lines: Sequence[tuple[float, str]] = (), show_total: bool = True) -> Any:
    """Stacked bars per segment, in mL: functional remnant, rest of the remnant, resected (a 700 x 460 pixel
    :class:`matplotlib.figure.Figure`; :func:`volume_bar_png` is its PNG).

    ``rows`` are :class:`VolumeBar` (or ``(name, functional_ml, resected_ml)``); canonical segment names are shown
    as Roman numerals. With ``show_total`` a last "total" bar holds ``total`` (the assessment's own totals: the
    functional remnant the rules judge), else the sums, so that ``threshold_ml`` (a horizontal dashed line, e.g.
    the minimum future liver remnant in mL) and the other ``lines`` (mL, label) can be read against it. The bar
    containers are labelled (``ax.containers``) as the legend names them.
    """
    bars = [_bar(r) for r in rows]
    names = [segment_label(b.name) for b in bars]
    parts = np.array([[b.functional_ml, b.other_remnant_ml, b.resected_ml] for b in bars], dtype=float
                     ).reshape(-1, 3)
    if total is not None:
        total_row = np.array([[total.functional_ml, total.other_remnant_ml, total.resected_ml]], dtype=float)
    else:
        total_row = parts.sum(axis=0, keepdims=True)
    if not np.all(np.isfinite(parts)) or not np.all(np.isfinite(total_row)):
        raise ValueError("volumes must be finite mL")
    if np.any(parts < 0) or np.any(total_row < 0):
        raise ValueError(f"volumes must be >= 0 mL, got {parts.tolist()}, total {total_row.tolist()}")
    if show_total and bars:
        names.append("total")
        parts = np.vstack([parts, total_row])

    from matplotlib.container import BarContainer

    fig = _new_figure(*_CHART_IN)
    ax = fig.add_subplot(1, 1, 1)
    small = text_pt("chart", _CHART_IN[0], 10.0)
    x = np.arange(len(names), dtype=float)
    if show_total and bars:
        x[-1] += 0.5  # a gap before the total
    functional, other, resected = parts.T if len(parts) else (np.zeros(0),) * 3
    ax.bar(x, functional, color=REMNANT_COLOUR, label="functional remnant (FLR)")
    ax.bar(x, other, bottom=functional, color=OTHER_REMNANT_COLOUR, hatch="..", edgecolor="white",
           label="not functional: tumour, ablation, at risk")
    ax.bar(x, resected, bottom=functional + other, color=RESECTED_COLOUR, hatch="//", edgecolor="white",
           label="resected")
    drawn = [(threshold_ml, threshold_label, THRESHOLD_COLOUR)] if threshold_ml is not None else []
    drawn += [(ml, label, SFLR_LINE_COLOUR) for ml, label in lines]
    for value, label, colour in drawn:
        t = float(value)
        if not np.isfinite(t):
            raise ValueError(f"threshold_ml must be finite, got {value}")
        ax.axhline(t, color=colour, ls="--" if colour == THRESHOLD_COLOUR else ":", lw=1.5,
                   label=label or f"threshold {t:.0f} mL")
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.tick_params(labelsize=small)
    ax.set_ylabel("volume (mL)", fontsize=small)
    ax.set_title("Segment volumes: functional remnant, rest of the remnant, resected",
                 fontsize=text_pt("chart", _CHART_IN[0], 11.0))
    # under the axes, clear of the bars and the lines: the bars' parts in the first column, the lines in the second
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(handles)), key=lambda k: not isinstance(handles[k], BarContainer))
    ax.legend([handles[k] for k in order], [labels[k] for k in order], fontsize=small, loc="upper center",
              bbox_to_anchor=(0.5, -0.09), ncol=2, frameon=False, columnspacing=1.2, handlelength=1.6)
    fig.tight_layout(pad=0.4)
    return fig


def volume_bar_png(rows: Sequence[VolumeBar | tuple[str, float, float]], **kwargs: Any) -> bytes:
    """:func:`volume_bar_figure` as a 700 x 460 PNG."""
    return _png(volume_bar_figure(rows, **kwargs))


#: The projection figure's width (= the height of its square top), inches at 100 dpi.
_PROJECTION_IN = 5.0


def remnant_projection_png(remnant: np.ndarray, resected: np.ndarray, geometry: Geometry, *,
                           tumors: np.ndarray | None = None, remnant_label: str = "remnant") -> bytes:
    """:func:`remnant_projection_figure` as PNG bytes (500 pixels wide, its legend under the square image)."""
    return _png(remnant_projection_figure(remnant, resected, geometry, tumors=tumors, remnant_label=remnant_label))


def remnant_projection_figure(remnant: np.ndarray, resected: np.ndarray, geometry: Geometry, *,
                              tumors: np.ndarray | None = None, remnant_label: str = "remnant") -> Any:
    """Anterior view: depth-shaded projection of remnant (green) and resected (grey) parenchyma, a figure 500
    pixels wide whose square top holds the title and the image, the legend in a strip under it.

    Rays run along the array axis closest to the anterior-posterior direction; each pixel shows the
    first parenchyma voxel met from the anterior side, darker the deeper it lies. Tumours (anywhere
    along the ray) are overlaid in red. Works on the bounding box of the parenchyma only. ``remnant_label``
    names the green part in the legend (the report passes the functional remnant).
    """
    rem = _check_volume(remnant, geometry, "remnant").astype(bool, copy=False)
    res = _check_volume(resected, geometry, "resected").astype(bool, copy=False)
    tum = None if tumors is None else _check_volume(tumors, geometry, "tumors") != 0
    d = geometry.direction_matrix
    ap_axis = 2 - int(np.argmax(np.abs(d[1, :])))     # array axis most along LPS y
    plan = _plan(geometry, "coronal", fixed_axis=ap_axis)
    anterior_first = d[1, 2 - ap_axis] > 0               # increasing index goes posterior

    occupied = rem | res if tum is None else rem | res | tum
    tight = _bbox(occupied)
    pad = 4  # voxels of background around the parenchyma, room for the orientation letters
    box = [slice(0, 0)] * 3 if tight is None else [
        slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(tight, geometry.shape_zyx, strict=True)]
    fig = _new_figure(_PROJECTION_IN, _PROJECTION_IN)
    ax = fig.add_axes(IMAGE_AXES_RECT)
    ax.set_axis_off()
    size = text_pt("projection", _PROJECTION_IN)
    fig.suptitle("Anterior view", fontsize=text_pt("projection", _PROJECTION_IN, 10.0))
    if any(s.stop - s.start == 0 for s in box):
        ax.text(0.5, 0.5, "no parenchyma", ha="center", va="center", transform=ax.transAxes, fontsize=size)
        ax.set_facecolor("black")
        return fig
    box_t = tuple(box)

    def rays(mask: np.ndarray) -> np.ndarray:  # (depth, a, b) with depth 0 most anterior
        m = np.moveaxis(mask[box_t], ap_axis, 0)
        return m if anterior_first else m[::-1]

    occ = rays(rem) | rays(res)
    depth_n = occ.shape[0]
    hit = occ.any(axis=0)
    first = np.argmax(occ, axis=0)
    is_remnant = np.take_along_axis(rays(rem), first[None], axis=0)[0] & hit
    shade = 1.0 - 0.65 * first / max(depth_n - 1, 1)
    rgb = np.zeros((*hit.shape, 3), np.float32)
    from matplotlib.colors import to_rgb

    rgb[is_remnant] = np.asarray(to_rgb(REMNANT_COLOUR))
    rgb[hit & ~is_remnant] = np.asarray(to_rgb(RESECTED_COLOUR))
    rgb *= shade[..., None].astype(np.float32)
    rgb = np.stack([plan.orient(rgb[..., k]) for k in range(3)], axis=-1)
    extent = _extent(plan, rgb.shape[:2])
    ax.imshow(rgb, extent=extent, origin="upper", interpolation="nearest", aspect="equal")
    from matplotlib.patches import Patch

    handles = [Patch(color=REMNANT_COLOUR, label=remnant_label), Patch(color=RESECTED_COLOUR, label="resected")]
    if tum is not None:
        tproj = plan.orient(np.asarray(rays(tum).any(axis=0)))
        if tproj.any():
            overlay = np.zeros((*tproj.shape, 4), np.float32)
            overlay[tproj] = _rgba(TUMOUR_COLOUR, 0.7)
            ax.imshow(overlay, extent=extent, origin="upper", interpolation="nearest", aspect="equal")
            _outline(ax, tproj, extent, TUMOUR_COLOUR, 1.2)
            handles.append(Patch(color=TUMOUR_COLOUR, label="tumour"))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_facecolor("black")
    _orientation_text(ax, _labels_of(plan), text_pt("projection", _PROJECTION_IN, 10.0))
    _legend_below(fig, handles, size)
    return fig


def _bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def pick_slices(geometry: Geometry, liver: np.ndarray, tumors: np.ndarray | None,
                max_figures: int = 8) -> list[tuple[str, str, int]]:
    """(title, view, index) of the slices worth showing.

    Axial and coronal through the liver's centroid, then axial and coronal through each tumour's centroid
    (tumours are the 6-connected components of ``tumors != 0``, numbered 1 = largest as in
    :func:`flr.tumors.find_tumors`), at most ``max_figures`` in all. Raises ``ValueError`` on an empty liver.
    """
    from scipy import ndimage

    liv = _check_volume(liver, geometry, "liver") != 0
    box = _bbox(liv)
    if box is None:
        raise ValueError("the liver mask is empty: nothing to show")
    centre = np.array(ndimage.center_of_mass(liv[box])) + [s.start for s in box]
    z, y = (round(float(v)) for v in centre[:2])
    out = [("Axial through the liver centre", "axial", z), ("Coronal through the liver centre", "coronal", y)]
    if tumors is not None:
        tum = _check_volume(tumors, geometry, "tumors") != 0
        tbox = _bbox(tum)
        if tbox is not None:
            labels, n = ndimage.label(tum[tbox])
            ids = np.arange(1, n + 1)
            sizes = ndimage.sum_labels(np.ones(labels.shape, np.int8), labels, ids)
            first = ndimage.minimum(np.arange(labels.size).reshape(labels.shape), labels, ids)
            order = sorted(range(n), key=lambda k: (-sizes[k], first[k]))
            centres = ndimage.center_of_mass(tum[tbox], labels, ids)
            offset = np.array([s.start for s in tbox])
            for number, k in enumerate(order, start=1):
                if len(out) + 2 > max_figures:
                    break
                cz, cy = (round(float(v)) for v in (np.asarray(centres[k]) + offset)[:2])
                out.append((f"Tumour {number}: axial", "axial", cz))
                out.append((f"Tumour {number}: coronal", "coronal", cy))
    return out
