"""NRRD (.nrrd, .nhdr): flr's one NRRD reading path, on pynrrd.

:func:`read_nrrd_volume` reads a NRRD with three spatial (domain) axes and at most one more axis (the
``list`` / ``vector`` axis of a layered 3D Slicer segmentation, of a vector image); :func:`read_nrrd`
(scalar images, :func:`flr.io.read_image`) and :func:`flr.io.slicerseg.read_slicer_seg` are built on it.
pynrrd parses the header (``raw``, ``gzip``, ``bzip2`` and ``ascii`` encodings, attached or detached
data); the geometry rules are flr's:

* the spatial axes are the ones with a ``space directions`` vector (``none`` marks the others); in NRRD
  axis order they are x, y, z, so the array is returned ``(z, y, x)`` (NRRD's first axis is fastest);
* spacing (mm) is the length of each space direction, the direction matrix's columns are the unit
  vectors, the origin is ``space origin`` (``(0, 0, 0)`` when absent);
* ``space`` must name a patient space: ``left-posterior-superior`` (LPS), ``right-anterior-superior``
  (RAS: x and y negated into LPS) or ``left-anterior-superior`` (LAS: y negated). A file without one
  (``scanner-xyz``, ``3D-right-handed``, or only ``spacings``) cannot be placed on the patient and is
  refused rather than guessed;
* before pynrrd reads the data, the bytes the header declares (``sizes`` x the size of ``type``) are
  compared with what the file holds: the raw bytes after the header (or in the detached ``data file``),
  or what a gzip/bzip2 stream inflates to, counted in chunks and given up as soon as it exceeds the
  declared size (:func:`check_data_size`). A header that declares more or less data than there is, or a
  compression bomb, is refused before anything is allocated.

A 3D Slicer segmentation (``.seg.nrrd``) also carries segment names and label values as
``SegmentN_Name:=...`` key/value pairs; :func:`slicer_segment_names` reads them so a scheme is not needed.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> header = (b"NRRD0004\\ntype: uchar\\ndimension: 3\\nsizes: 4 3 2\\nspace: RAS\\n"
...           b"space directions: (0.5,0,0) (0,0.8,0) (0,0,2.5)\\nspace origin: (10,20,30)\\nencoding: raw\\n\\n")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "m.nrrd"
...     _ = path.write_bytes(header + np.arange(24, dtype=np.uint8).tobytes())
...     image = read_nrrd(path)
>>> image.array.shape, image.spacing_mm, image.origin_mm    # (z, y, x); RAS (10, 20) -> LPS (-10, -20)
((2, 3, 4), (0.5, 0.8, 2.5), (-10.0, -20.0, 30.0))
"""

from __future__ import annotations

import bz2
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError, quote
from flr.image import Geometry, Image
from flr.io import format_bytes
from flr.io._common import one_line

__all__ = ["NrrdVolume", "read_nrrd", "read_nrrd_volume", "slicer_segment_names"]

#: NRRD ``space`` -> the signs that take its (x, y, z) to LPS. Full names and the spec's abbreviations.
SPACES_TO_LPS: dict[str, tuple[float, float, float]] = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}


@dataclass(frozen=True)
class NrrdVolume:
    """A NRRD read by :func:`read_nrrd_volume`.

    Attributes
    ----------
    array : ndarray, shape (z, y, x, c)
        Voxel values in native byte order; ``c`` is the length of the non-spatial axis (1 if none).
    geometry : Geometry
        LPS grid of the three spatial axes (spacing and origin in mm).
    header : Mapping[str, Any]
        The header as pynrrd parses it: standard fields (``"type"``, ``"sizes"``, ...) with parsed
        values, ``key:=value`` pairs as strings.
    """

    array: np.ndarray
    geometry: Geometry
    header: Mapping[str, Any]


