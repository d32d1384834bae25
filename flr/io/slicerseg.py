"""3D Slicer segmentations (``.seg.nrrd``): one label map per layer, segments named from the header.

A ``.seg.nrrd`` is a NRRD whose header carries ``SegmentN_Name``, ``SegmentN_LabelValue`` and
``SegmentN_Layer`` for each segment N. Overlapping segments sit in different layers: the file is then
4-D with a leading ``list`` axis (sizes ``layers x y z``, layer fastest); otherwise it is 3-D. The
header is parsed here (no pynrrd); the data may be ``raw``, ``gzip`` or ``bzip2`` encoded, attached
or in a detached data file.

Geometry: ``space directions`` columns (one per domain axis) and ``space origin`` give
``origin + D @ (i, j, k)``; spacing is the column norms and direction the normalised columns.
``space: right-anterior-superior`` (RAS) is converted to LPS by negating x and y; a space flr cannot
place (e.g. ``scanner-xyz``) is an error.
"""

from __future__ import annotations

import bz2
import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError
from flr.image import Geometry, LabelMap
from flr.schemes import canonical_name

__all__ = ["read_slicer_seg"]

_TYPES: dict[str, str] = {}
for _names, _code in (
    (("signed char", "int8", "int8_t"), "i1"),
    (("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    (("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
    (("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
    (("int", "signed int", "int32", "int32_t"), "i4"),
    (("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
):
    for _n in _names:
        _TYPES[_n] = _code

_SPACES_TO_LPS = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
}


def _parse_header(path: Path) -> tuple[dict[str, str], dict[str, str], int]:
    """(fields, key:=value pairs, byte offset of attached data)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.startswith(b"NRRD"):
        raise InputFileError(f"{path}: not a NRRD file (no 'NRRD' magic)")
    fields: dict[str, str] = {}
    pairs: dict[str, str] = {}
    pos = raw.index(b"\n") + 1 if b"\n" in raw else len(raw)
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        line = raw[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        if not line:
            break
        if line.startswith("#"):
            continue
        if ":=" in line:
            key, _, value = line.partition(":=")
            pairs[key] = value
        elif ": " in line:
            key, _, value = line.partition(": ")
            fields[key.strip().lower()] = value.strip()
        else:
            raise InputFileError(f"{path}: malformed NRRD header line {line[:60]!r}")
    return fields, pairs, pos


def _vectors(text: str, path: Path) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for item in re.findall(r"none|\([^)]*\)", text):
        if item == "none":
            out.append(None)
        else:
            try:
                out.append(np.array([float(v) for v in item.strip("()").split(",")], dtype=float))
            except ValueError:
                raise InputFileError(f"{path}: bad NRRD vector {item!r}") from None
    return out


def _read_data(path: Path, fields: dict[str, str], offset: int, count: int, dtype: np.dtype) -> np.ndarray:
    encoding = fields.get("encoding", "raw").lower()
    data_file = fields.get("data file") or fields.get("datafile")
    if data_file:
        source = Path(data_file) if Path(data_file).is_absolute() else path.parent / data_file
        try:
            payload = source.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read its data file {source} ({exc.strerror})") from None
    else:
        payload = path.read_bytes()[offset:]
    try:
        if encoding in ("gzip", "gz"):
            payload = gzip.decompress(payload)
        elif encoding in ("bzip2", "bz2"):
            payload = bz2.decompress(payload)
        elif encoding != "raw":
            raise InputFileError(f"{path}: NRRD encoding {encoding!r} not supported (raw, gzip, bzip2)")
    except (OSError, EOFError, ValueError) as exc:
        raise InputFileError(f"{path}: corrupt {encoding} data ({exc})") from None
    nbytes = count * dtype.itemsize
    if len(payload) < nbytes:
        raise InputFileError(f"{path}: data holds {len(payload)} bytes, the header needs {nbytes}")
    return np.frombuffer(payload[:nbytes], dtype=dtype)


def read_slicer_seg(path: Path | str) -> list[LabelMap]:
    """Read a 3D Slicer ``.seg.nrrd`` as one :class:`~flr.image.LabelMap` per layer.

    Returns
    -------
    Label maps (z, y, x) in LPS, in layer order; ``names`` = {SegmentN_LabelValue: canonical name of
    SegmentN_Name} for the segments of that layer; ``scheme="slicer-seg"``. ``metadata`` holds
    ``format``, ``layer``, ``segments`` ({label value: name as written}), ``segment_ids`` and ``warnings``.

    Raises
    ------
    InputFileError
        Not a NRRD, not 3-D/4-D, a non-integer type, an unknown space, or no segment metadata.
    """
    path = Path(path)
    fields, pairs, offset = _parse_header(path)
    try:
        dimension = int(fields["dimension"])
        sizes = [int(v) for v in fields["sizes"].split()]
    except (KeyError, ValueError):
        raise InputFileError(f"{path}: NRRD header lacks a valid 'dimension' / 'sizes'") from None
    if dimension not in (3, 4) or len(sizes) != dimension:
        raise InputFileError(f"{path}: expected a 3-D or 4-D (layered) segmentation, got sizes {sizes}")
    type_name = fields.get("type", "").lower()
    if type_name not in _TYPES:
        raise InputFileError(f"{path}: NRRD type {type_name!r} is not an integer label type")
    endian = "<" if fields.get("endian", "little").lower() == "little" else ">"
    dtype = np.dtype(endian + _TYPES[type_name])

    space = fields.get("space", "").lower()
    if space not in _SPACES_TO_LPS:
        raise InputFileError(f"{path}: NRRD space {space or 'missing'!r} cannot be placed in patient (LPS) "
                             "coordinates")
    flip = np.array(_SPACES_TO_LPS[space])
    vectors = [v for v in _vectors(fields.get("space directions", ""), path) if v is not None]
    if len(vectors) != 3 or any(v.shape != (3,) for v in vectors):
        raise InputFileError(f"{path}: 'space directions' must give three 3-D vectors for the domain axes")
    origin = _vectors(fields.get("space origin", "(0,0,0)"), path)
    if len(origin) != 1 or origin[0] is None or origin[0].shape != (3,):
        raise InputFileError(f"{path}: bad 'space origin' {fields.get('space origin')!r}")
    columns = np.column_stack(vectors) * flip[:, None]  # LPS
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0):
        raise InputFileError(f"{path}: zero-length space direction")
    direction = columns / spacing[None, :]
    geometry = Geometry((sizes[-1], sizes[-2], sizes[-3]), tuple(spacing), tuple(origin[0] * flip),
                        tuple(direction.ravel()))

    count = int(np.prod(sizes))
    flat = _read_data(path, fields, offset, count, dtype)
    layers = sizes[0] if dimension == 4 else 1
    volume = flat.reshape((sizes[-1], sizes[-2], sizes[-3], layers))  # (z, y, x, layer): NRRD's first axis fastest
    if volume.min(initial=0) < 0:
        raise InputFileError(f"{path}: negative label values")

    segments: dict[str, dict[str, Any]] = {}
    pattern = re.compile(r"^Segment(\d+)_Name$")
    for key, value in pairs.items():
        m = pattern.match(key)
        if not m:
            continue
        n = m.group(1)
        try:
            label = int(pairs.get(f"Segment{n}_LabelValue", "1"))
            layer = int(pairs.get(f"Segment{n}_Layer", "0"))
        except ValueError:
            raise InputFileError(f"{path}: Segment{n} has a non-integer label value or layer") from None
        if not 0 <= layer < layers:
            raise InputFileError(f"{path}: Segment{n} ({value!r}) is in layer {layer}, the file has {layers}")
        segments[f"Segment{n}"] = {"name": value, "label": label, "layer": layer, "index": int(n)}
    if not segments:
        raise InputFileError(f"{path}: no SegmentN_Name entries in the header (not a 3D Slicer segmentation)")

    out = []
    for layer in range(layers):
        array = np.ascontiguousarray(volume[..., layer])
        members = sorted((s for s in segments.values() if s["layer"] == layer), key=lambda s: s["index"])
        names = {s["label"]: canonical_name(s["name"]) for s in members}
        notes: list[str] = []
        present = {int(v) for v in np.unique(array)} - {0}
        unnamed = sorted(present - set(names))
        if unnamed:
            notes.append(f"{path.name}: layer {layer} holds label values {unnamed} that no segment names; ignored")
        notes.extend(f"{path.name}: segment {s['name']!r} (label {s['label']}, layer {layer}) has no voxels"
                     for s in members if s["label"] not in present)
        meta: dict[str, Any] = {
            "format": "slicer-seg",
            "layer": layer,
            "segments": {s["label"]: s["name"] for s in members},
            "segment_ids": {s["label"]: f"Segment{s['index']}" for s in members},
            "warnings": notes,
        }
        out.append(LabelMap(array, geometry, str(path), meta, names=names, scheme="slicer-seg"))
    return out
