"""DICOM Segmentation objects (SEG): read them into label maps, write a label map as one.

Reading (:func:`read_dicom_seg`)
--------------------------------
* BINARY, FRACTIONAL and LABELMAP segmentations (the SOP classes 1.2.840.10008.5.1.4.1.1.66.4 and
  .66.7), parsed and decoded by highdicom (:class:`highdicom.seg.Segmentation`). Frames are placed by
  their ImagePositionPatient, never by frame order: highdicom stacks them along the slice normal
  (``Segmentation.get_volume``) on the grid of SpacingBetweenSlices (else of the smallest gap between
  positions), positions within 0.01 mm of that grid; frames left out because they were empty are fine.
* With ``reference`` (a CT read by :func:`flr.io.dicom.read_dicom`) the frames go onto its grid: the
  SEG's FrameOfReferenceUID must equal ``reference.metadata['frame_of_reference_uid']`` (unchecked when
  the reference has none, e.g. a NIfTI CT; the CT's files are not opened again), the row/column
  cosines must equal the reference's x/y directions (within 1e-4), the pixel spacing and matrix size
  must match, and every slice of the stack must lie within 0.01 mm of a slice of the reference.
  Frames that highdicom cannot stack (a frame off the regular grid; or, without SpacingBetweenSlices,
  gaps that are not multiples of the smallest one, e.g. frames on CT slices 1, 4 and 6) are placed one
  by one from their functional groups instead, each within 0.01 mm of a reference slice.
* Without a reference the grid is highdicom's stack, its z axis along row x column cosine and its
  origin at the lowest frame; the z spacing of a single frame is SpacingBetweenSlices, else
  SliceThickness, else 1 mm. Frames that do not form a regular stack are refused.
* A FRACTIONAL frame value ``v`` counts as inside when ``v >= 0.5 * MaximumFractionalValue``.
* Segment names: ``canonical_name(SegmentLabel)`` when that is one of flr's canonical names, else the
  name coded by SegmentedPropertyTypeCodeSequence (:data:`CODED_NAMES`, SNOMED CT and its legacy
  SRT codes), else the normalised label (lower case, words joined by ``_``). Nothing is dropped.
* Segments may overlap in a SEG but not in a label map, so segments are packed greedily (in segment
  number order) into as few :class:`~flr.image.LabelMap` s as possible such that no two segments of a
  map share a voxel. Label ids are the segment numbers, ``scheme`` is ``"dicom-seg"``, the array is
  uint8 (uint16 for segment numbers above 255). A segment without voxels is kept (in the first map
  where it fits) and reported in ``metadata['warnings']``. A LABELMAP SEG's segment 0 (background)
  becomes label 0. Segments are read one at a time, so memory grows with the maps, not the segments.

Writing (:func:`write_dicom_seg`) builds a BINARY SEG with highdicom that references the slices of the
CT it was drawn on, identified by the CT's metadata (SOPInstanceUIDs and positions per slice, study,
series and frame-of-reference UIDs). The Patient and Study modules, which never enter metadata, come
from the header of one CT file (:func:`flr.io.dicom.read_series_header`): this object carries the
patient's identifiers by design, so it files under the same patient as its CT.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.valuerep import format_number_as_ds

from flr.anatomy import SEGMENTS
from flr.errors import FlrError, GeometryMismatchError, InputFileError, quote
from flr.image import ORIENTATION_TOL, POSITION_TOL_MM, SPACING_TOL_MM, Geometry, Image, LabelMap
from flr.io._common import atomic_path, one_line, quiet_pydicom
from flr.schemes import CANONICAL_NAMES, canonical_name, normalise_name

__all__ = ["CODED_NAMES", "FRACTIONAL_THRESHOLD", "read_dicom_seg", "write_dicom_seg"]

SEG_SOP_CLASS_UIDS: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    }
)
#: Frame positions must lie within :data:`flr.image.POSITION_TOL_MM` of a slice of the target grid;
#: orientation and pixel spacing agree within :data:`flr.image.ORIENTATION_TOL` and SPACING_TOL_MM.
PIXEL_SPACING_TOL_MM = SPACING_TOL_MM
#: A FRACTIONAL value counts as inside at or above this fraction of MaximumFractionalValue.
FRACTIONAL_THRESHOLD = 0.5

#: (coding scheme, code value) of SegmentedPropertyType -> canonical flr name. SNOMED CT codes as in
#: pydicom's DICOM code dictionary (``pydicom.sr.codedict.codes.SCT``); SRT = the legacy SNOMED RT
#: codes that older SEGs (e.g. dcmqi's) carry.
CODED_NAMES: dict[tuple[str, str], str] = {
    ("SCT", "10200004"): "liver",
    ("SRT", "T-62000"): "liver",
    ("SCT", "108369006"): "tumor",  # Neoplasm
    ("SRT", "M-80003"): "tumor",
    ("SCT", "86049000"): "tumor",  # Malignant neoplasm, primary
    ("SCT", "14799000"): "tumor",  # Neoplasm, metastatic
    ("SCT", "4147007"): "tumor",  # Mass
    ("SCT", "32764006"): "portal_vein",
    ("SCT", "8993003"): "hepatic_vein",
    ("SCT", "64131007"): "inferior_vena_cava",
    ("SCT", "76015000"): "hepatic_artery",
    ("SCT", "28273000"): "bile_duct",
    # Couinaud segments, from the anatomy registry (one place spells them)
    **{("SCT", seg.snomed): seg.name for seg in SEGMENTS if seg.snomed},
}

# name -> (category (value, meaning), type (value, meaning)), all SNOMED CT ("SCT").
_ANATOMY = ("91723000", "Anatomical Structure")
_ABNORMAL = ("49755003", "Morphologically Abnormal Structure")
_TISSUE = ("85756007", "Tissue")
_WRITE_CODES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "liver": (_ANATOMY, ("10200004", "Liver")),
    "tumor": (_ABNORMAL, ("108369006", "Neoplasm")),
    "portal_vein": (_ANATOMY, ("32764006", "Portal vein")),
    "hepatic_vein": (_ANATOMY, ("8993003", "Hepatic vein")),
    "inferior_vena_cava": (_ANATOMY, ("64131007", "Inferior vena cava")),
    "hepatic_artery": (_ANATOMY, ("76015000", "Hepatic artery")),
    "bile_duct": (_ANATOMY, ("28273000", "Bile duct")),
    **{seg.name: (_ANATOMY, (seg.snomed, f"Couinaud hepatic segment {seg.roman}")) for seg in SEGMENTS if seg.snomed},
}


# ----------------------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Segment:
    number: int
    label: str
    name: str


@dataclass(frozen=True)
class _Layout:
    """Where the frames go: onto ``geometry``, slice ``slices[i]`` for stack slice (or frame) ``i``."""

    geometry: Geometry
    slices: np.ndarray  # output z index of each slice of highdicom's stack (stacked) or of each frame
    against_normal: bool = False  # highdicom's stack runs against row x column: reverse it
    frames: np.ndarray | None = None  # per-frame path only: stored frames (n, rows, columns)
    frame_segments: np.ndarray | None = None  # per-frame path only: segment number of each frame (not LABELMAP)


def _item(ds: Dataset, seq: str, index: int | None) -> Dataset | None:
    """The first item of ``seq`` in frame ``index``'s per-frame groups, else the shared groups."""
    groups = []
    if index is not None and "PerFrameFunctionalGroupsSequence" in ds:
        groups.append(ds.PerFrameFunctionalGroupsSequence[index])
    if "SharedFunctionalGroupsSequence" in ds:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for g in groups:
        if seq in g and len(g[seq].value) > 0:
            return g[seq][0]
    return None