#: Bytes per voxel of the NRRD types (the names of the NRRD specification, as pynrrd accepts them).
_TYPE_BYTES: dict[str, int] = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                     "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
                     "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
                     "double"), 8),
}
_COMPRESSED = ("gzip", "gz", "bzip2", "bz2")
_CHUNK_BYTES = 1 << 20
#: What pynrrd raises on a bad header or payload (syntax, unknown type or encoding, truncated data).
_PYNRRD_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError,
                                                   zlib.error, OverflowError, AttributeError)


def _declared_bytes(path: Path, header: Mapping[str, Any]) -> int:
    """Bytes of voxel data the header declares: the product of ``sizes`` times the size of ``type``."""
    try:
        sizes = [int(s) for s in header["sizes"]]
    except (TypeError, ValueError, KeyError):
        raise InputFileError(f"{path}: NRRD 'sizes' missing or not integers ({quote(header.get('sizes'))})") from None
    if not sizes or min(sizes) < 1:
        raise InputFileError(f"{path}: NRRD sizes {quote(sizes)}: every axis needs at least one sample")
    kind = str(header.get("type", "")).strip().lower()
    if kind not in _TYPE_BYTES:
        raise InputFileError(f"{path}: NRRD type {quote(kind)} is not a numeric voxel type flr reads")
    return math.prod(sizes) * _TYPE_BYTES[kind]


def _inflated_bytes(fh: Any, encoding: str, cap: int) -> int:
    """Bytes the compressed stream at ``fh`` inflates to, counted chunk by chunk (nothing kept) and given up
    once past ``cap``: the count is exact up to ``cap``, and ``> cap`` means more."""
    gz = encoding in ("gzip", "gz")
    inflater: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else bz2.BZ2Decompressor()
    total = 0
    while total <= cap and not inflater.eof:
        chunk = fh.read(_CHUNK_BYTES)
        if not chunk:
            break
        total += len(inflater.decompress(chunk, _CHUNK_BYTES))
        while total <= cap and not inflater.eof and (inflater.unconsumed_tail if gz else not inflater.needs_input):
            total += len(inflater.decompress(inflater.unconsumed_tail if gz else b"", _CHUNK_BYTES))
    return total


def _data_source(path: Path, header: Mapping[str, Any], fh: Any) -> tuple[Any, int, bool] | None:
    """(open file at the first data byte, bytes available there, detached?) or None when flr cannot tell
    (several data files, line skips): pynrrd's own size check then decides."""
    name = header.get("data file", header.get("datafile"))
    skip = int(header.get("line skip", header.get("lineskip", 0)) or 0)
    if skip != 0 or (name is not None and (not isinstance(name, str) or name.startswith("LIST") or "%" in name
                                           or " " in name.strip())):
        return None
    if name is None:
        start = fh.tell()
        return fh, path.stat().st_size - start, False
    data_path = Path(name) if Path(name).is_absolute() else path.parent / name
    if not data_path.is_file():
        raise InputFileError(f"{path}: not a readable NRRD file: its data file {quote(name)} is not there")
    return data_path.open("rb"), data_path.stat().st_size, True


def check_data_size(path: Path) -> None:
    """Refuse a NRRD whose header declares another amount of data than the file holds, before reading it.

    Raw data: the bytes after the header (or in the detached ``data file``) must be the declared
    ``sizes`` x bytes per voxel (plus a ``byte skip``; at least that many with ``byte skip: -1``).
    gzip/bzip2: the stream must inflate to exactly that many (at least, with a byte skip); it is counted
    in 1 MiB chunks and abandoned as soon as it exceeds the declared size, so a compression bomb costs
    neither memory nor much time. ASCII data and headers pynrrd itself refuses are left to pynrrd.

    Raises
    ------
    InputFileError
        The declared and the stored amounts of data differ, ``sizes`` or ``type`` are unusable, the data
        file is missing, or the compressed stream is corrupt.
    """
    import nrrd

    with path.open("rb") as fh:
        try:
            header = nrrd.read_header(fh)
        except (nrrd.NRRDError, *_PYNRRD_ERRORS):
            return  # the same error again, worded once, by _read_pynrrd
        if int(header.get("dimension", -1)) != len(header.get("sizes", [])):
            return
        declared = _declared_bytes(path, header)
        encoding = str(header.get("encoding", "")).strip().lower()
        source = _data_source(path, header, fh) if encoding == "raw" or encoding in _COMPRESSED else None
        if source is None:
            return
        data, available, detached = source
        try:
            _compare_sizes(path, header, data, available, declared, encoding)
        finally:
            if detached:
                data.close()


