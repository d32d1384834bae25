"""NIfTI-1/2 reading and writing (nibabel), converting RAS <-> LPS once, here.

Geometry comes from the sform when ``sform_code > 0``, else from the qform when ``qform_code > 0``;
with both codes 0 the file has no orientation and only ``pixdim`` is trusted (a warning says so).

Before nibabel reads a voxel, the header as stored (before nibabel's silent fixes) is checked
(:func:`check_header`), so that a corrupt header is refused in one line instead of read wrongly or
allocated blindly:

* ``dim``: 1 to 7 dimensions, each at least 1; dimensions past the third must be 1 (a time series, or a
  vector/RGB image stored as a 5th dimension, is refused rather than cut to its first volume);
* ``datatype``: a known code of a real scalar type (RGB/RGBA colour and complex types are refused);
* ``pixdim`` of the spatial axes: finite and > 0 (nibabel turns 0 into 1 mm without a word);
* size: ``vox_offset`` + voxels x bytes per voxel must fit in the file, or for ``.nii.gz`` in the most a
  gzip stream of the file's length can inflate to (:data:`~flr.io._common.DEFLATE_MAX_RATIO`);
* intensity scaling (``scl_slope``, ``scl_inter``) must be finite when it applies (a slope of 0 or NaN
  means none, as the standard says; nibabel would silently drop an infinite one).

Then:

* ``xyzt_units`` in metres or micrometres scales the grid to mm (as ITK does), with a warning;
* sform and qform both set (codes > 0) but describing different grids (origin or spacing apart by more
  than :data:`FORM_TOL_MM`, direction cosines by more than :data:`FORM_DIRECTION_TOL`): flr uses the sform
  and a warning says so and by how much they differ.
"""

from __future__ import annotations

import gzip
import math
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError, quote
from flr.image import Geometry, Image
from flr.io import DEFLATE_MAX_RATIO, check_scalar_dtype, format_bytes
from flr.io._common import atomic_path

#: RAS <-> LPS: negate the first two world axes.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: sform and qform of one file may differ by float32 rounding (a few micrometres at 500 mm from the
#: origin); more than this, in origin or voxel size, is a different grid.
FORM_TOL_MM = 1e-3
#: ... and more than this in a direction cosine.
FORM_DIRECTION_TOL = 1e-4
#: ``xyzt_units`` spatial codes flr converts to mm (NIfTI: 1 metre, 2 mm, 3 micrometre; 0 unknown = mm).
_UNIT_TO_MM = {1: ("metre", 1000.0), 3: ("micrometre", 1e-3)}
_HEADER_BYTES = {348: "NIfTI-1", 540: "NIfTI-2"}
_LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, ValueError, KeyError, IndexError,
                                                 TypeError, OverflowError)


def _nib_errors() -> tuple[type[BaseException], ...]:
    """nibabel's own exception types (plain ``Exception`` subclasses) and the standard ones its readers raise."""
    import nibabel as nib

    return (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError,
            nib.spatialimages.HeaderTypeError, *_LOAD_ERRORS)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception message, quoted (the type name when it is empty)."""
    text = str(exc).strip()
    return quote(text.splitlines()[0]) if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------
# the header as stored
# ----------------------------------------------------------------------------------------------
def _is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with the gzip magic number."""
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def raw_header(path: Path) -> Any:
    """The NIfTI-1 or NIfTI-2 header of ``path`` exactly as stored (``check=False``: nothing fixed).

    Raises
    ------
    InputFileError
        The file cannot be read, is shorter than a header, or its ``sizeof_hdr`` is neither 348 nor 540.
    """
    import nibabel as nib

    try:
        compressed = _is_gzip(path)
        with (gzip.open(path, "rb") if compressed else path.open("rb")) as fh:
            block = fh.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFileError(f"{path}: not a readable NIfTI file ({_first_line(exc)})") from None
    sizes = {int.from_bytes(block[:4], "little"), int.from_bytes(block[:4], "big")} & set(_HEADER_BYTES)
    if not sizes:
        raise InputFileError(f"{path}: not a NIfTI file (sizeof_hdr is neither 348 nor 540)")
    size = sizes.pop()
    if len(block) < size:
        raise InputFileError(f"{path}: {_HEADER_BYTES[size]} header truncated ({len(block)} of {size} bytes)")
    klass = nib.Nifti2Header if size == 540 else nib.Nifti1Header
    endianness = "<" if int.from_bytes(block[:4], "little") == size else ">"  # from sizeof_hdr, never guessed
    try:
        return klass(block[:size], endianness=endianness, check=False)
    except _nib_errors() as exc:
        raise InputFileError(f"{path}: not a readable NIfTI header ({_first_line(exc)})") from None


