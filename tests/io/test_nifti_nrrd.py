"""NIfTI and NRRD readers: sform/qform choice, RAS->LPS, oblique affines, scaling, front door."""

from __future__ import annotations

import bz2
import gzip
import io

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from flr.errors import InputFileError, UnsupportedFormatError
from flr.image import Geometry, Image
from flr.io import detect_format, read_image, read_label_map, write_nifti
from flr.io.nrrd import read_nrrd_volume


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
        (lambda _p: None, "no such file"),
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


# ----------------------------------------------------------------------------------------------
# NRRD: the one pynrrd path (flr.io.nrrd) against SimpleITK and against the bytes written
# ----------------------------------------------------------------------------------------------
def _nrrd_bytes(data_zyx: np.ndarray, *, space: str, directions: np.ndarray, origin=(0.0, 0.0, 0.0),
                encoding: str = "raw", data_file: str | None = None) -> tuple[bytes, bytes]:
    """(header, payload) of a NRRD holding ``data_zyx`` (NRRD's first axis, x, fastest); ``directions``
    rows are the space directions of x, y, z in the file's ``space``."""
    types = {np.dtype("<i2"): ("short", "little"), np.dtype(">i2"): ("short", "big"),
             np.dtype("u1"): ("uchar", "little")}
    type_name, endian = types[data_zyx.dtype]
    nz, ny, nx = data_zyx.shape
    vec = " ".join("(" + ",".join(repr(float(v)) for v in row) + ")" for row in directions)
    lines = ["NRRD0004", f"type: {type_name}", "dimension: 3", f"sizes: {nx} {ny} {nz}", f"space: {space}",
             f"space directions: {vec}", "kinds: domain domain domain", f"endian: {endian}", f"encoding: {encoding}",
             "space origin: (" + ",".join(repr(float(v)) for v in origin) + ")"]
    if data_file is not None:
        lines.append(f"data file: {data_file}")
    raw = data_zyx.tobytes()
    payload = {"raw": raw, "gzip": gzip.compress(raw), "bzip2": bz2.compress(raw)}[encoding]
    return ("\n".join(lines) + "\n" + ("" if data_file else "\n")).encode(), payload


OBLIQUE_NRRD = rot([0.3, 1, 0.2], 20) * np.array([0.7, 0.9, 2.5])[None, :]  # columns: x, y, z steps (mm)


