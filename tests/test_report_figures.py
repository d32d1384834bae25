"""Report figures: display orientation on any grid, and PNGs that decode, have the stated size and are not blank."""

from __future__ import annotations

import io

import numpy as np
import pytest

from flr.image import Geometry
from flr.phantom import make_liver_phantom
from flr.report.figures import (
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
def oblique():
    return make_liver_phantom(0, oblique_deg=15)


@pytest.fixture(scope="module")
def straight():
    return make_liver_phantom(1)


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


def test_segment_label_roman_numerals():
    assert [segment_label(f"liver_segment_{s}") for s in ("1", "4a", "4b", "8")] == ["I", "IVa", "IVb", "VIII"]
    assert segment_label("caudate") == "caudate"


@pytest.mark.parametrize("view", ["axial", "coronal"])
def test_slice_png_decodes_with_size_and_content(oblique, view):
    g = oblique.ct.geometry
    labels = oblique.labels.array
    segments = np.where(labels <= 8, labels, 0)
    names = {k: v for k, v in oblique.labels.names.items() if k <= 8}
    tumours = labels == 9
    picks = [p for p in pick_slices(g, oblique.liver.array, tumours) if p[1] == view]
    _, _, index = picks[1]                                       # through tumour 1
    zyx = np.argwhere(tumours)
    tumour_mm = g.index_to_lps_mm(zyx[np.argmin(np.abs(zyx[:, 0 if view == "axial" else 1] - index))])
    png = slice_png(oblique.ct.array, g, view=view, index=index, segment_map=segments, segment_names=names,
                    resected=np.isin(labels, (5, 6, 7, 8)), tumors=tumours,
                    margin_points=[(tuple(tumour_mm), tuple(tumour_mm + np.array([15.0, 0.0, 0.0])), 15.0)],
                    title=f"{view} through tumour 1")
    image = _decode(png)
    assert image.shape[:2] == (600, 600)
    assert image[..., :3].var() > 0.0


def test_slice_png_without_ct_and_overlays(straight):
    g = straight.ct.geometry
    labels = straight.labels.array
    png = slice_png(None, g, view="axial", index=g.shape_zyx[0] // 2, segment_map=np.where(labels <= 8, labels, 0),
                    segment_names={k: f"liver_segment_{k}" for k in range(1, 9)})
    image = _decode(png)
    assert image.shape[:2] == (600, 600)
    assert image[..., :3].var() > 0.0


def test_slice_png_rejects_bad_window(straight):
    g = straight.ct.geometry
    with pytest.raises(ValueError, match="window width"):
        slice_png(None, g, view="axial", index=0, segment_map=np.zeros(g.shape_zyx, np.int16), segment_names={},
                  window=(80.0, 0.0))


def test_volume_bar_png_with_threshold():
    rows = [(f"liver_segment_{k}", 150.0 if k < 5 else 0.0, 0.0 if k < 5 else 180.0) for k in range(1, 9)]
    png = volume_bar_png(rows, threshold_ml=700.0, threshold_label="FLR 1% of body weight (700 mL)")
    image = _decode(png)
    assert image.shape[:2] == (400, 700)
    assert image[..., :3].var() > 0.0
    assert _decode(volume_bar_png(rows)).shape[:2] == (400, 700)


def test_volume_bar_png_rejects_negative_volume():
    with pytest.raises(ValueError, match=">= 0 mL"):
        volume_bar_png([("liver_segment_1", -1.0, 0.0)])


def test_remnant_projection_png(oblique):
    labels = oblique.labels.array
    segments = (labels >= 1) & (labels <= 8)
    resected = np.isin(labels, (5, 6, 7, 8))
    png = remnant_projection_png(segments & ~resected, resected, oblique.ct.geometry, tumors=labels == 9)
    image = _decode(png)
    assert image.shape[:2] == (500, 500)
    rgb = image[..., :3]
    assert rgb.var() > 0.0
    # the remnant (green) shows, and so does the resected part (grey)
    green = (rgb[..., 1] > rgb[..., 0] + 0.15) & (rgb[..., 1] > rgb[..., 2] + 0.1)
    grey = (np.ptp(rgb, axis=-1) < 0.02) & (rgb[..., 0] > 0.2) & (rgb[..., 0] < 0.7)
    assert green.sum() > 1000 and grey.sum() > 1000


def test_remnant_projection_png_empty():
    g = Geometry(shape_zyx=(4, 5, 6))
    empty = np.zeros(g.shape_zyx, bool)
    assert _decode(remnant_projection_png(empty, empty, g)).shape[:2] == (500, 500)
