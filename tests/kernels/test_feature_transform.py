"""flr.kernels._edt (exact Euclidean feature transform) against scipy and a brute-force reference.

Both the kernel and scipy's ``distance_transform_edt`` are exact, so the distance to the feature each
returns must agree to rounding (1e-9 relative) everywhere; the indices themselves may differ only where
two features are equally near. On grids whose spacings are binary fractions (1, 0.5, 2 mm) the squared
distances are exact in float64 and the kernel's tie rule (the lowest flat index) is checked exactly.
Grids are small, so the file runs in seconds once numba's cache is warm; the parallel path starts at
2**18 voxels, which the thread-count tests reach.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from flr.errors import KernelInputError
from flr.kernels._edt import feature_transform, feature_transform_reference, nearest_feature

SPACINGS = [(2.5, 0.7, 0.9), (1.0, 1.0, 1.0), (3.0, 0.8, 0.8)]
SHAPES = [(7, 9, 11), (1, 13, 17), (12, 1, 5), (5, 6, 1), (1, 1, 1), (1, 1, 19), (20, 33, 40), (3, 64, 65)]
DENSITIES = [0.001, 0.01, 0.1, 0.3]
#: float32 keeps 24 significant bits: the stored squared distance is within 2**-24 relative of the exact one
FLOAT32_RTOL = 2.0**-24


def random_features(shape: tuple[int, ...], density: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < density


def distance_to(index: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """float64 distance (mm) from every voxel to the voxel whose flat index ``index`` holds."""
    shape = index.shape
    at = np.stack(np.unravel_index(index.ravel(), shape)).reshape(3, *shape)
    w = np.asarray(spacing, float).reshape(3, 1, 1, 1)
    return np.sqrt((((at - np.indices(shape)) * w) ** 2).sum(axis=0))


def scipy_distance(features: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from every voxel to scipy's nearest feature, recomputed from its indices."""
    _, at = ndimage.distance_transform_edt(~features, sampling=spacing, return_indices=True)
    w = np.asarray(spacing, float).reshape(3, 1, 1, 1)
    return np.sqrt((((at - np.indices(features.shape)) * w) ** 2).sum(axis=0))


def assert_exact_transform(features: np.ndarray, spacing: tuple[float, ...], **kwargs: int) -> None:
    index, d2 = feature_transform(features, spacing, **kwargs)
    assert index.dtype == np.int32 and d2.dtype == np.float32
    assert index.shape == d2.shape == features.shape
    assert features.ravel()[index.ravel()].all(), "every returned index must be a feature voxel"
    mine = distance_to(index, spacing)
    np.testing.assert_allclose(mine, scipy_distance(features, spacing), rtol=1e-9, atol=0)
    np.testing.assert_allclose(d2, mine**2, rtol=FLOAT32_RTOL, atol=0)


# --- exactness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_distance_to_the_returned_feature_equals_scipys(shape: tuple[int, int, int],
                                                        spacing: tuple[float, float, float]) -> None:
    for density in DENSITIES:
        for seed in (1, 2):
            features = random_features(shape, density, seed)
            if not features.any():
                features.flat[seed * 7919 % features.size] = True  # one feature at least (none: tested below)
            assert_exact_transform(features, spacing)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.5, 1.0), (0.5, 0.25, 0.5)])
@pytest.mark.parametrize("shape", [(4, 5, 6), (1, 7, 7), (6, 1, 5), (5, 5, 1), (3, 4, 9)])
def test_brute_force_and_the_lowest_index_tie_rule(shape: tuple[int, int, int],
                                                   spacing: tuple[float, float, float]) -> None:
    """Binary-fraction spacings make every squared distance exact, so ties are real and decided exactly."""
    for density in (0.05, 0.2, 0.5):
        for seed in range(3):
            features = random_features(shape, density, seed)
            want_index, want_d2 = feature_transform_reference(features, spacing)
            index, d2 = feature_transform(features, spacing)
            np.testing.assert_array_equal(index, want_index)
            np.testing.assert_array_equal(d2, want_d2.astype(np.float32))


@pytest.mark.parametrize("shape", [(4, 5, 6), (2, 9, 3)])
def test_brute_force_on_an_anisotropic_grid(shape: tuple[int, int, int]) -> None:
    spacing = (2.5, 0.7, 0.9)
    for seed in range(4):
        features = random_features(shape, 0.15, seed)
        features.flat[seed] = True
        _, want_d2 = feature_transform_reference(features, spacing)
        index, _ = feature_transform(features, spacing)
        np.testing.assert_allclose(distance_to(index, spacing) ** 2, want_d2, rtol=1e-12, atol=0)


def test_one_feature_gives_the_analytic_distance() -> None:
    shape, spacing, at = (6, 7, 8), (2.5, 0.7, 0.9), (4, 1, 6)
    features = np.zeros(shape, bool)
    features[at] = True
    index, d2 = feature_transform(features, spacing)
    assert (index == np.ravel_multi_index(at, shape)).all()
    want = sum(((np.indices(shape)[a] - at[a]) * spacing[a]) ** 2 for a in range(3))
    np.testing.assert_allclose(d2, want, rtol=FLOAT32_RTOL, atol=0)


def test_ties_go_to_the_lowest_flat_index() -> None:
    """The centre of a 3 x 3 x 3 cube is equally near its 8 corners: corner (0, 0, 0) wins."""
    features = np.zeros((3, 3, 3), bool)
    features[::2, ::2, ::2] = True
    index, d2 = feature_transform(features, (1.0, 1.0, 1.0))
    assert int(index[1, 1, 1]) == 0 and float(d2[1, 1, 1]) == 3.0
    assert int(index[1, 1, 2]) == 2                       # 4 corners tie at 2 mm^2: (0, 0, 2) is the lowest
    assert int(index[2, 1, 1]) == np.ravel_multi_index((2, 0, 0), (3, 3, 3))  # 4 tied: lowest y, then x


