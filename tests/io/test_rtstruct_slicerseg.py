"""RTSTRUCT (flr.io.rtstruct) and 3D Slicer .seg.nrrd (flr.io.slicerseg) readers.

Real files: ``../shared/data/rt-utils`` (qurit/rt-utils @ 026e664, tests/mock_data, MIT) and
``../shared/data/slicerio`` (lassoan/slicerio @ 543a856, slicerio/data, MIT); see SOURCES.md. Tests
on them skip cleanly when the folders are absent. Synthetic RTSTRUCTs are built here with pydicom.
"""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from matplotlib.path import Path as MplPath
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from flr.errors import GeometryMismatchError, InputFileError
from flr.image import Geometry, Image
from flr.io.dicom import read_dicom
from flr.io.rtstruct import rasterise_polygon, read_rtstruct
from flr.io.slicerseg import read_slicer_seg

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RT_UTILS = SHARED_DATA / "rt-utils"
SLICERIO = SHARED_DATA / "slicerio"
SERIES_UID = "1.2.3.4.5.6.7"
FOR_UID = "1.2.3.4.5.6.8"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _reference(geometry: Geometry, series_uid: str = SERIES_UID) -> Image:
    return Image(np.zeros(geometry.shape_zyx, dtype=np.int16), geometry, "synthetic CT",
                 {"series_instance_uid": series_uid, "frame_of_reference_uid": FOR_UID})


def _to_lps(geometry: Geometry, xyz_index: np.ndarray) -> np.ndarray:
    a = geometry.affine_lps
    return (a[:3, :3] @ np.asarray(xyz_index, dtype=float).T).T + a[:3, 3]


