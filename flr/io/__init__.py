"""The one place flr touches files: readers (picked by content and extension) and writers.

Every image read here carries ``metadata["sha256"]`` (of the file, or of a DICOM folder's files) and
``metadata["warnings"]`` (things the user should know, e.g. labels a scheme ignored).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import EmptyStructureError, InputFileError, SchemeError, UnsupportedFormatError, quote
from flr.image import Geometry, Image, LabelMap, LazyImage, VoxelSource
from flr.io._common import ImageHeader
from flr.schemes import LabelScheme, canonical_name, resolve_scheme

__all__ = [
    "ImageHeader",
    "detect_format",
    "open_image",
    "read_dicom_identifiers",
    "read_image",
    "read_image_header",
    "read_label_map",
    "read_label_maps",
    "sha256_of",
    "write_json_atomic",
    "write_nifti",
    "write_text_atomic",
]


def detect_format(path: Path) -> str:
    """What a path holds: ``"nifti"``, ``"nrrd"``, ``"dicom"`` (a file) or ``"dicom-folder"``.

    Content decides (magic numbers), the extension only breaks ties; a missing path, an empty file or
    an unknown format raises :class:`~flr.errors.InputFileError` naming the path.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    if path.is_dir():
        return "dicom-folder"
    try:
        with path.open("rb") as fh:
            head = fh.read(544)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not head:
        raise InputFileError(f"{path}: file is empty")
    name = path.name.lower()
    kind = _kind_from_head(path, head, name)
    if kind is not None:
        return kind
    if name.endswith((".nii", ".nii.gz")):
        raise InputFileError(f"{path}: not a valid NIfTI file (bad header)")
    if name.endswith((".nrrd", ".nhdr")):
        raise InputFileError(f"{path}: not a valid NRRD file (no 'NRRD' magic)")
    raise UnsupportedFormatError(f"{path}: not a NIfTI, NRRD or DICOM file")


def _kind_from_head(path: Path, head: bytes, name: str) -> str | None:
    """``"nrrd"``, ``"dicom"`` or ``"nifti"`` from a file's first 544 bytes (the lower-case name breaks the
    tie for gzip files), None when no magic number matches."""
    if head[:4] == b"NRRD":
        return "nrrd"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b":
        if name.endswith((".nii.gz", ".nii.gzip")):
            return "nifti"
        if name.endswith((".nrrd", ".nhdr")):
            return "nrrd"
        raise UnsupportedFormatError(f"{path}: gzip-compressed file of unknown kind (expected .nii.gz)")
    if len(head) >= 348:
        le = int.from_bytes(head[:4], "little")
        be = int.from_bytes(head[:4], "big")
        if (348 in (le, be) and head[344:347] in (b"n+1", b"ni1")) or (
                540 in (le, be) and head[4:7] in (b"n+2", b"ni2")):
            return "nifti"
    return None


