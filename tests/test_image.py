"""Geometry and image types: immutability, physical mapping, grid comparison."""

from __future__ import annotations

import numpy as np
import pytest

from flr.errors import GeometryMismatchError
from flr.image import Geometry, Image, LabelMap, mm3_to_ml


def rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.deg2rad(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def test_voxel_volume_and_unit_conversion():
    g = Geometry((10, 20, 30), (0.5, 0.8, 2.5))
    assert g.voxel_volume_mm3 == pytest.approx(1.0)
    assert g.voxel_volume_ml == pytest.approx(0.001)
    assert mm3_to_ml(1500.0) == 1.5


def test_index_to_physical_on_oblique_grid():
    d = rotation([1, 2, 3], 30)
    g = Geometry((5, 6, 7), (0.7, 0.9, 2.0), (10.0, -20.0, 30.0), tuple(d.ravel()))
    p = g.index_to_lps_mm((2, 3, 4))  # z=2, y=3, x=4
    expected = np.array([10.0, -20.0, 30.0]) + d @ np.array([4 * 0.7, 3 * 0.9, 2 * 2.0])
    np.testing.assert_allclose(p, expected, atol=1e-12)
    assert g.is_oblique()
    assert not Geometry((1, 1, 1)).is_oblique()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape_zyx": (0, 2, 2)}, "positive sizes"),
        ({"shape_zyx": (2, 2, 2), "spacing_mm": (1, 0, 1)}, "positive"),
        ({"shape_zyx": (2, 2, 2), "spacing_mm": (1, float("nan"), 1)}, "finite"),
        ({"shape_zyx": (2, 2, 2), "direction": (1, 1, 0, 0, 1, 0, 0, 0, 1)}, "orthonormal"),
    ],
)
def test_geometry_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Geometry(**kwargs)


def test_image_is_immutable_and_checks_shape():
    arr = np.zeros((2, 3, 4), np.int16)
    img = Image(arr, Geometry((2, 3, 4)))
    with pytest.raises(ValueError, match="read-only"):
        img.array[0, 0, 0] = 1
    arr[0, 0, 0] = 5  # the caller's array stays writeable
    with pytest.raises(ValueError, match="geometry shape"):
        Image(np.zeros((2, 3, 5)), Geometry((2, 3, 4)))


def test_label_map_requires_integers_and_finds_ids():
    lm = LabelMap(np.zeros((1, 2, 2), np.uint8), Geometry((1, 2, 2)), names={1: "tumor", 3: "tumor", 2: "liver"})
    assert lm.ids_of("tumor") == [1, 3]
    with pytest.raises(ValueError, match="integer"):
        LabelMap(np.zeros((1, 2, 2), np.float32), Geometry((1, 2, 2)))


def test_same_grid_tolerances_and_mismatch_message():
    a = Geometry((4, 5, 6), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0))
    b = Geometry((4, 5, 6), (1.0, 1.0, 2.5 + 5e-5), (5e-4, 0.0, 0.0))
    assert a.same_grid(b)
    assert not a.same_grid(b, spacing_tol_mm=1e-6)
    c = Geometry((4, 5, 6), (1.0, 1.0, 2.5), (0.0, 3.0, 0.0))
    with pytest.raises(GeometryMismatchError, match=r"origin differs by 3 mm.*ct\.nii.*origin=\(0\.000, 3\.000"):
        a.require_same_grid(c, this="ct.nii", that="mask.nii")
    d = Geometry((4, 5, 7), (1.0, 1.0, 2.5))
    assert "shape" in a.mismatch(d)
    e = Geometry((4, 5, 6), (1.0, 1.0, 2.5), direction=tuple(rotation([0, 0, 1], 1).ravel()))
    assert "direction" in a.mismatch(e)