def _segment_name(seg_item: Dataset) -> str:
    label = str(seg_item.get("SegmentLabel", "") or "")
    by_label = canonical_name(label) if label.strip() else ""
    if by_label in CANONICAL_NAMES:
        return by_label
    codes = seg_item.get("SegmentedPropertyTypeCodeSequence") or []
    for code in codes:
        key = (str(code.get("CodingSchemeDesignator", "")), str(code.get("CodeValue", "")))
        if key in CODED_NAMES:
            return CODED_NAMES[key]
    if by_label:
        return by_label
    for code in codes:
        meaning = normalise_name(str(code.get("CodeMeaning", "")))
        if meaning:
            return canonical_name(meaning)
    return f"segment_{int(seg_item.SegmentNumber)}"


def _read_seg(path: Path) -> hd.seg.Segmentation:
    from flr.io.dicom import DICOM_PARSE_ERRORS, check_pixel_data

    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise InputFileError(f"{path}: not a DICOM file ({one_line(exc)})") from None
    except DICOM_PARSE_ERRORS as exc:
        raise InputFileError(f"{path}: corrupted DICOM file ({type(exc).__name__}: {one_line(exc)})") from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(
            f"{path}: not a DICOM Segmentation (SOP class {sop or 'missing'}, modality "
            f"{ds.get('Modality', 'missing')}); read images with flr.io.dicom.read_dicom"
        )
    if "PixelData" not in ds:  # the last element: a truncated file loses it first
        raise InputFileError(f"{path}: corrupted DICOM-SEG: no pixel data (truncated file?)")
    try:
        with quiet_pydicom():
            check_pixel_data(path, ds, str(getattr(ds.get("file_meta"), "TransferSyntaxUID", "") or "") or None)
            return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except FlrError:
        raise
    except DICOM_PARSE_ERRORS as exc:
        raise InputFileError(f"{path}: corrupted DICOM-SEG ({type(exc).__name__}: {one_line(exc)})") from None


