"""DICOM CT series: read one image series into an :class:`~flr.image.Image`, write phantom series.

Reading (:func:`read_dicom`)
----------------------------
* ``path`` is a folder, searched recursively (any file names; files are recognised by the ``DICM``
  magic at byte 128, or, for preamble-less files that start with a group 0002/0008 tag, by a forced
  header read), or a single file (one CT slice, or an Enhanced/multi-frame CT object).
* Headers are read without pixel data first. Files that are not DICOM, whose header cannot be read
  (truncated), that are not images with patient geometry (SEG, RTSTRUCT, SR such as dose reports,
  presentation states, RT dose, secondary captures without ImagePositionPatient, ...) or that are
  localizers (ImageType LOCALIZER) are skipped; so are, beside a CT image series, images of another
  modality or SOP class (:data:`CT_SOP_CLASS_UIDS`). Every skipped file is counted by reason and the
  first few are named, in ``metadata['warnings']`` or in the error that follows (a missing slice).
* Image instances are grouped by SeriesInstanceUID (and SOP class and modality); an anonymised export
  whose SeriesInstanceUID is blank or absent is grouped by FrameOfReferenceUID, ImageOrientationPatient,
  PixelSpacing, Rows/Columns and SeriesNumber instead, with a warning. A folder with several image
  series needs ``series_uid`` (the CLI's ``--series UID``).
* Values are checked where they are read: PixelSpacing > 0, positions, orientations, SliceThickness and
  the rescale finite numbers, RescaleSlope not 0; the pixel data must be able to hold Rows x Columns x
  NumberOfFrames before a decoder allocates that (native data by its length, JPEG and JPEG 2000 by the
  size in their codestream header). Each refusal names the attribute and the file.
* Geometry comes from ImageOrientationPatient (row cosine = x, column cosine = y, slice normal =
  row x column = z, so the direction is right-handed) and ImagePositionPatient. Slices (or frames)
  are sorted by the projection of their position on the slice normal, never by InstanceNumber or
  file order, and the z spacing is the spacing of those projections, never SliceThickness (the two
  differ in real data: slices 1.0 mm apart with SliceThickness 1.25 mm). PixelSpacing is
  ``[row spacing (y), column spacing (x)]``. The origin is the position of the first sorted slice.
  Only a single-slice image takes its z spacing from SliceThickness; ``metadata['z_spacing_source']``
  says so.
* A series is *regular* when every gap between consecutive slice positions deviates from the median
  gap by at most ``max(0.01 mm, 1 % of the median gap)`` and every position lies within that same
  tolerance of the evenly spaced grid from the first to the last slice; the z spacing is then the
  mean gap. A series is *sheared* (gantry tilt) when some slice's position is displaced from the
  first slice's normal line by more than ``max(0.01 mm, 1 % of the smaller pixel spacing)``.
  Irregular or sheared series, duplicated positions and slices that disagree on orientation, pixel
  spacing or matrix size raise :class:`~flr.errors.DicomSeriesError`, unless ``resample=True`` for
  the first two (see :func:`read_dicom` for the methods); a missing slice is named by its position
  along the slice normal (``slice missing near z = 47.5 mm``).
* Intensities are ``stored * RescaleSlope + RescaleIntercept`` applied per slice (per frame for
  Enhanced CT, from the PixelValueTransformationSequence). The array is ``int16`` when every slope
  and intercept is integral and the values fit, otherwise ``float32`` (always ``float32`` after
  resampling).
* Compressed pixel data (JPEG, JPEG 2000, ...) is decoded by several processes, one file at a time each
  (:data:`DECODE_WORKERS_ENV`, default the CPUs; threads would not help: pylibjpeg's decoders hold the GIL),
  each file's slices written into the preallocated stack as they arrive; the array and the errors are those
  of the serial decode. Small series (:data:`PARALLEL_MIN_PIXELS`) and uncompressed data are read in the
  calling process. :func:`read_dicom_header` gives the geometry and metadata without decoding a pixel;
  :func:`open_dicom` adds the voxels to decode on demand, for a box only the files of its slices.
* Patient identifiers never enter the returned metadata or error messages.

Writing (:func:`write_dicom_series`) produces a CT Image Storage series, one file per slice, from an
Image of Hounsfield units, uncompressed, JPEG 2000 lossless (pydicom + pylibjpeg-openjpeg) or JPEG
lossless process 14 selection value 1 (encoded by GDCM through SimpleITK, since pydicom has no
encoder for it).
"""

from __future__ import annotations

import copy
import math
import struct
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from flr.errors import DicomSeriesError, FlrError, InputFileError, UnsupportedFormatError, quote
from flr.image import ORIENTATION_TOL, POSITION_TOL_MM, SPACING_TOL_MM, Geometry, Image
from flr.io import DEFLATE_MAX_RATIO, format_bytes
from flr.io._common import atomic_path, one_line, quiet_pydicom

__all__ = ["CT_SOP_CLASS_UIDS", "DECODE_WORKERS_ENV", "DICOM_PARSE_ERRORS", "PARALLEL_MIN_PIXELS", "DicomVoxels",
           "check_pixel_data", "decode_worker_count", "open_dicom", "read_dicom", "read_dicom_header",
           "read_series_header", "write_dicom_series"]

#: Relative tolerance: a gap may deviate from the median gap by this fraction of it, a slice may sit
#: off its first slice's normal line by this fraction of the smaller pixel spacing.
RELATIVE_TOL = 0.01
#: Slices of one series must agree on orientation cosines (:data:`flr.image.ORIENTATION_TOL`) and on pixel
#: spacing (:data:`flr.image.SPACING_TOL_MM`); positions have an absolute floor of
#: :data:`flr.image.POSITION_TOL_MM`.
PIXEL_SPACING_TOL_MM = SPACING_TOL_MM

#: SOP classes of CT images: CT Image Storage, Enhanced CT Image Storage, Legacy Converted Enhanced CT Image
#: Storage. Beside a series of these, images of other classes or modalities in the folder are skipped.
CT_SOP_CLASS_UIDS: frozenset[str] = frozenset(
    {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"}
)
#: What pydicom raises on a damaged file or a value it cannot convert (it has no single base class).
DICOM_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError,
    IndexError, OverflowError, struct.error, NotImplementedError)
_PARSE_ERRORS = DICOM_PARSE_ERRORS

TransferSyntaxName = Literal["explicit-little", "jpeg2000-lossless", "jpeg-lossless"]
#: pylibjpeg-openjpeg always encodes 6 wavelet resolutions, which needs 2**5 pixels per side (GDCM's
#: JPEG 2000 encoder, the alternative, crashes the process on very small slices).
_J2K_MIN_SIZE = 32
_TRANSFER_SYNTAXES: dict[str, pydicom.uid.UID] = {
    "explicit-little": ExplicitVRLittleEndian,
    "jpeg2000-lossless": JPEG2000Lossless,
    "jpeg-lossless": JPEGLosslessSV1,
}


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def _fmt_mm(value: float) -> str:
    return f"{value:.4g}"


def _looks_like_dicom(path: Path) -> tuple[bool, bool]:
    """(is DICOM by the Part 10 magic, worth a forced header read) for a file, from 132 bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False, False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True, False
    # A raw (preamble-less) little-endian dataset starts with a group 0002 or 0008 element tag.
    return False, len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[3] == 0


def _read_header(path: Path, *, force: bool) -> Dataset | None:
    """Header without pixel data; None for a forced read that turns out not to be DICOM."""
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=force)
    except _PARSE_ERRORS as exc:
        if force:
            return None
        raise InputFileError(f"{path}: cannot read DICOM header ({type(exc).__name__}: {one_line(exc)})") from None
    if force and "SOPClassUID" not in ds:
        return None
    return ds


def _transfer_syntax(ds: Dataset) -> str | None:
    """The file's TransferSyntaxUID, or the one a preamble-less (raw) dataset was found to use."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        return str(ts)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        return None
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _number(value: Any, what: str, path: Path) -> float:
    """A decimal value ``what`` of ``path`` as a finite float, else a DicomSeriesError naming both."""
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomSeriesError(f"{path}: {what} {quote(str(value))} is not a number") from None
    if not math.isfinite(out):
        raise DicomSeriesError(f"{path}: {what} {quote(str(value))} is not a finite number")
    return out


def _floats(value: Any, n: int, what: str, path: Path, *, positive: bool = False) -> np.ndarray:
    """``n`` finite numbers (each > 0 with ``positive``) of a multi-valued attribute ``what``."""
    try:
        out = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DicomSeriesError(f"{path}: {what} is not numeric: {quote(str(value))}") from exc
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise DicomSeriesError(f"{path}: {what} needs {n} finite numbers, got {quote(str(value))}")
    if positive and np.any(out <= 0):
        raise DicomSeriesError(f"{path}: {what} {quote(out.tolist())} must be > 0 mm")
    return out


