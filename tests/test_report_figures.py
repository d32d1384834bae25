"""Report figures: display orientation on any grid, and PNGs that show each layer in its colour where it lies."""

from __future__ import annotations

import io

import numpy as np
import pytest

from flr.anatomy import SEGMENT_NAMES
from flr.image import Geometry
from flr.report.figures import (
    IMAGE_AXES_RECT,
    REMNANT_COLOUR,
    RESECTED_COLOUR,
    SEGMENT_COLOURS,
    SYSTEM_COLOURS,
    THRESHOLD_COLOUR,
    at_risk_planes,
    at_risk_slice,
    display_slice,
    orientation_labels,
    pick_slices,
    remnant_projection_png,
    segment_label,
    slice_png,
    volume_bar_png,
)

AXIAL = {"left": "R", "right": "L", "top": "A", "bottom": "P"}
CORONAL = {"left": "R", "right": "L", "top": "S", "bottom": "I"}
RAS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _decode(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    assert png.startswith(b"\x89PNG")
    return imread(io.BytesIO(png), format="png")


def _lps_volume(geometry: Geometry) -> np.ndarray:
    """LPS (x, y, z) mm of every voxel centre, shape (z, y, x, 3): an independent oracle for the display."""
    z, y, x = np.indices(geometry.shape_zyx, dtype=float)
    ijk = np.stack([x, y, z], axis=-1)
    return ijk @ geometry.affine_lps[:3, :3].T + np.asarray(geometry.origin_mm)


@pytest.fixture(scope="module")
def oblique(phantom_0_oblique):
    return phantom_0_oblique


@pytest.fixture(scope="module")
def straight(phantom_1):
    return phantom_1


def _rotation_z(deg: float) -> tuple[float, ...]:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


# --- orientation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [
    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),      # LPS
    RAS,                                                 # RAS-stored (x and y flipped)
    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0),     # slices stored from head to feet
    _rotation_z(15.0),
    _rotation_z(-40.0),                                  # the dominant direction still wins
    _rotation_z(170.0),                                  # nearly RAS
], ids=["lps", "ras", "z-flipped", "oblique15", "oblique-40", "oblique170"])
def test_labels_and_display_agree_with_physical_coordinates(direction):
    g = Geometry(shape_zyx=(6, 7, 9), spacing_mm=(0.8, 1.1, 2.5), origin_mm=(10.0, -20.0, 30.0),
                 direction=direction)
    assert orientation_labels(g, "axial") == AXIAL
    assert orientation_labels(g, "coronal") == CORONAL
    lps = _lps_volume(g)
    for view, down in (("axial", 1), ("coronal", 2)):
        index = g.shape_zyx[0 if view == "axial" else 1] // 2
        shown = np.stack([display_slice(lps[..., k], g, view, index) for k in range(3)], axis=-1)
        # patient right (-x) on the image left; anterior (-y) or superior (+z) at the top
        assert shown[:, 0, 0].mean() < shown[:, -1, 0].mean()
        top, bottom = shown[0, :, down].mean(), shown[-1, :, down].mean()
        assert (top < bottom) if view == "axial" else (top > bottom)


def test_in_plane_axes_swapped():
    """x index runs posterior, y index left: axial is transposed; "coronal" (fixed y index) is then a sagittal
    plane, and its letters say so instead of pretending."""
    g = Geometry(shape_zyx=(6, 7, 9), spacing_mm=(0.8, 1.1, 2.5), direction=(0, 1, 0, 1, 0, 0, 0, 0, -1))
    assert orientation_labels(g, "axial") == AXIAL
    assert orientation_labels(g, "coronal") == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    lps = _lps_volume(g)
    shown = np.stack([display_slice(lps[..., k], g, "axial", 2) for k in range(3)], axis=-1)
    assert shown.shape[:2] == (9, 7)
    assert np.all(np.diff(shown[..., 0], axis=1) > 0) and np.all(np.diff(shown[..., 1], axis=0) > 0)