def _segments(path: Path, seg: hd.seg.Segmentation, seg_type: str) -> dict[int, _Segment]:
    segments: dict[int, _Segment] = {}
    for i, item in enumerate(seg.get("SegmentSequence") or []):
        try:
            number = int(item.get("SegmentNumber"))
        except (TypeError, ValueError, OverflowError):
            raise InputFileError(f"{path}: SegmentSequence item {i + 1} has no integer SegmentNumber "
                                 f"(got {quote(item.get('SegmentNumber'))})") from None
        if number == 0 and seg_type == "LABELMAP":
            continue  # the background segment that LABELMAP SEGs may describe: label 0 in flr
        segments[number] = _Segment(number, str(item.get("SegmentLabel", "")), _segment_name(item))
    if not segments:
        raise InputFileError(f"{path}: DICOM-SEG has no SegmentSequence")
    return segments


def read_dicom_seg(path: Path | str, *, reference: Image | None = None) -> list[LabelMap]:
    """Read a DICOM Segmentation as label maps (segments that share voxels go to different maps).

    Parameters
    ----------
    path
        The SEG file.
    reference
        The CT the SEG was drawn on; the maps then lie on its grid (see the module docstring for the
        checks). Without it the grid is built from the SEG's frames.

    Returns
    -------
    list of LabelMap
        Arrays (z, y, x), spacing and origin in mm (LPS); ids = segment numbers, ``names`` = canonical
        (or normalised) segment names, ``scheme="dicom-seg"``. ``metadata`` holds ``sop_instance_uid``,
        ``series_instance_uid``, ``frame_of_reference_uid``, ``segmentation_type``,
        ``fractional_threshold``, ``segments`` ({number: {label, name}}),
        ``referenced_series_instance_uids`` and ``warnings``.

    Raises
    ------
    InputFileError
        Missing, corrupt or not a SEG; malformed geometry; frames off a regular grid (no reference).
    GeometryMismatchError
        Another frame of reference than the reference's (both UIDs named), another orientation,
        pixel spacing or matrix, or frames off the reference grid.
    """
    path = Path(path)
    seg = _read_seg(path)
    seg_type = str(seg.get("SegmentationType", "BINARY")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise InputFileError(f"{path}: unknown SegmentationType {quote(seg_type)} (BINARY, FRACTIONAL, LABELMAP)")
    segments = _segments(path, seg, seg_type)
    layout = _layout(path, seg, seg_type, reference)
    threshold = FRACTIONAL_THRESHOLD * (float(seg.get("MaximumFractionalValue", 255) or 255)
                                        if seg_type == "FRACTIONAL" else 1.0)
    masks = ((n, _segment_mask(path, seg, n, layout, threshold)) for n in sorted(segments))
    maps, notes = _pack(path, segments, masks, layout.geometry.shape_zyx)
    metadata: dict[str, Any] = {
        "sop_instance_uid": str(seg.get("SOPInstanceUID", "")),
        "series_instance_uid": str(seg.get("SeriesInstanceUID", "")),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "") or ""),
        "segmentation_type": seg_type,
        "fractional_threshold": FRACTIONAL_THRESHOLD if seg_type == "FRACTIONAL" else None,
        "segments": {s.number: {"label": s.label, "name": s.name} for s in segments.values()},
        "referenced_series_instance_uids": sorted(
            str(r.get("SeriesInstanceUID", "")) for r in seg.get("ReferencedSeriesSequence") or []
        ),
        "warnings": notes,
    }
    return [LabelMap(array, layout.geometry, source=str(path), metadata=metadata,
                     names={i: segments[i].name for i in ids}, scheme="dicom-seg") for array, ids in maps]