def _integer(ds: Dataset, keyword: str, default: int, path: Path) -> int:
    """An integer attribute (Rows, Columns, NumberOfFrames, ...); ``default`` when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomSeriesError(f"{path}: {keyword} {quote(str(value))} is not an integer") from None


# ----------------------------------------------------------------------------------------------
# header model
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Frame:
    """One 2-D slice: a single-frame file, or frame ``frame`` of a multi-frame file."""

    path: Path
    frame: int | None
    position: np.ndarray  # ImagePositionPatient (3,), mm, LPS
    orientation: np.ndarray  # ImageOrientationPatient (6,)
    pixel_spacing: np.ndarray  # (row spacing = y, column spacing = x), mm
    rows: int
    cols: int
    slope: float
    intercept: float
    thickness_mm: float | None
    spacing_between_mm: float | None
    sop_instance_uid: str  # of the file (shared by the frames of a multi-frame file)


@dataclass
class _Series:
    uid: str  # SeriesInstanceUID, "" for an anonymised series grouped by what remains
    description: str
    modality: str
    manufacturer: str
    study_date: str
    study_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    frames: list[_Frame]
    transfer_syntaxes: set[str]
    label: str = ""  # how messages name it: the UID, or the attributes it was grouped by

    @property
    def is_ct(self) -> bool:
        """A CT image series: a CT SOP class (classic, enhanced, legacy converted) and Modality CT (or none)."""
        return self.sop_class_uid in CT_SOP_CLASS_UIDS and self.modality.upper() in ("CT", "")

    @property
    def kind(self) -> str:
        """SOP class and modality, as a reason to skip a series beside a CT."""
        return f"{_uid_name(self.sop_class_uid)}, Modality {one_line(self.modality, 20) or 'none'}"


@dataclass(frozen=True)
class _Skip:
    """A file left out of the series, and why (one of a few short reasons, so that they can be counted)."""

    path: Path
    reason: str


def _functional_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """First item of ``sequence`` in frame ``index``'s per-frame group, else in the shared group."""
    for group_name, item_index in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(group_name)
        if groups is None or len(groups) <= item_index:
            continue
        seq = groups[item_index].get(sequence)
        if seq:
            return seq[0]
    return None


def _optional_number(ds: Dataset, keyword: str, path: Path) -> float | None:
    """A decimal attribute that may be absent or empty (None); a value that is there must be finite."""
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        return None
    return _number(value, keyword, path)


def _rescale(ds: Dataset, path: Path) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept), 1 and 0 when absent; a slope of 0 or a non-finite value is refused."""
    slope = _optional_number(ds, "RescaleSlope", path)
    intercept = _optional_number(ds, "RescaleIntercept", path)
    if slope == 0:
        raise DicomSeriesError(f"{path}: RescaleSlope is 0, which would make every voxel equal to RescaleIntercept; "
                               "the header is corrupt")
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _frames_of(ds: Dataset, path: Path) -> list[_Frame] | None:
    """Slices of one image instance, or None when it has no patient geometry (not volumetric)."""
    rows, cols = _integer(ds, "Rows", 0, path), _integer(ds, "Columns", 0, path)
    n_frames = _integer(ds, "NumberOfFrames", 1, path)
    if rows < 1 or cols < 1 or n_frames < 1:
        raise DicomSeriesError(f"{path}: Rows {rows}, Columns {cols}, NumberOfFrames {n_frames}: an image needs at "
                               "least one of each")
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    sop_uid = str(ds.get("SOPInstanceUID", "") or "")
    frames: list[_Frame] = []
    if enhanced:
        for i in range(n_frames):
            pos = _functional_item(ds, i, "PlanePositionSequence")
            ori = _functional_item(ds, i, "PlaneOrientationSequence")
            meas = _functional_item(ds, i, "PixelMeasuresSequence")
            if pos is None or ori is None or "ImagePositionPatient" not in pos:
                return None
            if meas is None or "PixelSpacing" not in meas:
                raise DicomSeriesError(f"{path}: frame {i + 1} has no PixelSpacing (PixelMeasuresSequence)")
            pvt = _functional_item(ds, i, "PixelValueTransformationSequence")
            frames.append(_frame(path, i, rows, cols, pos, ori, meas, pvt if pvt is not None else ds, sop_uid))
        return frames
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return None
    if n_frames != 1:
        raise DicomSeriesError(
            f"{path}: multi-frame image ({n_frames} frames) without per-frame geometry "
            "(no PerFrameFunctionalGroupsSequence) is not supported"
        )
    if "PixelSpacing" not in ds:
        raise DicomSeriesError(f"{path}: image has no PixelSpacing")
    return [_frame(path, None, rows, cols, ds, ds, ds, ds, sop_uid)]


def _frame(path: Path, index: int | None, rows: int, cols: int, pos: Dataset, ori: Dataset, meas: Dataset,
           rescale: Dataset, sop_instance_uid: str) -> _Frame:
    """One slice from the datasets holding its position, orientation, pixel measures and rescale.

    A classic image passes itself four times; an Enhanced CT frame passes its functional-group items.
    """
    slope, intercept = _rescale(rescale, path)
    return _Frame(
        path=path,
        frame=index,
        position=_floats(pos.ImagePositionPatient, 3, "ImagePositionPatient", path),
        orientation=_floats(ori.ImageOrientationPatient, 6, "ImageOrientationPatient", path),
        pixel_spacing=_floats(meas.PixelSpacing, 2, "PixelSpacing", path, positive=True),
        rows=rows,
        cols=cols,
        slope=slope,
        intercept=intercept,
        thickness_mm=_optional_number(meas, "SliceThickness", path),
        spacing_between_mm=_optional_number(meas, "SpacingBetweenSlices", path),
        sop_instance_uid=sop_instance_uid,
    )


def _is_image_sop_class(ds: Dataset) -> bool:
    sop = ds.get("SOPClassUID") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", None)
    if not sop:
        return True  # unknown class: decided by the presence of Rows and patient geometry
    uid = pydicom.uid.UID(str(sop))
    if uid.name == str(uid):  # private or unknown SOP class
        return True
    return "Image Storage" in uid.name


def _candidate_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def _uid_name(uid: str) -> str:
    """The name of a SOP class or transfer syntax UID (the UID itself when pydicom does not know it)."""
    with quiet_pydicom():  # a damaged UID warns on construction
        return one_line(pydicom.uid.UID(uid).name, 60) if uid else "unknown SOP class"


def _sop_name(ds: Dataset) -> str:
    """The name of the dataset's SOP class."""
    return _uid_name(str(ds.get("SOPClassUID", "") or ""))


def _image_frames(ds: Dataset, file: Path) -> tuple[Dataset, list[_Frame]] | str:
    """(header, frames) of an image instance with patient geometry, else why it is left out."""
    if "SOPClassUID" not in ds and "Rows" not in ds:
        return "header without SOPClassUID or Rows (truncated?)"
    if not _is_image_sop_class(ds):
        return _sop_name(ds)
    if not ds.get("Rows") or not ds.get("Columns"):
        return f"{_sop_name(ds)} without Rows/Columns"
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])] if "ImageType" in ds else []
    if "LOCALIZER" in image_type:
        return "localizer (ImageType LOCALIZER)"
    frames = _frames_of(ds, file)
    if frames is None:
        return f"{_sop_name(ds)} without patient geometry (no ImagePositionPatient)"
    return ds, frames


def _scan_file(file: Path, single_file: bool) -> tuple[Dataset, list[_Frame]] | str:
    """(header, frames) of one file, or why it is skipped; a single file given on its own is refused instead."""
    magic, maybe = _looks_like_dicom(file)
    if not magic and not maybe:
        if single_file:
            raise UnsupportedFormatError(f"{file}: not a DICOM file (no 'DICM' marker at byte 128)")
        return "not DICOM"
    try:
        ds = _read_header(file, force=not magic)
    except InputFileError:
        if single_file:
            raise
        return "unreadable DICOM header (truncated or damaged)"
    if ds is None:
        if single_file:
            raise UnsupportedFormatError(f"{file}: not a DICOM file (cannot parse a DICOM header)")
        return "not DICOM"
    try:
        return _image_frames(ds, file)
    except FlrError:
        raise
    except _PARSE_ERRORS as exc:  # a value pydicom cannot convert: the header is damaged
        if single_file:
            raise InputFileError(f"{file}: malformed DICOM header ({type(exc).__name__}: {one_line(exc)})") from None
        return "malformed DICOM header"


def _series_key(ds: Dataset) -> tuple[str, str]:
    """(grouping key, how messages name the group): the SeriesInstanceUID, or, when it is blank (anonymised
    exports), FrameOfReferenceUID, ImageOrientationPatient, PixelSpacing, Rows/Columns and SeriesNumber."""
    kind = f"{ds.get('SOPClassUID', '')}|{str(ds.get('Modality', '') or '').upper()}"
    uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
    if uid:
        return f"{uid}|{kind}", uid
    number = str(ds.get("SeriesNumber", "") or "")
    key = "|".join([str(ds.get("FrameOfReferenceUID", "") or ""), _rounded(ds, "ImageOrientationPatient", 3),
                    _rounded(ds, "PixelSpacing", 4), f"{ds.get('Rows')}x{ds.get('Columns')}", number])
    return f"{key}|{kind}", f"(no SeriesInstanceUID, SeriesNumber {number or 'none'})"


def _rounded(ds: Dataset, keyword: str, digits: int) -> str:
    """A multi-valued decimal attribute as text rounded to ``digits`` decimals (a grouping key)."""
    try:
        return ",".join(f"{float(v):.{digits}f}" for v in ds.get(keyword) or [])
    except (TypeError, ValueError):
        return str(ds.get(keyword, ""))