def _square(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def _write_rtstruct(path: Path, rois: dict[int, tuple[str, list[np.ndarray]]], *,
                    series_uid: str = SERIES_UID, kind: str = "CLOSED_PLANAR") -> Path:
    """An RTSTRUCT with ``rois`` = {ROINumber: (name, [contour points (n, 3) LPS mm])}."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    study = Dataset()
    study.RTReferencedSeriesSequence = Sequence([series])
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = FOR_UID
    ref_for.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_for])
    ssroi, roic = [], []
    for number, (name, contours) in rois.items():
        item = Dataset()
        item.ROINumber = number
        item.ROIName = name
        item.ReferencedFrameOfReferenceUID = FOR_UID
        ssroi.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        seq = []
        for pts in contours:
            c = Dataset()
            c.ContourGeometricType = kind
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [f"{v:.6f}" for v in np.asarray(pts).ravel()]
            seq.append(c)
        if seq:
            rc.ContourSequence = Sequence(seq)
        roic.append(rc)
    ds.StructureSetROISequence = Sequence(ssroi)
    ds.ROIContourSequence = Sequence(roic)
    ds.save_as(path, enforce_file_format=True)
    return path


def _mpl_mask(contours_xy: list[np.ndarray], shape_yx: tuple[int, int]) -> np.ndarray:
    """Independent even-odd fill: matplotlib's point-in-polygon on voxel centres, XOR over contours."""
    ny, nx = shape_yx
    rows, cols = np.mgrid[0:ny, 0:nx]
    centres = np.column_stack([cols.ravel(), rows.ravel()]).astype(float)
    mask = np.zeros(ny * nx, dtype=bool)
    for xy in contours_xy:
        mask ^= MplPath(xy).contains_points(centres)
    return mask.reshape(ny, nx)


GRID = Geometry((3, 20, 20), (0.8, 0.8, 2.0), (-10.0, 5.0, 30.0))


# ----------------------------------------------------------------------------------------------
# synthetic RTSTRUCT
# ----------------------------------------------------------------------------------------------
def test_square_with_hole_exact_count(tmp_path: Path) -> None:
    # Outer square: voxel centres 3..12 in x and y (10 x 10); hole: centres 6..8 (3 x 3). Edges lie on
    # half-voxel positions, so no centre is on an edge: 100 - 9 = 91 voxels exactly, on slice 1.
    outer = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    hole = _to_lps(GRID, _square(5.5, 8.5, 5.5, 8.5, 1))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {3: ("Liver", [outer, hole])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert lm.scheme == "rtstruct"
    assert lm.names == {3: "liver"}
    assert lm.array.dtype == np.uint8
    assert int((lm.array == 3).sum()) == 91
    assert int(lm.array[1].astype(bool).sum()) == 91
    assert not lm.array[0].any()
    assert not lm.array[2].any()
    assert lm.array[1, 7, 7] == 0  # in the hole
    assert lm.array[1, 3, 3] == 3
    assert lm.geometry == GRID
    assert lm.metadata["rois"][3]["voxels"] == 91


def test_hole_order_does_not_matter(tmp_path: Path) -> None:
    outer = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    hole = _to_lps(GRID, _square(5.5, 8.5, 5.5, 8.5, 1))[::-1]  # hole first and clockwise
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("liver", [hole, outer])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert int(lm.array.astype(bool).sum()) == 91


def test_two_contours_in_one_slice(tmp_path: Path) -> None:
    a = _to_lps(GRID, _square(0.5, 4.5, 0.5, 3.5, 2))  # 4 x 3 = 12
    b = _to_lps(GRID, _square(10.5, 15.5, 10.5, 12.5, 2))  # 5 x 2 = 10
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Tumour", [a, b])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert lm.names == {1: "tumor"}
    assert int(lm.array[2].astype(bool).sum()) == 22
    assert int(lm.array.astype(bool).sum()) == 22


def test_contour_through_boundary_voxel_centres_fills_back_the_mask(tmp_path: Path) -> None:
    # An L-shaped mask (columns 2..4 of rows 2..9, plus columns 5..10 of rows 7..9: 24 + 18 = 42 voxels)
    # outlined through the centres of its boundary voxels, as mask-to-contour tools write it. Centres on
    # the outline count as inside (scikit-image's rule), so the fill is exactly the mask.
    mask = np.zeros(GRID.shape_zyx[1:], dtype=bool)
    mask[2:10, 2:5] = True
    mask[7:10, 5:11] = True
    outline = np.array([[2, 2, 1], [4, 2, 1], [4, 7, 1], [10, 7, 1], [10, 9, 1], [2, 9, 1]], dtype=float)
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [_to_lps(GRID, outline)])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert int(mask.sum()) == 42
    assert np.array_equal(lm.array[1] == 1, mask)
    assert int(lm.array.astype(bool).sum()) == 42


def test_oblique_grid_matches_index_space_fill(tmp_path: Path) -> None:
    # Rotated 30 degrees about z and 20 about x: contours are drawn in index space on slice 1 and sent
    # to LPS through the affine; the fill must equal the same polygon filled directly in index space.
    cz, sz = math.cos(math.radians(30)), math.sin(math.radians(30))
    cx, sx = math.cos(math.radians(20)), math.sin(math.radians(20))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    geometry = Geometry((4, 24, 30), (0.7, 0.9, 2.5), (12.0, -40.0, 100.0), tuple((rz @ rx).ravel()))
    assert geometry.is_oblique()
    poly = np.array([[3.2, 2.1, 2], [25.7, 5.3, 2], [18.4, 20.6, 2], [9.1, 14.2, 2], [4.4, 19.9, 2]])
    rt = _write_rtstruct(tmp_path / "rt.dcm", {7: ("Segment VIII", [_to_lps(geometry, poly)])})
    (lm,) = read_rtstruct(rt, reference=_reference(geometry))
    expected = _mpl_mask([poly[:, :2]], (24, 30))
    assert lm.names == {7: "liver_segment_8"}
    assert expected.sum() > 100
    assert np.array_equal(lm.array[2] == 7, expected)
    assert int(lm.array.astype(bool).sum()) == int(expected.sum())


def test_overlapping_rois_go_to_separate_maps(tmp_path: Path) -> None:
    liver = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    tumour = _to_lps(GRID, _square(4.5, 6.5, 4.5, 6.5, 1))  # inside the liver
    apart = _to_lps(GRID, _square(14.5, 18.5, 14.5, 18.5, 1))  # overlaps neither
    rt = _write_rtstruct(tmp_path / "rt.dcm",
                         {1: ("Liver", [liver]), 2: ("Tumor", [tumour]), 3: ("IVC", [apart])})
    maps = read_rtstruct(rt, reference=_reference(GRID))
    assert len(maps) == 2
    assert maps[0].names == {1: "liver", 3: "inferior_vena_cava"}
    assert maps[1].names == {2: "tumor"}
    assert int((maps[0].array == 1).sum()) == 100
    assert int((maps[0].array == 3).sum()) == 16
    assert int((maps[1].array == 2).sum()) == 4


def test_empty_roi_is_a_warning(tmp_path: Path) -> None:
    liver = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [liver]), 2: ("Portal vein", [])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert lm.names == {1: "liver", 2: "portal_vein"}
    assert any("ROI 2 ('Portal vein')" in w and "empty" in w for w in lm.metadata["warnings"])