# --- edge cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 1, 3), (5, 6, 7)])
def test_no_features_gives_minus_one_and_inf(shape: tuple[int, int, int]) -> None:
    index, d2 = feature_transform(np.zeros(shape, bool), (2.5, 0.7, 0.9))
    assert (index == -1).all() and np.isinf(d2).all()
    assert (nearest_feature(np.zeros(shape, bool), (1.0, 1.0, 1.0)) == -1).all()


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 1, 3), (5, 6, 7)])
def test_every_voxel_a_feature_is_its_own_nearest(shape: tuple[int, int, int]) -> None:
    index, d2 = feature_transform(np.ones(shape, bool), (2.5, 0.7, 0.9))
    np.testing.assert_array_equal(index, np.arange(np.prod(shape)).reshape(shape))
    assert (d2 == 0).all()


def test_a_strided_view_gives_the_same_as_its_copy() -> None:
    base = random_features((10, 12, 14), 0.05, seed=3)
    view = base[::2, :, ::-1].transpose(1, 0, 2)
    for got, want in zip(feature_transform(view, (0.8, 2.0, 0.7)),
                         feature_transform(np.ascontiguousarray(view), (0.8, 2.0, 0.7)), strict=True):
        np.testing.assert_array_equal(got, want)


# --- within, threads, nearest_feature ------------------------------------------------------------


def test_within_answers_inside_and_minus_one_outside() -> None:
    shape, spacing = (16, 20, 24), (2.5, 0.7, 0.9)
    features = random_features(shape, 0.004, seed=5)
    within = np.zeros(shape, bool)
    within[3:12, 5:15, 2:9] = True
    within[15, 19, 23] = True                              # a lone voxel in a corner column
    features[within] = False                               # every feature lies outside within
    full_index, full_d2 = feature_transform(features, spacing)
    index, d2 = feature_transform(features, spacing, within=within)
    np.testing.assert_array_equal(index[within], full_index[within])
    np.testing.assert_array_equal(d2[within], full_d2[within])
    assert (index[~within] == -1).all() and np.isinf(d2[~within]).all()
    assert (feature_transform(features, spacing, within=np.zeros(shape, bool))[0] == -1).all()


@pytest.mark.parametrize("shape", [(64, 64, 64), (70, 65, 67)])
def test_thread_counts_agree(shape: tuple[int, int, int]) -> None:
    """At least 2**18 voxels: the parallel path, with chunks that split lines unevenly."""
    features = random_features(shape, 0.0005, seed=7)
    within = np.zeros(shape, bool)
    within[10:50, 5:60, 20:40] = True
    spacing = (2.5, 0.7, 0.9)
    want = feature_transform(features, spacing, n_threads=1)
    want_within = feature_transform(features, spacing, within=within, n_threads=1)
    np.testing.assert_array_equal(want_within[0][within], want[0][within])
    for n_threads in (2, 3, 7):
        for got, ref in ((feature_transform(features, spacing, n_threads=n_threads), want),
                         (feature_transform(features, spacing, within=within, n_threads=n_threads), want_within)):
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])
    assert_exact_transform(features, spacing, n_threads=2)


def test_nearest_feature_is_the_transforms_index() -> None:
    features = random_features((9, 10, 11), 0.02, seed=8)
    within = random_features((9, 10, 11), 0.5, seed=9)
    for mask in (None, within):
        index = nearest_feature(features, (3.0, 0.8, 0.8), within=mask)
        assert index.dtype == np.int32
        np.testing.assert_array_equal(index, feature_transform(features, (3.0, 0.8, 0.8), within=mask)[0])


# --- bad inputs ----------------------------------------------------------------------------------

GOOD = np.zeros((2, 3, 4), bool)


@pytest.mark.parametrize(
    ("features", "spacing", "kwargs", "match"),
    [
        (GOOD.astype(np.uint8), (1, 1, 1), {}, "features must be a bool array, got dtype uint8"),
        (GOOD[0], (1, 1, 1), {}, r"features must be a 3-D \(z, y, x\) array, got shape \(3, 4\)"),
        (np.zeros((0, 3, 4), bool), (1, 1, 1), {}, "must not be empty"),
        (GOOD, (1, 1), {}, r"3 finite positive mm values \(z, y, x\), got \(1, 1\)"),
        (GOOD, (1, 0, 1), {}, "finite positive"),
        (GOOD, (1, float("nan"), 1), {}, "finite positive"),
        (GOOD, (1, -0.7, 1), {}, r"got \(1, -0.7, 1\)"),
        (GOOD, 1.0, {}, "must be 3 numbers"),
        (GOOD, ("a", 1, 1), {}, "must be 3 numbers"),
        (GOOD, (1, 1, 1), {"within": np.zeros((2, 3, 5), bool)}, r"within has shape \(2, 3, 5\), features \(2, 3, 4\)"),
        (GOOD, (1, 1, 1), {"within": np.zeros((2, 3, 4), np.int8)}, "within must be a bool array"),
        (GOOD, (1, 1, 1), {"n_threads": 0}, "n_threads must be a positive integer or None, got 0"),
        (GOOD, (1, 1, 1), {"n_threads": True}, "n_threads must be a positive integer"),
        (GOOD, (1, 1, 1), {"n_threads": 1.5}, "n_threads must be a positive integer"),
    ],
)
def test_bad_inputs_are_refused(features: np.ndarray, spacing: object, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(KernelInputError, match=match):
        feature_transform(features, spacing, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):                       # KernelInputError is a TypeError: catch it broadly too
        nearest_feature(features, spacing, **kwargs)  # type: ignore[arg-type]
