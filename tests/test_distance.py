"""flr.distance on flr's exact feature transform, against scipy's ``distance_transform_edt`` and brute force.

Both transforms are exact, so every voxel's feature must be at scipy's (least) distance, to float rounding.
The feature itself may differ only at a tie: flr runs the kernel on the transposed grid so that its
lowest-flat-index rule becomes scipy's order (lowest x, then y, then z), which makes the two identical
where squared distances are exact in float64 (spacings such as 1, 1.5, 2.5 or 0.78125 mm). With spacings
such as 0.7 or 0.8 mm a tie in real arithmetic can be decided by rounding, differently in the two
algorithms (Maurer's in scipy, Felzenszwalb-Huttenlocher's in flr): there the tests accept another
feature only when its distance equals scipy's to ``RTOL``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from flr.distance import (
    dilate_mm,
    distance_to_mm,
    feature_distance_mm,
    min_distance_mm,
    nearest_feature_index,
    nearest_label,
    nearest_seed_id,
)
from flr.image import Geometry

#: Relative tolerance on distances (float64 rounding of sums of three squares; measured below 1e-15).
RTOL = 1e-12
#: Spacings (z, y, x) in mm: isotropic, binary fractions (ties exact) and CT-like (ties up to rounding).
EXACT_SPACINGS = [(1.0, 1.0, 1.0), (2.5, 1.5, 1.5), (3.0, 0.75, 0.75), (5.0, 0.78125, 0.78125)]
ROUNDED_SPACINGS = [(0.7, 0.8, 2.5), (2.5, 0.8, 0.7), (0.8, 0.7, 0.7)]


def _scipy(features: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """scipy's (distance mm, flat C-order index of the nearest feature)."""
    dist, idx = ndimage.distance_transform_edt(~features, sampling=spacing, return_indices=True)
    return dist, np.ravel_multi_index(tuple(idx), features.shape)


def _all(shape) -> tuple[np.ndarray, ...]:
    return tuple(a.ravel() for a in np.indices(shape))


def _random_labels(rng: np.random.Generator, shape, density: float, n_labels: int = 8) -> np.ndarray:
    return np.where(rng.random(shape) < density, rng.integers(1, n_labels + 1, shape), 0).astype(np.uint8)