@pytest.mark.parametrize(
    ("space", "encoding", "detached", "flip"),
    [
        ("right-anterior-superior", "gzip", False, (-1, -1, 1)),
        ("RAS", "raw", True, (-1, -1, 1)),
        ("left-anterior-superior", "raw", False, (1, -1, 1)),
        ("left-posterior-superior", "gzip", True, (1, 1, 1)),
    ],
)
def test_nrrd_spaces_and_encodings_match_simpleitk(tmp_path, space, encoding, detached, flip):
    data = np.random.default_rng(7).integers(-1000, 1000, (4, 5, 6)).astype(">i2" if detached else "<i2")
    header, payload = _nrrd_bytes(data, space=space, directions=OBLIQUE_NRRD.T, origin=(10.0, -20.0, 30.5),
                                  encoding=encoding, data_file="m.raw" if detached else None)
    path = tmp_path / ("m.nhdr" if detached else "m.nrrd")
    if detached:
        path.write_bytes(header)
        (tmp_path / "m.raw").write_bytes(payload)
    else:
        path.write_bytes(header + payload)
    ours = read_image(path)
    theirs = sitk.ReadImage(str(path))  # ITK's NRRD reader: LPS, (x, y, z)
    np.testing.assert_array_equal(ours.array, data)
    np.testing.assert_array_equal(ours.array, sitk.GetArrayFromImage(theirs))
    assert ours.array.dtype == np.int16 and ours.array.dtype.isnative
    np.testing.assert_allclose(ours.geometry.spacing_mm, theirs.GetSpacing(), atol=1e-9)
    np.testing.assert_allclose(ours.geometry.origin_mm, theirs.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(ours.geometry.direction, theirs.GetDirection(), atol=1e-9)
    # and against the header itself: the file's space (x, y, z) signs applied to each axis step
    np.testing.assert_allclose(ours.geometry.affine_lps[:3, :3], np.diag(flip) @ OBLIQUE_NRRD, atol=1e-12)
    np.testing.assert_allclose(ours.geometry.origin_mm, np.multiply(flip, (10.0, -20.0, 30.5)))


def test_nrrd_bzip2_is_read(tmp_path):
    # ITK's NrrdIO has no bzip2: the truth is the array written
    data = np.arange(60, dtype="<i2").reshape(3, 4, 5)
    header, payload = _nrrd_bytes(data, space="LPS", directions=np.diag([0.5, 0.6, 2.0]), encoding="bzip2")
    (tmp_path / "b.nrrd").write_bytes(header + payload)
    out = read_image(tmp_path / "b.nrrd")
    np.testing.assert_array_equal(out.array, data)
    assert out.geometry.spacing_mm == pytest.approx((0.5, 0.6, 2.0))


def test_real_nrrd_files_match_simpleitk(shared_data):
    # every NRRD of ../shared/data: dcmqi, pyradiomics, slicerio (incl. a 4-D layered .seg.nrrd)
    paths = sorted(shared_data.glob("*/*.nrrd"))
    assert len(paths) >= 8
    for path in paths:
        volume = read_nrrd_volume(path)
        theirs = sitk.ReadImage(str(path))
        expected = sitk.GetArrayFromImage(theirs)  # (z, y, x) or (z, y, x, components)
        got = volume.array if expected.ndim == 4 else volume.array[..., 0]
        assert got.dtype == expected.dtype, path.name
        np.testing.assert_array_equal(got, expected, err_msg=path.name)
        np.testing.assert_allclose(volume.geometry.spacing_mm, theirs.GetSpacing(), atol=1e-9, err_msg=path.name)
        np.testing.assert_allclose(volume.geometry.origin_mm, theirs.GetOrigin(), atol=1e-9, err_msg=path.name)
        np.testing.assert_allclose(volume.geometry.direction, theirs.GetDirection(), atol=1e-9, err_msg=path.name)


def _nrrd_text(lines: list[str], payload: bytes = bytes(24)) -> bytes:
    return ("\n".join(["NRRD0004", "type: uchar", *lines]) + "\n\n").encode() + payload


SIZES = ["dimension: 3", "sizes: 2 3 4"]
DIRS = "space directions: (1,0,0) (0,1,0) (0,0,1)"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_nrrd_text([*SIZES, "space: LPS", DIRS, "encoding: gzip"], gzip.compress(bytes(24))[:12]),
         "not a readable NRRD"),
        (_nrrd_text([*SIZES, "space: LPS", DIRS, "encoding: raw"], bytes(10)), "not a readable NRRD"),
        (_nrrd_text(["this line is not a field"]), "not a readable NRRD"),
        (_nrrd_text([*SIZES, "space: LPS", "space directions: (1,0,0) (0,x,0) (0,0,1)"]), "not a readable NRRD"),
        (_nrrd_text([*SIZES, "spacings: 1 1 1", "encoding: raw"]), "space 'missing' cannot be placed in patient"),
        (_nrrd_text([*SIZES, "space: scanner-xyz", DIRS, "encoding: raw"]), "'scanner-xyz' cannot be placed"),
        (_nrrd_text(["dimension: 2", "sizes: 4 6", "space: LPS", "space directions: (1,0,0) (0,1,0)",
                     "encoding: raw"]),
         "expected three spatial axes"),
        (_nrrd_text([*SIZES, "space: LPS", "space directions: (1,0,0) (1,1,0) (0,0,1)", "encoding: raw"]),
         "cannot be an image grid"),
        (_nrrd_text([*SIZES, "space: LPS", DIRS, "encoding: raw", "data file: gone.raw"]), "not a readable NRRD"),
    ],
    ids=["truncated-gzip", "short-raw", "bad-line", "bad-vector", "no-space", "scanner-xyz", "2-d", "sheared",
         "missing-data-file"],
)
def test_bad_nrrd_files_give_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.nrrd"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=match) as info:
        read_image(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_layered_nrrd_is_refused_as_an_image(tmp_path):
    header = ("NRRD0004\ntype: uchar\ndimension: 4\nsizes: 2 3 4 5\nspace: LPS\n"
              "space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nencoding: raw\n\n")
    (tmp_path / "layers.nrrd").write_bytes(header.encode() + bytes(120))
    with pytest.raises(InputFileError, match="2 components per voxel"):
        read_image(tmp_path / "layers.nrrd")
    assert read_nrrd_volume(tmp_path / "layers.nrrd").array.shape == (5, 4, 3, 2)  # (z, y, x, layer)


# ----------------------------------------------------------------------------------------------
# issue 10: headers checked as stored, before any voxel is read
# ----------------------------------------------------------------------------------------------
def _patched(path, edit):
    """Overwrite header fields of a saved .nii in its bytes (nibabel would recompute them on save)."""
    blob = path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(blob[:348]), check=False)
    edit(header)
    path.write_bytes(header.binaryblock + blob[348:])
    return path


