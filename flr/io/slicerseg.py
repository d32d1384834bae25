"""3D Slicer segmentations (``.seg.nrrd``): one label map per layer, segments named from the header.

A ``.seg.nrrd`` is a NRRD whose header carries ``SegmentN_Name``, ``SegmentN_LabelValue`` and
``SegmentN_Layer`` for each segment N. Overlapping segments sit in different layers: the file is then
4-D with a leading ``list`` axis (sizes ``layers x y z``, layer fastest); otherwise it is 3-D. The file
is read by :func:`flr.io.nrrd.read_nrrd_volume` (pynrrd), the one NRRD path of flr, so the geometry
rules are those of :mod:`flr.io.nrrd`: LPS, spacing and direction from ``space directions``, RAS and
LAS converted to LPS, a space flr cannot place (e.g. ``scanner-xyz``) an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flr.errors import InputFileError, quote
from flr.image import Geometry, LabelMap
from flr.io.nrrd import read_nrrd_volume
from flr.schemes import canonical_name

__all__ = ["read_slicer_seg"]


@dataclass(frozen=True)
class _Segment:
    index: int  # N of SegmentN_*
    name: str  # as written
    label: int  # SegmentN_LabelValue
    layer: int  # SegmentN_Layer


def _segments(path: Path, header: Mapping[str, Any], layers: int) -> list[_Segment]:
    """The header's segments in SegmentN order (label value 1 and layer 0 when not given)."""
    found: list[_Segment] = []
    pattern = re.compile(r"^Segment(\d+)_Name$")
    for key, value in header.items():
        m = pattern.match(key)
        if not m:
            continue
        n = m.group(1)
        try:
            label = int(str(header.get(f"Segment{n}_LabelValue", "1")))
            layer = int(str(header.get(f"Segment{n}_Layer", "0")))
        except ValueError:
            raise InputFileError(f"{path}: Segment{n} has a non-integer label value or layer") from None
        if not 0 <= layer < layers:
            raise InputFileError(f"{path}: Segment{n} ({quote(value)}) is in layer {layer}, the file has {layers}")
        found.append(_Segment(int(n), str(value), label, layer))
    if not found:
        raise InputFileError(f"{path}: no SegmentN_Name entries in the header (not a 3D Slicer segmentation)")
    return sorted(found, key=lambda s: s.index)


def _layer_map(path: Path, array: np.ndarray, geometry: Geometry, layer: int, members: list[_Segment]) -> LabelMap:
    names = {s.label: canonical_name(s.name) for s in members}
    present = {int(v) for v in np.unique(array)} - {0}
    notes: list[str] = []
    unnamed = sorted(present - set(names))
    if unnamed:
        notes.append(f"{path.name}: layer {layer} holds label values {unnamed} that no segment names; ignored")
    notes.extend(f"{path.name}: segment {quote(s.name)} (label {s.label}, layer {layer}) has no voxels"
                 for s in members if s.label not in present)
    meta: dict[str, Any] = {
        "format": "slicer-seg",
        "layer": layer,
        "segments": {s.label: s.name for s in members},
        "segment_ids": {s.label: f"Segment{s.index}" for s in members},
        "warnings": notes,
    }
    return LabelMap(array, geometry, str(path), meta, names=names, scheme="slicer-seg")


def read_slicer_seg(path: Path | str) -> list[LabelMap]:
    """Read a 3D Slicer ``.seg.nrrd`` as one :class:`~flr.image.LabelMap` per layer.

    Returns
    -------
    list of LabelMap
        Arrays (z, y, x) in LPS (spacing and origin in mm), in layer order; ``names`` = {SegmentN_LabelValue:
        canonical name of SegmentN_Name} for the segments of that layer; ``scheme="slicer-seg"``.
        ``metadata`` holds ``format``, ``layer``, ``segments`` ({label value: name as written}),
        ``segment_ids`` and ``warnings``.

    Raises
    ------
    InputFileError
        Not a readable NRRD, not 3-D or 4-D (layers), a non-integer type, negative labels, an unknown
        space, or no segment metadata.
    """
    path = Path(path)
    volume = read_nrrd_volume(path)
    if not np.issubdtype(volume.array.dtype, np.integer):
        raise InputFileError(f"{path}: NRRD type {quote(volume.header.get('type'))} is not an integer label type")
    if volume.array.min(initial=0) < 0:
        raise InputFileError(f"{path}: negative label values")
    layers = volume.array.shape[3]
    segments = _segments(path, volume.header, layers)
    return [_layer_map(path, np.ascontiguousarray(volume.array[..., layer]), volume.geometry, layer,
                       [s for s in segments if s.layer == layer])
            for layer in range(layers)]