def _layout(path: Path, seg: hd.seg.Segmentation, seg_type: str, reference: Image | None) -> _Layout:
    """Where the frames go (:func:`_onto_reference` or :func:`_own_grid`); a damaged attribute that highdicom
    or pydicom fail to convert on the way is refused naming the file."""
    from flr.io.dicom import DICOM_PARSE_ERRORS

    try:
        with quiet_pydicom():
            return _onto_reference(path, seg, seg_type, reference) if reference is not None else _own_grid(path, seg)
    except FlrError:
        raise
    except DICOM_PARSE_ERRORS as exc:
        raise InputFileError(f"{path}: corrupted DICOM-SEG geometry ({type(exc).__name__}: {one_line(exc)})") from None


def _stack_geometry(seg: hd.seg.Segmentation) -> hd.VolumeGeometry | None:
    """highdicom's regular stack of all frames (None when the frame positions do not form one)."""
    with quiet_pydicom():
        return seg.get_volume_geometry(atol=POSITION_TOL_MM, allow_missing_positions=True)


def _single_frame_spacing_mm(seg: hd.seg.Segmentation) -> float:
    """z spacing of a single-position SEG: SpacingBetweenSlices, else SliceThickness, else 1 mm."""
    measures = _item(seg, "PixelMeasuresSequence", 0)
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = (measures.get(key) if measures is not None else None) or seg.get(key)
        if value is not None and float(value) > 0:
            return float(value)
    return 1.0


def _grid_of_stack(path: Path, seg: hd.seg.Segmentation, stack: hd.VolumeGeometry) -> tuple[Geometry, bool]:
    """(flr grid of highdicom's stack with z along row x column, whether the stack runs against it)."""
    a = stack.affine  # maps (slice, row, column) indices to LPS mm
    x_step, y_step, z_step = a[:3, 2], a[:3, 1], a[:3, 0]
    n = stack.spatial_shape[0]
    against = float(z_step @ np.cross(x_step, y_step)) < 0
    origin = a[:3, 3] + (n - 1) * z_step if against else a[:3, 3]
    z_step = -z_step if against else z_step
    if n == 1:  # highdicom takes 1 mm without SpacingBetweenSlices; flr falls back on SliceThickness first
        z_step = z_step / np.linalg.norm(z_step) * _single_frame_spacing_mm(seg)
    columns = np.column_stack([x_step, y_step, z_step])
    spacing = np.linalg.norm(columns, axis=0)
    try:
        geometry = Geometry(stack.spatial_shape, tuple(spacing), tuple(origin), tuple((columns / spacing).ravel()))
    except ValueError as exc:
        raise InputFileError(f"{path}: DICOM-SEG geometry is malformed ({one_line(exc)})") from None
    return geometry, against


def _own_grid(path: Path, seg: hd.seg.Segmentation) -> _Layout:
    stack = _stack_geometry(seg)
    if stack is None:
        raise InputFileError(f"{path}: DICOM-SEG frame positions are not on a regular grid (highdicom cannot "
                             f"stack them within {POSITION_TOL_MM} mm); read it with a reference CT")
    geometry, against = _grid_of_stack(path, seg, stack)
    return _Layout(geometry, np.arange(geometry.shape_zyx[0]), against)