def _add_to_series(series: dict[str, _Series], ds: Dataset, frames: list[_Frame]) -> None:
    """Add the frames of one instance to its series (created on its first instance)."""
    key, label = _series_key(ds)
    entry = series.get(key)
    if entry is None:
        entry = series[key] = _Series(
            uid=str(ds.get("SeriesInstanceUID", "") or "").strip(),
            description=one_line(ds.get("SeriesDescription", "") or ""),
            modality=str(ds.get("Modality", "") or ""),
            manufacturer=one_line(ds.get("Manufacturer", "") or ""),
            study_date=str(ds.get("StudyDate", "") or ""),
            study_uid=str(ds.get("StudyInstanceUID", "") or "").strip(),
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
            sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
            frames=[],
            transfer_syntaxes=set(),
            label=label,
        )
    entry.frames.extend(frames)
    ts = _transfer_syntax(ds)
    if ts:
        entry.transfer_syntaxes.add(str(ts))


def _scan(path: Path) -> tuple[dict[str, _Series], list[_Skip]]:
    """Group the image frames under ``path`` into series; list the files left out and why."""
    series: dict[str, _Series] = {}
    skipped: list[_Skip] = []
    single_file = path.is_file()
    for file in _candidate_files(path):
        with quiet_pydicom():  # converting a damaged value warns; what flr uses is checked where it is read
            found = _scan_file(file, single_file)
            if not isinstance(found, str):
                try:
                    _add_to_series(series, *found)
                    continue
                except _PARSE_ERRORS:
                    if single_file:
                        raise InputFileError(f"{file}: malformed DICOM header") from None
                    found = "malformed DICOM header"
            skipped.append(_Skip(file, found))
    return series, skipped


def _skip_summary(root: Path, skipped: Sequence[_Skip], limit: int = 3) -> str:
    """``"N x reason (first paths)"`` per reason, most frequent first; paths relative to ``root``."""
    by_reason: dict[str, list[Path]] = {}
    for skip in skipped:
        by_reason.setdefault(skip.reason, []).append(skip.path)
    parts = []
    for reason, paths in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        names = [str(p.relative_to(root)) if p != root and p.is_relative_to(root) else str(p) for p in paths]
        shown = ", ".join(one_line(n, 80) for n in names[:limit]) + (", ..." if len(names) > limit else "")
        parts.append(f"{len(paths)} x {reason}: {shown}")
    return "; ".join(parts)


def _describe_series(series: Sequence[_Series]) -> str:
    return ", ".join(
        f"{s.label} '{s.description}' ({len(s.frames)} slice{'s' if len(s.frames) != 1 else ''})" for s in series
    )


def _only_ct(groups: list[_Series], skipped: list[_Skip]) -> list[_Series]:
    """The CT image series of ``groups`` when there is one; the files of the others go to ``skipped``."""
    ct = [s for s in groups if s.is_ct]
    if not ct:
        return groups
    for s in groups:
        if not s.is_ct:
            skipped.extend(_Skip(f, f"{s.kind}, not a CT image") for f in sorted({fr.path for fr in s.frames}))
    return ct


def _choose_series(path: Path, found: dict[str, _Series], skipped: list[_Skip], uid: str | None) -> _Series:
    """The one series to read; files of other modalities or SOP classes beside a CT are added to ``skipped``."""
    if not found:
        extra = f" (skipped: {_skip_summary(path, skipped)})" if skipped else ""
        raise DicomSeriesError(f"{path}: no DICOM image series with patient geometry found{extra}")
    listing = sorted(found.values(), key=lambda s: (-len(s.frames), s.label))
    groups = listing
    if uid is not None:
        groups = [s for s in listing if s.uid == uid]
        if not groups:
            raise DicomSeriesError(
                f"{path}: series {uid} not found; available image series: {_describe_series(listing)}"
            )
    groups = _only_ct(groups, skipped)
    if len(groups) > 1:
        raise DicomSeriesError(
            f"{path} holds {len(groups)} image series; pick one with --series UID: {_describe_series(groups)}"
        )
    return groups[0]


# ----------------------------------------------------------------------------------------------
# geometry of a stack of frames
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stack:
    frames: list[_Frame]  # sorted along the normal
    row: np.ndarray
    col: np.ndarray
    normal: np.ndarray
    z_mm: np.ndarray  # positions along the normal, relative to the first frame, ascending
    inplane_mm: np.ndarray  # (n, 2): displacement of each frame's position along (row, col), mm
    pixel_spacing: np.ndarray  # (y, x)


def _check_consistent(path: Path, frames: list[_Frame]) -> None:
    first = frames[0]
    for f in frames[1:]:
        where = f"{path}: slices {first.path.name} and {f.path.name}"
        if (f.rows, f.cols) != (first.rows, first.cols):
            raise DicomSeriesError(
                f"{where} differ in matrix size (rows x columns {first.rows}x{first.cols} vs {f.rows}x{f.cols})"
            )
        if np.max(np.abs(f.orientation - first.orientation)) > ORIENTATION_TOL:
            raise DicomSeriesError(
                f"{where} differ in ImageOrientationPatient ({first.orientation.round(6).tolist()} vs "
                f"{f.orientation.round(6).tolist()}); the series mixes image planes"
            )
        if np.max(np.abs(f.pixel_spacing - first.pixel_spacing)) > PIXEL_SPACING_TOL_MM:
            raise DicomSeriesError(
                f"{where} differ in PixelSpacing ({first.pixel_spacing.tolist()} vs {f.pixel_spacing.tolist()} mm)"
            )


def _stack(path: Path, frames: list[_Frame]) -> _Stack:
    _check_consistent(path, frames)
    iop = frames[0].orientation
    row, col = iop[:3], iop[3:]
    if not (0.99 < np.linalg.norm(row) < 1.01 and 0.99 < np.linalg.norm(col) < 1.01):
        raise DicomSeriesError(f"{path}: ImageOrientationPatient {iop.tolist()} is not made of unit vectors")
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    dot = float(row @ col)
    if abs(dot) > 1e-3:
        raise DicomSeriesError(
            f"{path}: ImageOrientationPatient {iop.tolist()} has non-perpendicular row and column "
            f"cosines (dot product {dot:.3g})"
        )
    col = col - dot * row  # remove the rounding residue of the decimal strings
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    proj = np.array([f.position @ normal for f in frames])
    order = np.argsort(proj, kind="stable")
    frames = [frames[i] for i in order]
    positions = np.array([f.position for f in frames])
    delta = positions - positions[0]
    z = delta @ normal
    inplane = np.stack([delta @ row, delta @ col], axis=1)
    return _Stack(frames, row, col, normal, z, inplane, frames[0].pixel_spacing)


def _slice_problems(path: Path, st: _Stack) -> tuple[float | None, str | None, float, bool]:
    """(tilt angle in degrees or None, irregularity text or None, z spacing mm, irregular?).

    Duplicated positions raise at once: no resampling can choose between two slices.
    """
    z = st.z_mm
    gaps = np.diff(z)
    if gaps.size and np.min(gaps) < POSITION_TOL_MM:
        k = int(np.argmin(gaps))
        n_dup = int(np.sum(gaps < POSITION_TOL_MM))
        raise DicomSeriesError(
            f"{path}: {n_dup} pair(s) of slices share a position along the slice normal, e.g. "
            f"{st.frames[k].path.name} and {st.frames[k + 1].path.name} at {_fmt_mm(z[k])} mm; the series "
            "probably holds several acquisitions or phases (check AcquisitionNumber, "
            "TemporalPositionIdentifier)"
        )
    shear = np.linalg.norm(st.inplane_mm, axis=1)
    shear_tol = max(POSITION_TOL_MM, RELATIVE_TOL * float(np.min(st.pixel_spacing)))
    tilt = None
    if shear.size > 1 and float(np.max(shear)) > shear_tol:
        tilt = math.degrees(math.atan2(float(shear[-1]), float(z[-1])))
    if not gaps.size:
        return tilt, None, 0.0, False
    median = float(np.median(gaps))
    tol = max(POSITION_TOL_MM, RELATIVE_TOL * median)
    mean = float(z[-1]) / (len(z) - 1)
    off_grid = np.abs(z - mean * np.arange(len(z)))
    irregular = bool(np.max(np.abs(gaps - median)) > tol or np.max(off_grid) > tol)
    text = _irregular_text(st, gaps, median, tol) if irregular else None
    return tilt, text, (median if irregular else mean), irregular


