"""Vessel radii at centerline points (issue 14: computed only where needed) equal the distance-transform ones.

Independent truth: ``scipy.ndimage.distance_transform_edt`` of the vessel mask, maximum-filtered over 3 x 3 x 3,
read at the centerline points (what flr computed before), on the phantom's vessels and on random tubes,
anisotropic grids included; and a straight cylinder's analytic radius.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from flr.vesselgraph import _radii_mm


def _reference(mask: np.ndarray, spacing: np.ndarray, paths: list[np.ndarray]) -> list[np.ndarray]:
    inscribed = ndimage.maximum_filter(ndimage.distance_transform_edt(mask, sampling=spacing), size=3)
    return [inscribed[tuple(p.T)] for p in paths]


def _tube_mask(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    pts = np.stack([zz, yy, xx], axis=-1) * spacing
    mask = np.zeros(shape, bool)
    paths = []
    for _ in range(3):
        a, b = rng.uniform(0.1, 0.9, 3) * np.asarray(shape) * spacing, rng.uniform(0.1, 0.9, 3) * np.asarray(
            shape) * spacing
        r = rng.uniform(1.0, 4.0)
        u = (b - a) / np.linalg.norm(b - a)
        t = np.clip((pts - a) @ u, 0, np.linalg.norm(b - a))
        mask |= np.linalg.norm(pts - a - t[..., None] * u, axis=-1) <= r
        n = int(np.linalg.norm(b - a) / spacing.min())
        line = np.unique(np.round((a + np.linspace(0, 1, n)[:, None] * (b - a)) / spacing).astype(int), axis=0)
        line = line[np.all((line >= 0) & (line < shape), axis=1)]
        paths.append(line[mask[tuple(line.T)]])
    return mask, [p for p in paths if len(p)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.7, 0.9), (3.0, 0.8, 0.8)])
def test_radii_equal_the_distance_transform(seed, spacing):
    spacing = np.asarray(spacing)
    mask, paths = _tube_mask((40, 48, 44), spacing, seed)
    got, want = _radii_mm(mask, spacing, paths), _reference(mask, spacing, paths)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_radii_on_the_phantom_vessels(phantom_0_oblique):
    from flr.vesselgraph import _skeleton_branches

    g = phantom_0_oblique.labels.geometry
    spacing = np.asarray(g.spacing_zyx_mm)
    for label in (10, 11):
        mask = phantom_0_oblique.labels.array == label
        paths, _ = _skeleton_branches(mask, spacing)
        got, want = _radii_mm(mask, spacing, paths), _reference(mask, spacing, paths)
        assert sum(len(p) for p in paths) > 100
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_cylinder_s_radius():
    spacing = np.array([0.5, 0.5, 0.5])
    _, yy, xx = np.indices((60, 41, 41))
    r_mm = 6.0
    mask = np.hypot((yy - 20) * 0.5, (xx - 20) * 0.5) <= r_mm
    axis = np.stack([np.arange(5, 55), np.full(50, 20), np.full(50, 20)], axis=1)
    (radii,) = _radii_mm(mask, spacing, [axis])
    assert np.all(np.abs(radii - r_mm) <= 0.5 + 1e-9)  # within a voxel (0.5 mm) of the analytic radius
