"""DICOM RT Structure Sets (RTSTRUCT): planar contours rasterised onto the CT they were drawn on.

Rules (:func:`read_rtstruct`)
-----------------------------
* The CT grid is ``reference`` when given, else the series the RTSTRUCT references
  (ReferencedFrameOfReferenceSequence > RTReferencedStudySequence > RTReferencedSeriesSequence), read
  with :func:`flr.io.dicom.read_dicom` from ``search_folder`` (default: the RTSTRUCT's folder). A
  referenced series that is not there, a ``reference`` of another series, or contours that reference
  image instances (ContourImageSequence) the CT does not hold are :class:`~flr.errors.InputFileError`.
  The CT's identity comes from its metadata (``series_instance_uid``, ``sop_instance_uids``,
  ``frame_of_reference_uid``, kept by :func:`flr.io.dicom.read_dicom`; the CT files are not opened
  again); a check whose UID the reference lacks (e.g. a NIfTI CT) is skipped. A FrameOfReferenceUID
  that differs from the CT's is only a warning when the series UID matches (some tools, e.g. rt-utils,
  write a fresh one), an error otherwise.
* Each CLOSED_PLANAR contour is mapped to continuous index coordinates with the inverse of
  ``geometry.affine_lps``. All its points must lie within :data:`SLICE_TOL` (in slice units) of one
  integer z index, else :class:`~flr.errors.GeometryMismatchError` naming the ROI (a contour not on a
  CT slice, e.g. drawn on another grid or an oblique plane).
* In-plane filling: each contour is filled by :func:`skimage.draw.polygon` (the voxels whose centres
  lie inside it), and the fills of one slice are XOR-ed (the even-odd rule): holes and several contours
  per slice work however the tool ordered them. A centre exactly on an edge or a vertex is inside
  (scikit-image's rule), so a contour through the centres of a mask's boundary voxels, as mask-to-contour
  tools write them, fills back to exactly that mask; where two contours of one slice share such a centre,
  the XOR removes it.
* Outside the grid: a contour on a slice outside the CT is an error naming the ROI; a contour that
  crosses the in-plane border is clipped to the grid, with a warning in ``metadata['warnings']``.
* POINT and OPEN_PLANAR contours enclose no volume: skipped with a warning. An ROI without contours is
  kept (named, empty) with a warning; neither is an error.
* ROI names go through :func:`flr.schemes.canonical_name`. ROIs may overlap, so they are packed
  (first fit, in ROINumber order) into as few label maps as possible such that no two overlapping ROIs
  share a map; label ids are the ROINumbers, dtype ``uint8`` (``uint16`` above 255), scheme
  ``"rtstruct"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from flr.errors import DicomSeriesError, FlrError, GeometryMismatchError, InputFileError, quote
from flr.image import Image, LabelMap
from flr.io._common import one_line, quiet_pydicom
from flr.io.dicom import DICOM_PARSE_ERRORS
from flr.schemes import canonical_name

__all__ = ["SLICE_TOL", "rasterise_polygon", "read_rtstruct"]

#: A contour's points must lie within this many slice spacings of an integer z index.
SLICE_TOL = 0.01


@dataclass
class _Roi:
    number: int
    name: str
    contours: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (geometric type, (n, 3) LPS mm)


# ----------------------------------------------------------------------------------------------
# polygon filling
# ----------------------------------------------------------------------------------------------
def rasterise_polygon(x: np.ndarray, y: np.ndarray, shape_yx: tuple[int, int]) -> np.ndarray:
    """Boolean mask (y, x) of the voxel centres inside a closed polygon (:func:`skimage.draw.polygon`).

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Vertices in continuous index coordinates (column, row; voxel ``(r, c)`` has its centre at
        ``(x, y) = (c, r)``). The polygon closes itself (last vertex -> first); a self-intersecting one is
        filled by the even-odd rule.
    shape_yx : (rows, columns)
        Shape of the slice; parts of the polygon outside it are clipped.

    Returns
    -------
    ndarray of bool, shape ``shape_yx``
        True where the voxel centre is inside the polygon or on its outline. Fewer than three vertices
        enclose nothing.

    >>> rasterise_polygon(np.array([0.5, 2.5, 2.5, 0.5]), np.array([0.5, 0.5, 2.5, 2.5]), (4, 4)).sum()
    np.int64(4)
    >>> rasterise_polygon(np.array([1.0, 3.0, 3.0, 1.0]), np.array([1.0, 1.0, 3.0, 3.0]), (5, 5)).sum()  # on edges
    np.int64(9)
    """
    from skimage.draw import polygon

    mask = np.zeros((int(shape_yx[0]), int(shape_yx[1])), dtype=bool)
    if np.asarray(x).size < 3:
        return mask
    rows, cols = polygon(np.asarray(y, dtype=float), np.asarray(x, dtype=float), shape=mask.shape)
    mask[rows, cols] = True
    return mask


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def _read_dataset(path: Path) -> Dataset:
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path)
    except DICOM_PARSE_ERRORS as exc:
        raise InputFileError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {one_line(exc)})"
                             ) from None
    modality = str(ds.get("Modality", "")).upper()
    if modality != "RTSTRUCT":
        raise InputFileError(f"{path}: not an RT Structure Set (Modality {quote(modality or 'missing')})")
    return ds


def _references(ds: Dataset) -> tuple[list[str], set[str], set[str]]:
    """(referenced series UIDs, frame of reference UIDs, referenced image SOP instance UIDs)."""
    series: list[str] = []
    frames_of_reference: set[str] = set()
    instances: set[str] = set()
    for ref_for in ds.get("ReferencedFrameOfReferenceSequence", []):
        if ref_for.get("FrameOfReferenceUID"):
            frames_of_reference.add(str(ref_for.FrameOfReferenceUID))
        for study in ref_for.get("RTReferencedStudySequence", []):
            for ser in study.get("RTReferencedSeriesSequence", []):
                uid = str(ser.get("SeriesInstanceUID", "") or "")
                if uid and uid not in series:
                    series.append(uid)
                instances.update(str(img.ReferencedSOPInstanceUID)
                                 for img in ser.get("ContourImageSequence", []) if "ReferencedSOPInstanceUID" in img)
    for roi in ds.get("StructureSetROISequence", []):
        if roi.get("ReferencedFrameOfReferenceUID"):
            frames_of_reference.add(str(roi.ReferencedFrameOfReferenceUID))
    for roi_contour in ds.get("ROIContourSequence", []):
        for contour in roi_contour.get("ContourSequence", []):
            instances.update(str(img.ReferencedSOPInstanceUID)
                             for img in contour.get("ContourImageSequence", []) if "ReferencedSOPInstanceUID" in img)
    return series, frames_of_reference, instances


def _roi_number(path: Path, item: Dataset, keyword: str, where: str) -> int:
    """The integer ``keyword`` (ROINumber, ReferencedROINumber) of an ROI item, else an InputFileError."""
    value = item.get(keyword)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputFileError(f"{path}: {where} has no integer {keyword} (got {quote(value)})") from None


def _rois(path: Path, ds: Dataset) -> dict[int, _Roi]:
    rois: dict[int, _Roi] = {}
    for i, item in enumerate(ds.get("StructureSetROISequence", [])):
        number = _roi_number(path, item, "ROINumber", f"StructureSetROISequence item {i + 1}")
        rois[number] = _Roi(number, str(item.get("ROIName", "") or f"roi_{number}"))
    for i, roi_contour in enumerate(ds.get("ROIContourSequence", [])):
        number = _roi_number(path, roi_contour, "ReferencedROINumber", f"ROIContourSequence item {i + 1}")
        roi = rois.setdefault(number, _Roi(number, f"roi_{number}"))
        for i, contour in enumerate(roi_contour.get("ContourSequence", [])):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            try:
                data = np.array([float(v) for v in contour.ContourData], dtype=float)
            except (AttributeError, TypeError, ValueError):
                raise InputFileError(f"{path}: ROI {number} ({quote(roi.name)}) contour {i + 1} has no numeric "
                                     "ContourData") from None
            if data.size % 3 or not np.all(np.isfinite(data)):
                raise InputFileError(f"{path}: ROI {number} ({quote(roi.name)}) contour {i + 1}: ContourData needs "
                                     f"finite x, y, z triplets, got {data.size} values")
            roi.contours.append((kind, data.reshape(-1, 3)))
    if not rois:
        raise InputFileError(f"{path}: RT Structure Set has no ROIs (empty StructureSetROISequence)")
    return rois


def _read_series_if_present(read_dicom: Any, folder: Path, uid: str) -> Image | None:
    """The series ``uid`` from ``folder``, None when the folder does not hold it (other errors propagate)."""
    try:
        return read_dicom(folder, series_uid=uid)
    except DicomSeriesError as exc:
        text = str(exc)
        if f"series {uid} not found" in text or "no DICOM image series" in text:
            return None
        raise


def _find_reference(path: Path, series: list[str], search_folder: Path | None) -> Image:
    from flr.io.dicom import read_dicom

    if not series:
        raise InputFileError(f"{path}: the RT Structure Set names no referenced image series; give the CT it "
                             "was drawn on with --ct")
    folder = Path(search_folder) if search_folder is not None else path.parent
    for uid in series:
        image = _read_series_if_present(read_dicom, folder, uid)
        if image is not None:
            return image
    raise InputFileError(f"{path}: referenced CT series {', '.join(series)} is not in {folder}; "
                         "give the CT it was drawn on with --ct")


def _check_reference(path: Path, reference: Image, series: list[str], frames_of_reference: set[str],
                     instances: set[str], notes: list[str]) -> None:
    ref_series = reference.metadata.get("series_instance_uid")
    series_ok = False
    if ref_series and series:
        if str(ref_series) not in series:
            raise InputFileError(f"{path}: drawn on CT series {', '.join(series)}, but the CT given is series "
                                 f"{ref_series}; give the referenced series with --ct")
        series_ok = True
    elif series:
        notes.append(f"{path.name}: the CT given carries no SeriesInstanceUID; cannot check that it is the "
                     f"referenced series {', '.join(series)}")
    present = {str(uid) for uid in reference.metadata.get("sop_instance_uids") or []}
    if instances and present:
        missing = sorted(instances - present)
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise InputFileError(f"{path}: contours reference {len(missing)} image(s) of series "
                                 f"{', '.join(series) or '?'} that the CT does not hold (SOPInstanceUID {shown}); "
                                 "give the complete referenced series with --ct")
    ref_for = reference.metadata.get("frame_of_reference_uid")
    if ref_for and frames_of_reference and str(ref_for) not in frames_of_reference:
        msg = (f"FrameOfReferenceUID {', '.join(sorted(frames_of_reference))} differs from the CT's {ref_for}")
        if not series_ok:
            raise GeometryMismatchError(f"{path}: {msg}; the contours are in another coordinate system")
        notes.append(f"{path.name}: {msg} (series UID matches; contours placed by patient coordinates)")


def _roi_masks(path: Path, roi: _Roi, reference: Image, notes: list[str]) -> dict[int, np.ndarray]:
    """{z index: (y, x) mask} of one ROI (slices without voxels omitted)."""
    geometry = reference.geometry
    nz, ny, nx = geometry.shape_zyx
    inverse = np.linalg.inv(geometry.affine_lps)
    slices: dict[int, np.ndarray] = {}
    skipped: dict[str, int] = {}
    clipped = 0
    for i, (kind, points) in enumerate(roi.contours):
        if kind != "CLOSED_PLANAR":
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        if len(points) < 3:
            skipped["CLOSED_PLANAR with < 3 points"] = skipped.get("CLOSED_PLANAR with < 3 points", 0) + 1
            continue
        idx = (inverse[:3, :3] @ points.T).T + inverse[:3, 3]  # (n, 3) continuous (x, y, z) indices
        k = round(float(np.mean(idx[:, 2])))
        off = float(np.max(np.abs(idx[:, 2] - k)))
        if off > SLICE_TOL:
            raise GeometryMismatchError(
                f"{path}: ROI {roi.number} ({quote(roi.name)}) contour {i + 1} does not lie on a CT slice (z index "
                f"{float(np.min(idx[:, 2])):.3f}..{float(np.max(idx[:, 2])):.3f}, tolerance {SLICE_TOL}); "
                "was it drawn on another series or grid?")
        if not 0 <= k < nz:
            raise GeometryMismatchError(
                f"{path}: ROI {roi.number} ({quote(roi.name)}) contour {i + 1} lies on slice {k}, outside the CT's "
                f"{nz} slices; give the CT it was drawn on with --ct")
        if (np.any(idx[:, 0] < -0.5) or np.any(idx[:, 0] > nx - 0.5)
                or np.any(idx[:, 1] < -0.5) or np.any(idx[:, 1] > ny - 0.5)):
            clipped += 1
        mask = rasterise_polygon(idx[:, 0], idx[:, 1], (ny, nx))
        if k in slices:
            slices[k] ^= mask
        else:
            slices[k] = mask
    if clipped:
        notes.append(f"{path.name}: ROI {roi.number} ({quote(roi.name)}): {clipped} contour(s) reach outside the CT "
                     "grid; clipped to it")
    for kind, n in sorted(skipped.items()):
        notes.append(f"{path.name}: ROI {roi.number} ({quote(roi.name)}): {n} {kind} contour(s) skipped (enclose no "
                     "volume)")
    return {k: m for k, m in slices.items() if m.any()}


def _pack_rois(path: Path, rois: dict[int, _Roi], reference: Image, notes: list[str]
               ) -> tuple[list[tuple[np.ndarray, list[int]]], dict[int, dict[str, Any]]]:
    """Rasterise every ROI and pack them first-fit (ROINumber order) into maps whose ROIs never overlap.

    Returns the maps (array (z, y, x), ROINumbers in it) and per ROI its name, canonical name, voxel count
    and map index.
    """
    shape = reference.geometry.shape_zyx
    dtype = np.uint8 if max(rois) <= np.iinfo(np.uint8).max else np.uint16
    if max(rois) > np.iinfo(np.uint16).max or min(rois) < 1:
        raise InputFileError(f"{path}: ROINumbers must be 1..65535, got {min(rois)}..{max(rois)}")
    maps: list[tuple[np.ndarray, list[int]]] = []
    info: dict[int, dict[str, Any]] = {}
    for number in sorted(rois):
        roi = rois[number]
        parts = _roi_masks(path, roi, reference, notes)
        if not parts:
            notes.append(f"{path.name}: ROI {number} ({quote(roi.name)}) has no contours enclosing a voxel "
                         "(kept, empty)")
        for index, (array, ids) in enumerate(maps):  # noqa: B007 - the loop's last values are used after break
            if all(not np.any(array[z][m]) for z, m in parts.items()):
                break
        else:
            array, ids = np.zeros(shape, dtype=dtype), []
            maps.append((array, ids))
            index = len(maps) - 1
        for z, m in parts.items():
            array[z][m] = number
        ids.append(number)
        info[number] = {"name": roi.name, "canonical_name": canonical_name(roi.name),
                        "voxels": int(sum(int(m.sum()) for m in parts.values())), "map": index}
    return maps, info


def read_rtstruct(
    path: Path | str,
    *,
    reference: Image | None = None,
    search_folder: Path | None = None,
) -> list[LabelMap]:
    """Rasterise an RTSTRUCT's closed planar contours onto its CT (see the module docstring for the rules).

    Parameters
    ----------
    path : the RTSTRUCT file.
    reference : the CT the contours were drawn on; None: find the referenced series in ``search_folder``.
    search_folder : where to look for the referenced series (default: the RTSTRUCT's folder).

    Returns
    -------
    Label maps (z, y, x) on the CT grid, ``scheme="rtstruct"``, ids = ROINumber, names canonical; no two
    overlapping ROIs in one map. ``metadata`` holds ``format``, ``sop_instance_uid``,
    ``referenced_series_instance_uids``, ``rois`` ({ROINumber: {name, canonical_name, voxels, map}}),
    ``reference_source`` and ``warnings``.

    Raises
    ------
    InputFileError
        Not an RTSTRUCT, the referenced series absent, or a CT of another series / missing slices.
    GeometryMismatchError
        A contour not on a CT slice or on a slice outside the CT; frames of reference that differ.
    """
    path = Path(path)
    ds = _read_dataset(path)
    try:
        with quiet_pydicom():
            series, frames_of_reference, instances = _references(ds)
            rois = _rois(path, ds)
    except FlrError:
        raise
    except DICOM_PARSE_ERRORS as exc:  # values are converted when read: a damaged one fails here
        raise InputFileError(f"{path}: malformed RT Structure Set ({type(exc).__name__}: {one_line(exc)})") from None
    notes: list[str] = []
    if reference is None:
        reference = _find_reference(path, series, search_folder)
    _check_reference(path, reference, series, frames_of_reference, instances, notes)

    maps, info = _pack_rois(path, rois, reference, notes)
    meta_common: dict[str, Any] = {
        "format": "rtstruct",
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "referenced_series_instance_uids": series,
        "frame_of_reference_uids": sorted(frames_of_reference),
        "rois": info,
        "reference_source": reference.source,
        "warnings": notes,
    }
    out = []
    for index, (array, ids) in enumerate(maps):
        meta = dict(meta_common, layer=index, labels_present=sorted(i for i in ids if info[i]["voxels"]))
        names = {i: info[i]["canonical_name"] for i in ids}
        out.append(LabelMap(array, reference.geometry, str(path), meta, names=names, scheme="rtstruct"))
    return out