def test_partly_outside_is_clipped_with_warning(tmp_path: Path) -> None:
    c = _to_lps(GRID, _square(-5.5, 3.5, 16.5, 25.5, 0))  # centres x 0..3 (4), y 17..19 (3) inside
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [c])})
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert int(lm.array.astype(bool).sum()) == 12
    assert any("clipped" in w for w in lm.metadata["warnings"])


@pytest.mark.parametrize(
    ("z_index", "match"),
    [(1.3, r"ROI 1 \('Liver'\) contour 1 does not lie on a CT slice"),
     (5.0, r"ROI 1 \('Liver'\) contour 1 lies on slice 5, outside the CT's 3 slices")],
)
def test_contour_off_the_grid_fails(tmp_path: Path, z_index: float, match: str) -> None:
    c = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, z_index))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [c])})
    with pytest.raises(GeometryMismatchError, match=match):
        read_rtstruct(rt, reference=_reference(GRID))


def test_reference_of_another_series_fails(tmp_path: Path) -> None:
    c = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [c])})
    with pytest.raises(InputFileError, match=r"drawn on CT series 1\.2\.3\.4\.5\.6\.7, but the CT given is series 9"):
        read_rtstruct(rt, reference=_reference(GRID, series_uid="9.9"))


def test_missing_referenced_series_fails(tmp_path: Path) -> None:
    c = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [c])})
    with pytest.raises(InputFileError, match=r"referenced CT series 1\.2\.3\.4\.5\.6\.7 is not in .*--ct") as info:
        read_rtstruct(rt)
    assert "\n" not in str(info.value)


def test_open_contour_skipped_with_warning(tmp_path: Path) -> None:
    c = _to_lps(GRID, _square(2.5, 12.5, 2.5, 12.5, 1))
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [c])}, kind="OPEN_PLANAR")
    (lm,) = read_rtstruct(rt, reference=_reference(GRID))
    assert not lm.array.any()
    assert any("OPEN_PLANAR" in w for w in lm.metadata["warnings"])


def test_not_an_rtstruct(tmp_path: Path) -> None:
    rt = _write_rtstruct(tmp_path / "rt.dcm", {1: ("Liver", [])})
    ds = pydicom.dcmread(rt)
    ds.Modality = "CT"
    ds.save_as(rt)
    with pytest.raises(InputFileError, match="not an RT Structure Set"):
        read_rtstruct(rt, reference=_reference(GRID))


def test_rasterise_polygon_matches_matplotlib_on_random_polygons() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(20):
        n = int(rng.integers(3, 12))
        # Random (possibly self-intersecting) polygons; vertices avoid exact centre rows/columns.
        xy = rng.uniform(-3, 33, size=(n, 2)) + 0.123
        ours = rasterise_polygon(xy[:, 0], xy[:, 1], (30, 30))
        assert np.array_equal(ours, _mpl_mask([xy], (30, 30)))


# ----------------------------------------------------------------------------------------------
# real RTSTRUCT (rt-utils mock data)
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def rt_utils() -> Path:
    if not (RT_UTILS / "rt.dcm").is_file():
        pytest.skip(f"rt-utils mock data not found under {RT_UTILS} (see ../shared/data/SOURCES.md)")
    return RT_UTILS


def test_real_rtstruct_on_its_ct(rt_utils: Path, tmp_path: Path) -> None:
    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(rt_utils / name, ct_dir / name)
    ct = read_dicom(ct_dir)
    maps = read_rtstruct(rt_utils / "rt.dcm", reference=ct)
    found_alone = read_rtstruct(rt_utils / "rt.dcm")  # the CT found beside it; RTSTRUCTs skipped
    assert len(maps) == 1
    lm = maps[0]
    # One ROI, 'ROI-1', two closed contours on the first slice (z = 60 mm); 1443 voxels.
    assert lm.names == {1: "roi_1"}
    assert lm.metadata["rois"][1]["name"] == "ROI-1"
    assert lm.geometry.same_grid(ct.geometry)
    assert int((lm.array == 1).sum()) == 1443
    assert np.array_equal(found_alone[0].array, lm.array)
    # rt-utils writes its own FrameOfReferenceUID: a warning, since the series UID matches.
    assert any("FrameOfReferenceUID" in w for w in lm.metadata["warnings"])

    # Independent rasterisation: matplotlib even-odd on voxel centres, contour by contour.
    ds = pydicom.dcmread(rt_utils / "rt.dcm")
    inverse = np.linalg.inv(ct.geometry.affine_lps)
    expected = np.zeros(ct.geometry.shape_zyx, dtype=bool)
    for contour in ds.ROIContourSequence[0].ContourSequence:
        pts = np.array(contour.ContourData, dtype=float).reshape(-1, 3)
        idx = (inverse[:3, :3] @ pts.T).T + inverse[:3, 3]
        k = round(float(idx[0, 2]))
        expected[k] ^= _mpl_mask([idx[:, :2]], ct.geometry.shape_zyx[1:])
    assert int(expected.sum()) == 1443
    assert np.array_equal(lm.array == 1, expected)


