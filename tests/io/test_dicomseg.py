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
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
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
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    (back,) = read_dicom_seg(out)
    assert back.geometry.same_grid(ct.geometry)  # every slice has some label here
    np.testing.assert_array_equal(back.array, label_map.array)


def test_overlapping_segments_go_to_separate_maps(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
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
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "s.dcm", reference=ct, segment_names={3: "my vessel"})
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
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    ds = pydicom.dcmread(out)
    ds.FrameOfReferenceUID = "1.2.3.4.5"
    ds.save_as(out)
    src_for = pydicom.dcmread(files[0], stop_before_pixels=True).FrameOfReferenceUID
    with pytest.raises(GeometryMismatchError, match=r"1\.2\.3\.4\.5.*" + re.escape(src_for)):
        read_dicom_seg(out, reference=ct)


def test_frames_off_the_reference_grid(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
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
        (lambda p, _src: p.write_bytes(b"not dicom at all"), r"not a DICOM file"),
        (lambda p, src: shutil.copy(src, p), r"not a DICOM Segmentation"),
    ],
    ids=["truncated", "garbage", "ct-not-seg"],
)
def test_bad_files_one_line_error(case, tmp_path, make, match):
    ct, files, label_map = case
    seg = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    bad = tmp_path / "bad.dcm"
    make(bad, files[0] if "Segmentation" in match else seg)
    with pytest.raises(InputFileError, match=match) as info:
        read_dicom_seg(bad, reference=ct)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_empty_segment_warns_and_is_kept(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
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
    ct, _files, label_map = case
    with pytest.raises(InputFileError, match="does not exist"):
        write_dicom_seg(label_map, tmp_path / "missing" / "plan.dcm", reference=ct)
    # the final rename fails (a folder sits at the target path): the temporary file is removed
    target = tmp_path / "out"
    (target / "plan.dcm").mkdir(parents=True)
    with pytest.raises(OSError):
        write_dicom_seg(label_map, target / "plan.dcm", reference=ct)
    assert [p.name for p in target.iterdir()] == ["plan.dcm"]
    # a label map off the CT's grid is refused before anything is written
    shifted = LabelMap(label_map.array, Geometry(label_map.geometry.shape_zyx, label_map.spacing_mm,
                                                 (0.0, 0.0, 0.0)), names=label_map.names)
    with pytest.raises(GeometryMismatchError, match=r"label map .* is not on the grid of CT .*origin differs"):
        write_dicom_seg(shifted, tmp_path / "x.dcm", reference=ct)
    assert not (tmp_path / "x.dcm").exists()


def test_fractional_thresholded_at_half_the_maximum(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
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


# ----------------------------------------------------------------------------------------------
# frames left out, the per-frame path, and the CT known by its metadata alone
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def tall(tmp_path: Path) -> tuple[Image, LabelMap]:
    """An 8-slice CT and a liver label on slices 1, 4 and 6 only (the writer leaves the others out)."""
    geom = Geometry(shape_zyx=(8, 12, 16), spacing_mm=(0.7, 0.8, 2.5), origin_mm=(-40.0, 12.5, -300.25))
    write_dicom_series(Image(np.zeros(geom.shape_zyx, np.int16), geom), tmp_path / "ct8", shuffle_names=True, seed=2)
    ct = read_dicom(tmp_path / "ct8")
    labels = np.zeros(geom.shape_zyx, dtype=np.uint8)
    for z, (y0, x0) in zip((1, 4, 6), ((2, 3), (4, 5), (6, 1)), strict=True):
        labels[z, y0:y0 + 3, x0:x0 + 4] = 1
    return ct, LabelMap(labels, ct.geometry, names={1: "liver"})


def _drop_spacing_between_slices(path: Path, slice_thickness: float | None = None) -> None:
    ds = pydicom.dcmread(path)
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    del measures.SpacingBetweenSlices
    if slice_thickness is not None:
        measures.SliceThickness = slice_thickness
    ds.save_as(path)


def test_frames_left_out_are_stacked_by_spacing_between_slices(tall, tmp_path):
    ct, label_map = tall
    out = write_dicom_seg(label_map, tmp_path / "s.dcm", reference=ct)
    assert pydicom.dcmread(out).NumberOfFrames == 3  # empty slices left out
    (on_ct,) = read_dicom_seg(out, reference=ct)
    np.testing.assert_array_equal(on_ct.array, label_map.array)
    # own grid: slices 1..6 of the CT (2.5 mm apart, from SpacingBetweenSlices), empty ones included
    (own,) = read_dicom_seg(out)
    assert own.geometry.same_grid(Geometry((6, 12, 16), (0.7, 0.8, 2.5), (-40.0, 12.5, -297.75)))
    np.testing.assert_array_equal(own.array, label_map.array[1:7])


def test_frames_highdicom_cannot_stack_are_placed_one_by_one(tall, tmp_path):
    # Without SpacingBetweenSlices the gaps 7.5 and 5 mm are no multiples of the smallest: highdicom
    # finds no regular stack; on a reference CT each frame still lies on a slice.
    ct, label_map = tall
    out = write_dicom_seg(label_map, tmp_path / "s.dcm", reference=ct)
    _drop_spacing_between_slices(out)
    assert _highdicom_read(out).get_volume_geometry(allow_missing_positions=True, atol=0.01) is None
    (on_ct,) = read_dicom_seg(out, reference=ct)
    np.testing.assert_array_equal(on_ct.array, label_map.array)
    with pytest.raises(InputFileError, match=r"s\.dcm: DICOM-SEG frame positions are not on a regular grid"):
        read_dicom_seg(out)


def test_single_frame_takes_slice_thickness_without_spacing(tall, tmp_path):
    ct, label_map = tall
    one = LabelMap(np.where(np.arange(8)[:, None, None] == 4, label_map.array, 0).astype(np.uint8), ct.geometry,
                   names={1: "liver"})
    out = write_dicom_seg(one, tmp_path / "one.dcm", reference=ct)
    _drop_spacing_between_slices(out, slice_thickness=3.0)
    (own,) = read_dicom_seg(out)
    assert own.geometry.shape_zyx == (1, 12, 16)
    assert own.geometry.spacing_mm == pytest.approx((0.7, 0.8, 3.0))
    np.testing.assert_array_equal(own.array[0], one.array[4])


def test_whole_stack_shifted_off_the_reference(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    ds = pydicom.dcmread(out)
    for frame in ds.PerFrameFunctionalGroupsSequence:  # every frame 0.4 mm up: still a regular stack
        pos = frame.PlanePositionSequence[0]
        pos.ImagePositionPatient = [*(float(v) for v in pos.ImagePositionPatient[:2]),
                                    float(pos.ImagePositionPatient[2]) + 0.4]
    ds.save_as(out)
    with pytest.raises(GeometryMismatchError, match=r"plan\.dcm: 5 DICOM-SEG slice\(s\) lie off the reference grid"):
        read_dicom_seg(out, reference=ct)


def test_reader_needs_only_the_ct_metadata(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    for f in files:
        f.unlink()  # the SEG reader checks the frame of reference against metadata, never the CT files
    (back,) = read_dicom_seg(out, reference=ct)
    np.testing.assert_array_equal(back.array, label_map.array)
    other = Image(ct.array, ct.geometry, ct.source, {**ct.metadata, "frame_of_reference_uid": "1.2.3.4"})
    with pytest.raises(GeometryMismatchError, match=r"FrameOfReferenceUID .* differs from .* 1\.2\.3\.4"):
        read_dicom_seg(out, reference=other)


def test_writer_references_every_ct_slice_exactly(case, tmp_path):
    ct, files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "plan.dcm", reference=ct)
    ds = pydicom.dcmread(out)
    by_uid = {}
    for f in files:  # independent truth: the CT files themselves
        src = pydicom.dcmread(f, stop_before_pixels=True)
        by_uid[src.SOPInstanceUID] = [float(v) for v in src.ImagePositionPatient]
    for frame in ds.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient] == by_uid[uid]
    referenced = {i.ReferencedSOPInstanceUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(by_uid)
    assert ds.PatientName == pydicom.dcmread(files[0], stop_before_pixels=True).PatientName


def test_writer_refuses_a_ct_it_cannot_reference(case, tmp_path):
    ct, _files, label_map = case
    nifti_like = Image(ct.array, ct.geometry, "ct.nii.gz", {"format": "nifti"})
    with pytest.raises(InputFileError, match=r"ct\.nii\.gz: a DICOM-SEG needs a CT read by flr\.io\.dicom"):
        write_dicom_seg(label_map, tmp_path / "a.dcm", reference=nifti_like)
    resampled = Image(ct.array, ct.geometry, ct.source, {**ct.metadata, "resampled": "gantry tilt corrected"})
    with pytest.raises(InputFileError, match=r"resampled when it was read \(gantry tilt corrected\)"):
        write_dicom_seg(label_map, tmp_path / "b.dcm", reference=resampled)
    assert not list(tmp_path.glob("*.dcm"))


def test_dcmqi_ct_round_trip_through_the_writer(dcmqi, tmp_path):
    # a real CT without SpacingBetweenSlices (SliceThickness 1.25 mm, slices 1 mm apart)
    ct = read_dicom(dcmqi / "ct-3slice")
    (liver,) = read_dicom_seg(dcmqi / "liver.dcm", reference=ct)
    out = write_dicom_seg(liver, tmp_path / "liver.dcm", reference=ct)
    measures = pydicom.dcmread(out).SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == 1.25
    assert float(measures.SpacingBetweenSlices) == pytest.approx(1.0, abs=1e-9)  # the mean gap, in float
    sources = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in (dcmqi / "ct-3slice").iterdir()),
                     key=lambda d: float(d.ImagePositionPatient[2]))
    pixels = _highdicom_read(out).get_pixels_by_source_instance([d.SOPInstanceUID for d in sources],
                                                                combine_segments=True)
    np.testing.assert_array_equal(pixels, liver.array)


# ----------------------------------------------------------------------------------------------
# a CT export that dropped type 2 attributes (issue 10)
# ----------------------------------------------------------------------------------------------
DROPPED = ("AccessionNumber", "ReferringPhysicianName", "StudyID", "StudyDate", "StudyTime", "PatientBirthDate",
           "PatientSex", "PatientName", "PatientID", "SliceThickness", "SpacingBetweenSlices")


def test_seg_of_a_ct_without_type_2_attributes_reads_back(case, tmp_path):
    _ct, files, label_map = case
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword in DROPPED:
            delattr(ds, keyword)
        ds.save_as(path, enforce_file_format=True)
    ct = read_dicom(files[0].parent)
    out = write_dicom_seg(label_map, tmp_path / "seg.dcm", reference=ct)  # AttributeError: AccessionNumber before
    theirs = _highdicom_read(out)
    assert (theirs.AccessionNumber, theirs.PatientID, theirs.StudyDate, theirs.PatientSex) == ("", "", "", "")
    assert float(theirs.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness) == 2.5
    pixels = theirs.get_pixels_by_source_instance(ct.metadata["sop_instance_uids"], combine_segments=True)
    np.testing.assert_array_equal(pixels, label_map.array)  # labels 1..3 are segments 1..3
    ours = read_dicom_seg(out, reference=ct)
    merged = np.zeros(label_map.array.shape, np.uint8)
    for m in ours:
        merged = np.where(m.array > 0, m.array, merged)
    np.testing.assert_array_equal(merged, label_map.array)


def test_seg_of_a_ct_without_series_uid_is_refused(case, tmp_path):
    _ct, files, label_map = case
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.SeriesInstanceUID
        ds.StudyInstanceUID = ""
        ds.save_as(path, enforce_file_format=True)
    ct = read_dicom(files[0].parent)  # an anonymised series is read (with a warning) ...
    assert "no SeriesInstanceUID and StudyInstanceUID" in ct.metadata["warnings"][0]
    with pytest.raises(InputFileError, match="the CT has no StudyInstanceUID or SeriesInstanceUID"):
        write_dicom_seg(label_map, tmp_path / "seg.dcm", reference=ct)  # ... but a SEG cannot reference it
    assert not (tmp_path / "seg.dcm").exists()


def test_seg_pixel_data_shorter_than_its_frames_is_refused(case, tmp_path):
    ct, _files, label_map = case
    out = write_dicom_seg(label_map, tmp_path / "seg.dcm", reference=ct)
    ds = pydicom.dcmread(out)
    ds.NumberOfFrames = 5000
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(InputFileError, match=r"seg\.dcm: pixel data holds .* 12 x 16 x 5000 needs"):
        read_dicom_seg(out, reference=ct)


def test_couinaud_segments_are_coded_with_the_registrys_snomed_codes():
    """A SEG segment coded 'Couinaud hepatic segment II' without a label reads as liver_segment_2, and the
    writer codes segments with the registry's codes (pydicom's codes.SCT.CouinaudHepaticSegment*)."""
    from pydicom.sr.codedict import codes

    from flr.io.dicomseg import _WRITE_CODES, CODED_NAMES

    for roman, short in (("I", "1"), ("II", "2"), ("IV", "4"), ("VIII", "8")):
        code = getattr(codes.SCT, f"CouinaudHepaticSegment{roman}").value
        assert CODED_NAMES[("SCT", code)] == f"liver_segment_{short}"
        assert _WRITE_CODES[f"liver_segment_{short}"][1] == (code, f"Couinaud hepatic segment {roman}")