def _data_file(path: Path, header: Any) -> tuple[Path, bool]:
    """(file holding the voxels, gzip-compressed?): ``path`` itself, or the ``.img`` of a header/image pair."""
    magic = bytes(header["magic"]).rstrip(b"\x00")
    if magic not in (b"ni1", b"ni2"):
        return path, _is_gzip(path)
    stem = path.name.split(".")[0]
    for name, compressed in ((f"{stem}.img", False), (f"{stem}.img.gz", True)):
        if (path.parent / name).is_file():
            return path.parent / name, compressed
    raise InputFileError(f"{path}: NIfTI header/image pair without its image file ({stem}.img)")


def _shape_of(path: Path, header: Any) -> tuple[int, ...]:
    """The image size from ``dim`` as stored; 1..7 dimensions of at least 1, none past the third above 1."""
    dim = [int(v) for v in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputFileError(f"{path}: NIfTI dim[0] = {dim[0]}: the number of dimensions must be 1 to 7")
    shape = tuple(dim[1 : dim[0] + 1])
    if min(shape) < 1:
        raise InputFileError(f"{path}: NIfTI image size {quote(shape)} has a dimension below 1")
    if any(s > 1 for s in shape[3:]):
        what = ("several values per voxel (a vector or RGB image)" if len(shape) >= 5 and shape[4] > 1
                else "several volumes (a time series)")
        raise InputFileError(f"{path}: NIfTI image of size {quote(shape)} holds {what}; a CT or a label map is "
                             "one 3-D volume of one number per voxel")
    return shape


def _dtype_of(path: Path, header: Any) -> np.dtype:
    """The voxel type of ``datatype``: a known code of one real number per voxel."""
    code = int(header["datatype"])
    try:
        dtype = np.dtype(header.get_data_dtype())
    except (KeyError, ValueError, TypeError):
        raise InputFileError(f"{path}: unknown NIfTI datatype code {code}") from None
    import nibabel as nib

    label = nib.nifti1.data_type_codes.label.get(code, str(code))
    check_scalar_dtype(path, dtype, f"NIfTI datatype {code} ({label})")
    return dtype


def _check_pixdim(path: Path, header: Any, n_spatial: int) -> None:
    """The voxel sizes ``pixdim[1..n_spatial]`` as stored must be finite and > 0."""
    for i in range(1, n_spatial + 1):
        value = _as_written(header["pixdim"][i])
        if not (math.isfinite(value) and value > 0):
            raise InputFileError(f"{path}: pixdim[{i}] = {quote(value)}: a voxel size must be a finite number "
                                 "> 0 (nibabel would read 1 mm); the header is corrupt")


def _as_written(value: Any) -> float:
    """A float32 header value as its writer meant it (``-0.9``, not ``-0.8999999761581421``)."""
    return float(f"{float(value):.7g}")


def _check_scaling(path: Path, header: Any) -> None:
    """A scaling that applies (``scl_slope`` not 0 or NaN, which mean none) must be finite, and so its intercept."""
    slope, inter = _as_written(header["scl_slope"]), _as_written(header["scl_inter"])
    if math.isinf(slope) or (math.isfinite(slope) and slope != 0 and not math.isfinite(inter)):
        raise InputFileError(f"{path}: scl_slope {quote(slope)}, scl_inter {quote(inter)}: an intensity scaling must "
                             "be finite (nibabel would ignore it); the header is corrupt")


def _check_size(path: Path, header: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """``vox_offset`` + the declared voxels must fit in the data file (inflated, at most 1032 x a gzip file)."""
    data_file, compressed = _data_file(path, header)
    offset = float(header["vox_offset"])
    if not (math.isfinite(offset) and offset >= 0):
        raise InputFileError(f"{path}: vox_offset = {quote(offset)} is not a byte offset")
    minimum = int(header["sizeof_hdr"]) + 4 if data_file == path else 0
    needed = max(int(offset), minimum) + math.prod(shape) * dtype.itemsize
    stored = data_file.stat().st_size
    limit = stored * DEFLATE_MAX_RATIO if compressed else stored
    if needed > limit:
        held = (f"{format_bytes(stored)} compressed (at most {format_bytes(limit)} inflated)" if compressed
                else format_bytes(stored))
        raise InputFileError(f"{path}: the header declares {'x'.join(map(str, shape))} voxels of {dtype.name} "
                             f"({format_bytes(needed)} with the header) but {data_file.name} holds {held}; "
                             "the file is truncated or its header is corrupt")


def check_header(path: Path, header: Any) -> tuple[int, ...]:
    """Check a header as stored (see the module docstring) before any voxel is read; returns the image size.

    Raises
    ------
    InputFileError
        Bad ``dim``, a non-scalar or unknown ``datatype``, a voxel size that is not finite and > 0, a
        non-finite scaling, or more data declared than the file can hold. The message names the file and
        the field.
    """
    shape = _shape_of(path, header)
    dtype = _dtype_of(path, header)
    _check_pixdim(path, header, min(len(shape), 3))
    _check_scaling(path, header)
    _check_size(path, header, shape, dtype)
    return shape


def _load(path: Path) -> Any:
    import nibabel as nib

    check_header(path, raw_header(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel warns on odd but readable headers; we check ourselves
            return nib.load(str(path), mmap=False)  # read into memory: the Image then owns it, no copy
    except _nib_errors() as exc:
        raise InputFileError(f"{path}: not a readable NIfTI file ({_first_line(exc)})") from None


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
def geometry_from_affine(affine_ras: np.ndarray, shape_xyz: tuple[int, ...], where: str) -> Geometry:
    """LPS :class:`Geometry` from a NIfTI (RAS) voxel-to-world affine and the (i, j, k) shape."""
    if not np.all(np.isfinite(affine_ras)):
        values = quote(np.asarray(affine_ras)[:3].tolist())
        raise InputFileError(f"{where}: the affine holds non-finite values ({values})")
    a = _RAS_TO_LPS @ np.asarray(affine_ras, dtype=float)
    m = a[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if np.any(spacing <= 0):
        raise InputFileError(f"{where}: degenerate affine (voxel sizes {quote(spacing.tolist())})")
    direction = m / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InputFileError(f"{where}: sheared affine (axes not orthogonal); flr refuses to guess the grid")
    shape_zyx = (int(shape_xyz[2]), int(shape_xyz[1]), int(shape_xyz[0]))
    return Geometry(shape_zyx, tuple(spacing), tuple(a[:3, 3]), tuple(direction.ravel()))


def _qform(path: Path, img: Any) -> np.ndarray:
    """The qform affine (RAS); a quaternion that is not a rotation is refused."""
    import nibabel as nib

    try:
        return np.asarray(img.get_qform(), dtype=float)
    except (ValueError, nib.spatialimages.HeaderDataError) as exc:  # quaternion b^2 + c^2 + d^2 > 1
        raise InputFileError(f"{path}: the qform is not a rotation ({_first_line(exc)})") from None


def _form_difference(sform: np.ndarray, qform: np.ndarray) -> str | None:
    """How the sform and qform grids differ, beyond :data:`FORM_TOL_MM` / :data:`FORM_DIRECTION_TOL`; else None."""
    s, q = sform[:3], qform[:3]
    spacing_s, spacing_q = np.linalg.norm(s[:, :3], axis=0), np.linalg.norm(q[:, :3], axis=0)
    if not (np.all(np.isfinite(s)) and np.all(spacing_s > 0)):
        return None  # a degenerate sform is refused by geometry_from_affine
    if not (np.all(np.isfinite(q)) and np.all(spacing_q > 0)):
        return "the qform is degenerate"
    origin = float(np.max(np.abs(s[:, 3] - q[:, 3])))
    spacing = float(np.max(np.abs(spacing_s - spacing_q)))
    direction = float(np.max(np.abs(s[:, :3] / spacing_s - q[:, :3] / spacing_q)))
    parts = [f"{name} by {value:.3g}{unit}" for name, value, unit, tol in (
        ("origin", origin, " mm", FORM_TOL_MM), ("voxel size", spacing, " mm", FORM_TOL_MM),
        ("direction cosines", direction, "", FORM_DIRECTION_TOL)) if value > tol]
    return ", ".join(parts) or None


def _choose_affine(path: Path, img: Any, meta: dict[str, Any]) -> np.ndarray:
    """The RAS affine flr uses (sform, else qform, else pixdim) and its notes in ``meta``."""
    header = img.header
    sform_code, qform_code = meta["sform_code"], meta["qform_code"]
    if sform_code > 0:
        affine = np.asarray(img.get_sform(), dtype=float)
        meta["geometry_from"] = "sform"
        if qform_code > 0:
            difference = _form_difference(affine, _qform(path, img))
            if difference:
                meta["warnings"].append(
                    f"{path.name}: sform (code {sform_code}) and qform (code {qform_code}) describe different grids "
                    f"({difference}; tolerance {FORM_TOL_MM} mm, {FORM_DIRECTION_TOL} in direction); flr used the "
                    "sform")
        return affine
    if qform_code > 0:
        meta["geometry_from"] = "qform"
        return _qform(path, img)
    zooms = header.get_zooms()[:3]
    meta["geometry_from"] = "pixdim"
    meta["warnings"].append(f"{path.name}: sform and qform codes are 0, orientation unknown; "
                            "spacing from pixdim, axes assumed LPS-aligned")
    return np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])  # ANALYZE convention: LPS axes, origin 0


def _in_mm(path: Path, header: Any, affine: np.ndarray, notes: list[str]) -> np.ndarray:
    """``affine`` scaled to mm when ``xyzt_units`` says metres or micrometres (ITK does the same)."""
    code = int(header["xyzt_units"]) & 0x07
    if code not in _UNIT_TO_MM:
        return affine
    unit, factor = _UNIT_TO_MM[code]
    notes.append(f"{path.name}: the header gives distances in {unit}s (xyzt_units); converted to mm")
    scaled = np.array(affine, dtype=float)
    scaled[:3] *= factor
    return scaled


# ----------------------------------------------------------------------------------------------
# voxels
# ----------------------------------------------------------------------------------------------
def _scaling(path: Path, img: Any) -> tuple[float, float]:
    """(slope, intercept) that nibabel applies (1, 0 when none); a non-finite one is refused."""
    slope, inter = img.dataobj.slope, img.dataobj.inter
    slope = 1.0 if slope is None else float(slope)
    inter = 0.0 if inter is None else float(inter)
    if not (math.isfinite(slope) and math.isfinite(inter)):
        raise InputFileError(f"{path}: intensity scaling scl_slope {quote(slope)}, scl_inter {quote(inter)} is not "
                             "finite")
    return slope, inter


def _rescaled(raw: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """``raw * slope + inter``: int16/int32 when the scaling is integral and the values fit, else float32."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = raw.astype(np.float64) * slope + inter
    peak = float(np.max(np.abs(out), initial=0)) if out.size else 0.0
    if float(slope).is_integer() and float(inter).is_integer() and peak < 2**31:
        return out.astype(np.int16 if peak < 2**15 else np.int32)
    with np.errstate(over="ignore"):
        return out.astype(np.float32)


def _array_zyx(img: Any, path: Path, *, scaled: bool) -> np.ndarray:
    slope, inter = _scaling(path, img)
    try:
        raw: np.ndarray = np.asanyarray(img.dataobj.get_unscaled())
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise InputFileError(f"{path}: NIfTI data is truncated or corrupt ({_first_line(exc)})") from None
    if scaled and (slope != 1 or inter != 0):
        raw = _rescaled(raw, slope, inter)
    while raw.ndim > 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    while raw.ndim < 3:
        raw = raw[..., None]
    if raw.ndim != 3:
        raise InputFileError(f"{path}: expected a 3-D image, got shape {raw.shape}")
    return raw.transpose(2, 1, 0)  # (i, j, k) -> (z, y, x); C-contiguous for NIfTI's Fortran order


#: Planes (z) a gzip NIfTI box is read by, whole: one sequential read each (8 MB of int16 at 512 x 512), where
#: reading the box's rows alone made one gzip seek per row (19,000 for a liver box of 512 x 512 x 400: 0.76 s
#: against 0.3 s).
_GZIP_PLANES = 16


def _box_zyx(img: Any, path: Path, box: tuple[slice, slice, slice]) -> np.ndarray:
    """:func:`_array_zyx` (scaled) of the voxels of ``box`` ((z, y, x) slices of step 1 within the image) alone:
    nibabel's ``fileslice`` reads only the bytes of those voxels (a gzip stream is inflated up to the last of
    them, never held whole). Values equal those of the full read's ``[box]``; the integer type of a scaled image
    (int16 or int32) is chosen for the box's values."""
    from nibabel.fileslice import fileslice
    from nibabel.openers import ImageOpener

    slope, inter = _scaling(path, img)
    proxy = img.dataobj
    shape = tuple(int(n) for n in proxy.shape)
    z, y, x = box
    extra = (0,) * (len(shape) - 3)  # axes past the third have length 1
    gzipped = str(path).lower().endswith(".gz")
    try:
        with ImageOpener(proxy.file_like) as fh:
            if not gzipped:  # seeks are free: the box's bytes alone
                raw: np.ndarray = np.asarray(fileslice(fh, (x, y, z, *extra), shape, proxy.dtype, proxy.offset,
                                                       order=proxy.order))
            else:  # a gzip seek inflates what it skips: whole planes, _GZIP_PLANES at a time, cropped as they come
                planes = [slice(k, min(k + _GZIP_PLANES, z.stop)) for k in range(z.start, z.stop, _GZIP_PLANES)]
                raw = np.concatenate([np.asarray(fileslice(fh, (slice(None), slice(None), p, *extra), shape,
                                                           proxy.dtype, proxy.offset, order=proxy.order))[x, y]
                                      for p in planes], axis=2)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise InputFileError(f"{path}: NIfTI data is truncated or corrupt ({_first_line(exc)})") from None
    if slope != 1 or inter != 0:
        raw = _rescaled(raw, slope, inter)
    while raw.ndim < 3:
        raw = raw[..., None]
    return raw.transpose(2, 1, 0)


@dataclass(frozen=True)
class NiftiVoxels:
    """The scaled voxels of a NIfTI CT, decoded when asked (a :class:`~flr.image.VoxelSource`): ``read(None)`` is
    :func:`read_nifti`'s array, ``read(box)`` reads only the box (:func:`_box_zyx`). The header is checked again
    at each read (a file changed since it was opened is refused as :func:`read_nifti` refuses it)."""

    path: Path

    @property
    def partial(self) -> bool:
        return True

    def read(self, box: tuple[slice, slice, slice] | None) -> np.ndarray:
        img = _load(self.path)
        return _array_zyx(img, self.path, scaled=True) if box is None else _box_zyx(img, self.path, box)


def read_nifti(path: Path, *, label_map: bool = False) -> Image:
    """Read a NIfTI file as an :class:`~flr.image.Image` in LPS, arrays (z, y, x).

    ``label_map=True`` returns the stored integers unscaled (a scaled label map is refused unless its
    scaling is the identity).

    Raises
    ------
    InputFileError
        Anything :func:`check_header` refuses, an unreadable or truncated file, a degenerate or sheared
        affine, a qform that is not a rotation, non-finite scaling, or a scaled label map.
    """
    path = Path(path)
    img = _load(path)
    header = img.header
    meta: dict[str, Any] = {"format": "nifti", "sform_code": int(header["sform_code"]),
                            "qform_code": int(header["qform_code"]), "warnings": []}
    affine = _in_mm(path, header, _choose_affine(path, img, meta), meta["warnings"])
    if label_map:
        slope, inter = _scaling(path, img)
        if slope != 1 or inter != 0:
            raise InputFileError(f"{path}: label map has intensity scaling (slope {slope:g}, intercept {inter:g})")
    array = _hand_over(_array_zyx(img, path, scaled=not label_map))
    geometry = geometry_from_affine(affine, array.shape[::-1], str(path))
    return Image(array, geometry, source=str(path), metadata=meta)


def _hand_over(array: np.ndarray) -> np.ndarray:
    """Mark a freshly decoded array and the arrays it is a view of read-only, so :class:`Image` keeps it
    without a copy (nothing else holds them)."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base.flags.writeable = False
        base = base.base
    return array


def write_nifti(image: Image, path: Path) -> Path:
    """Write ``image`` to ``path`` (.nii or .nii.gz) atomically (temp file, then rename); sform = qform."""
    import nibabel as nib

    path = Path(path)
    affine = _RAS_TO_LPS @ image.geometry.affine_lps
    data = np.ascontiguousarray(image.array).transpose(2, 1, 0)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"
    with atomic_path(path, suffix=suffix) as tmp:
        nib.save(img, tmp)
    return path