def test_real_rtstruct_uses_the_ct_metadata_not_its_files(rt_utils: Path, tmp_path: Path) -> None:
    # The CT's identity (series, SOP instances, frame of reference) travels in its metadata: the checks
    # and the fill work with the CT files deleted after reading.
    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(rt_utils / name, ct_dir / name)
    ct = read_dicom(ct_dir)
    shutil.rmtree(ct_dir)
    (lm,) = read_rtstruct(rt_utils / "rt.dcm", reference=ct)
    assert int((lm.array == 1).sum()) == 1443
    assert any("FrameOfReferenceUID" in w for w in lm.metadata["warnings"])
    with pytest.raises(InputFileError, match=r"reference 3 image\(s\) of series 2\.16\.840\.1\.114362") as info:
        read_rtstruct(rt_utils / "invalid_reference_rt.dcm", reference=ct)
    assert "\n" not in str(info.value)


def test_real_invalid_reference_fails_in_one_line(rt_utils: Path) -> None:
    # It names the right series but contours on images (SOP instances) that are not in the folder.
    with pytest.raises(InputFileError, match=r"reference 3 image\(s\) of series 2\.16\.840\.1\.114362") as info:
        read_rtstruct(rt_utils / "invalid_reference_rt.dcm")
    assert "\n" not in str(info.value)
    assert "--ct" in str(info.value)


# ----------------------------------------------------------------------------------------------
# 3D Slicer .seg.nrrd
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def slicerio() -> Path:
    if not (SLICERIO / "Segmentation.seg.nrrd").is_file():
        pytest.skip(f"slicerio data not found under {SLICERIO} (see ../shared/data/SOURCES.md)")
    return SLICERIO


# Reference values from lassoan/slicerio, slicerio/tests/test_segmentation.py (read at commit 139cf0e):
# test_segmentation_read: 7 segments named ribs, cervical vertebral column, thoracic vertebral column,
# lumbar vertebral column, right lung, left lung, tissue; 'right lung' has labelValue 5, layer 0.
# test_extract_segments (both files): ribs 8487 voxels, right lung 34450 voxels, and 514119 background
# voxels when only those two are kept (34 * 128 * 128 = 557056 = 514119 + 8487 + 34450).
SLICERIO_NAMES = ["ribs", "cervical_vertebral_column", "thoracic_vertebral_column", "lumbar_vertebral_column",
                  "right_lung", "left_lung", "tissue"]