def _check_plane(path: Path, row: np.ndarray, col: np.ndarray, spacing_xy: tuple[float, float],
                 size_rc: tuple[int, int], geom: Geometry) -> None:
    """Orientation, pixel spacing (mm) and matrix of the SEG's frames against the reference grid."""
    d = geom.direction_matrix
    if not (np.allclose(d[:, 0], row, atol=ORIENTATION_TOL) and np.allclose(d[:, 1], col, atol=ORIENTATION_TOL)):
        raise GeometryMismatchError(
            f"{path}: DICOM-SEG orientation (row {row.tolist()}, column {col.tolist()}) differs from the "
            f"reference's x/y directions ({d[:, 0].tolist()}, {d[:, 1].tolist()})"
        )
    if np.max(np.abs(np.subtract(spacing_xy, geom.spacing_mm[:2]))) > PIXEL_SPACING_TOL_MM or size_rc != tuple(
        geom.shape_zyx[1:]
    ):
        raise GeometryMismatchError(
            f"{path}: DICOM-SEG frames are {size_rc[0]}x{size_rc[1]} pixels of {spacing_xy} mm (x, y), the "
            f"reference's slices {geom.shape_zyx[1]}x{geom.shape_zyx[2]} of {geom.spacing_mm[:2]} mm"
        )


def _reference_slices(path: Path, positions: np.ndarray, geom: Geometry, what: str) -> np.ndarray:
    """z index on ``geom`` of each position (n, 3) in LPS mm; each must lie on a slice within 0.01 mm."""
    inv = np.linalg.inv(geom.affine_lps[:3, :3])
    idx = (positions - np.asarray(geom.origin_mm)) @ inv.T  # (n, 3) continuous (x, y, z) indices
    k = np.rint(idx[:, 2]).astype(int)
    snapped = np.column_stack([np.zeros_like(k), np.zeros_like(k), k]) @ geom.affine_lps[:3, :3].T + geom.origin_mm
    err = np.linalg.norm(positions - snapped, axis=1)
    bad = np.flatnonzero((err > POSITION_TOL_MM) | (k < 0) | (k >= geom.shape_zyx[0]))
    if bad.size:
        f = int(bad[0])
        raise GeometryMismatchError(
            f"{path}: {bad.size} DICOM-SEG {what}(s) lie off the reference grid, e.g. {what} {f + 1} at "
            f"{positions[f].round(3).tolist()} mm is {err[f]:.3g} mm from slice {int(k[f])} (tolerance "
            f"{POSITION_TOL_MM} mm) of {geom.describe()}"
        )
    return k


def _onto_reference(path: Path, seg: hd.seg.Segmentation, seg_type: str, reference: Image) -> _Layout:
    geom = reference.geometry
    seg_for = str(seg.get("FrameOfReferenceUID", "") or "")
    ref_for = reference.metadata.get("frame_of_reference_uid")
    if ref_for and seg_for != str(ref_for):
        raise GeometryMismatchError(
            f"{path}: DICOM-SEG FrameOfReferenceUID {seg_for or 'missing'} differs from the reference "
            f"{reference.source}'s FrameOfReferenceUID {ref_for}; it was not drawn on this CT"
        )
    stack = _stack_geometry(seg)
    if stack is not None:
        grid, against = _grid_of_stack(path, seg, stack)
        d = grid.direction_matrix
        _check_plane(path, d[:, 0], d[:, 1], grid.spacing_mm[:2], grid.shape_zyx[1:], geom)
        positions = np.array([grid.index_to_lps_mm((z, 0, 0)) for z in range(grid.shape_zyx[0])])
        return _Layout(geom, _reference_slices(path, positions, geom, "slice"), against)
    return _frames_onto_reference(path, seg, seg_type, geom)


