"""flr's Lee thinning (flr.kernels._thin) against scikit-image's, and its two tests against their definitions.

Independent truth: :func:`skimage.morphology.skeletonize` (the Lee 1994 thinning of ImageJ/ITK that flr used
before, kept as a test dependency) on random smooth blobs, noise, single planes, tubes, the phantom's vessel
trees and a real vessel mask; the Euler test against the Euler characteristic of the voxels' closed cubes
counted cell by cell; the simple-point test against scipy's 26-connected labelling.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from flr.errors import KernelInputError
from flr.kernels._thin import _ADJACENT, _CORNERS, _EDGES, _FACES, _NEIGHBOURS, _keeps_euler, _one_piece, thin

skeletonize = pytest.importorskip("skimage.morphology").skeletonize


def _blob(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.5, 2.5)) > rng.uniform(0.4, 0.6)


def test_equals_skimage_on_random_blobs_and_planes():
    rng = np.random.default_rng(20261204)
    for _ in range(150):
        shape = tuple(int(n) for n in rng.integers(1, 22, 3))
        mask = _blob(rng, shape)
        np.testing.assert_array_equal(thin(mask), skeletonize(mask), err_msg=f"shape {shape}")
    for _ in range(40):  # z = 1: four sweeps (no z borders), as skimage does for a single plane
        shape = (1, *(int(n) for n in rng.integers(3, 40, 2)))
        mask = _blob(rng, shape)
        np.testing.assert_array_equal(thin(mask), skeletonize(mask), err_msg=f"shape {shape}")


def test_equals_skimage_on_noise():
    """Speckle gives the most varied neighbourhoods (every deletion rule is exercised)."""
    rng = np.random.default_rng(7)
    for _ in range(80):
        shape = tuple(int(n) for n in rng.integers(2, 12, 3))
        mask = rng.random(shape) < rng.uniform(0.2, 0.9)
        np.testing.assert_array_equal(thin(mask), skeletonize(mask), err_msg=f"shape {shape}")


def test_equals_skimage_on_tubes():
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    for _ in range(6):
        mask = np.zeros(z.shape, bool)
        for _ in range(8):
            a, b = rng.uniform((0, 0, 0), z.shape), rng.uniform((0, 0, 0), z.shape)
            d = b - a
            t = np.clip(((z - a[0]) * d[0] + (y - a[1]) * d[1] + (x - a[2]) * d[2]) / (d @ d), 0, 1)
            dist2 = (z - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (x - a[2] - t * d[2]) ** 2
            mask |= dist2 <= rng.uniform(1.0, 4.0) ** 2
        skeleton = thin(mask)
        np.testing.assert_array_equal(skeleton, skeletonize(mask))
        assert 0 < skeleton.sum() < mask.sum() / 3


@pytest.mark.parametrize(("seed", "oblique_deg"), [(0, 0.0), (1, 25.0)])
def test_equals_skimage_on_the_phantom_vessel_trees(seed, oblique_deg):
    from tests.helpers import phantom

    labels = phantom(seed, oblique_deg=oblique_deg).labels.array
    for label in (10, 11):  # portal vein, hepatic veins (with their IVC stubs)
        mask = labels == label
        box = ndimage.find_objects(mask.astype(np.uint8))[0]
        skeleton = thin(mask[box])
        np.testing.assert_array_equal(skeleton, skeletonize(mask[box]), err_msg=f"label {label}")
        assert skeleton.sum() > 50


def test_equals_skimage_on_a_real_vessel_mask(shared_data: Path):
    from flr.io import read_image

    path = shared_data / "couinaud-msd8" / "vessel" / "MSD-011.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    mask = read_image(path).array > 0.5
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    skeleton = thin(mask[box])
    np.testing.assert_array_equal(skeleton, skeletonize(mask[box]))
    assert skeleton.sum() > 100


def test_inputs_of_any_kind():
    rng = np.random.default_rng(11)
    mask = _blob(rng, (14, 18, 20))
    labels = mask.astype(np.uint16) * 7
    np.testing.assert_array_equal(thin(labels), skeletonize(mask))       # nonzero = foreground
    view = np.asfortranarray(mask)[:, ::-1, :]                            # not C-contiguous, reversed
    np.testing.assert_array_equal(thin(view), skeletonize(np.ascontiguousarray(view)))
    assert not thin(np.zeros((4, 5, 6), bool)).any()
    one = np.zeros((3, 3, 3), bool)
    one[1, 1, 1] = True
    np.testing.assert_array_equal(thin(one), one)                         # an isolated voxel stays
    full = np.ones((5, 6, 7), bool)
    np.testing.assert_array_equal(thin(full), skeletonize(full))
    assert thin(mask).dtype == bool and thin(mask).shape == mask.shape
    with pytest.raises(KernelInputError, match="3-D"):
        thin(np.ones((4, 4), bool))


def _euler_characteristic(voxels: list[tuple[int, int, int]]) -> int:
    """chi of the union of the voxels' closed unit cubes: cells on the doubled lattice, (-1)^dim each."""
    cells = {(2 * v[0] + a, 2 * v[1] + b, 2 * v[2] + c) for v in voxels
             for a, b, c in itertools.product((-1, 0, 1), repeat=3)}
    return sum((-1) ** sum(1 for k in cell if k % 2 == 0) for cell in cells)


def _neighbourhood(code: int) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in _NEIGHBOURS[b]) for b in range(26) if code >> b & 1]


def test_euler_test_is_the_euler_characteristic_kept():
    rng = np.random.default_rng(5)
    codes = [int(c) for c in rng.integers(0, 1 << 26, 1500)] + [1 << b for b in range(26)] + [0]
    for code in codes:
        around = _neighbourhood(code)
        kept = _euler_characteristic(around) == _euler_characteristic([*around, (0, 0, 0)])
        assert _keeps_euler(code, _CORNERS, _EDGES, _FACES) == kept, code


def test_simple_point_test_counts_26_connected_pieces():
    rng = np.random.default_rng(6)
    for code in [int(c) for c in rng.integers(0, 1 << 26, 3000)] + [0, 1, (1 << 26) - 1]:
        cube = np.zeros((3, 3, 3), bool)
        for dz, dy, dx in _neighbourhood(code):
            cube[dz + 1, dy + 1, dx + 1] = True
        pieces = ndimage.label(cube, structure=np.ones((3, 3, 3)))[1]
        assert _one_piece(code, _ADJACENT) == (pieces <= 1), code