def test_display_only_flips_and_transposes():
    g = Geometry(shape_zyx=(3, 4, 5), direction=(0.0, -1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    vol = np.arange(60).reshape(3, 4, 5)
    shown = display_slice(vol, g, "axial", 1)
    assert shown.shape == (5, 4)                                  # transposed: x index runs down (anterior)
    assert sorted(shown.ravel().tolist()) == sorted(vol[1].ravel().tolist())
    assert shown[0, 0] == vol[1, 3, 4]                            # both in-plane axes reversed


@pytest.mark.parametrize(("view", "index", "error", "match"), [
    ("sagittal", 0, ValueError, "view must be one of"),
    ("axial", 3, IndexError, "outside 0..2"),
    ("coronal", -1, IndexError, "outside 0..3"),
])
def test_display_rejects_bad_view_and_index(view, index, error, match):
    g = Geometry(shape_zyx=(3, 4, 5))
    with pytest.raises(error, match=match):
        display_slice(np.zeros((3, 4, 5)), g, view, index)


def test_display_rejects_volume_off_the_grid():
    with pytest.raises(ValueError, match=r"shape \(3, 4, 4\)"):
        display_slice(np.zeros((3, 4, 4)), Geometry(shape_zyx=(3, 4, 5)), "axial", 0)


def test_oblique_phantom_anatomy_matches_letters(oblique):
    g = oblique.ct.geometry
    labels = oblique.labels.array
    assert g.is_oblique()
    assert orientation_labels(g, "axial") == AXIAL
    assert orientation_labels(g, "coronal") == CORONAL
    liver = (labels >= 1) & (labels <= 9)
    centre = np.argwhere(liver).mean(axis=0)

    # axial through the liver centre: the liver (patient's right upper abdomen) lies in the half marked "R"
    axial = display_slice(labels, g, "axial", round(centre[0]))
    cols = np.nonzero((axial >= 1) & (axial <= 9))[1]
    assert cols.mean() < axial.shape[1] / 2.0

    # coronal through the IVC: a vertical tube, reaching from the top (S) half to the bottom (I) half
    ivc = labels == 12
    coronal = display_slice(labels, g, "coronal", round(np.argwhere(ivc).mean(axis=0)[1]))
    rows, cols = np.nonzero(coronal == 12)
    assert rows.min() < coronal.shape[0] / 4.0
    assert rows.max() > coronal.shape[0] * 3.0 / 4.0
    assert np.ptp(rows) > 3 * np.ptp(cols)
    # and superior really is at the top: the IVC runs above the liver, which ends above the IVC's lower end
    liver_rows = np.nonzero((coronal >= 1) & (coronal <= 9))[0]
    assert rows.min() < liver_rows.min() and rows.max() > liver_rows.max()


# --- slice picking --------------------------------------------------------------------------------


def test_pick_slices_liver_centre_then_tumours(oblique):
    g = oblique.ct.geometry
    labels = oblique.labels.array
    picks = pick_slices(g, oblique.liver.array, labels == 9)
    n_tumours = len(oblique.truth["tumors"])
    assert len(picks) == min(2 + 2 * n_tumours, 8)
    assert [v for _, v, _ in picks] == ["axial", "coronal"] * (len(picks) // 2)
    centre = np.argwhere(oblique.liver.array != 0).mean(axis=0)
    assert picks[0][2] == round(centre[0]) and picks[1][2] == round(centre[1])
    # tumour 1 is the largest; its axial slice cuts it
    axial_1 = picks[2][2]
    assert np.any(labels[axial_1] == 9)
    assert all(0 <= i < g.shape_zyx[0 if v == "axial" else 1] for _, v, i in picks)
    assert len(pick_slices(g, oblique.liver.array, labels == 9, max_figures=4)) == 4
    assert len(pick_slices(g, oblique.liver.array, None)) == 2


def test_pick_slices_refuses_empty_liver():
    g = Geometry(shape_zyx=(3, 4, 5))
    with pytest.raises(ValueError, match="liver mask is empty"):
        pick_slices(g, np.zeros((3, 4, 5), bool), None)


# --- PNGs -----------------------------------------------------------------------------------------
#
# The figures are checked by colour: the decoded PNG (floats in 0..1) holds the colours flr/report/figures.py
# draws with, where the synthetic geometry puts them. A drawn image's position follows from IMAGE_AXES_RECT
# and the physical aspect (matplotlib shrinks the axes box to the aspect, centred), which `_Box` checks
# against the white page around it before any test relies on it.

#: Decoded 8-bit PNG: one level is 1/255; Agg rounds each blend once, so 3 levels cover a composite colour.
COLOUR_TOL = 3.0 / 255.0


def _rgb(colour: str) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return np.asarray(to_rgb(colour))


def _near(rgb: np.ndarray, colour: np.ndarray, tol: float = COLOUR_TOL) -> np.ndarray:
    return np.all(np.abs(rgb - colour) <= tol, axis=-1)


def _red(rgb: np.ndarray) -> np.ndarray:
    """Pixels of TUMOUR_COLOUR (#ff1a1a) or a blend of it with a dark background (antialiased lines)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 0.5) & (g < 0.5 * r) & (b < 0.5 * r) & (np.abs(g - b) < 0.1)


def _yellow(rgb: np.ndarray) -> np.ndarray:
    """Pixels of MARGIN_COLOUR (#ffff33), also dimmed (antialiased on black, or under the distance label's
    half-transparent box, which overlaps the mark's middle)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 0.4) & (np.abs(r - g) < 0.08) & (b < 0.4 * r)


def _top_square(image: np.ndarray) -> np.ndarray:
    """The figure's square top (title and image; IMAGE_AXES_RECT is in its fractions): the legend, when there is
    one, is a strip below it."""
    height, width = image.shape[:2]
    assert height >= width, image.shape
    return image[:width]


class _Box:
    """Where a displayed image (n_rows x n_cols pixels of row_mm x col_mm) lands in a decoded figure."""

    def __init__(self, image: np.ndarray, shape_2d: tuple[int, int], row_mm: float, col_mm: float) -> None:
        fig_h, fig_w = image.shape[:2]
        left, bottom, width, height = IMAGE_AXES_RECT
        ax_w, ax_h = width * fig_w, height * fig_h
        extent_w, extent_h = shape_2d[1] * col_mm, shape_2d[0] * row_mm
        self.px_per_mm = min(ax_w / extent_w, ax_h / extent_h)
        self.left = left * fig_w + (ax_w - extent_w * self.px_per_mm) / 2.0
        self.top = (1.0 - bottom - height) * fig_h + (ax_h - extent_h * self.px_per_mm) / 2.0
        self.row_px, self.col_px = row_mm * self.px_per_mm, col_mm * self.px_per_mm
        self.bottom = self.top + shape_2d[0] * self.row_px
        self.right = self.left + shape_2d[1] * self.col_px
        # the box is right: white page just outside each edge, the black image just inside (a quarter along,
        # clear of the orientation letters at the middle of each edge)
        rgb = image[..., :3]
        r4 = round(self.top + (self.bottom - self.top) / 4.0)
        c4 = round(self.left + (self.right - self.left) / 4.0)
        edges = (((r4, self.left - 3), (r4, self.left + 2)), ((r4, self.right + 2), (r4, self.right - 3)),
                 ((self.top - 3, c4), (self.top + 2, c4)), ((self.bottom + 2, c4), (self.bottom - 3, c4)))
        for outside, inside in edges:
            assert np.all(rgb[round(outside[0]), round(outside[1])] > 0.98), (outside, self.__dict__)
            assert np.all(rgb[round(inside[0]), round(inside[1])] < 0.02), (inside, self.__dict__)

    def rows(self, r0: float, r1: float, inset: int = 3) -> slice:
        """Pixel rows covering displayed rows r0 .. r1 - 1, ``inset`` pixels in from each edge."""
        return slice(round(self.top + r0 * self.row_px) + inset, round(self.top + r1 * self.row_px) - inset)

    def cols(self, c0: float, c1: float, inset: int = 3) -> slice:
        return slice(round(self.left + c0 * self.col_px) + inset, round(self.left + c1 * self.col_px) - inset)

    def row_of(self, r: float) -> float:
        """Pixel row (fractional) of the centre of displayed row r."""
        return self.top + (r + 0.5) * self.row_px

    def col_of(self, c: float) -> float:
        return self.left + (c + 0.5) * self.col_px


def test_segment_label_roman_numerals():
    assert [segment_label(f"liver_segment_{s}") for s in ("1", "4a", "4b", "8")] == ["I", "IVa", "IVb", "VIII"]
    assert segment_label("caudate") == "caudate"


# Synthetic slice on an LPS grid (x index = patient left, y index = posterior): 1 mm along x, 1.5 mm along y
# (2 mm slices), so rows and columns have different pixel sizes. Axial slice 1 shows rows = y, columns = x.
SLICE_GRID = Geometry(shape_zyx=(3, 16, 20), spacing_mm=(1.0, 1.5, 2.0))
SEG_II = (slice(2, 14), slice(2, 10))        # (y, x) of liver_segment_2: remnant
SEG_V = (slice(2, 14), slice(10, 18))        # liver_segment_5: resected
TUMOUR = (slice(4, 7), slice(4, 8))          # inside segment II
MARGIN_Y, MARGIN_X = 10, (5, 14)             # a horizontal margin mark at y index 10 from x 5 to x 14
SLICE_NAMES = {2: "liver_segment_2", 5: "liver_segment_5"}


def _slice_case(**overrides):
    g = SLICE_GRID
    seg = np.zeros(g.shape_zyx, np.int16)
    seg[(slice(None), *SEG_II)] = 2
    seg[(slice(None), *SEG_V)] = 5
    resected = seg == 5
    tumours = np.zeros(g.shape_zyx, np.uint8)
    tumours[(slice(None), *TUMOUR)] = 1
    ends = [g.index_to_lps_mm((1, MARGIN_Y, x)) for x in MARGIN_X]
    kwargs = {"view": "axial", "index": 1, "segment_map": seg, "segment_names": SLICE_NAMES,
              "resected": resected, "tumors": tumours,
              "margin_points": [(tuple(ends[0]), tuple(ends[1]), 9.0)]}
    kwargs.update(overrides)
    image = _top_square(_decode(slice_png(None, g, **kwargs)))
    box = _Box(image, (g.shape_zyx[1], g.shape_zyx[2]), row_mm=g.spacing_mm[1], col_mm=g.spacing_mm[0])
    return image[..., :3], box


def _region(box: _Box, yx: tuple[slice, slice], inset: int = 3) -> tuple[slice, slice]:
    return box.rows(yx[0].start, yx[0].stop, inset), box.cols(yx[1].start, yx[1].stop, inset)


def _segment_colour(code: int) -> np.ndarray:
    return _rgb(SEGMENT_COLOURS[SEGMENT_NAMES.index(SLICE_NAMES[code])])


def test_slice_png_tints_each_segment_in_its_colour_and_dims_the_resected_one():
    rgb, box = _slice_case(tumors=None, margin_points=())
    # on the black (no CT) background: segment tint alpha 0.38; resected: colour halved, alpha 0.55
    tint_ii = 0.38 * _segment_colour(2)
    tint_v, dimmed_v = 0.38 * _segment_colour(5), 0.55 * 0.5 * _segment_colour(5)
    ii, v = _region(box, SEG_II), _region(box, SEG_V)
    area_ii = rgb[ii].shape[0] * rgb[ii].shape[1]
    # segment II is its colour, bar its numeral's label box
    assert _near(rgb[ii], tint_ii).sum() > 0.9 * area_ii
    assert not _near(rgb[v], tint_ii).any()
    # segment V (resected) is its colour dimmed, never the undimmed tint; the rest is hatch
    assert _near(rgb[v], dimmed_v).sum() > 0.5 * rgb[v].shape[0] * rgb[v].shape[1]
    assert not _near(rgb[v], tint_v).any() and not _near(rgb[ii], dimmed_v).any()
    # nothing tinted outside the liver: the rows above both segments stay black
    above = (box.rows(0, SEG_II[0].start), box.cols(0, 8))  # left of the "A" letter
    assert rgb[above].max() < 0.02


def test_slice_png_hatches_only_the_resected_part():
    rgb, box = _slice_case(tumors=None, margin_points=())
    dark = rgb.max(axis=-1) < 0.1                     # hatch lines: black over the dimmed tint (max 0.275)
    v, ii = _region(box, SEG_V), _region(box, SEG_II)
    assert dark[v].mean() > 0.05
    assert not dark[ii].any()
    # a hatch, not a dark fill: a row across the resected part crosses several separate lines
    row = dark[v][dark[v].shape[0] // 2]
    assert 3 <= np.count_nonzero(np.diff(row.astype(int)) == 1) <= 40
    without = _slice_case(tumors=None, margin_points=(), resected=None)[0]
    assert not (without.max(axis=-1) < 0.1)[v].any()  # no resection, no hatch


def test_slice_png_outlines_the_tumour():
    rgb, box = _slice_case(margin_points=())
    red = _red(rgb)
    (y0, y1), (x0, x1) = (TUMOUR[0].start, TUMOUR[0].stop), (TUMOUR[1].start, TUMOUR[1].stop)
    # the outline runs along the tumour's voxel edges (contour at 0.5 between voxel centres), 1.8 pt wide;
    # each side is red along its middle (the corners are cut)
    sides = {
        "top": (box.rows(y0, y0, -3), box.cols(x0 + 0.5, x1 - 0.5)),
        "bottom": (box.rows(y1, y1, -3), box.cols(x0 + 0.5, x1 - 0.5)),
        "left": (box.rows(y0 + 0.5, y1 - 0.5), box.cols(x0, x0, -3)),
        "right": (box.rows(y0 + 0.5, y1 - 0.5), box.cols(x1, x1, -3)),
    }
    for side, region in sides.items():
        along = red[region].any(axis=0 if side in ("top", "bottom") else 1)
        assert along.all(), side
    # nowhere else on the image: not inside the tumour, nor anywhere else (the legend is below the image)
    # (marching squares cuts each corner through the outer half of the corner voxel: stay half a voxel in)
    assert not red[box.rows(y0 + 0.5, y1 - 0.5), box.cols(x0 + 0.5, x1 - 0.5)].any()
    ring = np.zeros(red.shape, bool)
    ring[box.rows(y0, y1, -5), box.cols(x0, x1, -5)] = True
    assert not (red & ~ring).any()
    assert not _red(_slice_case(margin_points=(), tumors=None)[0]).any()


def test_slice_png_draws_the_margin_between_its_points():
    rgb, box = _slice_case(tumors=None)
    yellow = _yellow(rgb)
    row = box.row_of(MARGIN_Y)
    c0, c1 = (box.col_of(x) for x in MARGIN_X)
    band = slice(round(row) - 3, round(row) + 4)
    # every column between the end markers is yellow at the line's row (the label sits above, clear of it)
    span = yellow[band, round(c0) + 6: round(c1) - 5]
    assert span.any(axis=0).all()
    line_rows = np.nonzero(yellow[:, round(c0) + 6: round(c1) - 5].sum(axis=1) > 0.9 * span.shape[1])[0]
    assert line_rows.size and abs(line_rows.mean() - row) <= 1.5
    # the line stops at its points (markers 3 pt wide): none of it left of the first or right of the last
    assert not yellow[band, : round(c0) - 6].any()
    assert not yellow[band, round(c1) + 6:].any()
    # a mark between points two slices away is not drawn on this slice
    far = [tuple(SLICE_GRID.index_to_lps_mm((2.0 + 0.6, MARGIN_Y, x))) for x in MARGIN_X]
    assert not _yellow(_slice_case(tumors=None, margin_points=[(far[0], far[1], 9.0)])[0]).any()


@pytest.mark.parametrize("view", ["axial", "coronal"])
def test_slice_png_on_the_oblique_phantom_draws_every_layer(oblique, view):
    g = oblique.ct.geometry
    labels = oblique.labels.array
    segments = np.where(labels <= 8, labels, 0)
    names = {k: v for k, v in oblique.labels.names.items() if k <= 8}
    tumours = labels == 9
    picks = [p for p in pick_slices(g, oblique.liver.array, tumours) if p[1] == view]
    _, _, index = picks[1]                                       # through tumour 1
    zyx = np.argwhere(tumours)
    tumour_mm = g.index_to_lps_mm(zyx[np.argmin(np.abs(zyx[:, 0 if view == "axial" else 1] - index))])
    kwargs = {"view": view, "index": index, "segment_map": segments, "segment_names": names,
              "resected": np.isin(labels, (5, 6, 7, 8)), "tumors": tumours,
              "margin_points": [(tuple(tumour_mm), tuple(tumour_mm + np.array([15.0, 0.0, 0.0])), 15.0)],
              "title": f"{view} through tumour 1"}
    image = _decode(slice_png(oblique.ct.array, g, **kwargs))
    assert image.shape[1] == 600 and image.shape[0] > 600          # the legend under the image
    rgb = _top_square(image)[..., :3]
    # the tumour outline and the margin mark are drawn on the image (the legend is below it)
    assert _red(rgb).sum() > 150 and _yellow(rgb).sum() > 150
    bare = _decode(slice_png(oblique.ct.array, g, view=view, index=index, segment_map=np.zeros_like(segments),
                             segment_names={}, title=kwargs["title"]))[..., :3]
    assert bare.shape[:2] == (600, 600)                             # nothing to explain: no legend
    assert not _red(bare).any() and not _yellow(bare).any()
    # the segment tint changes the liver's pixels, not the page around the image
    changed = np.any(np.abs(rgb - bare) > 0.05, axis=-1)
    assert changed.sum() > 20000 and not changed[:, :10].any()


def test_slice_png_without_ct_and_overlays(straight):
    g = straight.ct.geometry
    labels = straight.labels.array
    index = g.shape_zyx[0] // 2
    png = slice_png(None, g, view="axial", index=index, segment_map=np.where(labels <= 8, labels, 0),
                    segment_names={k: f"liver_segment_{k}" for k in range(1, 9)})
    image = _decode(png)
    assert image.shape[:2] == (600, 600)
    rgb = image[..., :3]
    # each segment present in the slice shows its tint (alpha 0.38 over black), in as many pixels as its area
    shown = display_slice(labels, g, "axial", index)
    box = _Box(image, shown.shape, row_mm=g.spacing_mm[1], col_mm=g.spacing_mm[0])
    px_per_voxel = box.row_px * box.col_px
    present = [k for k in range(1, 9) if np.any(shown == k)]
    assert len(present) >= 3
    for k in present:
        tinted = _near(rgb, 0.38 * _rgb(SEGMENT_COLOURS[k - 1])).sum()
        # label boxes, legend and antialiased borders take some of it; nothing else has the tint
        assert 0.5 * px_per_voxel * np.sum(shown == k) < tinted < 1.05 * px_per_voxel * np.sum(shown == k), k


def test_slice_png_rejects_bad_window(straight):
    g = straight.ct.geometry
    with pytest.raises(ValueError, match="window width"):
        slice_png(None, g, view="axial", index=0, segment_map=np.zeros(g.shape_zyx, np.int16), segment_names={},
                  window=(80.0, 0.0))


# --- territories at risk ----------------------------------------------------------------------------

# In segment II of the synthetic slice: the outflow's territory at risk a rectangle, the inflow's an L (its
# notch tests that the hatch follows voxel edges, concave corners included).
OUTFLOW_YX = (slice(3, 7), slice(3, 9))
INFLOW_YX = (slice(8, 13), slice(3, 9))
NOTCH_YX = (slice(11, 13), slice(3, 5))


def _at_risk_masks() -> dict[str, np.ndarray]:
    g = SLICE_GRID
    outflow, inflow = np.zeros(g.shape_zyx, bool), np.zeros(g.shape_zyx, bool)
    outflow[(1, *OUTFLOW_YX)] = True            # on the slice drawn (z 1) only
    inflow[(slice(None), *INFLOW_YX)] = True
    inflow[(slice(None), *NOTCH_YX)] = False
    return {"outflow": outflow, "inflow": inflow}


def _voxel_pixels(box: _Box, plane: np.ndarray, grow_px: int) -> np.ndarray:
    """Pixels of the displayed voxels where ``plane`` is true, each voxel grown (> 0) or shrunk (< 0) by
    ``grow_px`` pixels on every side."""
    out = np.zeros((600, 600), bool)
    for r, c in np.argwhere(plane):
        out[box.rows(r, r + 1, -grow_px), box.cols(c, c + 1, -grow_px)] = True
    return out


@pytest.mark.parametrize("direction", [(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), RAS, _rotation_z(-40.0),
                                       (0, 1, 0, 1, 0, 0, 0, 0, -1)], ids=["lps", "ras", "oblique-40", "swapped"])
@pytest.mark.parametrize("view", ["axial", "coronal"])
def test_at_risk_planes_are_the_displayed_masks(direction, view):
    """Each system's plane is its mask's displayed slice (the same transpose and flips as the CT), systems in
    the report's order, and a system with nothing at risk on the slice is left out."""
    g = Geometry(shape_zyx=(6, 7, 9), spacing_mm=(0.8, 1.1, 2.5), direction=direction)
    rng = np.random.default_rng(11)
    masks = {"biliary_drainage": rng.random(g.shape_zyx) < 0.3, "outflow": rng.random(g.shape_zyx) < 0.2,
             "inflow": np.zeros(g.shape_zyx, bool)}
    index = 2
    masks["inflow"][tuple(slice(None) if a != (0 if view == "axial" else 1) else index + 1 for a in range(3))] = True
    planes = at_risk_planes(masks, g, view, index)
    assert list(planes) == ["outflow", "biliary_drainage"]       # inflow: only on the next slice
    for check, plane in planes.items():
        assert plane.dtype == bool
        np.testing.assert_array_equal(plane, display_slice(masks[check], g, view, index))
    assert list(at_risk_planes(masks, g, view, index + 1)) == ["inflow", "outflow", "biliary_drainage"]


def test_at_risk_slice_holds_most_of_the_mask():
    g = Geometry(shape_zyx=(5, 6, 7))
    mask = np.zeros(g.shape_zyx, bool)
    assert at_risk_slice(mask, g) is None
    mask[1, :2, :2] = True          # 4 voxels on axial slice 1
    mask[3, :3, :3] = True          # 9 on slice 3
    mask[4, 5, :] = True            # 7 on slice 4, all on coronal slice 5
    assert at_risk_slice(mask, g) == 3
    assert at_risk_slice(mask, g, "coronal") == 5
    with pytest.raises(ValueError, match=r"at-risk mask has shape \(5, 6, 6\)"):
        at_risk_slice(mask[:, :, :6], g)


def test_slice_png_hatches_each_territory_at_risk_exactly_on_its_voxels():
    masks = _at_risk_masks()
    rgb, box = _slice_case(tumors=None, margin_points=(), at_risk=masks, at_risk_ml={"outflow": 12.0, "inflow": 3.0})
    plain = _slice_case(tumors=None, margin_points=())[0]
    # the legend, which repeats the colours, is under the image (outside the square _slice_case returns)
    away_from_legend = np.ones(rgb.shape[:2], bool)
    for check, mask in masks.items():
        plane = mask[1]                                   # LPS grid: the axial display is the (y, x) plane
        # hatch lines are opaque: where a line covers a whole pixel it has exactly the system's colour
        hit = _near(rgb, _rgb(SYSTEM_COLOURS[check]), tol=0.06) & away_from_legend
        inside, allowed = _voxel_pixels(box, plane, -3), _voxel_pixels(box, plane, 3)  # 1 pt outline on the edges
        assert hit[inside].mean() > 0.1, check
        # a hatch, not a fill: a row through the middle of the territory crosses several separate lines
        rows = np.nonzero(inside.any(axis=1))[0]
        middle = hit[rows[len(rows) // 2]] & inside[rows[len(rows) // 2]]
        assert 4 <= np.count_nonzero(np.diff(middle.astype(int)) == 1) <= 40, check
        assert not (hit & ~allowed).any(), check          # nowhere else, not in the inflow's notch either
        assert not (_near(plain, _rgb(SYSTEM_COLOURS[check]), tol=0.06) & away_from_legend).any()
    # outside the territories (and away from the legend) the slice is drawn as without them
    either = _voxel_pixels(box, masks["outflow"][1] | masks["inflow"][1], 3)
    assert np.abs(rgb - plain)[~either & away_from_legend].max() < 0.02
    # the inflow's notch keeps segment II's tint in its middle
    notch = _region(box, NOTCH_YX, inset=4)
    assert _near(rgb[notch], 0.38 * _segment_colour(2)).mean() > 0.9


def test_slice_png_without_territory_on_the_slice_draws_as_without():
    """An empty system, or one whose territory lies on other slices only, adds no hatch (only a legend line)."""
    masks = _at_risk_masks()
    plain = _slice_case(tumors=None, margin_points=())[0]
    empty = {k: np.zeros_like(m) for k, m in masks.items()}
    same = _slice_case(tumors=None, margin_points=(), at_risk=empty, at_risk_ml={"outflow": 0.0, "inflow": 0.0})[0]
    np.testing.assert_array_equal(same, plain)
    elsewhere, _ = _slice_case(tumors=None, margin_points=(), index=0, at_risk={"outflow": masks["outflow"]},
                               at_risk_ml={"outflow": 12.0})
    above_legend = slice(0, 600)                      # the whole image: the legend is below it
    assert not _near(elsewhere, _rgb(SYSTEM_COLOURS["outflow"]), tol=0.06)[above_legend].any()
    np.testing.assert_array_equal(elsewhere[above_legend], _slice_case(tumors=None, margin_points=(),
                                                                       index=0)[0][above_legend])


def test_at_risk_legend_names_each_system_with_its_volume():
    from flr.report.figures import _at_risk_handles

    masks = _at_risk_masks()
    planes = at_risk_planes(masks, SLICE_GRID, "axial", 0)     # the outflow's territory is on slice 1 only
    labels = [h.get_label() for h in _at_risk_handles(masks, planes, {"inflow": 3.04, "outflow": 12.0})]
    # long labels wrap onto a second line (the legend keeps to the figure's width at print size)
    assert [" ".join(t.split()) for t in labels] == ["portal inflow at risk 3.0 mL",
                                                     "hepatic-venous outflow at risk 12.0 mL (not on this slice)"]
    none = {"outflow": np.zeros_like(masks["outflow"])}
    assert _at_risk_handles(none, {}, {"outflow": 0.0}) == []


def test_slice_png_rejects_at_risk_mask_off_the_grid():
    masks = _at_risk_masks()
    with pytest.raises(ValueError, match=r"at_risk\['outflow'\] has shape \(3, 16, 19\)"):
        _slice_case(at_risk={"outflow": masks["outflow"][:, :, :19]})


BAR_ROWS = [(f"liver_segment_{k}", 150.0 if k < 5 else 0.0, 0.0 if k < 5 else 180.0) for k in range(1, 9)]


def _bar_scale(rgb: np.ndarray) -> tuple[float, float]:
    """(pixel row of 0 mL, pixels per mL) read off the drawing; rows are continuous, pixel r spans [r, r + 1).

    0 mL is the x axis' spine under the bars; the scale comes from the total's remnant bar (600 mL), its top
    edge located to a fraction of a pixel from the antialiased pixel's blend of white and green.
    """
    green = _rgb(REMNANT_COLOUR)
    is_green = _near(rgb, green)
    # the legend (under the axes) repeats the colour: only the rows above the x axis' spine hold bars
    dark_rows = np.nonzero((rgb.max(axis=-1) < 0.1).sum(axis=1) > rgb.shape[1] / 2.0)[0]
    is_green[dark_rows.max():] = False
    cols = np.nonzero(is_green.sum(axis=0) > 5)[0]
    groups = np.split(cols, np.nonzero(np.diff(cols) > 1)[0] + 1)
    assert len(groups) == 5                         # segments I-IV and the total

    def top_and_spine(col: int) -> tuple[float, float]:
        rows = np.nonzero(is_green[:, col])[0]
        first, last = rows.min(), rows.max()
        covered = (1.0 - rgb[first - 1, col, 0]) / (1.0 - green[0])   # green share of the edge pixel
        below = first + np.nonzero(rgb[first:, col].max(axis=-1) < 0.1)[0][0]  # the black spine
        assert below - last <= 2
        return first - covered, below + 0.5

    (top_ii, zero_ii), *_, (top_total, zero) = (top_and_spine(int(g[len(g) // 2])) for g in groups)
    per_ml = (zero - top_total) / 600.0
    # the 150 mL bars agree with that scale within a pixel (Agg snaps bar edges and the spine to pixels)
    assert zero_ii == zero and abs(zero - top_ii - 150.0 * per_ml) <= 1.0, (top_ii, top_total, zero, per_ml)
    return zero, per_ml


def _threshold_row(rgb: np.ndarray) -> float:
    """Mean pixel row of the dashed threshold line: rows where THRESHOLD_COLOUR fills a third of the width
    (the legend's sample is a short stroke)."""
    red = _near(rgb, _rgb(THRESHOLD_COLOUR), tol=0.1)
    rows = np.nonzero(red.sum(axis=1) > rgb.shape[1] / 3.0)[0]
    assert rows.size and np.ptp(rows) <= 2, rows   # one line, 1.5 pt = 2 pixels at 100 dpi
    return float(rows.mean()) + 0.5                # pixel centre, on _bar_scale's continuous rows


@pytest.mark.parametrize("threshold_ml", [700.0, 400.0, 1000.0])
def test_volume_bar_png_draws_threshold_at_its_height(threshold_ml):
    image = _decode(volume_bar_png(BAR_ROWS, threshold_ml=threshold_ml, threshold_label="FLR minimum"))
    assert image.shape[:2] == (460, 700)
    rgb = image[..., :3]
    zero, per_ml = _bar_scale(rgb)
    # the line's centre is at threshold_ml on the axis, within a pixel or two (2-pixel line, bar-edge snapping)
    assert abs(_threshold_row(rgb) - (zero - threshold_ml * per_ml)) <= 2.0
    # resected volumes are stacked in grey above the remnant: segments V-VIII and the total's upper part
    grey = _near(rgb, _rgb(RESECTED_COLOUR))
    assert grey.sum() > 2000


def test_volume_bar_png_threshold_moves_with_its_value():
    low = _threshold_row(_decode(volume_bar_png(BAR_ROWS, threshold_ml=400.0))[..., :3])
    rgb_high = _decode(volume_bar_png(BAR_ROWS, threshold_ml=700.0))[..., :3]
    high = _threshold_row(rgb_high)
    _, per_ml = _bar_scale(rgb_high)
    # 300 mL higher is 300 mL of axis higher (about 70 pixels), within the line's 2-pixel width
    assert abs((low - high) - 300.0 * per_ml) <= 2.0
    without = _decode(volume_bar_png(BAR_ROWS))
    assert without.shape[:2] == (460, 700)
    assert not (_near(without[..., :3], _rgb(THRESHOLD_COLOUR), tol=0.1).sum(axis=1) > 700 / 3.0).any()


def test_volume_bar_png_rejects_negative_volume():
    with pytest.raises(ValueError, match=">= 0 mL"):
        volume_bar_png([("liver_segment_1", -1.0, 0.0)])


# Projection phantom on an LPS grid: rays run along y (anterior first). Remnant on the patient's right
# (x 2..9), its front at y 2 for x 2..5 and y 6 for x 6..9 (deeper, so darker); resected on the left
# (x 10..17, front at y 2); a tumour deep inside the resected part. The view is coronal: rows run down from
# superior (z flipped), columns patient right to left.
PROJ_GRID = Geometry(shape_zyx=(10, 20, 20), spacing_mm=(1.0, 1.0, 1.5))
PROJ_Z = slice(2, 8)


def _projection_case(with_tumour: bool = True):
    g = PROJ_GRID
    rem = np.zeros(g.shape_zyx, bool)
    rem[PROJ_Z, 2:10, 2:6] = True
    rem[PROJ_Z, 6:10, 6:10] = True
    res = np.zeros(g.shape_zyx, bool)
    res[PROJ_Z, 2:10, 10:18] = True
    tum = np.zeros(g.shape_zyx, bool)
    tum[4:6, 6:8, 12:15] = True
    image = _decode(remnant_projection_png(rem, res & ~tum, g, tumors=tum if with_tumour else None))
    assert image.shape[1] == 500 and image.shape[0] > 500           # the legend under the image
    image = _top_square(image)
    # the drawn box: the parenchyma's bounding box plus 4 voxels, clipped to the grid: z 0..10, x 0..20
    box = _Box(image, (10, 20), row_mm=g.spacing_mm[2], col_mm=g.spacing_mm[0])
    return image[..., :3], box


def _displayed_rows(z: slice) -> tuple[int, int]:
    return 9 - (z.stop - 1), 9 - z.start + 1        # z flipped: superior at the top


def test_remnant_projection_png_colours_remnant_resected_and_tumour():
    rgb, box = _projection_case()
    r0, r1 = _displayed_rows(PROJ_Z)
    front, deep = rgb[box.rows(r0, r1), box.cols(2, 6)], rgb[box.rows(r0, r1), box.cols(6, 10)]
    resected = rgb[box.rows(r0, r1), box.cols(10, 18)]
    green, grey = _rgb(REMNANT_COLOUR), _rgb(RESECTED_COLOUR)

    def shade_of(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
        """Per-pixel brightness factor where the pixel is ``colour`` scaled (the hue kept), else NaN."""
        k = (pixels @ colour) / (colour @ colour)
        return np.where(_near(pixels, k[..., None] * colour, tol=2 * COLOUR_TOL), k, np.nan)

    k_front, k_deep = shade_of(front, green), shade_of(deep, green)
    # remnant: REMNANT_COLOUR depth-shaded, one shade per depth; the deeper part darker
    assert np.isfinite(k_front).all() and np.isfinite(k_deep).all()
    assert np.ptp(k_front) < 0.02 and np.ptp(k_deep) < 0.02
    assert 0.35 < k_deep.mean() < k_front.mean() - 0.1 and k_front.mean() <= 1.0
    # resected: RESECTED_COLOUR at the front depth's shade, except where the tumour is overlaid
    k_res = shade_of(resected, grey)
    assert np.nanmean(k_res) == pytest.approx(k_front.mean(), abs=0.02)  # same depth, same shade (8-bit)
    assert np.isfinite(k_res).mean() > 0.8
    # tumour: red over the resected part at its (z, x), anywhere along the ray
    t0, t1 = _displayed_rows(slice(4, 6))
    assert _red(rgb[box.rows(t0, t1, 6), box.cols(12, 15, 6)]).all()
    outside = _red(rgb)
    outside[box.rows(t0, t1, -4), box.cols(12, 15, -4)] = False
    assert not outside.any()
    assert not _red(_projection_case(with_tumour=False)[0]).any()
    # no parenchyma, no colour: the padding stays black (left of the "S" letter, above the "R" letter)
    assert rgb[box.rows(0, r0, 1), box.cols(0, 8, 1)].max() < 0.02
    assert rgb[box.rows(r0, r0 + 1, 1), box.cols(0, 2, 1)].max() < 0.02


def test_remnant_projection_png_empty():
    g = Geometry(shape_zyx=(4, 5, 6))
    empty = np.zeros(g.shape_zyx, bool)
    rgb = _top_square(_decode(remnant_projection_png(empty, empty, g)))[..., :3]
    assert rgb.shape[:2] == (500, 500)
    assert not _near(rgb, _rgb(REMNANT_COLOUR), tol=0.1).any() and not _red(rgb).any()


# --- legibility: distinct segment colours, print-size text, the ablation zone ------------------------

#: The liver's grey under the report's window (level 80 HU, width 150 HU): a liver at 80 HU is mid-grey.
LIVER_GREY = 0.5


def _lab(colours) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.array([_rgb(c) if isinstance(c, str) else c for c in colours])[None])[0]


def _min_delta_e(lab: np.ndarray) -> float:
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    return float((d + np.eye(len(lab)) * 1e9).min())


def test_segment_colours_are_distinct_alone_and_as_tints_over_the_liver():
    """Every pair of segment colours (I..VIII, IVa, IVb) differs by CIE76 delta-E >= 35 as drawn in the legend
    and the numeral boxes, and >= 18 as the slice shows them (the colour at the tint's alpha over liver grey).

    Why these margins: delta-E 2.3 is a just-noticeable difference; colours meant to be *named apart* at a glance
    need an order of magnitude more. The earlier palette (Paired: a dark and a light blue for II and III, the
    complaint that they read as one blue) had 33.4 opaque and 13.8 as tints; Tableau 10's closest pair is 27.7.
    """
    from flr.report.figures import SEGMENT_TINT_ALPHA, TUMOUR_COLOUR, segment_colour

    colours = [segment_colour(name) for name in SEGMENT_NAMES]
    assert len(set(colours)) == len(SEGMENT_NAMES) == 10
    assert _min_delta_e(_lab(colours)) >= 35.0
    tints = [SEGMENT_TINT_ALPHA * _rgb(c) + (1 - SEGMENT_TINT_ALPHA) * LIVER_GREY for c in colours]
    assert _min_delta_e(_lab(tints)) >= 18.0
    # and none is mistaken for the tumour's red or the resected grey
    for other in (TUMOUR_COLOUR, RESECTED_COLOUR):
        assert np.linalg.norm(_lab(colours) - _lab([other]), axis=-1).min() >= 25.0
    # SEGMENT_COLOURS is the same palette in code order (1..8, 4a, 4b)
    assert tuple(colours) == SEGMENT_COLOURS


def _texts(fig) -> list:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _printed_pt(fig, kind: str, text) -> float:
    """The size a text prints at on A4: its size in the figure times (the width the report prints the figure
    at) / (the figure's own width)."""
    from flr.report.figures import PRINT_WIDTH_MM

    return text.get_fontsize() * PRINT_WIDTH_MM[kind] / (fig.get_figwidth() * 25.4)


def _full_slice_figure():
    """The synthetic slice with every layer: segments, resected, two territories at risk (one off the slice),
    a tumour, a margin and an ablation zone."""
    from flr.report.figures import slice_figure

    g = SLICE_GRID
    seg = np.zeros(g.shape_zyx, np.int16)
    seg[(slice(None), *SEG_II)] = 2
    seg[(slice(None), *SEG_V)] = 5
    tumours = np.zeros(g.shape_zyx, np.uint8)
    tumours[(slice(None), *TUMOUR)] = 1
    ablation = np.zeros(g.shape_zyx, bool)
    ablation[(slice(None), *ABLATION_YX)] = True
    ends = [g.index_to_lps_mm((1, MARGIN_Y, x)) for x in MARGIN_X]
    masks = _at_risk_masks()
    masks["biliary_drainage"] = np.zeros(g.shape_zyx, bool)
    masks["biliary_drainage"][2, 3:5, 3:5] = True
    return slice_figure(None, g, view="axial", index=1, segment_map=seg, segment_names=SLICE_NAMES,
                        resected=seg == 5, tumors=tumours, ablation=ablation,
                        margin_points=[(tuple(ends[0]), tuple(ends[1]), 9.0)], at_risk=masks,
                        at_risk_ml={"outflow": 281.16, "inflow": 3.0, "biliary_drainage": 0.4},
                        title="Tumour 1: axial")


def test_figure_text_prints_at_9_pt_or_more():
    """Every text of every figure (title, legend, ticks, axis labels, numerals, orientation letters, margin
    distances) prints at >= 9 pt at the width the report gives the figure on A4; the legend's lines fit the
    figure's width."""
    from flr.report.figures import MIN_TEXT_PT, remnant_projection_figure, volume_bar_figure

    slice_fig = _full_slice_figure()
    rem = np.zeros(PROJ_GRID.shape_zyx, bool)
    rem[PROJ_Z, 2:10, 2:6] = True
    res = np.zeros(PROJ_GRID.shape_zyx, bool)
    res[PROJ_Z, 2:10, 10:18] = True
    figures = {
        "slice": slice_fig,
        "chart": volume_bar_figure(BAR_ROWS, threshold_ml=720.0, threshold_label="FLR 1% of body weight (default)"),
        "projection": remnant_projection_figure(rem, res, PROJ_GRID, tumors=res & (np.indices(res.shape)[2] > 14)),
    }
    assert MIN_TEXT_PT == 9.0
    for kind, fig in figures.items():
        texts = _texts(fig)
        assert len(texts) >= 5, kind
        smallest = min(_printed_pt(fig, kind, t) for t in texts)
        assert smallest >= 9.0 - 1e-9, (kind, smallest)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        width = fig.get_figwidth() * fig.dpi
        for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]:
            box = legend.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= width + 0.5, (kind, box)
    labels = [t.get_text() for legend in slice_fig.legends for t in legend.get_texts()]
    assert "ablation zone" in labels and "tumour" in labels and "resected" in labels


# in segment II, around the tumour (y 4..7, x 4..8) with a 1-voxel margin: the ablation zone
ABLATION_YX = (slice(3, 8), slice(3, 9))


def test_slice_png_outlines_the_ablation_zone_and_names_it_in_the_legend():
    from flr.report.figures import ABLATION_COLOUR

    g = SLICE_GRID
    ablation = np.zeros(g.shape_zyx, bool)
    ablation[(slice(None), *ABLATION_YX)] = True
    rgb, box = _slice_case(tumors=None, margin_points=(), ablation=ablation)
    plain = _slice_case(tumors=None, margin_points=())[0]
    changed = np.abs(rgb - plain).max(axis=-1) > 0.05
    near = _voxel_pixels(box, ablation[1], 4) & ~_voxel_pixels(box, ablation[1], -4)   # a band along its edge
    # drawn: white dashes along the zone's edge (dashes: not every pixel of the band), nothing elsewhere
    white = _near(rgb, _rgb(ABLATION_COLOUR), tol=0.08)
    assert white[near].mean() > 0.03 and not (white & ~near & ~_near(plain, _rgb(ABLATION_COLOUR), 0.08)).any()
    assert changed[near].mean() > 0.1 and not changed[~near].any()
    # the whole figure has it in its legend (under the image)
    full = _decode(slice_png(None, g, view="axial", index=1, segment_map=np.where(ablation, 2, 0).astype(np.int16),
                             segment_names=SLICE_NAMES, ablation=ablation))
    assert full.shape[0] > 600
    from flr.report.figures import slice_figure

    fig = slice_figure(None, g, view="axial", index=1, segment_map=np.zeros(g.shape_zyx, np.int16),
                       segment_names=SLICE_NAMES, ablation=ablation)
    assert [t.get_text() for legend in fig.legends for t in legend.get_texts()] == ["ablation zone"]
    no = slice_figure(None, g, view="axial", index=1, segment_map=np.zeros(g.shape_zyx, np.int16),
                      segment_names=SLICE_NAMES, ablation=np.zeros(g.shape_zyx, bool))
    assert not no.legends


def test_volume_bar_figure_stacks_functional_rest_and_resected():
    """The bars as drawn: functional (bottom), the rest of the remnant (tumour, ablation zone, at risk) above it,
    the resected part on top; the total bar carries the totals given (the functional remnant of the assessment),
    not a sum that could drift from it."""
    from flr.report.figures import VolumeBar, volume_bar_figure

    bars = [VolumeBar("liver_segment_2", 150.0, 10.0, 0.0), VolumeBar("liver_segment_5", 0.0, 0.0, 200.0)]
    total = VolumeBar("total", 149.5, 10.5, 200.0)
    fig = volume_bar_figure(bars, total=total)
    ax = fig.axes[0]
    containers = {c.get_label(): c for c in ax.containers}
    assert list(containers) == ["functional remnant (FLR)", "not functional: tumour, ablation, at risk", "resected"]
    heights = {k: [p.get_height() for p in c] for k, c in containers.items()}
    assert heights["functional remnant (FLR)"] == [150.0, 0.0, 149.5]
    assert heights["not functional: tumour, ablation, at risk"] == [10.0, 0.0, 10.5]
    assert heights["resected"] == [0.0, 200.0, 200.0]
    bottoms = [p.get_y() for p in containers["resected"]]
    assert bottoms == [160.0, 0.0, 160.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["II", "V", "total"]
