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


def _writeable_view(shape):
    return np.zeros((shape[0] + 1, *shape[1:]), np.int16)[1:]


def _read_only_view_of_writeable(shape):
    view = np.zeros(shape, np.int16)[...]
    view.flags.writeable = False                 # the view is read-only, its base is not
    return view


def _fortran(shape):
    return np.asfortranarray(np.zeros(shape, np.int16))


@pytest.mark.parametrize("make", [
    lambda shape: np.zeros(shape, np.int16),
    _writeable_view,
    _read_only_view_of_writeable,
    _fortran,
], ids=["writeable", "writeable-view", "read-only-view-of-writeable-base", "fortran-order"])
def test_image_owns_a_read_only_copy_of_writeable_memory(make):
    shape = (2, 3, 4)
    arr = make(shape)
    base = arr if arr.base is None else arr.base
    img = Image(arr, Geometry(shape))
    assert not img.array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        img.array[0, 0, 0] = 1
    with pytest.raises(ValueError, match="WRITEABLE"):
        img.array.flags.writeable = True        # not even through its flag
    base[...] = 5                                # the caller's memory stays writeable and is not the image's
    assert not np.shares_memory(img.array, base)
    assert np.all(img.array == 0)
    assert img.array.flags.f_contiguous == arr.flags.f_contiguous   # the copy keeps the memory layout


def test_image_of_a_list_or_buffer_is_a_read_only_array():
    img = Image([[[1, 2], [3, 4]]], Geometry((1, 2, 2)))
    assert isinstance(img.array, np.ndarray) and not img.array.flags.writeable
    assert img.array.tolist() == [[[1, 2], [3, 4]]]
    buf = bytearray(np.arange(4, dtype=np.uint8).tobytes())
    img = Image(np.frombuffer(buf, np.uint8).reshape(1, 2, 2), Geometry((1, 2, 2)))
    buf[0] = 9                                   # writeable buffer under a writeable array: copied
    assert img.array[0, 0, 0] == 0


@pytest.mark.parametrize("make", [
    lambda: np.zeros((2, 3, 4), np.int16),
    lambda: np.zeros((4, 3, 4), np.int16)[1:3],
    lambda: np.frombuffer(bytes(24), np.uint8).reshape(2, 3, 4),
], ids=["owner", "view-of-read-only-owner", "view-of-bytes"])
def test_read_only_memory_is_kept_without_a_copy(make):
    arr = make()
    base = arr if arr.base is None else arr.base
    if isinstance(base, np.ndarray):
        base.flags.writeable = False
    arr.flags.writeable = False
    img = Image(arr, Geometry((2, 3, 4)))
    assert np.shares_memory(img.array, arr) and not img.array.flags.writeable
    again = img.with_array(img.array)            # re-wrapping an image's own array costs nothing either
    assert np.shares_memory(again.array, arr) and again.geometry == img.geometry


def test_memory_mapped_file_is_copied(tmp_path):
    """A read-only memmap is still a file another process (or another memmap) may change."""
    path = tmp_path / "volume.raw"
    np.zeros((2, 3, 4), np.int16).tofile(path)
    mapped = np.memmap(path, np.int16, mode="r", shape=(2, 3, 4))
    img = Image(mapped, Geometry((2, 3, 4)))
    assert type(img.array) is np.ndarray and not np.shares_memory(img.array, mapped)
    writer = np.memmap(path, np.int16, mode="r+", shape=(2, 3, 4))
    writer[...] = 3
    writer.flush()
    assert mapped[0, 0, 0] == 3 and np.all(img.array == 0)
    del mapped, writer


def test_with_array_copies_writeable_memory_too():
    img = Image(np.zeros((2, 3, 4), np.int16), Geometry((2, 3, 4)), source="ct.nii", metadata={"k": 1})
    new = np.ones((2, 3, 4), np.int16)
    derived = img.with_array(new)
    new[...] = 7
    assert np.all(derived.array == 1) and not derived.array.flags.writeable
    assert np.all(img.array == 0)
    assert derived.source == "ct.nii" and derived.metadata == {"k": 1}
    with pytest.raises(ValueError, match="geometry shape"):
        img.with_array(np.zeros((2, 3, 5)))


