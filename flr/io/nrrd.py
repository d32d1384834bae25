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
  refused rather than guessed.

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

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError
from flr.image import Geometry, Image
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


def _read_pynrrd(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import nrrd

    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    if magic != b"NRRD":
        raise InputFileError(f"{path}: not a NRRD file (no 'NRRD' magic)")
    try:
        data, header = nrrd.read(str(path), index_order="C")
    except (nrrd.NRRDError, ValueError, TypeError, KeyError, IndexError, OSError, EOFError, zlib.error) as exc:
        # header syntax, unknown type or encoding, missing detached data, truncated or corrupt payload
        raise InputFileError(f"{path}: not a readable NRRD file ({type(exc).__name__}: {one_line(exc)})") from None
    return np.asarray(data), dict(header)


def _space_flip(path: Path, header: Mapping[str, Any]) -> np.ndarray:
    space = str(header.get("space", "")).strip().lower()
    if space not in SPACES_TO_LPS:
        raise InputFileError(f"{path}: NRRD space {space or 'missing'!r} cannot be placed in patient (LPS) "
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
    if np.any(spacing <= 0) or origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise InputFileError(f"{path}: zero-length space direction or bad 'space origin' "
                             f"({one_line(header.get('space origin'))})")
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
        raise InputFileError(f"{path}: {components} components per voxel (a layered segmentation); flr reads "
                             "single-layer files here")
    meta: dict[str, Any] = {"format": "nrrd", "warnings": [], "segments": slicer_segment_names(volume.header)}
    return Image(np.ascontiguousarray(volume.array[..., 0]), volume.geometry, source=str(path), metadata=meta)


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
