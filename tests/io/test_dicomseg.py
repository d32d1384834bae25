"""DICOM-SEG reader and writer (flr.io.dicomseg).

Synthetic CT series are written by :func:`flr.io.dicom.write_dicom_series`; the real files come from
``../shared/data/dcmqi`` (QIICR/dcmqi @ b6137d9, BSD-3-Clause, see SOURCES.md) and skip cleanly when
that folder is absent.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from flr.errors import GeometryMismatchError, InputFileError
from flr.image import Geometry, Image, LabelMap
from flr.io import read_image
from flr.io.dicom import read_dicom, write_dicom_series
from flr.io.dicomseg import read_dicom_seg, write_dicom_seg

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DCMQI = SHARED_DATA / "dcmqi"


@pytest.fixture
def dcmqi() -> Path:
    if not (DCMQI / "liver.dcm").is_file():
        pytest.skip(f"real dcmqi DICOM-SEG not found under {DCMQI} (see ../shared/data/SOURCES.md)")
    return DCMQI


def _highdicom_read(path: Path):
    import highdicom as hd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # highdicom: legacy/odd values in files it reads
        return hd.seg.segread(path)


# ----------------------------------------------------------------------------------------------
# synthetic case: a 3-label map on a written, slightly unusual CT series
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def case(tmp_path: Path) -> tuple[Image, list[Path], LabelMap]:
    geom = Geometry(shape_zyx=(5, 12, 16), spacing_mm=(0.7, 0.8, 2.5), origin_mm=(-40.0, 12.5, -300.25))
    rng = np.random.default_rng(0)
    hu = rng.integers(-100, 200, size=geom.shape_zyx).astype(np.int16)
    files = write_dicom_series(Image(hu, geom), tmp_path / "ct", shuffle_names=True, seed=1)
    ct = read_dicom(tmp_path / "ct")
    labels = np.zeros(geom.shape_zyx, dtype=np.uint8)
    labels[1:4, 2:10, 3:13] = 1  # liver
    labels[2, 4:7, 5:8] = 2  # tumour inside the liver
    labels[0:5, 10:12, 0:2] = 3  # a vessel reaching both ends of the volume
    labels[4, :, :] = np.where(labels[4] == 0, 0, labels[4])  # slice 4: vessel only
    label_map = LabelMap(labels, ct.geometry, names={1: "liver", 2: "tumor", 3: "Portal Vein"})
    return ct, files, label_map


def test_round_trip_through_flr_and_highdicom(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    assert out == tmp_path / "plan.dcm" and not list(tmp_path.glob(".*.tmp"))

    maps = read_dicom_seg(out, reference=ct)
    assert len(maps) == 1  # the three labels never overlap
    back = maps[0]
    assert back.geometry.same_grid(ct.geometry)
    np.testing.assert_array_equal(back.array, label_map.array)
    assert back.names == {1: "liver", 2: "tumor", 3: "portal_vein"}
    assert back.scheme == "dicom-seg"

    # the SEG carries the source's identifiers of study and frame of reference
    seg_ds = pydicom.dcmread(out)
    src = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert seg_ds.StudyInstanceUID == src.StudyInstanceUID
    assert seg_ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert seg_ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert seg_ds.SeriesDescription == "flr plan"
    liver = seg_ds.SegmentSequence[0]
    assert (liver.SegmentLabel, liver.SegmentedPropertyTypeCodeSequence[0].CodeValue) == ("liver", "10200004")
    assert liver.SegmentAlgorithmType == "SEMIAUTOMATIC" and liver.SegmentAlgorithmName == "flr"

    # highdicom reads the same voxels, frame by source instance (files are in z order)
    seg = _highdicom_read(out)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(pixels, label_map.array)


def test_own_grid_without_reference(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    (back,) = read_dicom_seg(out)
    assert back.geometry.same_grid(ct.geometry)  # every slice has some label here
    np.testing.assert_array_equal(back.array, label_map.array)


def test_overlapping_segments_go_to_separate_maps(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    # make segment 2 (tumour) overlap the vessel: copy its frame's pixels onto a vessel voxel
    ds = pydicom.dcmread(out)
    frames = ds.pixel_array.copy()
    tumour = [i for i, f in enumerate(ds.PerFrameFunctionalGroupsSequence)
              if f.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 2]
    frames[tumour[0], 10, 0] = 1  # vessel voxel (z=2, y=10, x=0)
    ds.PixelData = pydicom.pixels.pack_bits(frames)
    ds.save_as(out)
    maps = read_dicom_seg(out, reference=ct)
    # liver and tumour share no voxel (the label map gave the tumour's voxels to the tumour), so the
    # tumour joins the liver's map and the vessel, which now overlaps the tumour, gets its own
    assert [sorted(m.names) for m in maps] == [[1, 2], [3]]
    assert maps[0].array[2, 10, 0] == 2 and maps[1].array[2, 10, 0] == 3
    np.testing.assert_array_equal(maps[1].array == 3, label_map.array == 3)


def test_written_seg_references_label_names_and_codes(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "s.dcm", source_files=files, segment_names={3: "my vessel"})
    seq = pydicom.dcmread(out).SegmentSequence
    assert [s.SegmentLabel for s in seq] == ["liver", "tumor", "my vessel"]
    assert seq[2].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"  # generic fallback
    (back,) = read_dicom_seg(out, reference=ct)
    assert back.names[3] == "my_vessel"  # not canonical: kept, normalised


# ----------------------------------------------------------------------------------------------
# real data: dcmqi liver SEG on its 3-slice CT
# ----------------------------------------------------------------------------------------------
def test_dcmqi_liver_seg_matches_nrrd(dcmqi):
    ct = read_dicom(dcmqi / "ct-3slice")
    maps = read_dicom_seg(dcmqi / "liver.dcm", reference=ct)
    assert len(maps) == 1 and maps[0].names == {1: "liver"}
    nrrd = read_image(dcmqi / "liver_seg.nrrd")
    # dcmqi wrote both from one Slicer segmentation: the NRRD lies exactly on the CT grid
    ct.geometry.require_same_grid(nrrd.geometry, this="ct-3slice", that="liver_seg.nrrd")
    np.testing.assert_array_equal(maps[0].array > 0, nrrd.array > 0)
    assert int(maps[0].array.sum()) > 0
    # frames placed by position: the SEG's own grid is the CT's grid
    (own,) = read_dicom_seg(dcmqi / "liver.dcm")
    assert own.geometry.same_grid(ct.geometry)
    np.testing.assert_array_equal(own.array, maps[0].array)


def test_dcmqi_frames_placed_by_position_not_order(dcmqi, tmp_path):
    ct = read_dicom(dcmqi / "ct-3slice")
    (expected,) = read_dicom_seg(dcmqi / "liver.dcm", reference=ct)
    ds = pydicom.dcmread(dcmqi / "liver.dcm")
    order = [2, 0, 1]
    frames = ds.pixel_array[order]
    per_frame = [ds.PerFrameFunctionalGroupsSequence[i] for i in order]
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = pydicom.pixels.pack_bits(frames)
    ds.save_as(tmp_path / "shuffled.dcm")
    (back,) = read_dicom_seg(tmp_path / "shuffled.dcm", reference=ct)
    np.testing.assert_array_equal(back.array, expected.array)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
def test_other_frame_of_reference_names_both_uids(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    ds = pydicom.dcmread(out)
    ds.FrameOfReferenceUID = "1.2.3.4.5"
    ds.save_as(out)
    src_for = pydicom.dcmread(files[0], stop_before_pixels=True).FrameOfReferenceUID
    with pytest.raises(GeometryMismatchError, match=r"1\.2\.3\.4\.5.*" + re.escape(src_for)):
        read_dicom_seg(out, reference=ct)


def test_frames_off_the_reference_grid(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    ds = pydicom.dcmread(out)
    pos = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    pos.ImagePositionPatient = [float(v) for v in pos.ImagePositionPatient[:2]] + [
        float(pos.ImagePositionPatient[2]) + 0.5
    ]
    ds.save_as(out)
    with pytest.raises(GeometryMismatchError, match=r"plan\.dcm.*off the reference grid"):
        read_dicom_seg(out, reference=ct)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p, src: p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]), r"corrupted"),
        (lambda p, src: p.write_bytes(b"not dicom at all"), r"not a DICOM file"),
        (lambda p, src: shutil.copy(src, p), r"not a DICOM Segmentation"),
    ],
    ids=["truncated", "garbage", "ct-not-seg"],
)
def test_bad_files_one_line_error(case, tmp_path, make, match):
    ct, files, label_map = case
    seg = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    bad = tmp_path / "bad.dcm"
    make(bad, files[0] if "Segmentation" in match else seg)
    with pytest.raises(InputFileError, match=match) as info:
        read_dicom_seg(bad, reference=ct)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_empty_segment_warns_and_is_kept(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    ds = pydicom.dcmread(out)
    frames = ds.pixel_array.copy()
    for i, f in enumerate(ds.PerFrameFunctionalGroupsSequence):
        if f.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 2:
            frames[i] = 0
    ds.PixelData = pydicom.pixels.pack_bits(frames)
    ds.save_as(out)
    maps = read_dicom_seg(out, reference=ct)
    assert maps[0].names[2] == "tumor" and not np.any(maps[0].array == 2)
    assert any("segment 2" in w for w in maps[0].metadata["warnings"])


def test_writer_leaves_nothing_on_failure(case, tmp_path):
    _ct, files, label_map = case
    with pytest.raises(InputFileError, match="does not exist"):
        write_dicom_seg(label_map, tmp_path / "missing" / "plan.dcm", source_files=files)
    # the final rename fails (a folder sits at the target path): the temporary file is removed
    target = tmp_path / "out"
    (target / "plan.dcm").mkdir(parents=True)
    with pytest.raises(OSError):
        write_dicom_seg(label_map, target / "plan.dcm", source_files=files)
    assert [p.name for p in target.iterdir()] == ["plan.dcm"]
    # a label map off the source grid is refused before anything is written
    shifted = LabelMap(label_map.array, Geometry(label_map.geometry.shape_zyx, label_map.spacing_mm,
                                                 (0.0, 0.0, 0.0)), names=label_map.names)
    with pytest.raises(GeometryMismatchError, match="not a slice of the label map grid"):
        write_dicom_seg(shifted, tmp_path / "x.dcm", source_files=files)
    assert not (tmp_path / "x.dcm").exists()


def test_fractional_thresholded_at_half_the_maximum(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", source_files=files)
    ds = pydicom.dcmread(out)
    binary = ds.pixel_array.astype(np.uint8)
    fractional = binary * 128  # 128 >= 0.5 * 255: inside
    fractional[binary == 0] = 127  # 127 < 127.5: outside everywhere else
    ds.SegmentationType = "FRACTIONAL"
    ds.SegmentationFractionalType = "PROBABILITY"
    ds.MaximumFractionalValue = 255
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = fractional.tobytes()
    ds.save_as(out)
    (back,) = read_dicom_seg(out, reference=ct)
    np.testing.assert_array_equal(back.array, label_map.array)
    assert back.metadata["fractional_threshold"] == 0.5


def test_labelmap_seg_written_by_highdicom(case, tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    ct, files, label_map = case
    sources = [pydicom.dcmread(f) for f in files]  # z order
    descriptions = [
        hd.seg.SegmentDescription(n, name, codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL")
        for n, name in ((1, "Liver"), (2, "Tumour"), (3, "IVC"))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the phantom's single-component PatientName
        seg = hd.seg.Segmentation(
            sources, np.asarray(label_map.array), "LABELMAP", descriptions, hd.UID(), 1, hd.UID(), 1,
            "flr", "flr", "0", "0",
        )
    seg.save_as(tmp_path / "labelmap.dcm")
    (back,) = read_dicom_seg(tmp_path / "labelmap.dcm", reference=ct)
    np.testing.assert_array_equal(back.array, label_map.array)
    assert back.names == {1: "liver", 2: "tumor", 3: "inferior_vena_cava"}