@pytest.mark.parametrize("name", ["Segmentation.seg.nrrd", "SegmentationOverlapping.seg.nrrd"])
def test_slicerio_segments_and_counts(slicerio: Path, name: str) -> None:
    maps = read_slicer_seg(slicerio / name)
    first = maps[0]
    assert list(first.names.values()) == SLICERIO_NAMES
    assert first.names[5] == "right_lung"
    assert first.metadata["segments"][5] == "right lung"
    assert first.scheme == "slicer-seg"
    assert first.array.shape == (34, 128, 128)
    assert int((first.array == first.ids_of("ribs")[0]).sum()) == 8487
    assert int((first.array == first.ids_of("right_lung")[0]).sum()) == 34450
    assert first.array.size - 8487 - 34450 == 514119
    # LPS geometry from the header: directions (-3.046875.., 0, 0), (0, -3.046875.., 0), (0, 0, 10).
    assert np.allclose(first.spacing_mm, (3.04687595367432, 3.04687595367432, 10.0))
    assert np.allclose(first.direction, (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    assert np.allclose(first.origin_mm, (193.09599304199222, 216.39599609374994, -340.24999999999994))
    if name == "SegmentationOverlapping.seg.nrrd":
        assert len(maps) == 2
        assert maps[1].names == {1: "overlapping_sphere"}
        assert maps[1].array.any()
        # the sphere overlaps segments of layer 0
        assert np.any(first.array[maps[1].array == 1] > 0)
    else:
        assert len(maps) == 1


@pytest.mark.parametrize("name", ["Segmentation.seg.nrrd", "SegmentationOverlapping.seg.nrrd"])
def test_slicerio_matches_simpleitk(slicerio: Path, name: str) -> None:
    # ITK's NRRD reader is the independent truth: a 4-D .seg.nrrd is a vector image there, one component
    # per layer
    import SimpleITK as sitk

    theirs = sitk.ReadImage(str(slicerio / name))
    expected = sitk.GetArrayFromImage(theirs)
    expected = expected if expected.ndim == 4 else expected[..., None]  # (z, y, x, layer)
    maps = read_slicer_seg(slicerio / name)
    assert len(maps) == expected.shape[3]
    for layer, lm in enumerate(maps):
        np.testing.assert_array_equal(lm.array, expected[..., layer])
        np.testing.assert_allclose(lm.spacing_mm, theirs.GetSpacing(), atol=1e-9)
        np.testing.assert_allclose(lm.origin_mm, theirs.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(lm.direction, theirs.GetDirection(), atol=1e-9)


def _write_seg_nrrd(path: Path, volume_lzyx: np.ndarray, *, space: str, directions: str, origin: str,
                    segments: list[tuple[str, int, int]]) -> Path:
    layers, nz, ny, nx = volume_lzyx.shape
    data = np.moveaxis(volume_lzyx, 0, -1).astype(np.uint8)  # (z, y, x, layer): layer fastest
    lines = ["NRRD0004", "type: unsigned char"]
    if layers > 1:
        lines += ["dimension: 4", f"sizes: {layers} {nx} {ny} {nz}", f"space directions: none {directions}",
                  "kinds: list domain domain domain"]
    else:
        lines += ["dimension: 3", f"sizes: {nx} {ny} {nz}", f"space directions: {directions}",
                  "kinds: domain domain domain"]
    lines += [f"space: {space}", "encoding: gzip", f"space origin: {origin}"]
    for i, (name, label, layer) in enumerate(segments):
        lines += [f"Segment{i}_Name:={name}", f"Segment{i}_LabelValue:={label}", f"Segment{i}_Layer:={layer}"]
    path.write_bytes(("\n".join(lines) + "\n\n").encode() + gzip.compress(data.tobytes()))
    return path


def test_ras_space_is_converted_to_lps(tmp_path: Path) -> None:
    volume = np.zeros((2, 3, 4, 5), dtype=np.uint8)
    volume[0, 1, 2, 3] = 1
    volume[1, 1, 2, 3] = 2
    volume[1, 0, 0, 0] = 2
    path = _write_seg_nrrd(tmp_path / "s.seg.nrrd", volume, space="right-anterior-superior",
                           directions="(0.5,0,0) (0,0.75,0) (0,0,2)", origin="(10,20,30)",
                           segments=[("Liver", 1, 0), ("Segment 4a", 2, 1)])
    lpsmaps = read_slicer_seg(path)
    assert [m.names for m in lpsmaps] == [{1: "liver"}, {2: "liver_segment_4a"}]
    g = lpsmaps[0].geometry
    assert np.allclose(g.origin_mm, (-10, -20, 30))
    assert np.allclose(g.spacing_mm, (0.5, 0.75, 2))
    assert np.allclose(g.direction, (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    # voxel (z, y, x) = (1, 2, 3) lies at RAS (10 + 1.5, 20 + 1.5, 30 + 2) = LPS (-11.5, -21.5, 32)
    assert np.allclose(g.index_to_lps_mm((1, 2, 3)), (-11.5, -21.5, 32))
    assert lpsmaps[0].array[1, 2, 3] == 1
    assert int((lpsmaps[1].array == 2).sum()) == 2


def test_seg_nrrd_errors(tmp_path: Path) -> None:
    volume = np.zeros((1, 2, 2, 2), dtype=np.uint8)
    bad_space = _write_seg_nrrd(tmp_path / "a.seg.nrrd", volume, space="scanner-xyz",
                                directions="(1,0,0) (0,1,0) (0,0,1)", origin="(0,0,0)", segments=[("liver", 1, 0)])
    with pytest.raises(InputFileError, match="scanner-xyz"):
        read_slicer_seg(bad_space)
    no_segments = _write_seg_nrrd(tmp_path / "b.seg.nrrd", volume, space="left-posterior-superior",
                                  directions="(1,0,0) (0,1,0) (0,0,1)", origin="(0,0,0)", segments=[])
    with pytest.raises(InputFileError, match="no SegmentN_Name"):
        read_slicer_seg(no_segments)
    not_nrrd = tmp_path / "c.seg.nrrd"
    not_nrrd.write_bytes(b"hello")
    with pytest.raises(InputFileError, match="not a NRRD"):
        read_slicer_seg(not_nrrd)