def _fragmented_segments(rng: np.random.Generator, shape) -> np.ndarray:
    """Couinaud-like blocks cut into fragments, with holes (the voxels to fill) and stray islands."""
    z, y, x = np.indices(shape)
    seg = (1 + (x * 4 // shape[2]) + 4 * (y * 2 // shape[1])).astype(np.uint8)      # 8 blocks
    seg[rng.random(shape) < 0.35] = 0                                              # holes everywhere
    seg[:, :, shape[2] // 2 - 1: shape[2] // 2 + 2] = 0                            # a gap between blocks
    seg[(z % 5 == 2) & (rng.random(shape) < 0.8)] = 0                              # slices mostly missing
    islands = rng.random(shape) < 0.01
    seg[islands] = rng.integers(1, 9, int(islands.sum()))                           # fragments far from home
    return seg


def _check_up_to_ties(features: np.ndarray, spacing, got: np.ndarray, ask: np.ndarray | None = None) -> int:
    """Assert ``got`` (flat indices) is a nearest feature at every asked voxel; return how many differ from scipy."""
    want_d, want = _scipy(features, spacing)
    at = np.nonzero(np.ones(features.shape, bool) if ask is None else ask)
    assert (got[at] >= 0).all() and features.ravel()[got[at]].all()
    d = feature_distance_mm(got, at, spacing)
    np.testing.assert_allclose(d, want_d[at], rtol=RTOL, atol=1e-12)
    return int((got[at] != want[at]).sum())


# --- nearest_feature_index -----------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", EXACT_SPACINGS)
@pytest.mark.parametrize("density", [0.005, 0.05, 0.3])
def test_index_equals_scipy_where_ties_are_exact(spacing, density):
    rng = np.random.default_rng(int(1000 * density) + int(10 * spacing[0]))
    features = rng.random((13, 17, 19)) < density
    features[0, 0, 0] = True
    _, want = _scipy(features, spacing)
    np.testing.assert_array_equal(nearest_feature_index(features, spacing), want)


@pytest.mark.parametrize("spacing", ROUNDED_SPACINGS)
@pytest.mark.parametrize("density", [0.01, 0.1])
def test_index_is_a_nearest_feature_with_rounded_spacings(spacing, density):
    rng = np.random.default_rng(7 + int(100 * density))
    features = rng.random((23, 31, 37)) < density
    got = nearest_feature_index(features, spacing)
    _check_up_to_ties(features, spacing, got)  # other features than scipy's: 0.04-0.4 % of voxels, all ties


@pytest.mark.parametrize("spacing", [(2.5, 1.5, 1.5), (0.7, 0.8, 2.5)])
def test_index_against_brute_force(spacing):
    rng = np.random.default_rng(3)
    features = rng.random((5, 6, 7)) < 0.08
    features[2, 3, 1] = features[2, 3, 5] = True                     # a symmetric tie along x
    got = nearest_feature_index(features, spacing)
    grid = np.indices(features.shape).reshape(3, -1).T
    f = np.flatnonzero(features)
    d2 = (((grid[:, None, :] - grid[None, f, :]) * np.asarray(spacing)) ** 2).sum(axis=2)
    mine = d2[np.arange(len(grid)), np.searchsorted(f, got.ravel())]
    np.testing.assert_allclose(mine, d2.min(axis=1), rtol=RTOL)
    # scipy's order among tied features: the lowest x, then y, then z
    tied = d2 <= d2.min(axis=1, keepdims=True) * (1 + 1e-12)
    if spacing == (2.5, 1.5, 1.5):                                    # exact ties: the rule holds exactly
        zyx = grid[f]
        for v in range(len(grid)):
            cands = zyx[tied[v]]
            first = cands[np.lexsort((cands[:, 0], cands[:, 1], cands[:, 2]))[0]]
            assert got.ravel()[v] == np.ravel_multi_index(tuple(first), features.shape)


def test_index_within_answers_only_there_and_equals_the_whole_transform():
    rng = np.random.default_rng(11)
    features = rng.random((9, 10, 11)) < 0.05
    within = rng.random(features.shape) < 0.3
    whole = nearest_feature_index(features, (2.5, 0.7, 0.8))
    part = nearest_feature_index(features, (2.5, 0.7, 0.8), within=within)
    np.testing.assert_array_equal(part[within], whole[within])
    assert (part[~within] == -1).all()
    assert (nearest_feature_index(np.zeros((3, 4, 5), bool), (1.0, 1.0, 1.0)) == -1).all()


@pytest.mark.parametrize("spacing", EXACT_SPACINGS[:2] + ROUNDED_SPACINGS)
@pytest.mark.parametrize("shape", [(9, 10, 11), (1, 7, 13), (12, 5, 3)])
def test_seed_ids_are_the_ids_of_the_nearest_seed(spacing, shape):
    """nearest_seed_id = the id table read at nearest_feature_index's answer (independent: a dict lookup)."""
    rng = np.random.default_rng(sum(shape))
    n = shape[0] * shape[1] * shape[2]
    flat = rng.choice(n, size=max(1, n // 20), replace=False)
    ids = rng.integers(0, 1000, len(flat)).astype(np.int32)
    within = rng.random(shape) < 0.6
    features = np.zeros(shape, bool)
    features.ravel()[flat] = True
    index = nearest_feature_index(features, spacing, within=within)
    by_voxel = dict(zip(flat.tolist(), ids.tolist(), strict=True))
    want = np.array([by_voxel[i] if i >= 0 else -1 for i in index.ravel(order="C")], np.int32).reshape(shape)
    got = nearest_seed_id(flat, ids, shape, spacing, within=within)
    assert got.dtype == np.int32 and got.shape == shape
    np.testing.assert_array_equal(got, want)
    assert (got[~within] == -1).all() and (got[within] >= 0).all()
    np.testing.assert_array_equal(nearest_seed_id(flat, ids, shape, spacing)[within], want[within])


# --- nearest_label: segment territories ---------------------------------------------------------------


@pytest.mark.parametrize("spacing", EXACT_SPACINGS[:2] + ROUNDED_SPACINGS)
def test_nearest_label_on_fragmented_segments(spacing):
    rng = np.random.default_rng(5)
    seg = _fragmented_segments(rng, (20, 24, 28))
    fill = seg == 0
    g = Geometry(seg.shape, spacing[::-1])
    got = nearest_label(seg, fill, g)
    assert (got[~fill] == seg[~fill]).all() and (got[fill] > 0).all()
    dist, idx = _scipy(seg > 0, spacing)
    want = seg.ravel()[idx]
    moved = fill & (got != want)
    if spacing in EXACT_SPACINGS:
        assert not moved.any()
    # every voxel's label is that of a nearest segment voxel: its distance to that label is the least one
    for code in np.unique(got[moved]):
        to_code = ndimage.distance_transform_edt(seg != code, sampling=spacing)
        at = moved & (got == code)
        np.testing.assert_allclose(to_code[at], dist[at], rtol=RTOL)


def test_nearest_label_on_an_oblique_grid():
    """The direction does not change distances: the rotated grid's territories are the straight grid's."""
    rng = np.random.default_rng(8)
    seg = _fragmented_segments(rng, (12, 20, 22))
    c, s = np.cos(np.radians(15.0)), np.sin(np.radians(15.0))
    oblique = Geometry(seg.shape, (0.75, 0.75, 2.5), (10.0, -5.0, 3.0), (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    straight = Geometry(seg.shape, (0.75, 0.75, 2.5))
    got = nearest_label(seg, seg == 0, oblique)
    np.testing.assert_array_equal(got, nearest_label(seg, seg == 0, straight))
    _, idx = _scipy(seg > 0, (2.5, 0.75, 0.75))
    np.testing.assert_array_equal(got, seg.ravel()[idx])


def test_nearest_label_on_the_round_1_sample_equals_scipy(phantom_1):
    """The assessment's segment territories on the sample case: scipy's, voxel for voxel (round 1's pins)."""
    from flr.assessment import territories
    from flr.case import Case, anatomy_box, gather_anatomy

    case = Case.build([phantom_1.labels, phantom_1.liver], None)
    anatomy = gather_anatomy(case, box=anatomy_box(case))
    got = territories(anatomy)
    seg, liver = anatomy.segment_map, anatomy.liver
    _, idx = _scipy(seg != 0, anatomy.geometry.spacing_zyx_mm)
    want = np.where(liver, seg.ravel()[idx], 0)
    assert int((liver & (seg == 0)).sum()) > 10_000
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", ["MSD-011", "MSD-037", "MSD-207", "MSD-255"])
def test_nearest_label_on_real_couinaud_maps(shared_data: Path, case: str):
    """Real label maps: the vessel voxels inside the liver take the nearest segment's code, as scipy's do,
    up to ties whose two segments are equally near (to rounding)."""
    from flr.io import read_image

    d = shared_data / "couinaud-msd8"
    if not (d / "label" / f"{case}.nii.gz").is_file():
        pytest.skip(f"{d / 'label' / case}.nii.gz not found")
    image = read_image(d / "label" / f"{case}.nii.gz")
    vessel = read_image(d / "vessel" / f"{case}.nii.gz").array > 0.5
    seg = np.where(vessel, 0, image.array).astype(np.uint8)          # vessel voxels are 0, as flr's maps have
    fill = vessel & (image.array > 0)
    g = image.geometry
    got = nearest_label(seg, fill, g)
    dist, idx = _scipy(seg > 0, g.spacing_zyx_mm)
    want = seg.ravel()[idx]
    moved = fill & (got != want)
    assert int(moved.sum()) <= 1e-3 * int(fill.sum())   # measured: 0 on all four (12 631-63 724 voxels)
    at = np.nonzero(fill)
    mine = nearest_feature_index(seg > 0, g.spacing_zyx_mm, within=fill)
    np.testing.assert_allclose(feature_distance_mm(mine, at, g.spacing_zyx_mm), dist[at], rtol=RTOL)
    np.testing.assert_array_equal(got[at], seg.ravel()[mine[at]])


# --- distances, dilation, least distance -----------------------------------------------------------------


@pytest.mark.parametrize("spacing", [(2.5, 1.5, 1.5), (0.8, 0.7, 0.7)])
def test_distance_and_dilation_equal_scipy(spacing):
    rng = np.random.default_rng(2)
    mask = np.zeros((15, 18, 21), bool)
    mask[6:9, 7:11, 8:12] = rng.random((3, 4, 4)) < 0.6
    mask[7, 8, 9] = True
    g = Geometry(mask.shape, spacing[::-1])
    want = ndimage.distance_transform_edt(~mask, sampling=spacing)
    np.testing.assert_allclose(distance_to_mm(mask, g), want, rtol=RTOL, atol=0)
    liver = rng.random(mask.shape) < 0.7
    for margin in (1.5, 3.0, 4.9, 10.0):
        np.testing.assert_array_equal(dilate_mm(mask, g, margin, within=liver), (want <= margin + 1e-9) & liver)
        np.testing.assert_array_equal(dilate_mm(mask, g, margin), want <= margin + 1e-9)
    assert np.isinf(distance_to_mm(np.zeros((2, 3, 4), bool), Geometry((2, 3, 4)))).all()
    assert not dilate_mm(mask, g, 3.0, within=np.zeros(mask.shape, bool)).any()


def test_min_distance_equals_brute_force():
    rng = np.random.default_rng(4)
    g = Geometry((30, 26, 22), (0.7, 0.8, 2.5))
    source = np.zeros(g.shape_zyx, bool)
    source[3:6, 4:8, 5:9] = rng.random((3, 4, 4)) < 0.5
    source[4, 5, 6] = True
    target = np.zeros(g.shape_zyx, bool)
    target[15:18, 18:21, 20:24] = True
    dist, src, tgt = min_distance_mm(source, target, g, search_mm=2.0)   # the search has to grow
    s, t = np.argwhere(source), np.argwhere(target)
    d = np.sqrt((((s[:, None] - t[None]) * np.asarray(g.spacing_zyx_mm)) ** 2).sum(axis=2))
    assert dist == pytest.approx(float(d.min()), rel=RTOL)
    assert source[src] and target[tgt]
    assert float(np.sqrt((((np.subtract(src, tgt)) * np.asarray(g.spacing_zyx_mm)) ** 2).sum())) == pytest.approx(dist)
    assert min_distance_mm(source, np.zeros_like(target), g) == (np.inf, None, None)