def _mask_nifti(path, qform=None, codes=(1, 1)):
    data = np.zeros((6, 5, 4), np.uint8)
    data[2:4, 1:3, 1:3] = 1
    affine = ras_affine(rot([0, 0, 1], 10), (0.8, 0.9, 2.5), (10.0, -20.0, 30.0))
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=codes[0])
    img.set_qform(affine if qform is None else qform, code=codes[1])
    nib.save(img, path)
    return path


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: h["dim"].__setitem__(slice(1, 4), 30000),
         r"declares 30000x30000x30000 voxels of uint8 \(27 TB with the header\) but m\.nii holds 472 bytes"),
        (lambda h: h["pixdim"].__setitem__(1, 0.0), r"pixdim\[1\] = 0\.0: a voxel size must be a finite number > 0"),
        (lambda h: h["pixdim"].__setitem__(2, -0.9), r"pixdim\[2\] = -0\.9"),
        (lambda h: h["pixdim"].__setitem__(3, np.nan), r"pixdim\[3\] = nan"),
        (lambda h: h["dim"].__setitem__(0, 9), r"dim\[0\] = 9: the number of dimensions must be 1 to 7"),
        (lambda h: h["dim"].__setitem__(2, 0), r"image size \(6, 0, 4\) has a dimension below 1"),
        (lambda h: h.__setitem__("datatype", 999), r"unknown NIfTI datatype code 999"),
        (lambda h: h.__setitem__("vox_offset", np.inf), r"vox_offset = inf is not a byte offset"),
        (lambda h: h.__setitem__("scl_slope", np.inf), r"scl_slope inf, scl_inter 0\.0: an intensity scaling must be "
                                                       "finite"),
    ],
    ids=["30000-cubed", "pixdim-zero", "pixdim-negative", "pixdim-nan", "dim0", "dim-zero", "datatype",
         "vox-offset", "slope-inf"],
)
def test_corrupt_headers_are_refused_before_reading(tmp_path, monkeypatch, edit, match):
    path = _patched(_mask_nifti(tmp_path / "m.nii"), edit)
    monkeypatch.setattr(nib.arrayproxy.ArrayProxy, "get_unscaled",
                        lambda _self: pytest.fail("voxels read before the header was checked"), raising=True)
    with pytest.raises(InputFileError, match=match) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_sform_and_qform_agreeing_within_tolerance_say_nothing(tmp_path):
    out = read_image(_mask_nifti(tmp_path / "m.nii"))  # float32 quaternion vs float32 sform: micrometres apart
    assert out.metadata["warnings"] == []
    write_nifti(out, tmp_path / "again.nii.gz")
    assert read_image(tmp_path / "again.nii.gz").metadata["warnings"] == []


@pytest.mark.parametrize(
    ("qform", "difference"),
    [
        (ras_affine(rot([0, 0, 1], 10), (0.8, 0.9, 2.5), (10.0, -20.0, 30.002)), "origin by 0.002 mm"),
        (ras_affine(rot([0, 0, 1], 10.05), (0.8, 0.9, 2.5), (10.0, -20.0, 30.0)), "direction cosines by 0.000859"),
        (ras_affine(rot([0, 0, 1], 10), (0.8, 0.9, 2.0), (10.0, -20.0, 30.0)), "voxel size by 0.5 mm"),
    ],
    ids=["origin", "direction", "spacing"],
)
def test_sform_and_qform_that_disagree_warn_and_the_sform_wins(tmp_path, qform, difference):
    out = read_image(_mask_nifti(tmp_path / "m.nii", qform=qform))
    (warning,) = out.metadata["warnings"]
    assert warning.startswith("m.nii: sform (code 1) and qform (code 1) describe different grids (")
    assert difference in warning and warning.endswith("flr used the sform")
    assert out.geometry.spacing_mm == pytest.approx((0.8, 0.9, 2.5))
    assert out.geometry.origin_mm == pytest.approx((-10.0, 20.0, 30.0))