def _compare_sizes(path: Path, header: Mapping[str, Any], data: Any, available: int, declared: int,
                   encoding: str) -> None:
    """Refuse when the bytes ``data`` holds (raw) or inflates to differ from those the header declares."""
    byte_skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    exact = byte_skip == 0
    needed = declared + max(byte_skip, 0)
    what = f"sizes {' x '.join(str(int(s)) for s in header['sizes'])} of type {quote(str(header['type']))}"
    if encoding == "raw":
        held = available
    else:
        try:
            held = _inflated_bytes(data, encoding, needed)
        except (zlib.error, OSError, EOFError, ValueError) as exc:
            raise InputFileError(f"{path}: not a readable NRRD file: its {encoding} data is corrupt "
                                 f"({type(exc).__name__}: {one_line(exc)})") from None
    if held < needed or (exact and held > needed):
        stored = (f"{format_bytes(held)}" if encoding == "raw" or held <= needed
                  else f"more than {format_bytes(needed)}")
        where = "inflate to" if encoding != "raw" else "hold"
        why = ("the file is truncated or its header is corrupt" if held < needed
               else "the header does not match the data")
        raise InputFileError(f"{path}: not a readable NRRD file: the header declares {what} ({format_bytes(needed)} "
                             f"of data) but the data {where} {stored}; {why}")


def _read_pynrrd(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import nrrd

    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if magic != b"NRRD":
        raise InputFileError(f"{path}: not a NRRD file (no 'NRRD' magic)")
    check_data_size(path)
    try:
        data, header = nrrd.read(str(path), index_order="C")
    except (nrrd.NRRDError, *_PYNRRD_ERRORS) as exc:
        # header syntax, unknown type or encoding, missing detached data, truncated or corrupt payload
        raise InputFileError(f"{path}: not a readable NRRD file ({type(exc).__name__}: {one_line(exc)})") from None
    return np.asarray(data), dict(header)


def _space_flip(path: Path, header: Mapping[str, Any]) -> np.ndarray:
    space = str(header.get("space", "")).strip().lower()
    if space not in SPACES_TO_LPS:
        raise InputFileError(f"{path}: NRRD space {quote(space or 'missing')} cannot be placed in patient (LPS) "
                             "coordinates (flr reads left-posterior-superior, right-anterior-superior and "
                             "left-anterior-superior); write the file with a patient space, e.g. from 3D Slicer")
    return np.asarray(SPACES_TO_LPS[space])


def _spatial_axes(path: Path, header: Mapping[str, Any], ndim: int) -> tuple[list[int], list[int], np.ndarray]:
    """(spatial NRRD axes, other NRRD axes, (ndim, 3) space directions) with the NRRD axis order."""
    directions = np.asarray(header.get("space directions", np.full((ndim, 3), np.nan)), dtype=float)
    if directions.shape != (ndim, 3):
        raise InputFileError(f"{path}: 'space directions' must give a 3-D vector (or none) for each of the "
                             f"{ndim} axes, got shape {directions.shape}")
    given = np.all(np.isfinite(directions), axis=1)
    spatial = [int(i) for i in np.flatnonzero(given)]
    other = [int(i) for i in np.flatnonzero(~given)]
    if len(spatial) != 3 or len(other) > 1:
        raise InputFileError(f"{path}: expected three spatial axes and at most one list/vector axis, got sizes "
                             f"{[int(s) for s in header.get('sizes', [])]} with {len(spatial)} space direction(s)")
    return spatial, other, directions


def read_nrrd_volume(path: Path | str) -> NrrdVolume:
    """Read a NRRD as an array (z, y, x, c) on an LPS grid (see the module docstring for the rules).

    Raises
    ------
    InputFileError
        Missing, unreadable or truncated file; not three spatial axes (plus at most one other); a space
        that is not a patient space; space directions that are zero or not orthogonal. The message is one
        line and names the file.
    """
    path = Path(path)
    data, header = _read_pynrrd(path)
    ndim = data.ndim
    flip = _space_flip(path, header)
    spatial, other, directions = _spatial_axes(path, header, ndim)
    # pynrrd's C order reverses the NRRD axes: NRRD axis i is array axis ndim - 1 - i.
    order = [ndim - 1 - i for i in (spatial[2], spatial[1], spatial[0], *other)]
    array = np.transpose(data, order)
    array = array if other else array[..., None]
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))

    columns = directions[spatial].T * flip[:, None]  # column c: LPS step of spatial axis c (x, y, z), mm
    spacing = np.linalg.norm(columns, axis=0)
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float).ravel()
    if np.any(spacing <= 0):
        axis = "xyz"[int(np.argmin(spacing))]
        raise InputFileError(f"{path}: the space direction of the {axis} axis is zero-length "
                             f"({quote(np.asarray(header.get('space directions')).tolist())})")
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise InputFileError(f"{path}: bad 'space origin' ({quote(header.get('space origin'))}): three finite numbers "
                             "are needed")
    try:
        geometry = Geometry(array.shape[:3], tuple(spacing), tuple(origin * flip), tuple((columns / spacing).ravel()))
    except ValueError as exc:
        raise InputFileError(f"{path}: NRRD geometry cannot be an image grid ({one_line(exc)})") from None
    return NrrdVolume(array, geometry, header)