def _floats(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    try:
        out = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        out = np.asarray([])
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise InputFileError(f"{path}: DICOM-SEG {what} is missing or malformed: {one_line(value)}")
    return out


def _frames_onto_reference(path: Path, seg: hd.seg.Segmentation, seg_type: str, geom: Geometry) -> _Layout:
    """Place the frames one by one by their own ImagePositionPatient (pydicom functional groups).

    Kept for the one case highdicom 0.28 cannot serve: frames that each lie on a reference slice but do
    not form a regular stack by highdicom's rule (no SpacingBetweenSlices and gaps that are not
    multiples of the smallest, e.g. frames on slices 1, 4 and 6); ``get_volume`` takes no spacing hint,
    while the reference's slices are known here. It also names the frame that lies off the grid.
    """
    n_frames = int(seg.get("NumberOfFrames", 1) or 1)
    orient = _item(seg, "PlaneOrientationSequence", 0)
    measures = _item(seg, "PixelMeasuresSequence", 0)
    if orient is None or measures is None:
        raise InputFileError(f"{path}: DICOM-SEG lacks PlaneOrientationSequence or PixelMeasuresSequence")
    iop = _floats(orient.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    sy, sx = _floats(measures.get("PixelSpacing"), 2, "PixelSpacing", path)
    _check_plane(path, iop[:3], iop[3:], (sx, sy), (int(seg.Rows), int(seg.Columns)), geom)
    positions = np.empty((n_frames, 3))
    frame_segments = np.zeros(n_frames, dtype=int)
    for f in range(n_frames):
        pos = _item(seg, "PlanePositionSequence", f)
        ident = _item(seg, "SegmentIdentificationSequence", f)
        if pos is None or (ident is None and seg_type != "LABELMAP"):
            raise InputFileError(f"{path}: frame {f + 1} has no PlanePositionSequence or "
                                 "SegmentIdentificationSequence")
        positions[f] = _floats(pos.get("ImagePositionPatient"), 3, f"frame {f + 1} ImagePositionPatient", path)
        frame_segments[f] = int(ident.ReferencedSegmentNumber) if ident is not None else 0
    slices = _reference_slices(path, positions, geom, "frame")
    try:
        with quiet_pydicom():
            frames = np.asarray(seg.pixel_array).reshape(n_frames, int(seg.Rows), int(seg.Columns))
    except Exception as exc:  # decoder errors come as many types (ValueError, RuntimeError, ...)
        raise InputFileError(f"{path}: corrupted DICOM-SEG pixel data ({type(exc).__name__}: {one_line(exc)})"
                             ) from exc
    return _Layout(geom, slices, frames=frames, frame_segments=frame_segments if seg_type != "LABELMAP" else None)


def _segment_mask(path: Path, seg: hd.seg.Segmentation, number: int, layout: _Layout,
                  threshold: float) -> np.ndarray:
    """Boolean mask (z, y, x) of segment ``number`` on the layout's grid: stored value >= ``threshold``."""
    out = np.zeros(layout.geometry.shape_zyx, dtype=bool)
    if layout.frames is not None:  # per-frame path
        if layout.frame_segments is None:  # LABELMAP: the frame's values are segment numbers
            out[layout.slices] = layout.frames == number
        else:
            mine = layout.frame_segments == number
            out[layout.slices[mine]] = layout.frames[mine] >= threshold
        return out
    try:
        with quiet_pydicom():
            volume = seg.get_volume(segment_numbers=[number], combine_segments=False, rescale_fractional=False,
                                    allow_missing_positions=True, atol=POSITION_TOL_MM)
    except Exception as exc:  # decoder errors come as many types (ValueError, RuntimeError, ...)
        raise InputFileError(f"{path}: corrupted DICOM-SEG pixel data of segment {number} "
                             f"({type(exc).__name__}: {one_line(exc)})") from exc
    stacked = volume.array[..., 0]
    out[layout.slices] = (stacked[::-1] if layout.against_normal else stacked) >= threshold
    return out


def _pack(
    path: Path,
    segments: Mapping[int, _Segment],
    masks: Iterator[tuple[int, np.ndarray]],
    shape_zyx: tuple[int, int, int],
) -> tuple[list[tuple[np.ndarray, list[int]]], list[str]]:
    """First-fit packing of (segment number, mask (z, y, x)) into label maps whose segments never overlap."""
    dtype = np.uint8 if max(segments) <= 255 else np.uint16
    maps: list[tuple[np.ndarray, list[int]]] = []
    notes: list[str] = []
    for number, mask in masks:
        if not mask.any():
            notes.append(f"{path}: segment {number} ({quote(segments[number].label)}) has no voxels (kept, empty)")
        for array, ids in maps:  # noqa: B007 - the loop's last values are used after the break
            if not np.any(array[mask]):
                break
        else:
            array, ids = np.zeros(shape_zyx, dtype=dtype), []
            maps.append((array, ids))
        array[mask] = number
        ids.append(number)
    return maps, notes


# ----------------------------------------------------------------------------------------------
# writer
# ----------------------------------------------------------------------------------------------
#: Type 2 attributes of the Patient and Study modules that highdicom copies from the CT into the SEG; a CT
#: that lacks one gets it empty (type 2: present, may be empty), as DICOM allows.
_TYPE_2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                  "StudyDate", "StudyTime", "ReferringPhysicianName")
_META_KEYS = {"StudyInstanceUID": "study_instance_uid", "SeriesInstanceUID": "series_instance_uid",
              "FrameOfReferenceUID": "frame_of_reference_uid"}


def _source_datasets(label_map: LabelMap, reference: Image) -> list[Dataset]:
    """Header-only datasets of the reference's slices in z order, for highdicom to reference.

    Per-slice identity (SOPInstanceUID, ImagePositionPatient) and the study, series and frame-of-reference
    UIDs come from the reference's metadata; all other attributes (Patient and Study modules, SOP class,
    orientation, pixel spacing, lossy-compression flags) from one header of the series.
    """
    from flr.io.dicom import read_series_header

    meta = reference.metadata
    nz = reference.geometry.shape_zyx[0]
    uids = [str(u) for u in meta.get("sop_instance_uids") or []]
    positions = meta.get("image_positions_mm") or []
    if meta.get("resampled"):
        raise InputFileError(f"{reference.source}: the CT was resampled when it was read ({meta['resampled']}); "
                             "its slices are not DICOM instances a DICOM-SEG can reference")
    if len(uids) != nz or len(set(uids)) != nz or len(positions) != nz:
        raise InputFileError(f"{reference.source}: a DICOM-SEG needs a CT read by flr.io.dicom.read_dicom with one "
                             f"single-frame instance per slice; metadata names {len(set(uids))} instance(s) for "
                             f"{nz} slices")
    reference.geometry.require_same_grid(label_map.geometry, this=f"CT {reference.source}",
                                         that=f"label map {label_map.source}")
    template = _completed_header(read_series_header(reference), reference)
    out = []
    for uid, position in zip(uids, positions, strict=True):
        ds = copy.deepcopy(template)
        ds.SOPInstanceUID = uid
        ds.ImagePositionPatient = [format_number_as_ds(float(v)) for v in position]
        for keyword, key in _META_KEYS.items():
            setattr(ds, keyword, str(meta.get(key) or template.get(keyword)))
        out.append(ds)
    return out


def _completed_header(template: Dataset, reference: Image) -> Dataset:
    """The CT header ``template`` with what highdicom needs and real exports may lack filled in.

    Absent type 2 attributes that highdicom copies (:data:`_TYPE_2_COPIED`) become empty, an absent or
    empty SliceThickness becomes the CT's z spacing; an empty SpecificCharacterSet is removed (it means
    the default repertoire, and highdicom refuses the empty value). The study, series and frame-of-reference
    UIDs cannot be made up: a CT without them is refused.
    """
    meta = reference.metadata
    if "SpecificCharacterSet" in template and not template.SpecificCharacterSet:
        del template.SpecificCharacterSet
    for keyword in _TYPE_2_COPIED:
        if keyword not in template or template[keyword].value is None:
            setattr(template, keyword, "")
    if not str(template.get("SliceThickness", "") or "").strip():
        template.SliceThickness = format_number_as_ds(float(reference.geometry.spacing_mm[2]))
    missing = [k for k, key in _META_KEYS.items() if not str(meta.get(key) or template.get(k, "") or "").strip()]
    if missing:
        raise InputFileError(f"{reference.source}: the CT has no {' or '.join(missing)} (an anonymised export?); a "
                             "DICOM-SEG must reference the CT by them, so none can be written for it")
    return template


def _segment_descriptions(label_map: LabelMap, ids: list[int], segment_names: Mapping[int, str] | None,
                          algorithm_type: str) -> list[hd.seg.SegmentDescription]:
    """Segment n = the n-th label id of ``ids``; labels and SNOMED CT codes as :func:`write_dicom_seg` says."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    import flr

    names = {**label_map.names, **(dict(segment_names or {}))}
    family = codes.cid7162.ManualProcessing if algorithm_type == "MANUAL" else codes.cid7162.MorphologicalOperations
    algorithm = hd.AlgorithmIdentificationSequence(name="flr", family=family, version=str(flr.__version__))
    descriptions = []
    for number, label_id in enumerate(ids, start=1):
        label = str(names.get(label_id, f"label_{label_id}"))
        category, kind = _WRITE_CODES.get(canonical_name(label), (_TISSUE, _TISSUE))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label[:64],
                segmented_property_category=Code(category[0], "SCT", category[1]),
                segmented_property_type=Code(kind[0], "SCT", kind[1]),
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
            )
        )
    return descriptions


def write_dicom_seg(
    label_map: LabelMap,
    path: Path | str,
    *,
    reference: Image,
    segment_names: Mapping[int, str] | None = None,
    series_description: str = "flr plan",
    algorithm_type: str = "SEMIAUTOMATIC",
) -> Path:
    """Write ``label_map`` as a BINARY DICOM-SEG referencing the slices of the CT ``reference``.

    ``reference`` is the CT read by :func:`flr.io.dicom.read_dicom` (not resampled, one single-frame
    instance per slice) and ``label_map`` must lie on its grid. One segment per non-zero label id
    present in the map, in ascending id order, numbered 1..N (DICOM requires consecutive segment
    numbers; ids that already are 1..N are kept as they are). SegmentLabel is ``segment_names[id]``,
    else ``label_map.names[id]``, else ``label_<id>``; SegmentedPropertyCategory/Type are SNOMED CT
    codes for flr's canonical names where known (liver, tumor, vessels), else the generic
    "Tissue"/"Tissue". Algorithm: ``algorithm_type`` (``"SEMIAUTOMATIC"`` or ``"MANUAL"``) named "flr".
    Empty frames are left out; SpacingBetweenSlices is the CT's z spacing (mm), so that readers can stack
    the frames that remain. Written through a temporary file and ``os.replace``: never half-written.

    Raises
    ------
    GeometryMismatchError
        The label map is not on the grid of the reference.
    InputFileError
        A reference that is not a DICOM series read by flr (or was resampled), a missing output folder,
        or a label map without labels.
    """
    import flr

    path = Path(path)
    if not path.parent.is_dir():
        raise InputFileError(f"{path}: output folder {path.parent} does not exist")
    if algorithm_type not in ("SEMIAUTOMATIC", "MANUAL"):
        raise ValueError(f"algorithm_type must be 'SEMIAUTOMATIC' or 'MANUAL', got {algorithm_type!r}")
    sources = _source_datasets(label_map, reference)
    ids = [int(i) for i in np.unique(label_map.array) if i != 0]
    if not ids:
        raise InputFileError(f"{path}: label map {label_map.source} has no labels to write")
    lut = np.zeros(int(label_map.array.max()) + 1, dtype=np.uint16)
    lut[ids] = np.arange(1, len(ids) + 1)
    dz = reference.geometry.spacing_mm[2]
    # SpacingBetweenSlices (absent from most CT headers) lets readers stack the frames left out as empty
    measures = hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in sources[0].PixelSpacing],
                                        slice_thickness=float(sources[0].get("SliceThickness") or dz),
                                        spacing_between_slices=dz)
    with quiet_pydicom():
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=lut[label_map.array],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=_segment_descriptions(label_map, ids, segment_names, algorithm_type),
            series_instance_uid=hd.UID(),
            series_number=int(sources[0].get("SeriesNumber", 0) or 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="flr",
            manufacturer_model_name="flr",
            software_versions=str(flr.__version__),
            device_serial_number="none",
            series_description=series_description,
            omit_empty_frames=True,
            pixel_measures=measures,
        )
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path
