"""DICOM Segmentation objects (SEG): read them into label maps, write a label map as one.

Reading (:func:`read_dicom_seg`)
--------------------------------
* BINARY, FRACTIONAL and LABELMAP segmentations (the SOP classes 1.2.840.10008.5.1.4.1.1.66.4 and
  .66.7). Frames are placed by their ImagePositionPatient (PlanePositionSequence of the per-frame or
  shared functional groups), never by frame order.
* With ``reference`` (a CT read by :func:`flr.io.dicom.read_dicom`) the frames go onto its grid: the
  SEG's FrameOfReferenceUID must equal the reference's (``metadata['frame_of_reference_uid']``, else
  read from the first of ``metadata['files']``; unchecked when neither exists), the row/column
  cosines must equal the reference's x/y directions (within 1e-4), the pixel spacing and matrix size
  must match, and each frame's position must lie within 0.01 mm of a slice of the reference.
  Without a reference the grid is built from the frames: orientation and pixel spacing from the
  functional groups, origin at the lowest frame position along the slice normal, z spacing the
  smallest gap between distinct frame positions (every position must lie within 0.01 mm of that
  regular grid; a single position takes SpacingBetweenSlices, else SliceThickness, else 1 mm).
* A FRACTIONAL frame value ``v`` counts as inside when ``v >= 0.5 * MaximumFractionalValue``.
* Segment names: ``canonical_name(SegmentLabel)`` when that is one of flr's canonical names, else the
  name coded by SegmentedPropertyTypeCodeSequence (:data:`CODED_NAMES`, SNOMED CT and its legacy
  SRT codes), else the normalised label (lower case, words joined by ``_``). Nothing is dropped.
* Segments may overlap in a SEG but not in a label map, so segments are packed greedily (in segment
  number order) into as few :class:`~flr.image.LabelMap` s as possible such that no two segments of a
  map share a voxel. Label ids are the segment numbers, ``scheme`` is ``"dicom-seg"``, the array is
  uint8 (uint16 for segment numbers above 255). A segment without voxels is kept (in the first map),
  reported in ``metadata['warnings']`` and by a :class:`UserWarning`. A LABELMAP SEG's segment 0
  (background) becomes label 0.

Writing (:func:`write_dicom_seg`) builds a BINARY SEG with highdicom that references the source CT
series; patient and study modules are copied from the source (this object carries identifiers by
design).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from flr.errors import GeometryMismatchError, InputFileError
from flr.image import Geometry, Image, LabelMap
from flr.io._common import atomic_path, one_line, quiet_pydicom
from flr.schemes import CANONICAL_NAMES, canonical_name, normalise_name

__all__ = ["CODED_NAMES", "FRACTIONAL_THRESHOLD", "read_dicom_seg", "write_dicom_seg"]

SEG_SOP_CLASS_UIDS: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    }
)
#: Frame positions must lie this close (mm) to a slice of the target grid.
POSITION_TOL_MM = 0.01
ORIENTATION_TOL = 1e-4
PIXEL_SPACING_TOL_MM = 1e-4
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
}


# ----------------------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Segment:
    number: int
    label: str
    name: str


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


def _frame_of_reference_of(image: Image) -> str | None:
    uid = image.metadata.get("frame_of_reference_uid")
    if uid:
        return str(uid)
    files = image.metadata.get("files") or []
    if not files:
        return None
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
    except (OSError, InvalidDicomError):
        return None
    uid = ds.get("FrameOfReferenceUID")
    return str(uid) if uid else None


def _read_seg_dataset(path: Path) -> Dataset:
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise InputFileError(f"{path}: not a DICOM file ({one_line(exc)})") from None
    except Exception as exc:
        raise InputFileError(f"{path}: corrupted DICOM file ({type(exc).__name__}: {one_line(exc)})") from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(
            f"{path}: not a DICOM Segmentation (SOP class {sop or 'missing'}, modality "
            f"{ds.get('Modality', 'missing')}); read images with flr.io.dicom.read_dicom"
        )
    return ds


def _frames(path: Path, ds: Dataset) -> np.ndarray:
    try:
        with quiet_pydicom():
            pixels = np.asarray(ds.pixel_array)
    except Exception as exc:
        why = f"{type(exc).__name__}: {one_line(exc)}"
        raise InputFileError(f"{path}: corrupted DICOM-SEG pixel data ({why})") from None
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.shape[0] != n or pixels.ndim != 3:
        raise InputFileError(f"{path}: corrupted DICOM-SEG: {n} frames declared, pixel data holds {pixels.shape}")
    return pixels


def _floats(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    try:
        out = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        out = np.asarray([])
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise InputFileError(f"{path}: DICOM-SEG {what} is missing or malformed: {one_line(value)}")
    return out


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
        Arrays (z, y, x), ids = segment numbers, ``names`` = canonical (or normalised) segment names,
        ``scheme="dicom-seg"``. ``metadata`` holds ``sop_instance_uid``, ``series_instance_uid``,
        ``frame_of_reference_uid``, ``segmentation_type``, ``segments`` ({number: {label, name}}),
        ``referenced_series_instance_uids`` and ``warnings``.

    Raises
    ------
    InputFileError
        Missing, corrupt or not a SEG; malformed geometry.
    GeometryMismatchError
        Another frame of reference than the reference's (both UIDs named), another orientation,
        pixel spacing or matrix, or frames off the reference grid.
    """
    path = Path(path)
    ds = _read_seg_dataset(path)
    seg_type = str(ds.get("SegmentationType", "BINARY")).upper()
    pixels = _frames(path, ds)
    n_frames, rows, cols = pixels.shape
    seg_for = str(ds.get("FrameOfReferenceUID", "") or "")

    segments: dict[int, _Segment] = {}
    for item in ds.get("SegmentSequence") or []:
        number = int(item.SegmentNumber)
        if number == 0 and seg_type == "LABELMAP":
            continue  # the background segment that LABELMAP SEGs may describe: label 0 in flr
        segments[number] = _Segment(number, str(item.get("SegmentLabel", "")), _segment_name(item))
    if not segments:
        raise InputFileError(f"{path}: DICOM-SEG has no SegmentSequence")

    orient_item = _item(ds, "PlaneOrientationSequence", None) or _item(ds, "PlaneOrientationSequence", 0)
    measures = _item(ds, "PixelMeasuresSequence", None) or _item(ds, "PixelMeasuresSequence", 0)
    if orient_item is None or measures is None:
        raise InputFileError(f"{path}: DICOM-SEG lacks PlaneOrientationSequence or PixelMeasuresSequence")
    iop = _floats(orient_item.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    sy, sx = _floats(measures.get("PixelSpacing"), 2, "PixelSpacing", path)
    positions = np.empty((n_frames, 3))
    frame_segments = np.zeros(n_frames, dtype=int)
    for f in range(n_frames):
        pos = _item(ds, "PlanePositionSequence", f)
        if pos is None:
            raise InputFileError(f"{path}: frame {f + 1} has no PlanePositionSequence")
        positions[f] = _floats(pos.get("ImagePositionPatient"), 3, f"frame {f + 1} ImagePositionPatient", path)
        if seg_type != "LABELMAP":
            ident = _item(ds, "SegmentIdentificationSequence", f)
            if ident is None:
                raise InputFileError(f"{path}: frame {f + 1} has no SegmentIdentificationSequence")
            frame_segments[f] = int(ident.ReferencedSegmentNumber)
            if frame_segments[f] not in segments:
                raise InputFileError(f"{path}: frame {f + 1} refers to segment {frame_segments[f]}, not described")

    if reference is not None:
        geometry, slice_of = _onto_reference(path, ds, reference, seg_for, row, col, (sx, sy), (rows, cols), positions)
    else:
        geometry, slice_of = _own_grid(path, ds, measures, row, col, normal, (sx, sy), (rows, cols), positions)

    masks = _masks(path, ds, seg_type, pixels)
    maps, notes = _pack(path, segments, masks, frame_segments, slice_of, geometry.shape_zyx, seg_type)

    metadata: dict[str, Any] = {
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "frame_of_reference_uid": seg_for,
        "segmentation_type": seg_type,
        "fractional_threshold": FRACTIONAL_THRESHOLD if seg_type == "FRACTIONAL" else None,
        "segments": {s.number: {"label": s.label, "name": s.name} for s in segments.values()},
        "referenced_series_instance_uids": sorted(
            str(r.get("SeriesInstanceUID", "")) for r in ds.get("ReferencedSeriesSequence") or []
        ),
        "warnings": notes,
    }
    out = []
    for array, ids in maps:
        names = {i: segments[i].name for i in ids}
        out.append(LabelMap(array, geometry, source=str(path), metadata=metadata, names=names, scheme="dicom-seg"))
    return out


def _onto_reference(
    path: Path,
    ds: Dataset,
    reference: Image,
    seg_for: str,
    row: np.ndarray,
    col: np.ndarray,
    spacing_xy: tuple[float, float],
    size_rc: tuple[int, int],
    positions: np.ndarray,
) -> tuple[Geometry, np.ndarray]:
    geom = reference.geometry
    ref_for = _frame_of_reference_of(reference)
    if ref_for is not None and seg_for != ref_for:
        raise GeometryMismatchError(
            f"{path}: DICOM-SEG FrameOfReferenceUID {seg_for or 'missing'} differs from the reference "
            f"{reference.source}'s FrameOfReferenceUID {ref_for}; it was not drawn on this CT"
        )
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
    inv = np.linalg.inv(geom.affine_lps[:3, :3])
    idx = (positions - np.asarray(geom.origin_mm)) @ inv.T  # (n, 3) continuous (x, y, z) indices
    k = np.rint(idx[:, 2]).astype(int)
    snapped = np.column_stack([np.zeros_like(k), np.zeros_like(k), k]) @ geom.affine_lps[:3, :3].T + geom.origin_mm
    err = np.linalg.norm(positions - snapped, axis=1)
    bad = np.flatnonzero((err > POSITION_TOL_MM) | (k < 0) | (k >= geom.shape_zyx[0]))
    if bad.size:
        f = int(bad[0])
        raise GeometryMismatchError(
            f"{path}: {bad.size} DICOM-SEG frame(s) lie off the reference grid, e.g. frame {f + 1} at "
            f"{positions[f].round(3).tolist()} mm is {err[f]:.3g} mm from slice {int(k[f])} (tolerance "
            f"{POSITION_TOL_MM} mm) of {geom.describe()}"
        )
    return geom, k


def _own_grid(
    path: Path,
    ds: Dataset,
    measures: Dataset,
    row: np.ndarray,
    col: np.ndarray,
    normal: np.ndarray,
    spacing_xy: tuple[float, float],
    size_rc: tuple[int, int],
    positions: np.ndarray,
) -> tuple[Geometry, np.ndarray]:
    z = positions @ normal
    first = positions[int(np.argmin(z))]
    offsets = positions - first
    inplane = np.abs(np.column_stack([offsets @ row, offsets @ col]))
    if inplane.size and float(inplane.max()) > POSITION_TOL_MM:
        raise InputFileError(
            f"{path}: DICOM-SEG frames are shifted in-plane by up to {float(inplane.max()):.3g} mm; "
            f"read it with a reference CT"
        )
    uniq = np.unique(np.round(z - z.min(), 6))
    gaps = np.diff(uniq)
    gaps = gaps[gaps > POSITION_TOL_MM]
    if gaps.size:
        dz = float(gaps.min())
    else:
        dz = 1.0
        for key in ("SpacingBetweenSlices", "SliceThickness"):
            value = measures.get(key) or ds.get(key)
            if value is not None and float(value) > 0:
                dz = float(value)
                break
    rel = (z - z.min()) / dz
    k = np.rint(rel).astype(int)
    off = np.abs(rel - k) * dz
    if off.size and float(off.max()) > POSITION_TOL_MM:
        raise InputFileError(
            f"{path}: DICOM-SEG frame positions are not on a regular grid ({float(off.max()):.3g} mm off a "
            f"{dz:.4g} mm spacing); read it with a reference CT"
        )
    geometry = Geometry(
        shape_zyx=(int(k.max()) + 1, size_rc[0], size_rc[1]),
        spacing_mm=(spacing_xy[0], spacing_xy[1], dz),
        origin_mm=tuple(first.tolist()),
        direction=tuple(np.column_stack([row, col, normal]).ravel().tolist()),
    )
    return geometry, k


def _masks(path: Path, ds: Dataset, seg_type: str, pixels: np.ndarray) -> np.ndarray:
    """Boolean frames (BINARY, FRACTIONAL) or the raw label frames (LABELMAP)."""
    if seg_type == "BINARY":
        return pixels > 0
    if seg_type == "FRACTIONAL":
        maximum = float(ds.get("MaximumFractionalValue", 255) or 255)
        return pixels >= FRACTIONAL_THRESHOLD * maximum
    if seg_type == "LABELMAP":
        return pixels
    raise InputFileError(f"{path}: unknown SegmentationType {seg_type!r} (BINARY, FRACTIONAL, LABELMAP)")


def _pack(
    path: Path,
    segments: Mapping[int, _Segment],
    masks: np.ndarray,
    frame_segments: np.ndarray,
    slice_of: np.ndarray,
    shape_zyx: tuple[int, int, int],
    seg_type: str,
) -> tuple[list[tuple[np.ndarray, list[int]]], list[str]]:
    dtype = np.uint8 if max(segments) <= 255 else np.uint16
    maps: list[tuple[np.ndarray, list[int]]] = []
    notes: list[str] = []
    for number in sorted(segments):
        if seg_type == "LABELMAP":
            parts = [(int(slice_of[f]), masks[f] == number) for f in range(masks.shape[0])]
        else:
            parts = [(int(slice_of[f]), masks[f]) for f in np.flatnonzero(frame_segments == number)]
        parts = [(z, m) for z, m in parts if m.any()]
        if not parts:
            msg = f"{path}: segment {number} ({segments[number].label!r}) has no voxels (kept, empty)"
            notes.append(msg)
        for array, ids in maps:  # noqa: B007 - the loop's last values are used after the break
            if all(not np.any(array[z][m]) for z, m in parts):
                break
        else:
            array, ids = np.zeros(shape_zyx, dtype=dtype), []
            maps.append((array, ids))
        for z, m in parts:
            array[z][m] = number
        ids.append(number)
    return maps, notes


# ----------------------------------------------------------------------------------------------
# writer
# ----------------------------------------------------------------------------------------------
def _source_slices(label_map: LabelMap, source_files: Sequence[Path]) -> list[tuple[int, Dataset]]:
    """(z index in ``label_map``, source dataset) for each source file, checking the grid."""
    if not source_files:
        raise InputFileError("write_dicom_seg needs the source CT files (source_files is empty)")
    geom = label_map.geometry
    d = geom.direction_matrix
    inv = np.linalg.inv(geom.affine_lps[:3, :3])
    out: list[tuple[int, Dataset]] = []
    for f in source_files:
        f = Path(f)
        try:
            with quiet_pydicom():
                ds = pydicom.dcmread(f)
        except Exception as exc:
            raise InputFileError(f"{f}: cannot read source DICOM ({type(exc).__name__}: {one_line(exc)})") from None
        iop = _floats(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", f)
        ipp = _floats(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", f)
        sy, sx = _floats(ds.get("PixelSpacing"), 2, "PixelSpacing", f)
        same = (
            np.allclose(iop[:3], d[:, 0], atol=ORIENTATION_TOL)
            and np.allclose(iop[3:], d[:, 1], atol=ORIENTATION_TOL)
            and abs(sx - geom.spacing_mm[0]) <= PIXEL_SPACING_TOL_MM
            and abs(sy - geom.spacing_mm[1]) <= PIXEL_SPACING_TOL_MM
            and (int(ds.Rows), int(ds.Columns)) == tuple(geom.shape_zyx[1:])
        )
        idx = inv @ (ipp - np.asarray(geom.origin_mm))
        k = int(np.rint(idx[2]))
        snapped = geom.affine_lps[:3, :3] @ np.array([0.0, 0.0, k]) + np.asarray(geom.origin_mm)
        if not same or np.linalg.norm(ipp - snapped) > POSITION_TOL_MM or not 0 <= k < geom.shape_zyx[0]:
            raise GeometryMismatchError(
                f"{f}: source slice (position {ipp.round(3).tolist()} mm, {int(ds.Rows)}x{int(ds.Columns)} pixels "
                f"of ({sx:g}, {sy:g}) mm) is not a slice of the label map grid {geom.describe()}"
            )
        out.append((k, ds))
    covered = sorted(k for k, _ in out)
    if covered != list(range(geom.shape_zyx[0])):
        raise GeometryMismatchError(
            f"source_files cover slices {covered} of the label map's {geom.shape_zyx[0]}; pass exactly the "
            f"series the label map was drawn on"
        )
    return out


def write_dicom_seg(
    label_map: LabelMap,
    path: Path | str,
    *,
    source_files: Sequence[Path],
    segment_names: Mapping[int, str] | None = None,
    series_description: str = "flr plan",
    algorithm_type: str = "SEMIAUTOMATIC",
) -> Path:
    """Write ``label_map`` as a BINARY DICOM-SEG referencing the CT series in ``source_files``.

    One segment per non-zero label id present in the map, in ascending id order, numbered 1..N
    (DICOM requires consecutive segment numbers; ids that already are 1..N are kept as they are).
    SegmentLabel is ``segment_names[id]``, else ``label_map.names[id]``, else ``label_<id>``;
    SegmentedPropertyCategory/Type are SNOMED CT codes for flr's canonical names where known
    (liver, tumor, vessels), else the generic "Tissue"/"Tissue". Algorithm: ``algorithm_type``
    (``"SEMIAUTOMATIC"`` or ``"MANUAL"``) named "flr". Patient, study and frame-of-reference
    modules are copied from the source files. The label map must lie exactly on the source slices.
    Written through a temporary file and ``os.replace``: never half-written.

    Raises
    ------
    GeometryMismatchError
        The label map is not on the grid of the source slices.
    InputFileError
        Unreadable source files, a missing output folder, or a label map without labels.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    import flr

    path = Path(path)
    if not path.parent.is_dir():
        raise InputFileError(f"{path}: output folder {path.parent} does not exist")
    if algorithm_type not in ("SEMIAUTOMATIC", "MANUAL"):
        raise ValueError(f"algorithm_type must be 'SEMIAUTOMATIC' or 'MANUAL', got {algorithm_type!r}")
    slices = _source_slices(label_map, source_files)
    ids = [int(i) for i in np.unique(label_map.array) if i != 0]
    if not ids:
        raise InputFileError(f"{path}: label map {label_map.source} has no labels to write")
    names = {**label_map.names, **(dict(segment_names or {}))}
    number_of = {label_id: n for n, label_id in enumerate(ids, start=1)}

    family = codes.cid7162.ManualProcessing if algorithm_type == "MANUAL" else codes.cid7162.MorphologicalOperations
    algorithm = hd.AlgorithmIdentificationSequence(name="flr", family=family, version=str(flr.__version__))
    descriptions = []
    for label_id in ids:
        label = str(names.get(label_id, f"label_{label_id}"))
        category, kind = _WRITE_CODES.get(canonical_name(label), (_TISSUE, _TISSUE))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number_of[label_id],
                segment_label=label[:64],
                segmented_property_category=Code(category[0], "SCT", category[1]),
                segmented_property_type=Code(kind[0], "SCT", kind[1]),
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
            )
        )
    lut = np.zeros(int(label_map.array.max()) + 1, dtype=np.uint16)
    for label_id, n in number_of.items():
        lut[label_id] = n
    source_datasets = [ds for _, ds in slices]
    frames = np.stack([lut[label_map.array[k]] for k, _ in slices])
    with quiet_pydicom():
        seg = hd.seg.Segmentation(
            source_images=source_datasets,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=int(source_datasets[0].get("SeriesNumber", 0) or 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="flr",
            manufacturer_model_name="flr",
            software_versions=str(flr.__version__),
            device_serial_number="none",
            series_description=series_description,
            omit_empty_frames=True,
        )
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path