def read_nrrd(path: Path | str) -> Image:
    """Read a scalar NRRD as an :class:`~flr.image.Image`: array (z, y, x), LPS geometry in mm.

    ``metadata`` holds ``format`` (``"nrrd"``), ``warnings`` and ``segments`` ({label value: name} of a
    single-layer 3D Slicer segmentation, else empty).

    Raises
    ------
    InputFileError
        As :func:`read_nrrd_volume`, and for a file with several components per voxel (a layered
        segmentation: read it with :func:`flr.io.slicerseg.read_slicer_seg`).
    """
    path = Path(path)
    volume = read_nrrd_volume(path)
    components = volume.array.shape[3]
    if components != 1:
        raise InputFileError(f"{path}: {components} components per voxel ({_component_kind(volume.header)}); a CT "
                             "or a label map has one number per voxel (read a layered 3D Slicer segmentation with "
                             "--labels FILE.seg.nrrd)")
    meta: dict[str, Any] = {"format": "nrrd", "warnings": [], "segments": slicer_segment_names(volume.header)}
    return Image(np.ascontiguousarray(volume.array[..., 0]), volume.geometry, source=str(path), metadata=meta)


def _component_kind(header: Mapping[str, Any]) -> str:
    """What the non-spatial axis holds, from its NRRD ``kinds`` entry."""
    kinds = [str(k).lower() for k in header.get("kinds", [])]
    colour = {"rgb-color", "hsv-color", "xyz-color", "rgba-color", "3-color", "4-color"}
    if any(k in colour for k in kinds):
        return "a colour image"
    if "list" in kinds:
        return "a layered segmentation or a list of images"
    return "a vector image"


def slicer_segment_names(header: Mapping[str, Any]) -> dict[int, str]:
    """``{label value: segment name}`` from a 3D Slicer ``.seg.nrrd`` header (empty if not one)."""
    names: dict[int, str] = {}
    pattern = re.compile(r"^Segment(\d+)_Name$")
    for key, value in header.items():
        m = pattern.match(key)
        if not m:
            continue
        label = str(header.get(f"Segment{m.group(1)}_LabelValue", ""))
        if label.strip().lstrip("-").isdigit():
            names[int(label)] = str(value)
    return names