def read_image(path: str | Path, *, series_uid: str | None = None, resample: bool = False) -> Image:
    """Read a CT (or any scalar image) from NIfTI, NRRD, a DICOM file or a DICOM folder.

    Parameters
    ----------
    path : file or folder
    series_uid : SeriesInstanceUID to pick when a DICOM folder holds several image series.
    resample : allow a gantry-tilted or irregularly spaced DICOM series to be resampled onto a regular
        grid (recorded in ``metadata["resampled"]``) instead of refusing it.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "nifti":
        from flr.io.nifti import read_nifti

        image = read_nifti(path)
    elif kind == "nrrd":
        from flr.io.nrrd import read_nrrd

        image = read_nrrd(path)
    else:
        from flr.io.dicom import read_dicom

        image = read_dicom(path, series_uid=series_uid, resample=resample)
    return Image(image.array, image.geometry, image.source, _provenance(image.metadata, kind, path))


def read_image_header(path: str | Path, *, series_uid: str | None = None, resample: bool = False) -> ImageHeader:
    """What :func:`read_image` gives for the same arguments but the voxels: the geometry, the source and the
    metadata (``sha256`` and ``warnings`` included), equal to the full read's, without decoding a voxel.

    * DICOM: every file's header, up to its pixel data (:func:`flr.io.dicom.read_dicom_header`);
    * NIfTI: the header (nibabel's image is lazy: the data block is never read, nor decompressed);
    * NRRD: read in full and the voxels dropped (no header-only path yet).

    Raises what :func:`read_image` raises on the headers; damaged or truncated voxel data is found by
    :func:`read_image` alone.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "nifti":
        geometry, meta = _nifti_header(path)
        source = str(path)
    elif kind == "nrrd":
        from flr.io.nrrd import read_nrrd

        image = read_nrrd(path)
        geometry, meta, source = image.geometry, dict(image.metadata), str(image.source)
    else:
        from flr.io.dicom import read_dicom_header

        geometry, meta = read_dicom_header(path, series_uid=series_uid, resample=resample)
        source = str(path)
    return ImageHeader(geometry, source, _provenance(meta, kind, path))


def open_image(path: str | Path, *, series_uid: str | None = None, resample: bool = False) -> Image:
    """:func:`read_image` with the voxels decoded only when asked for: the geometry, source and metadata at once
    (equal to :func:`read_image_header`'s), the voxels by the returned image's :attr:`~flr.image.LazyImage.array`
    (the whole volume, then kept) or :meth:`~flr.image.LazyImage.region` (a box alone, nothing kept).

    * DICOM (a :class:`~flr.image.LazyImage`): a box decodes only the files of its slices
      (:func:`flr.io.dicom.open_dicom`); a resampled series (tilt, irregular spacing) is decoded in full;
    * NIfTI, uncompressed or gzip (a :class:`~flr.image.LazyImage`): a box reads only its voxels' bytes;
    * NRRD: read in full here (a plain :class:`~flr.image.Image`).

    Values are the full read's, voxel for voxel. Errors: everything :func:`read_image_header` checks, and for
    DICOM every file's pixel data as far as it can be checked without decoding (present, greyscale, long enough,
    compressed frames of the stated size), is refused here, as :func:`read_image` refuses it; for NIfTI the
    declared size against the file (uncompressed: exactly; gzip: the most it can inflate to). What only decoding
    finds, a damaged compressed DICOM slice or a gzip stream cut short, is an :class:`~flr.errors.InputFileError`
    naming the file, with :func:`read_image`'s message, when those voxels are decoded; damage in voxels that no
    call asks for (outside every box read) is not found, and changes no value that is read.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "nrrd":
        return read_image(path, series_uid=series_uid, resample=resample)
    voxels: VoxelSource
    if kind == "nifti":
        from flr.io.nifti import NiftiVoxels

        geometry, meta = _nifti_header(path)
        voxels = NiftiVoxels(path)
    else:
        from flr.io.dicom import open_dicom

        geometry, meta, voxels = open_dicom(path, series_uid=series_uid, resample=resample)
    return LazyImage(geometry, str(path), _provenance(meta, kind, path), voxels)


def _nifti_header(path: Path) -> tuple[Geometry, dict[str, Any]]:
    """(geometry, metadata) of :func:`flr.io.nifti.read_nifti` (a CT, scaled) from the header alone: the same
    steps, with the array's shape taken from the header (trailing axes of length 1 dropped, missing ones
    added, as the reader does to the array)."""
    from flr.io import nifti

    img = nifti._load(path)  # header checked; nibabel reads the data only when asked
    header = img.header
    meta: dict[str, Any] = {"format": "nifti", "sform_code": int(header["sform_code"]),
                            "qform_code": int(header["qform_code"]), "warnings": []}
    affine = nifti._in_mm(path, header, nifti._choose_affine(path, img, meta), meta["warnings"])
    nifti._scaling(path, img)  # a non-finite scaling is refused as by the full read
    shape = list(img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    shape += [1] * (3 - len(shape))
    if len(shape) != 3:
        raise InputFileError(f"{path}: expected a 3-D image, got shape {tuple(shape)}")
    return nifti.geometry_from_affine(affine, tuple(shape), str(path)), meta


def _provenance(metadata: Mapping[str, Any], kind: str, path: Path) -> dict[str, Any]:
    """A reader's metadata with what every image read here carries: ``format``, ``warnings`` and ``sha256``
    (of the file, or of a DICOM series' files)."""
    meta = dict(metadata)
    meta.setdefault("format", kind)
    meta.setdefault("warnings", [])
    files = meta.get("files")
    meta["sha256"] = _sha256_files([Path(f) for f in files]) if files else sha256_of(path)
    return meta


def _sidecar_scheme(path: Path) -> Path | None:
    name = path.name
    for ext in (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr"):
        if name.lower().endswith(ext):
            stem = name[: -len(ext)]
            candidate = path.with_name(f"{stem}.scheme.json")
            return candidate if candidate.is_file() else None
    return None


def _whole_numbers(arr: np.ndarray) -> np.ndarray | None:
    """A floating-point map as its smallest unsigned/int32 type when every value is a whole number in range
    (two reductions, one cast, one comparison); None otherwise, so the caller says what is wrong."""
    lo, hi = float(np.min(arr, initial=0)), float(np.max(arr, initial=0))   # NaN propagates
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi > np.iinfo(np.int32).max:
        return None
    dtype = next(d for d in (np.uint8, np.uint16, np.int32) if hi <= np.iinfo(d).max)
    ints = arr.astype(dtype)
    return ints if np.array_equal(ints, arr) else None


def _as_label_array(image: Image, path: Path) -> np.ndarray:
    """The label ids of ``image`` as the smallest of uint8, uint16, int32 that holds them.

    Floating-point maps are accepted when every value is a whole number (MSD Task08 stores its vessel
    masks as float64 0/1); a fraction, NaN or infinity, a negative id, or a non-scalar voxel type is refused.
    """
    arr = image.array
    check_scalar_dtype(path, arr.dtype, f"voxel type {arr.dtype.name}")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        whole = _whole_numbers(arr)
        if whole is not None:
            return whole
        bad = ~np.isfinite(arr)
        bad |= np.where(bad, False, arr != np.round(np.where(bad, 0, arr)))
        if bad.any():
            example = arr.ravel()[int(np.argmax(bad.ravel()))]
            raise InputFileError(f"{path}: label map holds non-integer values (dtype {arr.dtype}, e.g. "
                                 f"{quote(float(example))}); is this a CT given as --labels?")
    lo = arr.min(initial=0)
    hi = arr.max(initial=0)
    if lo < 0:
        raise InputFileError(f"{path}: label map holds negative values (min {lo}); is this a CT given as --labels?")
    for dtype in (np.uint8, np.uint16, np.int32):
        if hi <= np.iinfo(dtype).max:
            return arr if arr.dtype == dtype else arr.astype(dtype)
    raise InputFileError(f"{path}: label id {hi} too large (max {np.iinfo(np.int32).max})")


def read_label_map(
    path: str | Path,
    scheme: str | Path | LabelScheme | Mapping[int, str] | None = None,
    *,
    series_uid: str | None = None,
) -> LabelMap:
    """Read a label map and name its labels through a scheme; warnings go to ``metadata["warnings"]``.

    Without ``scheme`` flr looks for a sidecar ``<name>.scheme.json``, then the segment names in a
    3D Slicer ``.seg.nrrd`` header, then a binary mask whose file name is a structure
    (``liver.nii.gz`` -> ``liver``, as TotalSegmentator writes them).

    Labels present in the map that the scheme does not name are ignored with a warning listing them;
    a scheme that names none of the labels present is an error, and so is a map with no labels at all.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "nifti":
        from flr.io.nifti import read_nifti

        image = read_nifti(path, label_map=True)
    else:
        image = read_image(path, series_uid=series_uid)
    array = _as_label_array(image, path)
    from flr.kernels import label_stats

    stats = label_stats(array)  # remembered by the map: the assessment and volumetry count nothing again
    present = [int(v) for v in stats.labels if v != 0]
    if not present:
        raise EmptyStructureError(f"{path}: label map has no labelled voxels (all background)")

    resolved = _pick_scheme(path, scheme, image, present)
    warnings_out = list(image.metadata.get("warnings", []))
    named = {i: n for i, n in resolved.labels.items() if i in present}
    if not named:
        raise SchemeError(f"{path}: scheme {resolved.name} names none of the labels present "
                          f"{_short_list(present)}; pick another scheme with PATH:SCHEME")
    unknown = [i for i in present if i not in resolved.labels and i not in resolved.other_labels]
    if unknown:
        warnings_out.append(f"{path.name}: labels {_short_list(unknown)} are not in scheme {resolved.name}; "
                            "ignored")
    meta = dict(image.metadata)
    meta.update(labels_present=present, scheme_source=resolved.source, warnings=warnings_out,
                sha256=image.metadata.get("sha256") or sha256_of(path))
    label_map = LabelMap(array, image.geometry, str(path), meta, names=resolved.labels, scheme=resolved.name)
    return label_map._remember_label_stats(stats)  # the counts of the same values


TOTALSEG_FOLDER_SCHEME = "totalseg"


def read_label_maps(
    path: str | Path,
    scheme: str | Path | LabelScheme | Mapping[int, str] | None = None,
    *,
    reference: Image | None = None,
    series_uid: str | None = None,
) -> list[LabelMap]:
    """Read every label map a path holds (the command line's ``--labels PATH[:SCHEME]``).

    * a TotalSegmentator output folder (``DIR:totalseg``): one binary map per relevant class file;
    * a DICOM-SEG or RTSTRUCT file: placed on ``reference`` (the CT) and split into maps whose segments do
      not overlap;
    * a 3D Slicer ``.seg.nrrd``: one map per layer;
    * anything else: one map (:func:`read_label_map`).
    """
    path = Path(path)
    if str(scheme) == TOTALSEG_FOLDER_SCHEME:
        return _read_totalseg_folder(path)
    kind = detect_format(path)
    if kind == "dicom":
        modality = _dicom_modality(path)
        if modality == "SEG":
            from flr.io.dicomseg import read_dicom_seg

            return _with_hash(read_dicom_seg(path, reference=reference), path)
        if modality == "RTSTRUCT":
            from flr.io.rtstruct import read_rtstruct

            return _with_hash(read_rtstruct(path, reference=reference), path)
    if kind == "nrrd" and path.name.lower().endswith(".seg.nrrd") and scheme is None:
        from flr.io.slicerseg import read_slicer_seg

        return _with_hash(read_slicer_seg(path), path)
    return [read_label_map(path, scheme, series_uid=series_uid)]


def _with_hash(maps: list[LabelMap], path: Path) -> list[LabelMap]:
    digest = sha256_of(path)
    out = []
    for lm in maps:
        meta = dict(lm.metadata)
        meta.setdefault("sha256", digest)
        meta.setdefault("warnings", [])
        out.append(LabelMap(lm.array, lm.geometry, lm.source or str(path), meta, names=lm.names, scheme=lm.scheme))
    return out


def _dicom_modality(path: Path) -> str:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception as exc:  # any parser failure (many types) means a corrupt file; re-raised as ours
        raise InputFileError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
    return str(ds.get("Modality", "")).upper()


def _read_totalseg_folder(folder: Path) -> list[LabelMap]:
    """A TotalSegmentator output folder of per-class ``NAME.nii.gz`` files (tasks total, liver_segments,
    liver_vessels): the files of classes flr uses, each a binary map named by its class."""
    from flr.schemes import builtin_scheme

    if not folder.is_dir():
        raise InputFileError(f"{folder}: {TOTALSEG_FOLDER_SCHEME} needs a TotalSegmentator output folder")
    known: dict[str, str] = {}  # file stem -> canonical name
    for name in ("totalseg-total", "totalseg-total-v1", "totalseg-liver-segments", "totalseg-liver-vessels"):
        for canonical in builtin_scheme(name).labels.values():
            known[_TS_FILE_NAMES.get((name, canonical), canonical)] = canonical
    files = sorted(folder.glob("*.nii.gz"))
    if not files:
        raise InputFileError(f"{folder}: no .nii.gz files (not a TotalSegmentator output folder)")
    maps = []
    for f in files:
        stem = f.name[: -len(".nii.gz")]
        if stem in known:
            try:
                maps.append(read_label_map(f, {1: known[stem]}))
            except EmptyStructureError:
                continue  # TotalSegmentator writes empty files for classes absent from the scan
    if not maps:
        raise SchemeError(f"{folder}: none of its files is a class flr uses (liver, liver segments, "
                          "portal vein, inferior vena cava, liver vessels, liver tumour)")
    return maps


#: TotalSegmentator's file names for the classes flr reads (scheme, canonical name) -> file stem.
_TS_FILE_NAMES = {
    ("totalseg-total", "portal_vein"): "portal_vein_and_splenic_vein",
    ("totalseg-total-v1", "portal_vein"): "portal_vein_and_splenic_vein",
    ("totalseg-liver-vessels", "hepatic_vessel"): "liver_vessels",
    ("totalseg-liver-vessels", "tumor"): "liver_tumor",
}


def _short_list(values: list[int], limit: int = 12) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _pick_scheme(path: Path, scheme: Any, image: Image, present: list[int]) -> LabelScheme:
    if scheme is not None:
        return resolve_scheme(scheme)
    sidecar = _sidecar_scheme(path)
    if sidecar is not None:
        return resolve_scheme(sidecar)
    segments = image.metadata.get("segments") or {}
    if segments:
        return LabelScheme(f"{path.name} header", {int(k): canonical_name(v) for k, v in segments.items()})
    stem = path.name.split(".")[0]
    if present == [1] and stem:
        return LabelScheme(f"file name {path.name}", {1: canonical_name(stem)})
    raise SchemeError(f"{path}: no label scheme; add one as {path}:SCHEME (a built-in name, or a JSON/YAML "
                      "file {id: name})")


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (see :func:`_sha256_files`)."""
    path = Path(path)
    if path.is_dir():
        return _sha256_files([p for p in path.rglob("*") if p.is_file()])
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_files(files: list[Path]) -> str:
    """SHA-256 over the sorted SHA-256 digests of several files: independent of names and order."""
    digests = sorted(sha256_of(f) for f in files)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """Write JSON to ``path`` through a temp file in the same folder and a rename (never half-written)."""
    return write_text_atomic(json.dumps(data, indent=2, allow_nan=False) + "\n", path)


def read_dicom_identifiers(image: Image) -> dict[str, str]:
    """Patient name, ID and birth date of a DICOM image's first file: only for ``--include-identifiers``."""
    files = image.metadata.get("files") or []
    if not files:
        return {}
    import pydicom

    ds = pydicom.dcmread(files[0], stop_before_pixels=True, force=True)
    return {k: str(ds.get(k, "")) for k in ("PatientName", "PatientID", "PatientBirthDate") if ds.get(k)}


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write text to ``path`` through a temp file in the same folder and a rename (never half-written).

    The file gets the user's umask (0644 under umask 022). Any ``OSError`` (missing or read-only folder, disk
    full, a folder at ``path``) is an :class:`~flr.errors.OutputError` naming ``path``.
    """
    from flr.io._common import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def write_nifti(image: Image, path: str | Path) -> Path:
    """Write an image as NIfTI (RAS affine, sform and qform code 1), atomically."""
    from flr.io.nifti import write_nifti as _write

    return _write(image, Path(path))


# ----------------------------------------------------------------------------------------------
# checks the readers share (flr.io.nifti, flr.io.nrrd, flr.io.dicom)
# ----------------------------------------------------------------------------------------------
#: The most a DEFLATE (gzip, zlib) stream can inflate: 1032 bytes out per byte in (RFC 1951's longest
#: match, 258 bytes, coded in 2 bits). A header that declares more data than ``1032 x`` its compressed file
#: is wrong, whatever the content.
DEFLATE_MAX_RATIO = 1032


def format_bytes(n: int) -> str:
    """``n`` bytes in words for a message (powers of 1000).

    >>> format_bytes(512), format_bytes(1500), format_bytes(54 * 10**12)
    ('512 bytes', '1.5 kB', '54 TB')
    """
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000:
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} PB"


def check_scalar_dtype(path: Path, dtype: np.dtype, what: str) -> None:
    """Refuse a voxel type no CT or label map can have: colour (RGB/RGBA records), complex, text or objects.

    Parameters
    ----------
    path : the file, named in the message.
    dtype : the voxel type as the format declares it.
    what : the format's own name for the type, e.g. ``"NIfTI datatype 128 (RGB24)"``.

    Raises
    ------
    InputFileError
        ``dtype`` is not one real number per voxel.
    """
    if dtype.fields is not None or dtype.subdtype is not None:
        raise InputFileError(f"{path}: {what} stores {len(dtype.fields or ()) or 'several'} values per voxel (a "
                             "colour or vector image); a CT or a label map has one number per voxel")
    if np.issubdtype(dtype, np.complexfloating):
        raise InputFileError(f"{path}: {what} is complex; a CT or a label map holds real numbers")
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise InputFileError(f"{path}: {what} ({quote(dtype.name)}) is not a numeric voxel type")