def test_distances_in_micrometres_are_converted_as_itk_does(tmp_path):
    path = _mask_nifti(tmp_path / "m.nii")
    img = nib.load(path)
    img.header.set_xyzt_units("micron")
    nib.save(img, path)
    out = read_image(path)
    theirs = sitk.ReadImage(str(path))
    np.testing.assert_allclose(out.geometry.spacing_mm, theirs.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(out.geometry.origin_mm, theirs.GetOrigin(), rtol=1e-6)
    assert out.geometry.spacing_mm == pytest.approx((0.0008, 0.0009, 0.0025))
    assert out.metadata["warnings"] == [
        "m.nii: the header gives distances in micrometres (xyzt_units); converted to mm"]


@pytest.mark.parametrize(
    ("dtype", "match"),
    [(np.complex64, r"NIfTI datatype 32 \(complex64\) is complex"),
     ([("R", "u1"), ("G", "u1"), ("B", "u1")], r"NIfTI datatype 128 \(RGB\) stores 3 values per voxel")],
    ids=["complex", "rgb"],
)
def test_non_scalar_voxels_are_refused_for_ct_and_labels(tmp_path, dtype, match):
    path = tmp_path / "m.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), dtype=dtype), np.eye(4)), path)
    for read in (read_image, lambda p: read_label_map(p, "lits")):
        with pytest.raises(InputFileError, match=match):
            read(path)


def test_float_labels_must_be_whole_numbers(tmp_path):
    whole = np.zeros((3, 4, 5))
    whole[1, 1:3, 1:4] = 1.0  # float64 0/1, as MSD Task08 stores its vessel masks
    write_nifti(Image(whole, Geometry(whole.shape)), tmp_path / "vessel.nii.gz")
    lm = read_label_map(tmp_path / "vessel.nii.gz")
    assert lm.array.dtype == np.uint8 and int(lm.array.sum()) == 6
    fraction = whole.copy()
    fraction[1, 1, 1] = 0.25
    write_nifti(Image(fraction, Geometry(whole.shape)), tmp_path / "fraction.nii.gz")
    with pytest.raises(InputFileError, match=r"non-integer values \(dtype float64, e\.g\. 0\.25\)"):
        read_label_map(tmp_path / "fraction.nii.gz", "lits")


@pytest.mark.parametrize(
    ("encoding", "payload", "match"),
    [
        ("raw", bytes(30), r"declares sizes 2 x 3 x 4 of type 'uchar' \(24 bytes of data\) but the data hold 30 bytes; "
                           "the header does not match the data"),
        ("gzip", gzip.compress(bytes(10)), r"\(24 bytes of data\) but the data inflate to 10 bytes; the file is "
                                           "truncated"),
        ("bzip2", bz2.compress(bytes(10**7)), r"but the data inflate to more than 24 bytes"),
        ("gzip", gzip.compress(bytes(24))[:10] + b"\xff" + gzip.compress(bytes(24))[11:],
         r"its gzip data is corrupt \(error: Error -3 while decompressing data: invalid block type\)"),
    ],
    ids=["raw-too-long", "gzip-short", "bzip2-bomb", "gzip-corrupt"],
)
def test_nrrd_data_size_is_checked_before_pynrrd_reads_it(tmp_path, monkeypatch, encoding, payload, match):
    import nrrd

    path = tmp_path / "bad.nrrd"
    path.write_bytes(_nrrd_text([*SIZES, "space: LPS", DIRS, f"encoding: {encoding}"], payload))
    monkeypatch.setattr(nrrd, "read", lambda *_a, **_k: pytest.fail("pynrrd read the data of a bad file"))
    with pytest.raises(InputFileError, match=match):
        read_image(path)
