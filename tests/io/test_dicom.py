"""DICOM series reader and writer (flr.io.dicom).

Synthetic series are written by :func:`write_dicom_series` from seeded phantoms; real public files
come from ``../shared/data`` (see its SOURCES.md for source and licence of each folder) and skip
cleanly when that folder is absent.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from flr.errors import DicomSeriesError, InputFileError, UnsupportedFormatError
from flr.image import Geometry, Image
from flr.io import read_image
from flr.io.dicom import check_pixel_data, read_dicom, write_dicom_series

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

METADATA_KEYS = {
    "series_instance_uid",
    "series_description",
    "study_date",
    "modality",
    "manufacturer",
    "n_slices",
    "transfer_syntax_uids",
    "slice_thickness_mm",
    "files",
    "resampled",
}


def rot(axis, deg):
    """Rotation matrix about ``axis`` by ``deg`` degrees (Rodrigues)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.deg2rad(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


OBLIQUE = rot((0, 0, 1), 20) @ rot((1, 0, 0), 10)


def phantom(shape=(24, 32, 40), spacing=(0.7, 0.8, 2.5), direction=OBLIQUE, origin=(-100.25, 50.5, 30.125), seed=0):
    """Seeded CT-like image of integer HU in [-1024, 3000] on an (optionally oblique) grid."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1024, 3001, size=shape).astype(np.int16)
    geometry = Geometry(shape, spacing, origin, tuple(np.asarray(direction, float).ravel()))
    return Image(array, geometry)


def assert_same_geometry(got: Geometry, want: Geometry, tol_mm=1e-4):
    assert got.shape_zyx == want.shape_zyx
    np.testing.assert_allclose(got.spacing_mm, want.spacing_mm, atol=tol_mm)
    np.testing.assert_allclose(got.origin_mm, want.origin_mm, atol=tol_mm)
    np.testing.assert_allclose(got.direction, want.direction, atol=1e-6)


def edit(path: Path, **values):
    ds = pydicom.dcmread(path)
    for key, value in values.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def oblique() -> Image:
    return phantom()


@pytest.fixture(scope="module")
def oblique_series(tmp_path_factory, oblique) -> Path:
    folder = tmp_path_factory.mktemp("oblique")
    write_dicom_series(oblique, folder, series_description="oblique phantom")
    return folder


@pytest.fixture
def small_series(tmp_path) -> tuple[Image, list[Path]]:
    """A small axial series (5 slices) written fresh for each test that damages it."""
    image = phantom((5, 8, 10), (0.5, 0.6, 2.0), np.eye(3), (0.0, 0.0, 0.0), seed=3)
    return image, write_dicom_series(image, tmp_path / "series")


# --- round trips -------------------------------------------------------------------------------
def test_oblique_anisotropic_round_trip(oblique, oblique_series):
    got = read_dicom(oblique_series)
    assert got.array.dtype == np.int16
    np.testing.assert_array_equal(got.array, oblique.array)
    assert_same_geometry(got.geometry, oblique.geometry)
    assert got.geometry.is_oblique()
    assert set(got.metadata) >= METADATA_KEYS
    meta = got.metadata
    assert meta["n_slices"] == 24
    assert meta["modality"] == "CT"
    assert meta["series_description"] == "oblique phantom"
    assert meta["transfer_syntax_uids"] == [pydicom.uid.ExplicitVRLittleEndian]
    assert meta["slice_thickness_mm"] == pytest.approx(2.5)
    assert meta["resampled"] is None
    assert meta["files"] == sorted(str(p) for p in oblique_series.iterdir())
    assert got.source == str(oblique_series)


def test_written_headers_follow_the_geometry(oblique, oblique_series):
    files = sorted(oblique_series.iterdir())
    ds = pydicom.dcmread(files[1])
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.8, 0.7])  # [row spacing (y), column (x)]
    assert float(ds.SliceThickness) == pytest.approx(2.5)
    assert float(ds.SpacingBetweenSlices) == pytest.approx(2.5)
    d = oblique.geometry.direction_matrix
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient], [*d[:, 0], *d[:, 1]], atol=1e-9)
    expected_ipp = np.asarray(oblique.origin_mm) + 2.5 * d[:, 2]  # slice 1
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected_ipp, atol=1e-6)
    assert int(ds.InstanceNumber) == 2
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID


def test_shuffled_names_are_ordered_by_position(tmp_path, oblique):
    paths = write_dicom_series(oblique, tmp_path, shuffle_names=True, seed=7)
    assert all(len(p.name) == 16 and p.suffix == "" for p in paths)
    assert [p.name for p in paths] != sorted(p.name for p in paths)
    numbers = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in paths]
    assert sorted(numbers) == list(range(1, 25)) and numbers != sorted(numbers)  # InstanceNumber no help either
    got = read_dicom(tmp_path)
    np.testing.assert_array_equal(got.array, oblique.array)
    assert_same_geometry(got.geometry, oblique.geometry)


@pytest.mark.parametrize(
    ("transfer_syntax", "uid"),
    [("jpeg2000-lossless", "1.2.840.10008.1.2.4.90"), ("jpeg-lossless", "1.2.840.10008.1.2.4.70")],
)
def test_compressed_series_load_identical(tmp_path, oblique, oblique_series, transfer_syntax, uid):
    paths = write_dicom_series(oblique, tmp_path, transfer_syntax=transfer_syntax)
    assert pydicom.dcmread(paths[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == uid
    got = read_dicom(tmp_path)
    plain = read_dicom(oblique_series)
    assert got.metadata["transfer_syntax_uids"] == [uid]
    assert got.array.dtype == plain.array.dtype
    np.testing.assert_array_equal(got.array, plain.array)
    assert got.geometry == plain.geometry


def test_nested_folders_and_stray_files(tmp_path):
    image = phantom((6, 8, 10), seed=1)
    write_dicom_series(image, tmp_path / "patient" / "study" / "series", shuffle_names=True)
    (tmp_path / "README.txt").write_text("not DICOM\n")
    (tmp_path / "patient" / "DICOMDIR-notes").write_bytes(b"\x00" * 200)
    (tmp_path / "patient" / "study" / "empty").mkdir()
    got = read_dicom(tmp_path)
    np.testing.assert_array_equal(got.array, image.array)
    assert len(got.metadata["files"]) == 6
    assert all("/patient/study/series/" in f for f in got.metadata["files"])


def test_preamble_less_files_are_found(tmp_path, small_series):
    image, paths = small_series
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.preamble = None
        del ds.file_meta
        pydicom.dcmwrite(raw / f"IMG{i}", ds, implicit_vr=True, little_endian=True)
    assert (raw / "IMG0").read_bytes()[:2] == b"\x08\x00"
    got = read_dicom(raw)
    np.testing.assert_array_equal(got.array, image.array)
    assert got.metadata["transfer_syntax_uids"] == [pydicom.uid.ImplicitVRLittleEndian]


def test_rescale_decides_the_dtype(tmp_path):
    image = phantom((3, 4, 5), seed=2)
    exact = image.with_array(image.array.astype(np.float64) * 2)  # even HU: stored exactly with slope 2
    write_dicom_series(exact, tmp_path / "s2", rescale_slope=2.0, rescale_intercept=-2048.0)
    got = read_dicom(tmp_path / "s2")
    assert got.array.dtype == np.int16
    np.testing.assert_array_equal(got.array, exact.array)

    halves = image.with_array(image.array / 2.0)
    write_dicom_series(halves, tmp_path / "half", rescale_slope=0.5, rescale_intercept=-512.0)
    got = read_dicom(tmp_path / "half")
    assert got.array.dtype == np.float32
    np.testing.assert_array_equal(got.array, halves.array)

    big = image.with_array(np.full(image.array.shape, 40000, np.int32))  # beyond int16 after rescale
    write_dicom_series(big, tmp_path / "big", rescale_intercept=0.0)
    got = read_dicom(tmp_path / "big")
    assert got.array.dtype == np.float32
    assert np.all(got.array == 40000)


def test_patient_identifiers_never_reach_metadata(tmp_path):
    image = phantom((3, 4, 5), seed=4)
    paths = write_dicom_series(image, tmp_path, patient_name="Doe^Jane", patient_id="PID-98765")
    ds = pydicom.dcmread(paths[0])
    assert ds.PatientName == "Doe^Jane" and ds.PatientID == "PID-98765"  # planted in the files
    meta = repr(read_dicom(tmp_path).metadata)
    # the whole ID: its digits alone may occur by chance in the random UIDs that metadata now carries
    assert "Doe" not in meta and "Jane" not in meta and "PID-98765" not in meta


def test_metadata_keeps_the_identities_in_slice_order(tmp_path):
    # shuffled file names and InstanceNumbers: the order must come from the positions
    image = phantom((5, 6, 7), seed=11)
    paths = write_dicom_series(image, tmp_path, study_instance_uid="1.2.826.0.1.1", series_instance_uid="1.2.826.0.1.2",
                               frame_of_reference_uid="1.2.826.0.1.3", shuffle_names=True, seed=3)
    meta = read_dicom(tmp_path).metadata
    truth = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]  # the writer returns z order
    assert meta["sop_instance_uids"] == [ds.SOPInstanceUID for ds in truth]
    assert len(set(meta["sop_instance_uids"])) == 5
    positions = [[float(v) for v in ds.ImagePositionPatient] for ds in truth]
    np.testing.assert_allclose(meta["image_positions_mm"], positions)
    assert (meta["study_instance_uid"], meta["series_instance_uid"], meta["frame_of_reference_uid"]) == (
        "1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.3")
    assert meta["sop_class_uid"] == pydicom.uid.CTImageStorage


# --- several series ----------------------------------------------------------------------------
def test_two_series_in_one_folder(tmp_path):
    a = phantom((4, 6, 7), seed=5)
    b = phantom((3, 6, 7), seed=6)
    uid_a, uid_b = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    write_dicom_series(a, tmp_path, series_description="arterial", series_instance_uid=uid_a)
    write_dicom_series(b, tmp_path, series_description="venous", series_instance_uid=uid_b, shuffle_names=True)
    with pytest.raises(DicomSeriesError, match="--series UID") as info:
        read_dicom(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message
    assert f"{uid_a} 'arterial' (4 slices)" in message
    assert f"{uid_b} 'venous' (3 slices)" in message
    np.testing.assert_array_equal(read_dicom(tmp_path, series_uid=uid_a).array, a.array)
    np.testing.assert_array_equal(read_dicom(tmp_path, series_uid=uid_b).array, b.array)
    with pytest.raises(DicomSeriesError, match=rf"series 1\.2\.3 not found; available image series: .*{uid_a}"):
        read_dicom(tmp_path, series_uid="1.2.3")


def test_non_image_objects_are_skipped(tmp_path, small_series):
    image, _ = small_series
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "RTSTRUCT"
    ds.save_as(tmp_path / "series" / "rtstruct", enforce_file_format=True)
    np.testing.assert_array_equal(read_dicom(tmp_path / "series").array, image.array)
    only = tmp_path / "only"
    only.mkdir()
    (tmp_path / "series" / "rtstruct").rename(only / "rtstruct")
    with pytest.raises(DicomSeriesError, match=r"no DICOM image series .*1 x RT Structure Set Storage"):
        read_dicom(only)


# --- refused inputs ----------------------------------------------------------------------------
def test_missing_slice_is_refused_then_resampled(small_series):
    image, paths = small_series
    paths[2].unlink()
    folder = paths[0].parent
    with pytest.raises(DicomSeriesError, match=r"irregular slice spacing: gaps .* are 2 mm x2, 4 mm x1") as info:
        read_dicom(folder)
    assert str(folder) in str(info.value)
    got = read_dicom(folder, resample=True)
    assert got.array.shape == image.array.shape
    assert got.array.dtype == np.float32
    assert_same_geometry(got.geometry, image.geometry)
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(got.array[keep], image.array[keep])
    expected = (image.array[1].astype(np.float32) + image.array[3].astype(np.float32)) / 2
    np.testing.assert_allclose(got.array[2], expected, atol=1e-3)
    assert "linear interpolation" in got.metadata["resampled"]
    assert got.metadata["n_slices"] == 4


def test_gantry_tilt_is_refused_then_desheared(small_series):
    image, paths = small_series
    sx, sy, sz = image.spacing_mm
    for k, path in enumerate(paths):  # each slice one pixel further along the column direction (+y)
        edit(path, ImagePositionPatient=[0.0, k * sy, k * sz])
    tilt = math.degrees(math.atan2(sy, sz))
    with pytest.raises(DicomSeriesError, match=rf"gantry tilt of {tilt:.2f} degrees"):
        read_dicom(paths[0].parent)
    got = read_dicom(paths[0].parent, resample=True)
    n, rows, cols = image.array.shape
    assert got.array.shape == (n, rows + n - 1, cols)
    assert got.geometry.spacing_mm == pytest.approx((sx, sy, sz))
    assert got.geometry.origin_mm == pytest.approx((0.0, 0.0, 0.0))
    fill = image.array.min()
    for k in range(n):  # whole-pixel shifts: exact, the rest is filled with the series minimum
        np.testing.assert_array_equal(got.array[k, k : k + rows], image.array[k])
        assert np.all(got.array[k, :k] == fill) and np.all(got.array[k, k + rows :] == fill)
    assert "gantry tilt" in got.metadata["resampled"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.8, 0.6]}, "differ in ImageOrientationPatient"),
        ({"PixelSpacing": [0.6, 0.55]}, "differ in PixelSpacing"),
        ({"Rows": 9}, "differ in matrix size"),
        ({"ImagePositionPatient": [0.0, 0.0, 0.0]}, "share a position along the slice normal"),
        ({"SeriesInstanceUID": ""}, "no SeriesInstanceUID"),
    ],
)
def test_inconsistent_series_is_refused(small_series, change, message):
    _, paths = small_series
    edit(paths[3], **change)
    with pytest.raises(DicomSeriesError, match=message) as info:
        read_dicom(paths[0].parent)
    assert str(paths[0].parent) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("transfer_syntax", ["explicit-little", "jpeg2000-lossless"])
def test_corrupt_pixel_data_names_the_file(tmp_path, transfer_syntax):
    paths = write_dicom_series(phantom((3, 32, 32), seed=8), tmp_path, transfer_syntax=transfer_syntax)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-200])
    with pytest.raises(InputFileError, match=rf"{paths[1].name}: .*pixel data"):
        read_dicom(tmp_path)


def test_empty_and_wrong_paths(tmp_path):
    with pytest.raises(DicomSeriesError, match=rf"{tmp_path}: no DICOM image series"):
        read_dicom(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DicomSeriesError, match=rf"{tmp_path}: no DICOM image series"):
        read_dicom(tmp_path)
    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt: not a DICOM file"):
        read_dicom(tmp_path / "notes.txt")
    with pytest.raises(InputFileError, match="no such file or folder"):
        read_dicom(tmp_path / "absent")


# --- writer refusals ---------------------------------------------------------------------------
def test_writer_refuses_left_handed_and_bad_values(tmp_path):
    left = phantom((2, 3, 4), direction=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="right-handed"):
        write_dicom_series(left, tmp_path)
    nan = phantom((2, 3, 4)).with_array(np.full((2, 3, 4), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        write_dicom_series(nan, tmp_path)
    huge = phantom((2, 3, 4)).with_array(np.full((2, 3, 4), 1e6))
    with pytest.raises(ValueError, match="16 bits"):
        write_dicom_series(huge, tmp_path)
    with pytest.raises(ValueError, match="at least 32x32 pixels"):
        write_dicom_series(phantom((2, 3, 40)), tmp_path, transfer_syntax="jpeg2000-lossless")
    with pytest.raises(ValueError, match="transfer_syntax"):
        write_dicom_series(phantom((2, 3, 4)), tmp_path, transfer_syntax="jpeg-baseline")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --- real public files (../shared/data, see SOURCES.md) ----------------------------------------
@pytest.fixture(scope="module")
def real() -> Path:
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.skip(f"real public test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.mark.shared_data
def test_real_ct_3slice_spacing_from_positions_not_thickness(real):
    """dcmqi (BSD-3-Clause): SliceThickness 1.25 mm, slices 1.0 mm apart."""
    folder = real / "dcmqi" / "ct-3slice"
    got = read_dicom(folder)
    assert got.array.shape == (3, 512, 512)
    assert got.geometry.spacing_mm[2] == pytest.approx(1.0, abs=1e-9)
    assert got.metadata["slice_thickness_mm"] == pytest.approx(1.25)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ref = reader.Execute()
    np.testing.assert_allclose(got.geometry.origin_mm, ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(got.geometry.spacing_mm, ref.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(got.geometry.direction, ref.GetDirection(), atol=1e-4)
    np.testing.assert_array_equal(got.array, sitk.GetArrayFromImage(ref))


@pytest.mark.shared_data
def test_real_segmentation_objects_are_skipped(real):
    """dcmqi: a DICOM-SEG next to the CT; rt-utils (MIT): RTSTRUCTs next to a 2-slice CT."""
    assert read_dicom(real / "dcmqi").metadata["n_slices"] == 3
    got = read_dicom(real / "rt-utils")
    assert got.array.shape == (2, 512, 512)
    assert got.geometry.spacing_mm[2] == pytest.approx(5.0)


@pytest.mark.shared_data
def test_real_gantry_tilt(real):
    """dicom2nifti (MIT): a Siemens series tilted about x, slices 5 mm apart along z."""
    folder = real / "dicom2nifti" / "gantrytilting" / "001"
    iop = [float(v) for v in pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])
    tilt = math.degrees(math.acos(abs(normal[2])))  # the positions step along z only
    assert tilt == pytest.approx(14.0, abs=0.01)
    with pytest.raises(DicomSeriesError, match=rf"{folder}: .*gantry tilt of {tilt:.2f} degrees"):
        read_dicom(folder)
    got = read_dicom(folder, resample=True)
    shear_px = 3 * 5.0 * math.sin(math.radians(tilt)) / 0.41796875  # first to last slice, in pixels
    assert got.array.shape == (4, 512 + math.ceil(shear_px), 512)
    assert got.geometry.spacing_mm[2] == pytest.approx(5.0 * math.cos(math.radians(tilt)), abs=1e-4)
    assert "gantry tilt" in got.metadata["resampled"]


@pytest.mark.shared_data
def test_real_missing_slice(real):
    """dicom2nifti (MIT): slices at 18.1, 23.1, 28.1 and 38.1 mm (one missing)."""
    folder = real / "dicom2nifti" / "sliceincrement" / "001"
    with pytest.raises(DicomSeriesError, match=rf"{folder}: .*gaps .* are 5 mm x2, 10 mm x1"):
        read_dicom(folder)
    got = read_dicom(folder, resample=True)
    assert got.array.shape == (5, 512, 512)
    assert got.geometry.spacing_mm[2] == pytest.approx(5.0, abs=1e-4)
    mean = (got.array[2].astype(np.float64) + got.array[4]) / 2
    np.testing.assert_allclose(got.array[3], mean, atol=1e-3)


@pytest.mark.shared_data
def test_real_enhanced_ct(real):
    """pydicom-data (MIT): Enhanced CT, 2 frames, per-frame positions, orientation (-1, 0, 0, 0, 1, 0)."""
    path = real / "pydicom" / "eCT_Supplemental.dcm"
    got = read_dicom(path)
    assert got.array.shape == (2, 512, 512)
    assert got.array.dtype == np.int16
    assert got.geometry.spacing_mm == pytest.approx((0.388672, 0.388672, 10.0))
    assert got.geometry.origin_mm == pytest.approx((99.5, -301.5, -149.0))
    np.testing.assert_allclose(got.geometry.direction_matrix, np.diag([-1.0, 1.0, -1.0]))
    raw = pydicom.dcmread(path).pixel_array.astype(np.int32) - 1024  # frame 2 lies at -149 mm: first
    np.testing.assert_array_equal(got.array, raw[[1, 0]])
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert got.metadata["sop_instance_uids"] == [ds.SOPInstanceUID] * 2  # both frames are one instance
    assert got.metadata["sop_class_uid"] == ds.SOPClassUID
    assert got.metadata["frame_of_reference_uid"] == ds.FrameOfReferenceUID
    first = ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0].ImagePositionPatient
    assert got.metadata["image_positions_mm"][0] == pytest.approx([float(v) for v in first])


@pytest.mark.shared_data
def test_real_single_slice(real):
    """pydicom (MIT): one CT slice; only here may the z spacing come from SliceThickness."""
    got = read_dicom(real / "pydicom" / "CT_small.dcm")
    assert got.array.shape == (1, 128, 128)
    assert got.geometry.spacing_mm[2] == pytest.approx(5.0)
    assert "single-slice" in got.metadata["z_spacing_source"]
    with pytest.raises(DicomSeriesError, match=r"holds 2 image series; pick one with --series UID"):
        read_dicom(real / "pydicom")


# --- issue 10: real DICOM as it comes, and headers that lie ---------------------------------------
@pytest.mark.shared_data
def test_anonymised_totalsegmentator_series_is_grouped_by_what_remains(shared_data, tmp_path):
    """TotalSegmentator (Apache-2.0) example_ct_sm.nii.gz written as DICOM with its UIDs blanked, as their
    anonymised example_ct_dicom comes: read with its true geometry and every voxel."""
    truth = read_image(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")
    paths = write_dicom_series(truth, tmp_path / "dicom", shuffle_names=True, seed=2)
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.SeriesInstanceUID
        ds.StudyInstanceUID = ""
        ds.save_as(path, enforce_file_format=True)
    got = read_dicom(tmp_path / "dicom")
    np.testing.assert_array_equal(got.array, truth.array)
    assert_same_geometry(got.geometry, truth.geometry, tol_mm=1e-4)
    assert got.metadata["series_instance_uid"] == "" and got.metadata["study_instance_uid"] == ""
    (warning,) = got.metadata["warnings"]
    assert "no SeriesInstanceUID and StudyInstanceUID" in warning and "grouped into one series" in warning


def test_anonymised_series_stay_apart_by_what_remains(tmp_path):
    a = phantom((3, 6, 7), spacing=(0.5, 0.5, 2.0), seed=5)
    b = phantom((4, 6, 7), spacing=(0.5, 0.5, 2.0), seed=6)
    for image, folder, number in ((a, "a", 1), (b, "b", 2)):
        for path in write_dicom_series(image, tmp_path / folder):
            edit(path, SeriesInstanceUID="", SeriesNumber=number)
    with pytest.raises(DicomSeriesError, match=r"holds 2 image series; .*\(no SeriesInstanceUID, SeriesNumber 2\) "
                                               r"'flr phantom' \(4 slices\)"):
        read_dicom(tmp_path)
    np.testing.assert_array_equal(read_dicom(tmp_path / "b").array, b.array)


def _other_slice(source: Path, target: Path, **values) -> None:
    ds = pydicom.dcmread(source)
    uid = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    for key, value in values.items():
        setattr(ds, key, value)
    ds.save_as(target, enforce_file_format=True)


def test_other_objects_beside_a_ct_are_skipped_and_named(small_series):
    image, paths = small_series
    folder = paths[0].parent
    _other_slice(paths[1], folder / "scout", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
                 SeriesInstanceUID=pydicom.uid.generate_uid(), ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    _other_slice(paths[1], folder / "pet", Modality="PT",
                 SOPClassUID=pydicom.uid.PositronEmissionTomographyImageStorage,
                 ImagePositionPatient=[0, 0, 3.0])  # between two CT slices: it would break the spacing if mixed in
    _other_slice(paths[1], folder / "screen", SOPClassUID=pydicom.uid.SecondaryCaptureImageStorage)
    (folder / "notes.txt").write_text("not DICOM\n")
    got = read_dicom(folder)
    np.testing.assert_array_equal(got.array, image.array)
    assert len(got.metadata["files"]) == 5
    (warning,) = got.metadata["warnings"]
    assert warning.startswith(f"{folder}: 4 file(s) skipped, not part of the series read: ")
    for part in ("1 x localizer (ImageType LOCALIZER): scout", "1 x not DICOM: notes.txt",
                 "1 x Positron Emission Tomography Image Storage, Modality PT, not a CT image: pet",
                 "1 x Secondary Capture Image Storage, Modality CT, not a CT image: screen"):
        assert part in warning


def test_a_missing_slice_is_named_by_position_with_the_files_skipped(small_series):
    _, paths = small_series
    folder = paths[0].parent
    paths[3].write_bytes(paths[3].read_bytes()[:200])  # cut inside the file meta: no header left
    with pytest.raises(DicomSeriesError) as info:
        read_dicom(folder)
    message = str(info.value)
    assert "gaps along the slice normal are 2 mm x2, 4 mm x1" in message
    assert "CT00003.dcm (z = 4 mm) and CT00005.dcm (z = 8 mm)): 1 slice missing near z = 6 mm" in message
    assert message.endswith("skipped: 1 x header without SOPClassUID or Rows (truncated?): CT00004.dcm")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PixelSpacing": [0.6, 0.0]}, r"CT00004\.dcm: PixelSpacing \[0\.6, 0\.0\] must be > 0 mm"),
        ({"PixelSpacing": [-0.6, 0.5]}, r"CT00004\.dcm: PixelSpacing \[-0\.6, 0\.5\] must be > 0 mm"),
        ({"PixelSpacing": ["inf", 0.5]}, r"CT00004\.dcm: PixelSpacing needs 2 finite numbers"),
        ({"SliceThickness": "nan"}, r"CT00004\.dcm: SliceThickness 'nan' is not a finite number"),
        ({"ImagePositionPatient": [0, "inf", 6]}, r"CT00004\.dcm: ImagePositionPatient needs 3 finite numbers"),
        ({"RescaleSlope": 0}, r"CT00004\.dcm: RescaleSlope is 0"),
        ({"RescaleSlope": "inf"}, r"CT00004\.dcm: RescaleSlope 'inf' is not a finite number"),
        ({"Rows": 0}, r"1 slice missing near z = 6 mm; .*; skipped: 1 x CT Image Storage without Rows/Columns: "
                      r"CT00004\.dcm"),
    ],
)
def test_impossible_values_are_refused_naming_tag_and_file(small_series, change, message):
    _, paths = small_series
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns when asked to write 'nan'
        edit(paths[3], **change)
    with pytest.raises(DicomSeriesError, match=message):
        read_dicom(paths[0].parent)


def test_missing_rescale_means_identity(tmp_path):
    image = phantom((3, 4, 5), seed=9)
    paths = write_dicom_series(image, tmp_path, rescale_intercept=0.0)
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.RescaleSlope, ds.RescaleIntercept
        ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(read_dicom(tmp_path).array, image.array)


@pytest.mark.parametrize(
    ("transfer_syntax", "change", "message"),
    [
        ("explicit-little", {"Rows": 30000, "Columns": 30000},
         r"CT00001\.dcm: pixel data holds 160 bytes, Rows x Columns x NumberOfFrames = 30000 x 30000 x 1 needs "
         r"1\.8 GB"),
        ("jpeg2000-lossless", {"Rows": 30000, "Columns": 30000},
         r"CT00001\.dcm: Rows x Columns is 30000 x 30000 but the compressed frame is 32 x 32 pixels"),
        ("jpeg-lossless", {"Rows": 31, "Columns": 32},
         r"CT00001\.dcm: Rows x Columns is 31 x 32 but the compressed frame is 32 x 32 pixels"),
    ],
)
def test_matrix_sizes_are_checked_against_the_pixel_data_before_decoding(tmp_path, monkeypatch, transfer_syntax,
                                                                          change, message):
    shape = (2, 32, 32) if transfer_syntax != "explicit-little" else (2, 8, 10)
    paths = write_dicom_series(phantom(shape, seed=3), tmp_path, transfer_syntax=transfer_syntax)
    for path in paths:
        edit(path, **change)
    decoded = []
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(lambda ds: decoded.append(ds)))
    with pytest.raises(InputFileError, match=message):
        read_dicom(tmp_path)
    assert decoded == []  # refused before any decoder (or the stack) allocated the size the header claims


def test_more_frames_than_fragments_is_refused(tmp_path):
    (path,) = write_dicom_series(phantom((1, 32, 32), seed=3), tmp_path, transfer_syntax="jpeg2000-lossless")
    ds = pydicom.dcmread(path)
    check_pixel_data(path, ds, ds.file_meta.TransferSyntaxUID)  # one frame, one fragment: fine
    ds.NumberOfFrames = 7
    with pytest.raises(InputFileError, match=r"CT00001\.dcm: NumberOfFrames is 7 but the compressed pixel data "
                                             r"holds 1 fragment\(s\)"):
        check_pixel_data(path, ds, ds.file_meta.TransferSyntaxUID)
