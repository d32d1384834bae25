"""NIfTI and NRRD readers: sform/qform choice, RAS->LPS, oblique affines, scaling, front door."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from flr.errors import InputFileError, UnsupportedFormatError
from flr.image import Geometry, Image
from flr.io import detect_format, read_image, read_label_map, write_nifti


def rot(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.deg2rad(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def ras_affine(direction_ras, spacing, origin_ras):
    a = np.eye(4)
    a[:3, :3] = direction_ras * np.asarray(spacing)[None, :]
    a[:3, 3] = origin_ras
    return a


def test_sform_wins_over_qform_and_ras_becomes_lps(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # (i, j, k)
    sform = ras_affine(np.eye(3), (0.8, 0.9, 2.5), (10.0, 20.0, 30.0))
    qform = ras_affine(np.eye(3), (5.0, 5.0, 5.0), (0.0, 0.0, 0.0))
    img = nib.Nifti1Image(data, sform)
    img.set_sform(sform, code=2)
    img.set_qform(qform, code=1)
    path = tmp_path / "a.nii.gz"
    nib.save(img, path)
    out = read_image(path)
    assert out.geometry.spacing_mm == pytest.approx((0.8, 0.9, 2.5))
    assert out.geometry.origin_mm == pytest.approx((-10.0, -20.0, 30.0))  # RAS (10, 20) -> LPS (-10, -20)
    np.testing.assert_allclose(out.geometry.direction_matrix, np.diag([-1.0, -1.0, 1.0]))
    assert out.array.shape == (6, 5, 4)
    assert out.array[2, 3, 1] == data[1, 3, 2]  # (z, y, x) <- (i, j, k)
    assert out.metadata["geometry_from"] == "sform"
    assert len(out.metadata["sha256"]) == 64


def test_qform_used_when_sform_code_is_zero(tmp_path):
    data = np.zeros((3, 3, 3), np.int16)
    img = nib.Nifti1Image(data, None)
    img.set_qform(ras_affine(np.eye(3), (2.0, 2.0, 3.0), (1.0, 2.0, 3.0)), code=1)
    img.set_sform(np.eye(4), code=0)
    nib.save(img, tmp_path / "q.nii")
    out = read_image(tmp_path / "q.nii")
    assert out.metadata["geometry_from"] == "qform"
    assert out.geometry.spacing_mm == pytest.approx((2.0, 2.0, 3.0))
    assert out.geometry.origin_mm == pytest.approx((-1.0, -2.0, 3.0))


def test_oblique_affine_matches_simpleitk(tmp_path):
    d = rot([1, 0.3, 0.2], 25)
    affine = ras_affine(d, (0.7, 0.9, 2.0), (-50.0, 12.5, 80.0))
    data = np.random.default_rng(0).integers(-1000, 1000, (7, 8, 9)).astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    path = tmp_path / "obl.nii.gz"
    nib.save(img, path)
    ours = read_image(path)
    theirs = sitk.ReadImage(str(path))
    np.testing.assert_allclose(ours.geometry.spacing_mm, theirs.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(ours.geometry.origin_mm, theirs.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.geometry.direction, theirs.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(ours.array, sitk.GetArrayFromImage(theirs))


def test_ct_intensity_scaling(tmp_path):
    raw = np.array([[[0, 1000, 2000]]], dtype=np.uint16)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, tmp_path / "ct.nii")
    out = read_image(tmp_path / "ct.nii")
    assert out.array.dtype == np.int16
    np.testing.assert_array_equal(out.array.ravel(), [-1024, -24, 976])
    img.header.set_slope_inter(0.5, 0.25)
    nib.save(img, tmp_path / "ct2.nii")
    out2 = read_image(tmp_path / "ct2.nii")
    np.testing.assert_allclose(out2.array.ravel(), [0.25, 500.25, 1000.25])


def test_write_nifti_round_trip_oblique(tmp_path):
    d = rot([0.2, 1, 0.4], 17)
    g = Geometry((5, 6, 7), (0.6, 0.7, 3.0), (4.0, -5.0, 6.0), tuple(d.ravel()))
    arr = np.random.default_rng(1).integers(0, 9, g.shape_zyx).astype(np.uint8)
    path = write_nifti(Image(arr, g), tmp_path / "rt.nii.gz")
    back = read_image(path)
    assert back.geometry.mismatch(g, spacing_tol_mm=1e-5, origin_tol_mm=1e-4, direction_tol=1e-6) is None
    np.testing.assert_array_equal(back.array, arr)
    assert not list(tmp_path.glob(".*"))  # no temp file left


def test_nrrd_lps_geometry(tmp_path):
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1:3, 2:4, 3:5] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.6, 1.5))
    img.SetOrigin((1.0, 2.0, 3.0))
    img.SetDirection(tuple(rot([0, 0, 1], 30).ravel()))
    sitk.WriteImage(img, str(tmp_path / "m.nrrd"))
    out = read_image(tmp_path / "m.nrrd")
    assert out.geometry.spacing_mm == pytest.approx((0.5, 0.6, 1.5))
    assert out.geometry.origin_mm == pytest.approx((1.0, 2.0, 3.0))
    np.testing.assert_allclose(out.geometry.direction_matrix, rot([0, 0, 1], 30), atol=1e-6)
    np.testing.assert_array_equal(out.array, arr)


def test_binary_mask_named_by_file_name(tmp_path):
    arr = np.zeros((3, 4, 5), np.uint8)
    arr[1, 1:3, 1:4] = 1
    write_nifti(Image(arr, Geometry(arr.shape)), tmp_path / "liver.nii.gz")
    lm = read_label_map(tmp_path / "liver.nii.gz")
    assert lm.names == {1: "liver"}
    assert lm.metadata["labels_present"] == [1]


def test_detect_format_by_content_not_extension(tmp_path):
    arr = np.zeros((2, 2, 2), np.int16)
    write_nifti(Image(arr, Geometry(arr.shape)), tmp_path / "x.nii")
    (tmp_path / "renamed.dat").write_bytes((tmp_path / "x.nii").read_bytes())
    assert detect_format(tmp_path / "renamed.dat") == "nifti"
    (tmp_path / "renamed.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match=r"renamed\.txt: not a NIfTI, NRRD or DICOM"):
        detect_format(tmp_path / "renamed.txt")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("patient notes\n"), "not a valid NIfTI"),
        (lambda p: p.write_bytes(b""), "file is empty"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, match):
    path = tmp_path / "bad.nii"
    make(path)
    with pytest.raises(InputFileError, match=match) as info:
        read_image(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_truncated_gz_is_refused(tmp_path):
    arr = np.random.default_rng(2).integers(0, 3, (20, 30, 40)).astype(np.uint8)
    write_nifti(Image(arr, Geometry(arr.shape)), tmp_path / "full.nii.gz")
    blob = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputFileError, match=r"cut\.nii\.gz: .*(truncated|corrupt|readable)"):
        read_label_map(tmp_path / "cut.nii.gz", "lits")
    assert gzip.decompress(blob)  # the original is intact