def test_image_checks_shape_and_copies_metadata():
    with pytest.raises(ValueError, match="geometry shape"):
        Image(np.zeros((2, 3, 5)), Geometry((2, 3, 4)))
    with pytest.raises(ValueError, match="3-D"):
        Image(np.zeros((3, 4)), Geometry((1, 3, 4)))
    meta = {"warnings": []}
    img = Image(np.zeros((1, 1, 1)), Geometry((1, 1, 1)), metadata=meta)
    meta["sha256"] = "abc"
    assert "sha256" not in img.metadata


def test_label_map_names_are_a_copy_and_array_is_owned():
    names = {1: "liver"}
    arr = np.ones((1, 2, 2), np.uint8)
    lm = LabelMap(arr, Geometry((1, 2, 2)), names=names)
    names[2] = "tumor"
    names[1] = "spleen"
    arr[...] = 2
    assert lm.names == {1: "liver"}
    assert np.all(lm.array == 1) and not lm.array.flags.writeable


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
@pytest.mark.parametrize("label_map", [False, True], ids=["image", "label-map"])
def test_nifti_reader_hands_its_decoded_array_over_without_a_copy(tmp_path, monkeypatch, name, label_map):
    """Reading costs the decode only: the reader marks its fresh array read-only, so Image keeps it."""
    import flr.image
    from flr.io import write_nifti
    from flr.io.nifti import read_nifti

    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_nifti(Image(data, Geometry((2, 3, 4))), tmp_path / name)
    copies = []
    real_copy = flr.image._copy
    monkeypatch.setattr(flr.image, "_copy", lambda array: copies.append(np.shape(array)) or real_copy(array))
    img = read_nifti(tmp_path / name, label_map=label_map)
    assert copies == []
    assert np.array_equal(img.array, data) and not img.array.flags.writeable
    # and the counter counts: a writeable array is copied once
    Image(np.zeros((2, 3, 4)), img.geometry)
    assert copies == [(2, 3, 4)]


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


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"spacing_mm": (0.0, 1.0, 1.0)}, "spacing_mm must be positive"),
    ({"spacing_mm": (1.0, float("nan"), 1.0)}, "spacing_mm must be finite"),
    ({"origin_mm": (1.0, 2.0)}, "origin_mm needs 3 values"),
    ({"direction": (1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}, "direction must be orthonormal"),
    ({"spacing_mm": ("a", 1.0, 1.0)}, "spacing_mm must be 3 numbers"),
])
def test_a_bad_grid_is_a_geometry_error_that_flr_reports_in_one_line(kwargs, match):
    from flr.errors import FlrError, GeometryError

    with pytest.raises(GeometryError, match=match) as info:
        Geometry((2, 2, 2), **kwargs)
    assert isinstance(info.value, FlrError) and isinstance(info.value, ValueError)


def _same_stats(a, b) -> None:
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(np.asarray(a.bbox_zyx), np.asarray(b.bbox_zyx))
    np.testing.assert_array_equal(a.face_counts, b.face_counts)


def test_label_stats_are_counted_once_and_are_those_of_the_array(tmp_path):
    """A map read from a file carries the counts its reading made; they equal a new pass over its array, and a
    map derived from it (another array) counts its own."""
    import dataclasses

    import nibabel as nib

    from flr.io import read_label_map
    from flr.kernels import label_stats
    from flr.kernels.reference import label_stats_reference

    rng = np.random.default_rng(4)
    arr = rng.integers(0, 4, (9, 11, 13)).astype(np.uint8)
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(arr.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.0, 1.0])), path)
    lm = read_label_map(path, {1: "liver", 2: "tumor", 3: "portal_vein"})
    remembered = lm.label_stats()
    assert lm.label_stats() is remembered                      # no second pass
    _same_stats(remembered, label_stats(lm.array))             # the counts of the map's own values
    ref = label_stats_reference(lm.array)
    np.testing.assert_array_equal(remembered.counts, ref.counts)
    other = dataclasses.replace(lm, array=np.where(lm.array == 3, 0, lm.array).astype(np.uint8))
    assert 3 not in other.label_stats().labels.tolist() and 3 in remembered.labels.tolist()
