"""Nearest-neighbour resampling of a label map onto another grid (only when the user asks for it)."""

from __future__ import annotations

import numpy as np

from flr.image import Geometry, LabelMap


def resample_nearest(label_map: LabelMap, geometry: Geometry) -> LabelMap:
    """``label_map`` resampled onto ``geometry`` with nearest-neighbour interpolation (labels never blend).

    Voxels of the target grid outside the source grid become background (0). The result's metadata
    records the resampling in ``warnings`` so reports say so.
    """
    import SimpleITK as sitk

    src = sitk.GetImageFromArray(np.ascontiguousarray(label_map.array))
    src.SetSpacing(label_map.geometry.spacing_mm)
    src.SetOrigin(label_map.geometry.origin_mm)
    src.SetDirection(label_map.geometry.direction)
    ref = sitk.Image([int(s) for s in geometry.shape_zyx[::-1]], src.GetPixelID())
    ref.SetSpacing(geometry.spacing_mm)
    ref.SetOrigin(geometry.origin_mm)
    ref.SetDirection(geometry.direction)
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, src.GetPixelID())
    array = sitk.GetArrayFromImage(out).astype(label_map.array.dtype, copy=False)
    meta = dict(label_map.metadata)
    meta["warnings"] = [*meta.get("warnings", []),
                        f"{label_map.source}: resampled onto the reference grid with nearest-neighbour "
                        f"interpolation (was {label_map.geometry.describe()})"]
    meta["resampled"] = "nearest"
    return LabelMap(array, geometry, label_map.source, meta, names=label_map.names, scheme=label_map.scheme)
