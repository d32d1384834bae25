"""NIfTI-1/2 reading and writing (nibabel), converting RAS <-> LPS once, here.

Geometry comes from the sform when ``sform_code > 0``, else from the qform when ``qform_code > 0``;
with both codes 0 the file has no orientation and only ``pixdim`` is trusted (a warning says so).
"""

from __future__ import annotations

import gzip
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError
from flr.image import Geometry, Image
from flr.io._common import atomic_path

#: RAS <-> LPS: negate the first two world axes.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _load(path: Path) -> Any:
    import nibabel as nib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel warns on odd but readable headers; we check ourselves
            return nib.load(str(path), mmap=False)  # read into memory: the Image then owns it, no copy
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, zlib.error, gzip.BadGzipFile,
            ValueError) as exc:
        raise InputFileError(f"{path}: not a readable NIfTI file ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def geometry_from_affine(affine_ras: np.ndarray, shape_xyz: tuple[int, ...], where: str) -> Geometry:
    """LPS :class:`Geometry` from a NIfTI (RAS) voxel-to-world affine and the (i, j, k) shape."""
    a = _RAS_TO_LPS @ np.asarray(affine_ras, dtype=float)
    m = a[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(a)):
        raise InputFileError(f"{where}: degenerate affine (voxel sizes {spacing.tolist()})")
    direction = m / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InputFileError(f"{where}: sheared affine (axes not orthogonal); flr refuses to guess the grid")
    shape_zyx = (int(shape_xyz[2]), int(shape_xyz[1]), int(shape_xyz[0]))
    return Geometry(shape_zyx, tuple(spacing), tuple(a[:3, 3]), tuple(direction.ravel()))


def _array_zyx(img: Any, path: Path, *, scaled: bool) -> np.ndarray:
    try:
        raw: np.ndarray = np.asanyarray(img.dataobj)
        if scaled:
            slope, inter = img.dataobj.slope, img.dataobj.inter
            raw = np.asanyarray(img.dataobj.get_unscaled())
            if slope != 1 or inter != 0:
                integral = float(slope).is_integer() and float(inter).is_integer()
                out = raw.astype(np.float64) * slope + inter
                if integral and np.abs(out).max(initial=0) < 2**31:
                    raw = out.astype(np.int16 if np.abs(out).max(initial=0) < 2**15 else np.int32)
                else:
                    raw = out.astype(np.float32)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise InputFileError(f"{path}: NIfTI data is truncated or corrupt ({_first_line(exc)})") from None
    if raw.ndim == 4 and raw.shape[3] == 1:
        raw = raw[..., 0]
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.ndim != 3:
        raise InputFileError(f"{path}: expected a 3-D image, got shape {raw.shape}")
    return raw.transpose(2, 1, 0)  # (i, j, k) -> (z, y, x); C-contiguous for NIfTI's Fortran order


def read_nifti(path: Path, *, label_map: bool = False) -> Image:
    """Read a NIfTI file as an :class:`~flr.image.Image` in LPS, arrays (z, y, x).

    ``label_map=True`` returns the stored integers unscaled (a scaled label map is refused unless its
    scaling is the identity).
    """
    path = Path(path)
    img = _load(path)
    header = img.header
    if "sform_code" not in header:
        raise InputFileError(f"{path}: not a NIfTI image (no sform/qform)")
    sform_code = int(header["sform_code"])
    qform_code = int(header["qform_code"])
    meta: dict[str, Any] = {"format": "nifti", "sform_code": sform_code, "qform_code": qform_code,
                            "warnings": []}
    if sform_code > 0:
        affine = img.get_sform()
        meta["geometry_from"] = "sform"
    elif qform_code > 0:
        affine = img.get_qform()
        meta["geometry_from"] = "qform"
    else:
        zooms = header.get_zooms()[:3]
        affine = np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])  # ANALYZE convention: LPS axes, origin 0
        meta["geometry_from"] = "pixdim"
        meta["warnings"].append(f"{path.name}: sform and qform codes are 0, orientation unknown; "
                                "spacing from pixdim, axes assumed LPS-aligned")
    if label_map:
        slope, inter = img.dataobj.slope, img.dataobj.inter
        if (slope not in (1, None) and np.isfinite(slope)) or (inter not in (0, None) and np.isfinite(inter)):
            raise InputFileError(f"{path}: label map has intensity scaling (slope {slope}, intercept {inter})")
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