def _irregular_text(st: _Stack, gaps: np.ndarray, median: float, tol: float) -> str:
    """What is irregular: the gaps, and where slices are missing (``z`` = position along the slice normal,
    the patient z of axial slices, in mm) when the largest gap is a whole number of median gaps."""
    counts = Counter(round(float(g), 3) for g in gaps)
    listing = ", ".join(f"{_fmt_mm(g)} mm x{n}" for g, n in sorted(counts.items()))
    worst = int(np.argmax(np.abs(gaps - median)))
    z0 = float(st.frames[0].position @ st.normal)
    below, above = z0 + float(st.z_mm[worst]), z0 + float(st.z_mm[worst + 1])
    ratio = float(gaps[worst]) / median
    k = round(ratio)
    if k >= 2 and abs(ratio - k) * median <= tol:
        missing = [below + j * median for j in range(1, k)]
        shown = ", ".join(_fmt_mm(m) for m in missing[:4]) + (", ..." if len(missing) > 4 else "")
        where = f"{k - 1} slice{'s' if k > 2 else ''} missing near z = {shown} mm"
    else:
        where = "a slice may be missing or misplaced"
    return (f"irregular slice spacing: gaps along the slice normal are {listing} (median {_fmt_mm(median)} mm, "
            f"tolerance {_fmt_mm(tol)} mm; largest deviation between {st.frames[worst].path.name} (z = "
            f"{_fmt_mm(below)} mm) and {st.frames[worst + 1].path.name} (z = {_fmt_mm(above)} mm)): {where}")


# ----------------------------------------------------------------------------------------------
# pixels
# ----------------------------------------------------------------------------------------------
def _decode(path: Path) -> tuple[np.ndarray, Dataset]:
    """The decoded pixel array and the dataset of one file (:func:`_pixel_dataset`'s checks first)."""
    ds, ts = _pixel_dataset(path)
    try:
        with quiet_pydicom():
            arr = ds.pixel_array
    except Exception as exc:  # decoder errors come as many types (ValueError, RuntimeError, ...)
        name = _uid_name(ts) if ts else "unknown transfer syntax"
        raise InputFileError(
            f"{path}: cannot decode pixel data ({name}): {type(exc).__name__}: {one_line(exc, 200)}"
        ) from exc
    return arr, ds


def _pixel_dataset(path: Path) -> tuple[Dataset, str | None]:
    """(dataset with its pixel data, transfer syntax) of one file, checked as far as it can be without decoding:
    the file reads, it has pixel data, a greyscale pixel module, and pixel data that can hold its frames
    (:func:`check_pixel_data`)."""
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path, force=True)  # force: preamble-less files passed the header scan
    except Exception as exc:  # any failure of a file that parsed before means a damaged file
        raise InputFileError(f"{path}: cannot read DICOM file ({type(exc).__name__}: {one_line(exc)})") from exc
    ts = _transfer_syntax(ds)
    if ts is not None and not getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None):
        if not hasattr(ds, "file_meta"):
            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(ts)  # raw dataset: tell the pixel decoders what it uses
    if "PixelData" not in ds:
        raise InputFileError(f"{path}: image has no readable pixel data (truncated or damaged file?)")
    try:
        with quiet_pydicom():
            _check_pixel_module(path, ds)
            check_pixel_data(path, ds, ts)
    except FlrError:
        raise
    except _PARSE_ERRORS as exc:
        raise InputFileError(f"{path}: malformed pixel data attributes ({type(exc).__name__}: "
                             f"{one_line(exc)})") from None
    return ds, ts


def _check_pixel_module(path: Path, ds: Dataset) -> None:
    """Greyscale, one sample per pixel, 8/16/32 bits, rescaled by slope and intercept (not a LUT)."""
    spp = _integer(ds, "SamplesPerPixel", 1, path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if spp != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputFileError(f"{path}: only greyscale images are supported (SamplesPerPixel {spp}, "
                             f"{quote(photometric)}); a colour image is not a CT")
    bits = _integer(ds, "BitsAllocated", 16, path)
    if bits not in (8, 16, 32):
        raise InputFileError(f"{path}: BitsAllocated {bits}: flr reads 8-, 16- and 32-bit greyscale pixels")
    if "ModalityLUTSequence" in ds:
        raise InputFileError(
            f"{path}: a Modality LUT Sequence instead of RescaleSlope/RescaleIntercept is not supported"
        )


def check_pixel_data(path: Path, ds: Dataset, ts: str | None) -> None:
    """Refuse pixel data that cannot hold Rows x Columns x NumberOfFrames, before a decoder allocates that.

    Used for CT images and DICOM-SEG (whose BINARY frames have 1 bit per pixel, packed).

    Native (uncompressed) data must hold at least that many bytes. Encapsulated data must hold a fragment
    per frame, and a JPEG or JPEG 2000 frame must have the size Rows x Columns in its own codestream
    header; other compressions (RLE) may not claim more than :data:`~flr.io.DEFLATE_MAX_RATIO` times
    their size.
    """
    rows, cols = _integer(ds, "Rows", 0, path), _integer(ds, "Columns", 0, path)
    frames = _integer(ds, "NumberOfFrames", 1, path)
    if rows < 1 or cols < 1 or frames < 1:
        raise InputFileError(f"{path}: Rows {rows}, Columns {cols}, NumberOfFrames {frames}: an image needs at least "
                             "one of each")
    needed = (rows * cols * frames * _integer(ds, "BitsAllocated", 16, path) + 7) // 8
    value = ds.PixelData
    what = f"Rows x Columns x NumberOfFrames = {rows} x {cols} x {frames}"
    if ts is None or not pydicom.uid.UID(ts).is_encapsulated:
        if len(value) < needed:
            raise InputFileError(f"{path}: pixel data holds {format_bytes(len(value))}, {what} needs "
                                 f"{format_bytes(needed)}; the file is truncated or those attributes are wrong")
        return
    n_fragments, first = _fragments(path, value)
    if n_fragments < frames:
        raise InputFileError(f"{path}: NumberOfFrames is {frames} but the compressed pixel data holds "
                             f"{n_fragments} fragment(s); the file is truncated or NumberOfFrames is wrong")
    size = _codestream_size(first)
    if size is not None and size != (rows, cols):
        raise InputFileError(f"{path}: Rows x Columns is {rows} x {cols} but the compressed frame is {size[0]} x "
                             f"{size[1]} pixels; the header is corrupt")
    if size is None and needed > DEFLATE_MAX_RATIO * len(value):
        raise InputFileError(f"{path}: {what} ({format_bytes(needed)}) cannot come out of "
                             f"{format_bytes(len(value))} of compressed pixel data; the header is corrupt")


def _fragments(path: Path, value: bytes) -> tuple[int, bytes]:
    """(number of fragments, first fragment) of encapsulated pixel data (after the Basic Offset Table)."""
    from pydicom.encaps import generate_fragments, parse_fragments

    try:
        if value[:4] != b"\xfe\xff\x00\xe0":
            raise ValueError("no Basic Offset Table item")
        rest = value[8 + struct.unpack("<I", value[4:8])[0]:]
        n_fragments, _ = parse_fragments(rest)
        first = next(iter(generate_fragments(rest)), b"")
    except (ValueError, struct.error, TypeError) as exc:
        raise InputFileError(f"{path}: compressed pixel data is malformed ({one_line(exc)})") from None
    return int(n_fragments), bytes(first)


#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, hierarchical; JPEG-LS SOF55).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})


def _codestream_size(fragment: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG 2000 SIZ or a JPEG / JPEG-LS start-of-frame header; None if neither."""
    siz = fragment.find(b"\xff\x4f\xff\x51", 0, 4096)
    if siz >= 0 and len(fragment) >= siz + 24:
        x, y, x0, y0 = struct.unpack(">IIII", fragment[siz + 8 : siz + 24])
        return y - y0, x - x0
    if fragment[:2] != b"\xff\xd8":
        return None
    offset = 2
    while offset + 9 <= min(len(fragment), 1 << 16):
        if fragment[offset] != 0xFF:
            return None
        marker = fragment[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", fragment[offset + 5 : offset + 9])
            return (height, width) if height else None  # height 0: given later by a DNL marker
        offset += 2 + int.from_bytes(fragment[offset + 2 : offset + 4], "big")
    return None


def _plane(arr: np.ndarray, f: _Frame, file: Path) -> np.ndarray:
    """The (rows, columns) plane of frame ``f`` in a decoded array."""
    if f.frame is None:
        plane = arr
    elif arr.ndim == 3 and f.frame < arr.shape[0]:
        plane = arr[f.frame]
    elif arr.ndim == 2 and f.frame == 0:
        plane = arr
    else:
        plane = None
    if plane is None or plane.shape != (f.rows, f.cols):
        got = None if plane is None else plane.shape
        raise InputFileError(
            f"{file}: decoded pixel array {arr.shape} does not hold a {f.rows}x{f.cols} frame {f.frame} (got {got})"
        )
    return plane


#: Rows and columns of a plane to keep, (y, x) slices with steps of 1; None keeps the whole plane.
_Crop = tuple[slice, slice] | None


def _pixels(st: _Stack, workers: int, *, slices: range | None = None, crop: _Crop = None) -> np.ndarray:
    """Rescaled pixel stack (z, y, x) in sorted order: int16 when exact and in range, else float32.

    The files are decoded and rescaled by :func:`_rescaled_planes` (in ``workers`` processes, or in this one
    when 1, :func:`_decoded`), each file's planes copied into the stack as they arrive; the stack is
    allocated only once the first file's pixel data has been checked against its Rows and Columns (all
    slices share them), so a header that lies about the matrix size allocates nothing. A plane whose values
    do not fit int16 turns the stack float32 (exact for the int16 planes copied before); the result does
    not depend on the order in which files arrive.

    ``slices`` (sorted slice indices, consecutive) and ``crop`` ((y, x) slices of each plane) decode the files
    of those slices only and keep only the crop of each plane, :func:`_pixels` of the whole stack ``[slices,
    crop]`` in value: whether the rescale is integral is the whole series' (every slice's slope and intercept),
    whether a plane fits int16 is decided on its crop, so the stack is float32 only when a value kept needs it.
    """
    frames = st.frames
    chosen = range(len(frames)) if slices is None else slices
    rows, cols = ((frames[0].rows, frames[0].cols) if crop is None
                  else (crop[0].stop - crop[0].start, crop[1].stop - crop[1].start))
    integral = all(float(f.slope).is_integer() and float(f.intercept).is_integer() for f in frames)
    out: np.ndarray | None = None
    by_file: dict[Path, list[tuple[int, _Frame]]] = {}
    for slot, k in enumerate(chosen):
        by_file.setdefault(frames[k].path, []).append((slot, frames[k]))
    for planes in _decoded(list(by_file.items()), integral, workers, crop):
        for slot, values in planes:
            if out is None:
                out = np.empty((len(chosen), rows, cols), dtype=np.int16 if integral else np.float32)
            if values.dtype != out.dtype and out.dtype == np.int16:
                out = out.astype(np.float32)
            out[slot] = values
    if out is None:  # pragma: no cover - a stack always has a frame
        raise DicomSeriesError("empty DICOM stack")
    return out


def _rescaled_planes(path: Path, items: Sequence[tuple[int, _Frame]], integral: bool,
                     crop: _Crop = None) -> list[tuple[int, np.ndarray]]:
    """(slot, rescaled plane) of each frame of one file, ``stored * slope + intercept``: int16 when every
    frame of the series is rescaled by integers (``integral``) and the plane's values fit, float32 otherwise
    (exactly what converting the int16 stack to float32 would make of them); only the ``crop`` of each plane
    when given. What a decoder process sends back."""
    arr = _decode_array(path)
    info = np.iinfo(np.int16)
    planes = []
    for slot, f in items:
        plane = _plane(arr, f, path)
        if crop is not None:
            plane = plane[crop[0], crop[1]]
        if integral:
            values = plane.astype(np.int64) * int(f.slope) + int(f.intercept)
            fits = not values.size or (values.min() >= info.min and values.max() <= info.max)
            planes.append((slot, values.astype(np.int16 if fits else np.float32)))
        else:
            planes.append((slot, (plane.astype(np.float64) * f.slope + f.intercept).astype(np.float32)))
    return planes


# ----------------------------------------------------------------------------------------------
# decoding in parallel
# ----------------------------------------------------------------------------------------------
#: Environment variable: how many processes decode a compressed series (a positive integer; 1 decodes in the
#: calling process). Default: the CPUs this process may run on, but 1 inside a worker process of a pool
#: (``flr batch -j``, a Dask worker), which spreads its cases over the cores already.
DECODE_WORKERS_ENV = "FLR_DECODE_WORKERS"
#: A compressed series of fewer pixels than this is decoded in the calling process when the worker count is
#: not given explicitly: starting the worker processes costs more than they save on it. Measured with
#: ``benchmarks/bench_dicom_decode.py --sweep`` (JPEG 2000, 512 x 512 slices, 2 cores): the pool costs about
#: 0.5 s to start, a slice about 25 ms to decode, so two workers break even near 40 slices when a core is free
#: (16 slices: 0.59x; 192 and 400 slices: 1.4-1.5x) and never gain when other work holds it. Uncompressed pixel
#: data is always read in the calling process.
PARALLEL_MIN_PIXELS = 64 * 512 * 512
#: How decoder processes start: ``forkserver`` (one small server process forks them, with this module loaded)
#: where the system has it, else ``spawn``; never ``fork``, which is unsafe when the caller runs threads.
_START_METHOD: str | None = None  # None: the first of those the system has
#: Files handed out ahead per worker: enough to keep every worker busy, few enough that decoded slices
#: waiting to be written stay a handful (memory bounded by this many slices per worker).
_AHEAD_PER_WORKER = 2


def _available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one, else ``os.cpu_count()``)."""
    import os

    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else os.cpu_count() or 1)


