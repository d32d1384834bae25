"""A CT's geometry and metadata without its voxels (flr.io.read_image_header, issue 14): exactly what the full
read gives, on the bundled sample case, on written series (tilted and irregular ones resampled) and on real
public files in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import flr.io.dicom as dicom
from flr.errors import DicomSeriesError
from flr.image import Geometry, Image
from flr.io import ImageHeader, read_image, read_image_header
from flr.io.dicom import write_dicom_series

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "phantom-001"


def assert_header_of(path: Path, **kwargs) -> ImageHeader:
    """The header read equals the full read in geometry (exactly), source and every metadata value."""
    header = read_image_header(path, **kwargs)
    image = read_image(path, **kwargs)
    assert header.geometry == image.geometry
    assert header.source == image.source
    assert header.metadata == image.metadata
    return header


def refuse_decoding(monkeypatch) -> None:
    """From now on, fail if a DICOM file's pixel data is decoded or a NIfTI data block read."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the header read decoded voxels")

    from flr.io import nifti

    monkeypatch.setattr(dicom, "_pixels", refuse)
    monkeypatch.setattr(dicom, "_decode", refuse)
    monkeypatch.setattr(nifti, "_array_zyx", refuse)


@pytest.mark.parametrize("name", ["ct_dicom", "ct.nii.gz"])
def test_sample_case_header_equals_the_full_read(name, monkeypatch):
    path = SAMPLE / name
    image = read_image(path)
    refuse_decoding(monkeypatch)
    header = read_image_header(path)
    assert header.geometry == image.geometry and header.metadata == image.metadata and header.source == image.source
    assert header.metadata.get("study_date") == image.metadata.get("study_date")
    if name == "ct_dicom":  # the identities a DICOM-SEG or RTSTRUCT reader takes from the CT
        for key in ("series_instance_uid", "study_instance_uid", "frame_of_reference_uid", "sop_instance_uids"):
            assert header.metadata[key] == image.metadata[key] and header.metadata[key]


def test_the_nifti_and_dicom_headers_of_the_sample_agree_on_the_grid():
    dcm, nii = read_image_header(SAMPLE / "ct_dicom"), read_image_header(SAMPLE / "ct.nii.gz")
    assert dcm.geometry.same_grid(nii.geometry)


def test_header_of_a_written_jpeg2000_series(tmp_path):
    rng = np.random.default_rng(5)
    c, s = np.cos(np.deg2rad(25)), np.sin(np.deg2rad(25))
    geometry = Geometry((6, 40, 48), (0.7, 0.8, 2.5), (-10.5, 20.25, 3.0), (1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c))
    write_dicom_series(Image(rng.integers(-1024, 2000, (6, 40, 48)).astype(np.int16), geometry), tmp_path,
                       transfer_syntax="jpeg2000-lossless", shuffle_names=True)
    header = assert_header_of(tmp_path)
    assert header.metadata["study_date"] == "" and header.metadata["transfer_syntax_uids"] == ["1.2.840.10008.1.2.4.90"]


def _series(folder: Path, n: int = 5) -> list[Path]:
    rng = np.random.default_rng(6)
    image = Image(rng.integers(-1000, 1000, (n, 12, 16)).astype(np.int16), Geometry((n, 12, 16), (0.5, 0.6, 2.0)))
    return write_dicom_series(image, folder)


def test_header_of_a_missing_slice_resampled(tmp_path):
    paths = _series(tmp_path)
    paths[2].unlink()
    with pytest.raises(DicomSeriesError, match="irregular slice spacing") as full:
        read_image(tmp_path)
    with pytest.raises(DicomSeriesError) as head:
        read_image_header(tmp_path)
    assert str(head.value) == str(full.value)
    header = assert_header_of(tmp_path, resample=True)
    assert header.geometry.shape_zyx == (5, 12, 16) and "linear interpolation" in header.metadata["resampled"]


def test_header_of_a_gantry_tilt_resampled(tmp_path):
    paths = _series(tmp_path)
    for k, path in enumerate(paths):  # each slice one pixel and a half further along +y: the stack is sheared
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [0.0, k * 0.9, k * 2.0]
        ds.save_as(path, enforce_file_format=True)
    header = assert_header_of(tmp_path, resample=True)
    assert header.geometry.shape_zyx[1] > 12 and "gantry tilt" in header.metadata["resampled"]


def test_header_copies_its_metadata():
    geometry = Geometry((1, 1, 1))
    meta = {"study_date": "20260101"}
    header = ImageHeader(geometry, "x", meta)
    meta["study_date"] = "changed"
    assert header.metadata == {"study_date": "20260101"}


# --- real public files (../shared/data, see SOURCES.md) ----------------------------------------
@pytest.mark.shared_data
@pytest.mark.parametrize(("relative", "kwargs"), [
    ("dcmqi/ct-3slice", {}),                                   # SliceThickness 1.25 mm, slices 1 mm apart
    ("pydicom/CT_small.dcm", {}),                              # one slice: z spacing from SliceThickness
    ("pydicom/eCT_Supplemental.dcm", {}),                      # Enhanced CT, 2 frames
    ("dicom2nifti/gantrytilting/001", {"resample": True}),     # 14 degree tilt, desheared
    ("dicom2nifti/sliceincrement/001", {"resample": True}),    # one slice missing, regridded
    ("totalsegmentator/example_ct_sm.nii.gz", {}),             # a real NIfTI CT
])
def test_real_files_header_equals_the_full_read(shared_data, relative, kwargs):
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"{relative} not in {shared_data}")
    assert_header_of(path, **kwargs)
