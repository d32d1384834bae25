"""Physical distances on a voxel grid: Euclidean distance transforms cropped to a region of interest.

Distances are between voxel centres in millimetres, honouring anisotropic spacing (the grid's axes are
orthogonal, so the direction matrix does not change distances). A whole-volume transform takes seconds;
every function here crops to the bounding box of what it needs plus the distance asked for.
"""

from __future__ import annotations

import math

import numpy as np

from flr.image import Geometry


def bbox_zyx(mask: np.ndarray) -> tuple[int, int, int, int, int, int] | None:
    """Inclusive bounding box (zmin, ymin, xmin, zmax, ymax, xmax) of a boolean mask, or None if empty."""
    out = []
    for axes in ((1, 2), (0, 2), (0, 1)):
        nz = np.flatnonzero(mask.any(axis=axes))
        if nz.size == 0:
            return None
        out.append((int(nz[0]), int(nz[-1])))
    return (out[0][0], out[1][0], out[2][0], out[0][1], out[1][1], out[2][1])


def roi_slices(box: tuple[int, ...], geometry: Geometry, pad_mm: float) -> tuple[slice, slice, slice]:
    """Slices of ``box`` grown by ``pad_mm`` on every side (clipped to the grid)."""
    spacing = geometry.spacing_zyx_mm
    out = []
    for axis in range(3):
        pad = math.ceil(pad_mm / spacing[axis]) + 1
        lo = max(0, box[axis] - pad)
        hi = min(geometry.shape_zyx[axis], box[3 + axis] + pad + 1)
        out.append(slice(lo, hi))
    return tuple(out)  # type: ignore[return-value]


def distance_to_mm(mask: np.ndarray, geometry: Geometry, roi: tuple[slice, slice, slice] | None = None
                   ) -> np.ndarray:
    """Distance (mm) from each voxel centre of ``roi`` to the nearest voxel centre of ``mask``.

    Voxels of ``mask`` outside ``roi`` are not seen: choose the ROI large enough (see :func:`roi_slices`).
    Returns ``inf`` everywhere when the mask has no voxel in the ROI.
    """
    from scipy import ndimage

    sub = mask if roi is None else mask[roi]
    if not sub.any():
        return np.full(sub.shape, np.inf)
    return ndimage.distance_transform_edt(~sub, sampling=geometry.spacing_zyx_mm)


def dilate_mm(mask: np.ndarray, geometry: Geometry, margin_mm: float, *, within: np.ndarray | None = None
              ) -> np.ndarray:
    """Voxels whose centre lies within ``margin_mm`` of a voxel of ``mask`` (a physical-space dilation).

    ``within`` clips the result (e.g. to the liver). The mask itself is included.

    >>> g = Geometry((1, 1, 11), (2.0, 1.0, 1.0))
    >>> m = np.zeros((1, 1, 11), bool); m[0, 0, 5] = True
    >>> int(dilate_mm(m, g, 4.0).sum())    # 2 mm voxels along x: 5 +/- 2 voxels
    5
    """
    out = np.zeros(mask.shape, dtype=bool)
    box = bbox_zyx(mask)
    if box is None:
        return out
    roi = roi_slices(box, geometry, margin_mm)
    out[roi] = distance_to_mm(mask, geometry, roi) <= margin_mm + 1e-9
    if within is not None:
        out &= within
    return out


def min_distance_mm(source: np.ndarray, target: np.ndarray, geometry: Geometry, *, search_mm: float = 50.0
                    ) -> tuple[float, tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """Smallest centre-to-centre distance (mm) from any ``source`` voxel to any ``target`` voxel.

    Returns ``(distance_mm, source_index_zyx, target_index_zyx)``; ``(inf, None, None)`` when ``target``
    is empty or either mask is empty. The search grows from ``search_mm`` until the nearest target is
    found, so the answer is exact, not capped.
    """
    from scipy import ndimage

    box = bbox_zyx(source)
    if box is None or not target.any():
        return math.inf, None, None
    pad = search_mm
    while True:
        roi = roi_slices(box, geometry, pad)
        sub_t = target[roi]
        if sub_t.any():
            dist, idx = ndimage.distance_transform_edt(~sub_t, sampling=geometry.spacing_zyx_mm, return_indices=True)
            sub_s = source[roi]
            d = np.where(sub_s, dist, np.inf)
            flat = int(np.argmin(d))
            best = float(d.ravel()[flat])
            covers_all = all(s.start == 0 and s.stop == n for s, n in zip(roi, geometry.shape_zyx, strict=True))
            if best <= pad or covers_all:
                src = np.unravel_index(flat, d.shape)
                tgt = tuple(int(idx[a][src]) + roi[a].start for a in range(3))
                src_full = tuple(int(src[a]) + roi[a].start for a in range(3))
                return best, src_full, tgt
        if all(s.start == 0 and s.stop == n for s, n in zip(roi, geometry.shape_zyx, strict=True)):
            return math.inf, None, None
        pad *= 2


def nearest_label(labels: np.ndarray, fill: np.ndarray, geometry: Geometry) -> np.ndarray:
    """For every voxel of ``fill``, the value of the nearest nonzero voxel of ``labels`` (physical distance).

    Used to give vessel and tumour voxels the Couinaud segment they lie in. Returns an array like
    ``labels`` with the ``fill`` voxels set to their nearest label (0 where no label exists).
    """
    from scipy import ndimage

    out = np.array(labels, copy=True)
    box = bbox_zyx(fill)
    has = labels != 0
    if box is None or not has.any():
        return out
    lbox = bbox_zyx(has)
    assert lbox is not None
    both = tuple(min(box[i], lbox[i]) for i in range(3)) + tuple(max(box[3 + i], lbox[3 + i]) for i in range(3))
    roi = roi_slices(both, geometry, 0.0)
    _, idx = ndimage.distance_transform_edt(~has[roi], sampling=geometry.spacing_zyx_mm, return_indices=True)
    sub = out[roi]
    sub_fill = fill[roi]
    near = labels[roi][idx[0][sub_fill], idx[1][sub_fill], idx[2][sub_fill]]
    sub[sub_fill] = near
    return out