def decode_worker_count(requested: int | None = None) -> int:
    """How many processes decode a compressed series: ``requested``, else :data:`DECODE_WORKERS_ENV`, else
    the CPUs available (1 in a worker process of a pool).

    >>> decode_worker_count(3)
    3

    Raises
    ------
    FlrError
        ``requested`` or the environment variable is not a positive integer (the message names it).
    """
    import multiprocessing
    import os

    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise FlrError(f"decode_workers must be a positive integer or None, got {quote(requested)}")
        return requested
    text = os.environ.get(DECODE_WORKERS_ENV, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise FlrError(f"{DECODE_WORKERS_ENV}={quote(text)} is not a positive integer (the number of processes "
                           "decoding a compressed DICOM series; 1 decodes in this process)")
        return value
    return 1 if multiprocessing.parent_process() is not None else _available_cpus()


def _series_workers(st: _Stack, series: _Series, requested: int | None, slices: range | None = None) -> int:
    """Processes for this series (or its ``slices``): 1 for uncompressed data, one file, or (unless ``requested``)
    a small series."""
    frames = st.frames if slices is None else [st.frames[k] for k in slices]
    n_files = len({f.path for f in frames})
    if n_files < 2 or not any(_is_compressed(ts) for ts in series.transfer_syntaxes):
        return 1
    workers = decode_worker_count(requested)
    if requested is None and len(frames) * st.frames[0].rows * st.frames[0].cols < PARALLEL_MIN_PIXELS:
        return 1
    return min(workers, n_files)


def _is_compressed(ts: str) -> bool:
    """A known compressed (encapsulated) transfer syntax; False for a damaged or unknown UID, which the serial
    decode then refuses with its own message."""
    with quiet_pydicom():  # a damaged UID warns on construction
        uid = pydicom.uid.UID(ts)
        try:
            return bool(uid.is_transfer_syntax and uid.is_encapsulated)
        except ValueError:
            return False


def _decode_array(path: Path) -> np.ndarray:
    """The decoded pixel array of one file."""
    return _decode(path)[0]


def _ignore_sigint() -> None:
    """A decoder process leaves Ctrl-C to the caller, which stops handing out files and shuts the pool down."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_context() -> Any:
    """The multiprocessing context of decoder processes (:data:`_START_METHOD`). A forkserver started here
    loads this module (and ``__main__``, as by default) once, so its processes start without importing it."""
    import multiprocessing

    method = _START_METHOD or ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["__main__", __name__])  # takes effect when the server starts
    return context


def _decoded(jobs: Sequence[tuple[Path, list[tuple[int, _Frame]]]], integral: bool,
             workers: int, crop: _Crop = None) -> Iterator[list[tuple[int, np.ndarray]]]:
    """:func:`_rescaled_planes` of every (file, frames) job, in this process (``workers`` 1) or in a pool of
    ``workers`` processes, in the order they finish.

    A pool fails as the calling process would: with the error of the first job, in ``jobs`` order, that
    fails (jobs after it are not run). Processes start as :func:`_process_context` says and end with the
    call; at most :data:`_AHEAD_PER_WORKER` files per process are in flight, and a decoder that crashes its
    process is reported with the files it may have been decoding.
    """
    if workers <= 1:
        for path, items in jobs:
            yield _rescaled_planes(path, items, integral, crop)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    files = [path for path, _ in jobs]
    pool = ProcessPoolExecutor(workers, mp_context=_process_context(), initializer=_ignore_sigint)
    pending: dict[Future[list[tuple[int, np.ndarray]]], int] = {}
    first_error: tuple[int, BaseException] | None = None
    submitted = 0
    try:
        while pending or (first_error is None and submitted < len(jobs)):
            while first_error is None and submitted < len(jobs) and len(pending) < workers * _AHEAD_PER_WORKER:
                pending[pool.submit(_rescaled_planes, *jobs[submitted], integral, crop)] = submitted
                submitted += 1
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=pending.__getitem__):
                index = pending.pop(future)
                error = _pool_error(future, index, files, pending.values())
                if error is not None and (first_error is None or index < first_error[0]):
                    first_error = (index, error)
                elif error is None and first_error is None:
                    yield future.result()
            if first_error is not None:  # only jobs before the failing one can still fail first
                for future in [f for f, i in pending.items() if i > first_error[0]]:
                    future.cancel()
                    del pending[future]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if first_error is not None:
        raise first_error[1]


def _pool_error(future: Any, index: int, files: Sequence[Path], in_flight: Any) -> BaseException | None:
    """The error of a finished decode (None when it succeeded); a process that died is named with the files
    it may have been decoding (this one and those still in flight)."""
    from concurrent.futures.process import BrokenProcessPool

    error = future.exception()
    if not isinstance(error, BrokenProcessPool):
        return error
    running = sorted([index, *in_flight])
    names = ", ".join(files[i].name for i in running[:3]) + (", ..." if len(running) > 3 else "")
    return InputFileError(f"{files[index].parent}: a pixel decoder process ended abruptly (a crash in the "
                          f"decoder) while decoding one of {names}; decoding them with {DECODE_WORKERS_ENV}=1 names "
                          "the file")


def _deshear_extent(st: _Stack) -> tuple[int, int, int, int]:
    """(i0, j0, rows, columns) of :func:`_deshear`'s grid: its first voxel lies ``i0`` columns and ``j0`` rows
    from the first slice's (whole pixels), its size holds every slice moved onto it."""
    sy, sx = st.pixel_spacing
    u = st.inplane_mm[:, 0] / sx
    v = st.inplane_mm[:, 1] / sy
    i0 = math.floor(float(np.min(u)) + 1e-6)
    j0 = math.floor(float(np.min(v)) + 1e-6)
    nx = math.ceil(float(np.max(u)) - 1e-6) + st.frames[0].cols - i0
    ny = math.ceil(float(np.max(v)) - 1e-6) + st.frames[0].rows - j0
    return i0, j0, ny, nx


def _deshear(stack: np.ndarray, st: _Stack) -> np.ndarray:
    """Undo a gantry tilt: translate each slice in its plane onto the first slice's in-plane grid.

    Slice ``k``'s pixel (0, 0) sits ``(u_k, v_k)`` pixels from the first slice's along (row, col).
    The output grid keeps the first slice's in-plane axes and spacing, extended by whole pixels so
    that no slice loses data; each output slice is the input slice moved by ``(-u_k, -v_k)`` with
    bilinear interpolation (exact for whole-pixel moves). Voxels that no slice covers get the minimum
    of the series (air/padding). The grid (its first voxel's offset, its size) is :func:`_deshear_extent`'s.
    """
    from scipy import ndimage  # lazily: only tilted series need it

    sy, sx = st.pixel_spacing
    u = st.inplane_mm[:, 0] / sx
    v = st.inplane_mm[:, 1] / sy
    i0, j0, ny, nx = _deshear_extent(st)
    fill = float(np.min(stack))
    out = np.empty((stack.shape[0], ny, nx), dtype=np.float32)
    for k in range(stack.shape[0]):
        ndimage.affine_transform(
            stack[k].astype(np.float32),
            np.eye(2),
            offset=(j0 - v[k], i0 - u[k]),
            output_shape=(ny, nx),
            output=out[k],
            order=1,
            mode="constant",
            cval=fill,
            prefilter=False,
        )
    return out


def _regrid_count(z_mm: np.ndarray, spacing_mm: float) -> int:
    """Slices of :func:`_regrid_z`'s grid: from the first position to at most the last, ``spacing_mm`` apart."""
    return math.floor(float(z_mm[-1]) / spacing_mm + 1e-6) + 1


def _regrid_z(stack: np.ndarray, z_mm: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Linear interpolation along axis 0 from positions ``z_mm`` onto ``0, spacing, 2 spacing, ...``."""
    n = _regrid_count(z_mm, spacing_mm)
    targets = np.arange(n) * spacing_mm
    out = np.empty((n, *stack.shape[1:]), dtype=np.float32)
    hi = np.clip(np.searchsorted(z_mm, targets, side="left"), 1, len(z_mm) - 1)
    for k, t in enumerate(targets):
        b = int(hi[k])
        a = b - 1
        w = float(np.clip((t - z_mm[a]) / (z_mm[b] - z_mm[a]), 0.0, 1.0))
        out[k] = (1.0 - w) * stack[a].astype(np.float32) + w * stack[b].astype(np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------------------
def _z_spacing(path: Path, series_label: str, st: _Stack, resample: bool) -> tuple[float, str, float | None, bool]:
    """(z spacing in mm, where it comes from, gantry tilt in degrees or None, irregular spacing?).

    Raises :class:`~flr.errors.DicomSeriesError` for a single slice without a thickness, and for a tilted
    or irregular series unless ``resample``.
    """
    if len(st.frames) == 1:
        f0 = st.frames[0]
        z_spacing = f0.thickness_mm or f0.spacing_between_mm
        if z_spacing is None or z_spacing <= 0:
            raise DicomSeriesError(f"{path}: a single slice without a positive SliceThickness has no z spacing")
        z_source = (
            "SliceThickness (single-slice image: no second position to measure the spacing from)"
            if f0.thickness_mm
            else "SpacingBetweenSlices (single-slice image without SliceThickness)"
        )
        return z_spacing, z_source, None, False
    tilt, irregular_text, z_spacing, irregular = _slice_problems(path, st)
    problems = []
    if tilt is not None:
        step = float(np.linalg.norm(st.inplane_mm[-1])) / (len(st.frames) - 1)
        problems.append(
            f"gantry tilt of {abs(tilt):.2f} degrees: slice positions move {_fmt_mm(step)} mm per slice "
            "within the image plane (the slice stack is sheared)"
        )
    if irregular_text is not None:
        problems.append(irregular_text)
    if problems and not resample:
        raise DicomSeriesError(
            f"{path}: series {series_label}: {'; '.join(problems)}; refusing to read it as a regular "
            "grid (resample=True / --resample resamples it onto a regular orthogonal grid)"
        )
    return z_spacing, "ImagePositionPatient (projection on the slice normal)", tilt, irregular


@dataclass(frozen=True)
class _Grid:
    """The voxel grid of a checked stack, from its headers alone: what :func:`read_dicom` returns the array on."""

    geometry: Geometry
    resampled: str | None  # how the stack is resampled onto the grid, None when it is not
    z_source: str


def _grid(st: _Stack, tilt: float | None, irregular: bool, z_spacing: float, z_source: str) -> _Grid:
    """The grid of a checked stack: its own, or the one a tilted stack is desheared onto (:func:`_deshear`)
    and an irregular one regridded onto along z (:func:`_regrid_z`)."""
    origin = st.frames[0].position.astype(float)
    n, rows, cols = len(st.frames), st.frames[0].rows, st.frames[0].cols
    notes = []
    if tilt is not None:
        i0, j0, rows, cols = _deshear_extent(st)
        sy, sx = st.pixel_spacing
        offset_mm = np.array([i0 * sx, j0 * sy])
        origin = origin + offset_mm[0] * st.row + offset_mm[1] * st.col
        notes.append(
            f"gantry tilt of {abs(tilt):.2f} degrees corrected by translating each slice within its plane "
            f"onto the first slice's grid (bilinear), in-plane size (rows x columns) "
            f"{st.frames[0].rows}x{st.frames[0].cols} -> {rows}x{cols} so that no data is cut"
        )
    if irregular:
        n_in, n = n, _regrid_count(st.z_mm, z_spacing)
        notes.append(
            f"irregular slice positions resampled by linear interpolation along the slice normal: "
            f"{n_in} slices -> {n} slices {_fmt_mm(z_spacing)} mm apart (median gap)"
        )
        z_source = "median gap of ImagePositionPatient projections (resampled)"
    sy, sx = (float(v) for v in st.pixel_spacing)
    geometry = Geometry(
        shape_zyx=(n, rows, cols),
        spacing_mm=(sx, sy, float(z_spacing)),
        origin_mm=tuple(origin.tolist()),
        direction=tuple(np.column_stack([st.row, st.col, st.normal]).ravel().tolist()),
    )
    return _Grid(geometry, "; ".join(notes) if notes else None, z_source)


def _regularise(array: np.ndarray, st: _Stack, tilt: float | None, irregular: bool, z_spacing: float,
                grid: _Grid) -> np.ndarray:
    """The stack (z, y, x) on ``grid``: desheared when tilted, regridded along z when irregular; either makes
    it ``float32``."""
    if tilt is not None:
        array = _deshear(array, st)
    if irregular:
        array = _regrid_z(array, st.z_mm, z_spacing)
    if array.shape != grid.geometry.shape_zyx:  # pragma: no cover - _grid computes what the resampling makes
        raise DicomSeriesError(f"resampled stack {array.shape} is not on its grid {grid.geometry.shape_zyx}")
    return array if grid.resampled is None else array.astype(np.float32, copy=False)


def _metadata(series: _Series, st: _Stack, resampled: str | None, z_source: str) -> dict[str, Any]:
    """The metadata of :func:`read_dicom` (its docstring lists the keys); no patient identifiers."""
    thickness_values = [f.thickness_mm for f in st.frames if f.thickness_mm is not None]
    return {
        "series_instance_uid": series.uid,
        "series_description": series.description,
        "study_date": series.study_date,
        "modality": series.modality,
        "manufacturer": series.manufacturer,
        "n_slices": len(st.frames),
        "transfer_syntax_uids": sorted(series.transfer_syntaxes),
        "slice_thickness_mm": Counter(thickness_values).most_common(1)[0][0] if thickness_values else None,
        "files": sorted({str(f.path) for f in st.frames}),
        "resampled": resampled,
        "z_spacing_source": z_source,
        "study_instance_uid": series.study_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "sop_class_uid": series.sop_class_uid,
        "sop_instance_uids": [f.sop_instance_uid for f in st.frames],
        "image_positions_mm": [f.position.astype(float).tolist() for f in st.frames],
    }


def read_dicom(path: Path | str, *, series_uid: str | None = None, resample: bool = False,
               decode_workers: int | None = None) -> Image:
    """Read one DICOM image series (a folder, searched recursively, or a single file) as an Image.

    Parameters
    ----------
    path
        Folder holding the series (any file names, nested folders; non-DICOM files, SEG, RTSTRUCT,
        SR and other non-image objects are ignored), or one DICOM file: a single slice or an Enhanced
        (multi-frame) CT.
    series_uid
        SeriesInstanceUID to read when the folder holds several image series.
    resample
        Accept an irregular or gantry-tilted series by resampling it (otherwise it is refused):

        * gantry tilt: each slice is translated in its own plane onto the first slice's in-plane grid
          (bilinear), which yields an orthogonal grid whose z axis is the slice normal, with the
          in-plane extent enlarged so that no data is cut (see ``_deshear``);
        * irregular spacing (e.g. a missing slice): linear interpolation between the two neighbouring
          slices onto a regular grid with the median gap, starting at the first slice and ending at
          or before the last one.

        The result is ``float32`` and ``metadata['resampled']`` describes what was done.
    decode_workers
        Processes that decode compressed (JPEG, JPEG 2000, ...) pixel data, one file at a time each; 1 decodes
        in this process. None: :data:`DECODE_WORKERS_ENV` or the CPUs available (:func:`decode_worker_count`),
        and 1 for a series under :data:`PARALLEL_MIN_PIXELS`. The array is the same whatever the count, and so
        is the error of a file that cannot be decoded (the first such file in slice order).

    Returns
    -------
    Image
        Array ``(z, y, x)`` of rescaled values (Hounsfield units for CT), ``int16`` when exact,
        else ``float32``; LPS geometry. ``metadata`` holds ``series_instance_uid``,
        ``series_description``, ``study_date``, ``modality``, ``manufacturer``, ``n_slices`` (DICOM
        slices/frames read), ``transfer_syntax_uids`` (sorted), ``slice_thickness_mm`` (the header's
        SliceThickness, for information; the most common value when slices differ), ``files``
        (sorted paths), ``resampled`` (None or a description), ``z_spacing_source``, ``warnings``
        (files skipped, with how many and why; a series grouped without UIDs) and the
        identities that readers and writers of objects referencing this CT (DICOM-SEG, RTSTRUCT) use
        instead of opening its files again: ``study_instance_uid``, ``frame_of_reference_uid``,
        ``sop_class_uid`` (of the first slice), ``sop_instance_uids`` and ``image_positions_mm``
        (ImagePositionPatient, LPS mm), one per DICOM slice or frame in slice order (the frames of
        an Enhanced CT share their file's SOPInstanceUID; after resampling the lists describe the
        slices read, not the array's). No patient identifiers.

    Raises
    ------
    DicomSeriesError
        No image series, several series and no (or an unknown) ``series_uid``, inconsistent slices,
        duplicated positions, irregular spacing or gantry tilt without ``resample`` (a missing slice is
        named by its position; files skipped are named too); a PixelSpacing that is not > 0, a
        position, orientation, SliceThickness or rescale value that is not a finite number, a
        RescaleSlope of 0 (each names the attribute and the file).
    InputFileError
        Missing path, unreadable file, pixel data that cannot hold Rows x Columns x NumberOfFrames
        (checked before decoding), colour pixels, or undecodable pixel data (the message names the file).
    """
    path = Path(path)
    series, st, (z_spacing, tilt, irregular), grid, metadata = _read_headers(path, series_uid, resample)
    array = _regularise(_pixels(st, _series_workers(st, series, decode_workers)), st, tilt, irregular, z_spacing, grid)
    return Image(array, grid.geometry, source=str(path), metadata=metadata)


def read_dicom_header(path: Path | str, *, series_uid: str | None = None,
                      resample: bool = False) -> tuple[Geometry, dict[str, Any]]:
    """The geometry and metadata :func:`read_dicom` gives for the same arguments, from the headers alone
    (every file is read up to its pixel data, none is decoded).

    Raises what :func:`read_dicom` raises before it decodes: every header check (series, slices, spacing,
    tilt, attribute values). A file whose pixel data is damaged, too short or undecodable is found only by
    :func:`read_dicom`.
    """
    _, _, _, grid, metadata = _read_headers(Path(path), series_uid, resample)
    return grid.geometry, metadata


def open_dicom(path: Path | str, *, series_uid: str | None = None, resample: bool = False,
               decode_workers: int | None = None) -> tuple[Geometry, dict[str, Any], DicomVoxels]:
    """The geometry and metadata of :func:`read_dicom_header`, and the series' voxels to decode when asked
    (:class:`DicomVoxels`, for a :class:`~flr.image.LazyImage`).

    Besides every header check, every file's pixel data is checked as far as it can be without decoding it, in
    slice order, as the full read checks it before decoding (it reads, it is there, greyscale, long enough for
    Rows x Columns x NumberOfFrames, compressed frames of the stated size): a truncated or mislabelled file is
    refused here, with the message :func:`read_dicom` gives, wherever it lies in the series. What only a decoder
    finds (a damaged compressed stream) is found when that slice is decoded, and not at all for a slice that no
    decode asks for (its values are used nowhere).

    Raises what :func:`read_dicom_header` raises, and :class:`~flr.errors.InputFileError` for pixel data those
    checks refuse.
    """
    series, st, problems, grid, metadata = _read_headers(Path(path), series_uid, resample)
    for file in dict.fromkeys(f.path for f in st.frames):  # each file once, in slice order
        _pixel_dataset(file)
    return grid.geometry, metadata, DicomVoxels(series, st, problems, grid, decode_workers)


@dataclass(frozen=True)
class DicomVoxels:
    """The voxels of a series opened by :func:`open_dicom` (a :class:`~flr.image.VoxelSource`).

    ``read(None)`` is :func:`read_dicom`'s array. ``read(box)`` decodes only the files of the box's slices (z
    range) and keeps the box's rows and columns of each: the values of ``read(None)[box]``, in int16 unless a
    value of the box needs float32 (the full read is float32 when any slice of the series needs it; every
    value is the same). A multi-frame file (Enhanced CT) is decoded whole, and the planes outside the box
    dropped as they come. A resampled series (tilt, irregular spacing) is decoded in full for any box
    (``partial`` False): its resampling reads neighbouring slices and fills with the series' minimum.
    Decoding errors are the full read's, for the first failing file of the box in slice order.
    """

    series: _Series
    stack: _Stack
    problems: tuple[float, float | None, bool]  # (z spacing, tilt, irregular?) of _read_headers
    grid: _Grid
    decode_workers: int | None = None

    @property
    def partial(self) -> bool:
        return self.grid.resampled is None

    def read(self, box: tuple[slice, slice, slice] | None) -> np.ndarray:
        st, series = self.stack, self.series
        if box is None or not self.partial:
            z_spacing, tilt, irregular = self.problems
            full = _pixels(st, _series_workers(st, series, self.decode_workers))
            array = _regularise(full, st, tilt, irregular, z_spacing, self.grid)
            return array if box is None else array[box].copy()
        z, y, x = box
        slices = range(z.start, z.stop)
        return _pixels(st, _series_workers(st, series, self.decode_workers, slices), slices=slices, crop=(y, x))


def _read_headers(path: Path, series_uid: str | None, resample: bool
                  ) -> tuple[_Series, _Stack, tuple[float, float | None, bool], _Grid, dict[str, Any]]:
    """What :func:`read_dicom` knows before it decodes: the series, its sorted stack, (z spacing, tilt,
    irregular?), the grid and the metadata (with the warnings)."""
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    found, skipped = _scan(path)
    series = _choose_series(path, found, skipped, series_uid)
    try:
        st = _stack(path, series.frames)
        z_spacing, z_source, tilt, irregular = _z_spacing(path, series.label, st, resample)
    except DicomSeriesError as exc:
        if not skipped:
            raise
        raise DicomSeriesError(f"{exc}; skipped: {_skip_summary(path, skipped)}") from None
    grid = _grid(st, tilt, irregular, z_spacing, z_source)
    metadata = _metadata(series, st, grid.resampled, grid.z_source)
    metadata["warnings"] = _warnings(path, series, skipped)
    return series, st, (z_spacing, tilt, irregular), grid, metadata


def _warnings(path: Path, series: _Series, skipped: Sequence[_Skip]) -> list[str]:
    """What the user should know about a series read: the files left out, and UIDs it lacks."""
    notes = []
    if skipped:
        notes.append(f"{path}: {len(skipped)} file(s) skipped, not part of the series read: "
                     f"{_skip_summary(path, skipped)}")
    if not series.uid:
        lacking = "SeriesInstanceUID" + ("" if series.study_uid else " and StudyInstanceUID")
        notes.append(f"{path}: the images carry no {lacking} (an anonymised export?); grouped into one series by "
                     "FrameOfReferenceUID, ImageOrientationPatient, PixelSpacing, Rows/Columns and SeriesNumber")
    return notes


def read_series_header(image: Image) -> Dataset:
    """The header (no pixel data) of one file of a DICOM series read by :func:`read_dicom`.

    The one way back to the Patient, Study and General Series modules: patient identifiers never enter
    ``Image.metadata``, so an object that must carry them (a DICOM-SEG written for this CT has to file
    under the same patient) takes them from here; every per-slice identity (SOPInstanceUIDs,
    positions) and the study, series and frame-of-reference UIDs come from the metadata instead.

    Raises
    ------
    InputFileError
        ``image`` was not read from DICOM files, or its first file cannot be read any more.
    """
    files = image.metadata.get("files") or []
    if not files:
        raise InputFileError(f"{image.source}: not read from DICOM files (no metadata['files'])")
    header = _read_header(Path(files[0]), force=True)
    if header is None:
        raise InputFileError(f"{files[0]}: cannot read the DICOM header any more")
    return header


# ----------------------------------------------------------------------------------------------
# writer
# ----------------------------------------------------------------------------------------------
def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


def _encode_jpeg_lossless(plane: np.ndarray, workdir: Path) -> pydicom.dataelem.DataElement:
    """Encapsulated JPEG Lossless SV1 pixel data of one 2-D plane, encoded by GDCM (SimpleITK)."""
    import SimpleITK as sitk  # lazily: only this transfer syntax needs GDCM

    tmp = workdir / "jpeg-lossless.dcm"
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(tmp))
    writer.UseCompressionOn()
    writer.SetCompressor("JPEG")
    writer.Execute(sitk.GetImageFromArray(np.ascontiguousarray(plane)))
    with quiet_pydicom():
        src = pydicom.dcmread(tmp)
    ts = src.file_meta.TransferSyntaxUID
    signed = int(plane.dtype == np.int16)
    if ts != JPEGLosslessSV1 or int(src.BitsStored) != 16 or int(src.PixelRepresentation) != signed:
        raise RuntimeError(
            f"GDCM wrote transfer syntax {ts} with BitsStored {src.BitsStored}, PixelRepresentation "
            f"{src.PixelRepresentation}; expected {JPEGLosslessSV1} (JPEG Lossless SV1), 16, {signed}"
        )
    return src["PixelData"]


def _stored_values(image: Image, rescale_intercept: float, rescale_slope: float) -> tuple[np.ndarray, int]:
    """(stored values (z, y, x) as uint16, or int16 when some are negative; PixelRepresentation 0 or 1)."""
    if rescale_slope == 0 or not math.isfinite(rescale_slope) or not math.isfinite(rescale_intercept):
        raise ValueError(
            f"rescale slope and intercept must be finite and the slope non-zero, got slope {rescale_slope}, "
            f"intercept {rescale_intercept}"
        )
    hu = np.asarray(image.array, dtype=np.float64)
    if not np.all(np.isfinite(hu)):
        raise ValueError("image holds non-finite values (NaN/inf); cannot store them as DICOM integers")
    stored = np.rint((hu - rescale_intercept) / rescale_slope)
    lo, hi = (float(stored.min()), float(stored.max())) if stored.size else (0.0, 0.0)
    if lo >= 0 and hi <= np.iinfo(np.uint16).max:
        return stored.astype(np.uint16), 0
    if lo >= np.iinfo(np.int16).min and hi <= np.iinfo(np.int16).max:
        return stored.astype(np.int16), 1
    raise ValueError(
        f"stored values (HU - {rescale_intercept:g}) / {rescale_slope:g} span {lo:g}..{hi:g}, "
        "which does not fit 16 bits"
    )


def _file_names(n: int, shuffle_names: bool, seed: int) -> tuple[list[str], list[int]]:
    """(file names, InstanceNumbers) of ``n`` slices in z order: ``CT00001.dcm``... or seeded random hex."""
    if not shuffle_names:
        return [f"CT{k + 1:05d}.dcm" for k in range(n)], list(range(1, n + 1))
    rng = np.random.default_rng(seed)
    names: list[str] = []
    while len(names) < n:
        name = rng.bytes(8).hex()
        if name not in names:
            names.append(name)
    return names, (rng.permutation(n) + 1).tolist()


def _series_template(geom: Geometry, pixel_rep: int, *, series_description: str, patient_name: str,
                     patient_id: str, uids: tuple[str, str, str], rescale: tuple[float, float]) -> Dataset:
    """The attributes every slice of a written series shares; ``uids`` = (study, series, frame of reference)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    if not f"{patient_name}{patient_id}{series_description}".isascii():
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    for keyword in ("StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "PatientBirthDate",
                    "PatientSex", "KVP", "StudyID", "PositionReferenceIndicator"):
        setattr(ds, keyword, "")
    ds.Modality = "CT"
    ds.Manufacturer = "flr"
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    sx, sy, sz = geom.spacing_mm
    ds.SliceThickness = _ds(sz)
    ds.SpacingBetweenSlices = _ds(sz)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    D = geom.direction_matrix
    ds.ImageOrientationPatient = [_ds(0.0 if abs(v) < 1e-12 else v) for v in (*D[:, 0], *D[:, 1])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(geom.shape_zyx[1]), int(geom.shape_zyx[2])
    ds.PixelSpacing = [_ds(sy), _ds(sx)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_rep
    ds.RescaleIntercept = _ds(rescale[0])
    ds.RescaleSlope = _ds(rescale[1])
    ds.RescaleType = "HU"
    return ds


def _write_slice(template: Dataset, target: Path, plane: np.ndarray, *, instance_number: int,
                 position_mm: np.ndarray, slice_location_mm: float, transfer_syntax: TransferSyntaxName,
                 workdir: Path) -> Path:
    """Write one slice (stored values ``plane`` (y, x)) of a series from its shared ``template``, atomically."""
    ds = copy.deepcopy(template)
    sop_uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [_ds(v) for v in position_mm]
    ds.SliceLocation = _ds(slice_location_mm)
    ds.PixelData = plane.tobytes()
    ds["PixelData"].VR = "OW"
    ts_uid = _TRANSFER_SYNTAXES[transfer_syntax]
    if transfer_syntax == "jpeg2000-lossless":
        ds.compress(ts_uid, plane, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    elif transfer_syntax == "jpeg-lossless":
        ds["PixelData"] = _encode_jpeg_lossless(plane, workdir)
        ds.file_meta.TransferSyntaxUID = ts_uid
    with atomic_path(target) as tmp_name:
        ds.save_as(tmp_name, enforce_file_format=True)
    return target


def write_dicom_series(
    image: Image,
    folder: Path | str,
    *,
    series_description: str = "flr phantom",
    patient_name: str = "ANONYMOUS",
    patient_id: str = "FLR-PHANTOM",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    transfer_syntax: TransferSyntaxName = "explicit-little",
    shuffle_names: bool = False,
    seed: int = 0,
) -> list[Path]:
    """Write ``image`` (Hounsfield units, any numeric dtype) as a CT Image Storage series.

    One file per z slice. Stored values are ``round((HU - rescale_intercept) / rescale_slope)`` as
    uint16 (or int16 when some are negative), so integer HU read back exactly with the default
    rescale. Geometry: ImageOrientationPatient from the x and y direction columns,
    ImagePositionPatient ``origin + k * spacing_z * z_direction``, PixelSpacing ``[y, x]``,
    SliceThickness = SpacingBetweenSlices = z spacing. Each file is written to a temporary name and
    moved into place (``os.replace``).

    ``transfer_syntax``: ``"explicit-little"``, ``"jpeg2000-lossless"`` (1.2.840.10008.1.2.4.90,
    pydicom with pylibjpeg-openjpeg) or ``"jpeg-lossless"`` (1.2.840.10008.1.2.4.70, Process 14 SV1,
    encoded by GDCM through SimpleITK and checked). With ``shuffle_names`` file names are random hex
    strings without extension and InstanceNumbers are permuted (seeded by ``seed``), so a reader must
    order slices by position. Returns the paths in z order.

    Raises ``ValueError`` for a left-handed direction (z column != cross(x, y)), non-finite values,
    a zero slope, values that do not fit 16 bits, or an unknown transfer syntax.
    """
    if transfer_syntax not in _TRANSFER_SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(_TRANSFER_SYNTAXES)}, got {transfer_syntax!r}")
    geom = image.geometry
    D = geom.direction_matrix
    if not np.allclose(D[:, 2], np.cross(D[:, 0], D[:, 1]), atol=1e-4):
        raise ValueError(
            f"direction must be right-handed (z column = cross(x, y)) to be written as DICOM, got "
            f"{geom.direction}; flip the z axis of the image first"
        )
    stored, pixel_rep = _stored_values(image, rescale_intercept, rescale_slope)
    if transfer_syntax == "jpeg2000-lossless" and min(stored.shape[1:]) < _J2K_MIN_SIZE:
        raise ValueError(
            f"JPEG 2000 needs slices of at least {_J2K_MIN_SIZE}x{_J2K_MIN_SIZE} pixels (openjpeg encodes 6 "
            f"resolution levels), got {stored.shape[1]}x{stored.shape[2]}; use another transfer syntax"
        )
    template = _series_template(
        geom, pixel_rep, series_description=series_description, patient_name=patient_name, patient_id=patient_id,
        uids=(study_instance_uid or generate_uid(), series_instance_uid or generate_uid(),
              frame_of_reference_uid or generate_uid()),
        rescale=(rescale_intercept, rescale_slope))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names, instance_numbers = _file_names(stored.shape[0], shuffle_names, seed)
    origin = np.asarray(geom.origin_mm, dtype=float)
    paths: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="flr-dicom-") as work:
        for k in range(stored.shape[0]):
            position = origin + k * geom.spacing_mm[2] * D[:, 2]
            paths.append(_write_slice(template, folder / names[k], np.ascontiguousarray(stored[k]),
                                      instance_number=int(instance_numbers[k]), position_mm=position,
                                      slice_location_mm=float(position @ D[:, 2]), transfer_syntax=transfer_syntax,
                                      workdir=Path(work)))
    return paths
