"""Physical distances on a voxel grid: exact Euclidean feature transforms cropped to a region of interest.

Distances are between voxel centres in millimetres, honouring anisotropic spacing (the grid's axes are
orthogonal, so the direction matrix does not change distances). Every function here crops to the bounding
box of what it needs plus the distance asked for, and answers only the voxels asked about.

One transform serves them all: :func:`nearest_feature_index`, flr's exact feature transform
(:mod:`flr.kernels._edt`, a flat int32 index per voxel, 4 bytes per voxel; scipy's
``distance_transform_edt(..., return_indices=True)`` holds three int32 index arrays and is 15-19 times
slower). Ties between equally near features go the way scipy's transform breaks them, the lowest x, then
y, then z (the kernel runs on the transposed grid, where its lowest-flat-index rule is that order), so the
segment territories of round 1 are kept voxel for voxel. Distances are computed in float64 from the
nearest feature's coordinates, with scipy's formula.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def nearest_feature_index(features: np.ndarray, spacing_zyx_mm: Sequence[float], *,
                          within: np.ndarray | None = None) -> np.ndarray:
    """Flat C-order index of the nearest feature voxel (exact, in mm) of every voxel of ``within``.

    Parameters
    ----------
    features : ndarray of bool, shape (z, y, x)
        The feature voxels (a feature voxel is its own nearest).
    spacing_zyx_mm : (3,) float
        Voxel spacing in mm, in array axis order (z, y, x).
    within : ndarray of bool, shape (z, y, x), optional
        The voxels that need an answer (default: all); features outside it still count.

    Returns
    -------
    ndarray of int32, shape (z, y, x)
        ``z * ny * nx + y * nx + x`` of the nearest feature; -1 outside ``within`` and everywhere when there
        is no feature. Among equally near features, the one with the lowest x, then y, then z wins: scipy's
        ``distance_transform_edt`` order, exactly where squared distances are exact in float64 (spacings
        such as 0.5, 1.5 or 2.5 mm); with spacings such as 0.7 mm, rounding may decide a tie. The array is
        Fortran-ordered (a transposed view), its values C-order indices.

    Peak memory: 4 bytes per voxel, plus a transposed copy of each mask (1 byte per voxel).

    >>> f = np.zeros((3, 1, 3), bool); f[0, 0, 1] = f[1, 0, 0] = True
    >>> nearest_feature_index(f, (1.0, 1.0, 1.0))[0, 0, 0].item()  # both 1 mm away: the lower x wins
    3
    """
    from flr.kernels._edt import nearest_feature

    nz, ny, nx = features.shape
    index_xyz = nearest_feature(features.T, tuple(spacing_zyx_mm)[::-1], within=None if within is None else within.T)
    # index_xyz holds x * ny * nz + y * nz + z: rewrite it as z * ny * nx + y * nx + x, one x slab at a time
    step = max(1, (1 << 22) // max(1, ny * nz))
    for x0 in range(0, nx, step):
        slab = index_xyz[x0:x0 + step]
        found = slab >= 0
        v = slab[found]
        z = v % nz
        v //= nz
        slab[found] = (z * ny + v % ny) * nx + v // ny
    return index_xyz.T


def nearest_seed_id(seeds_flat: np.ndarray, ids: np.ndarray, shape_zyx: tuple[int, int, int],
                    spacing_zyx_mm: Sequence[float], *, within: np.ndarray | None = None) -> np.ndarray:
    """``ids[k]`` of the nearest seed voxel ``seeds_flat[k]`` of every voxel of ``within`` (int32, -1 elsewhere).

    The answer of :func:`nearest_feature_index` for the seed voxels as features, mapped to their ids in the
    same pass that reads the transform's indices (a table of ``ids`` by the transposed grid's index: no
    rewrite of the indices to C order, no search; the table is calloc'ed, so only its pages holding a seed
    take memory). Same ties, same memory (4 bytes per voxel), Fortran-ordered like it.

    Parameters
    ----------
    seeds_flat : (n,) int
        Distinct C-order flat indices of the seed voxels in a grid of ``shape_zyx``.
    ids : (n,) int
        The value each seed voxel gives (>= 0).
    shape_zyx, spacing_zyx_mm
        The grid and its spacing (mm, z, y, x).
    within : ndarray of bool, optional
        The voxels that need an answer (default: all).

    >>> nearest_seed_id(np.array([0, 4]), np.array([7, 9]), (1, 1, 5), (1.0, 1.0, 1.0)).ravel().tolist()
    [7, 7, 7, 9, 9]
    """
    from flr.kernels._edt import nearest_feature

    nz, ny, nx = shape_zyx
    flat = np.asarray(seeds_flat, np.int64)
    z, rest = np.divmod(flat, ny * nx)
    y, x = np.divmod(rest, nx)
    flat_xyz = (x * ny + y) * nz + z
    features_xyz = np.zeros((nx, ny, nz), bool)  # made on the transposed grid the kernel runs on: no copy
    features_xyz.ravel()[flat_xyz] = True
    raw = nearest_feature(features_xyz, tuple(spacing_zyx_mm)[::-1], within=None if within is None else within.T)
    table = np.zeros(features_xyz.size + 1, np.int32)  # [-1] (no feature, outside within) stays 0: -1 below
    table[flat_xyz] = np.asarray(ids, np.int32) + 1
    rows = raw.reshape(nx, ny * nz)
    step = max(1, (1 << 22) // max(1, ny * nz))
    for x0 in range(0, nx, step):
        slab = rows[x0:x0 + step]
        np.take(table, slab, out=slab)
        slab -= 1
    return raw.T


def feature_distance_mm(index: np.ndarray, at: tuple[np.ndarray, ...], spacing_zyx_mm: Sequence[float]
                        ) -> np.ndarray:
    """float64 distance (mm) from the voxels ``at`` (z, y, x index arrays) to their nearest features.

    ``index`` is :func:`nearest_feature_index`'s answer, >= 0 at every voxel of ``at``. The formula is
    scipy's, ``sqrt(sum(((feature - voxel) * spacing) ** 2))`` summed over z, y, x, so a voxel whose feature
    is scipy's gets scipy's distance to the last bit.
    """
    feature = np.unravel_index(index[at], index.shape)
    d2 = np.zeros(feature[0].shape)
    for a in range(3):
        d = (feature[a] - at[a]).astype(np.float64)
        d *= spacing_zyx_mm[a]
        d2 += d * d
    return np.sqrt(d2)


def distance_to_mm(mask: np.ndarray, geometry: Geometry, roi: tuple[slice, slice, slice] | None = None
                   ) -> np.ndarray:
    """Distance (mm) from each voxel centre of ``roi`` to the nearest voxel centre of ``mask``.

    Voxels of ``mask`` outside ``roi`` are not seen: choose the ROI large enough (see :func:`roi_slices`).
    Returns ``inf`` everywhere when the mask has no voxel in the ROI. float64, equal to
    ``scipy.ndimage.distance_transform_edt(~mask[roi], sampling=geometry.spacing_zyx_mm)`` to rounding.

    >>> g = Geometry((1, 1, 5), (2.0, 1.0, 1.0))
    >>> m = np.zeros((1, 1, 5), bool); m[0, 0, 1] = True
    >>> distance_to_mm(m, g).ravel().tolist()
    [2.0, 0.0, 2.0, 4.0, 6.0]
    """
    sub = np.asarray(mask if roi is None else mask[roi], dtype=bool)
    if not sub.any():
        return np.full(sub.shape, np.inf)
    spacing = geometry.spacing_zyx_mm
    index = nearest_feature_index(sub, spacing)
    out = np.empty(sub.shape)
    ny, nx = sub.shape[1:]
    step = max(1, (1 << 20) // max(1, ny * nx))
    for z0 in range(0, sub.shape[0], step):
        z1 = min(sub.shape[0], z0 + step)
        at = tuple(g.ravel() for g in np.indices((z1 - z0, ny, nx)))
        at = (at[0] + z0, at[1], at[2])
        out[z0:z1] = feature_distance_mm(index, at, spacing).reshape(z1 - z0, ny, nx)
    return out


def dilate_mm(mask: np.ndarray, geometry: Geometry, margin_mm: float, *, within: np.ndarray | None = None
              ) -> np.ndarray:
    """Voxels whose centre lies within ``margin_mm`` of a voxel of ``mask`` (a physical-space dilation).

    ``within`` clips the result (e.g. to the liver); only its voxels are measured. The mask itself is
    included (within ``within``). A voxel counts when its distance is at most ``margin_mm + 1e-9`` mm.

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
    sub = np.asarray(mask[roi], dtype=bool)
    ask = np.ones(sub.shape, bool) if within is None else np.asarray(within[roi], dtype=bool)
    if not ask.any():
        return out
    index = nearest_feature_index(sub, geometry.spacing_zyx_mm, within=ask)
    at = np.nonzero(ask)
    near = feature_distance_mm(index, at, geometry.spacing_zyx_mm) <= margin_mm + 1e-9
    out[tuple(a[near] + r.start for a, r in zip(at, roi, strict=True))] = True
    return out


def min_distance_mm(source: np.ndarray, target: np.ndarray, geometry: Geometry, *, search_mm: float = 50.0
                    ) -> tuple[float, tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """Smallest centre-to-centre distance (mm) from any ``source`` voxel to any ``target`` voxel.

    Returns ``(distance_mm, source_index_zyx, target_index_zyx)``; ``(inf, None, None)`` when ``target``
    is empty or either mask is empty. The search grows from ``search_mm`` until the nearest target is
    found, so the answer is exact, not capped. Of equally near sources, the first in C order; its target
    as :func:`nearest_feature_index` picks it.

    >>> g = Geometry((1, 1, 6), (2.0, 1.0, 1.0))
    >>> s = np.zeros((1, 1, 6), bool); s[0, 0, 0] = True
    >>> t = np.zeros((1, 1, 6), bool); t[0, 0, 3:] = True
    >>> min_distance_mm(s, t, g)
    (6.0, (0, 0, 0), (0, 0, 3))
    """
    box = bbox_zyx(source)
    if box is None or not target.any():
        return math.inf, None, None
    pad = search_mm
    while True:
        roi = roi_slices(box, geometry, pad)
        covers_all = all(s.start == 0 and s.stop == n for s, n in zip(roi, geometry.shape_zyx, strict=True))
        sub_t = np.asarray(target[roi], dtype=bool)
        if sub_t.any():
            sub_s = np.asarray(source[roi], dtype=bool)
            index = nearest_feature_index(sub_t, geometry.spacing_zyx_mm, within=sub_s)
            at = np.nonzero(sub_s)                      # C order: argmin keeps the first of equal sources
            d = feature_distance_mm(index, at, geometry.spacing_zyx_mm)
            k = int(np.argmin(d))
            best = float(d[k])
            if best <= pad or covers_all:
                src = tuple(int(a[k]) for a in at)
                tgt = np.unravel_index(int(index[src]), sub_t.shape)
                return (best, tuple(src[a] + roi[a].start for a in range(3)),
                        tuple(int(tgt[a]) + roi[a].start for a in range(3)))
        if covers_all:
            return math.inf, None, None
        pad *= 2


def nearest_label(labels: np.ndarray, fill: np.ndarray, geometry: Geometry) -> np.ndarray:
    """For every voxel of ``fill``, the value of the nearest nonzero voxel of ``labels`` (physical distance).

    Used to give vessel and tumour voxels the Couinaud segment they lie in. Returns an array like
    ``labels`` with the ``fill`` voxels set to their nearest label (0 where no label exists). One feature
    transform of the nonzero voxels, on the box of ``fill`` and the labels, answering only ``fill``; ties
    as :func:`nearest_feature_index` breaks them (scipy's order).

    >>> g = Geometry((1, 1, 5), (1.0, 1.0, 1.0))
    >>> lab = np.array([[[3, 0, 0, 0, 7]]], np.uint8)
    >>> nearest_label(lab, lab == 0, g).ravel().tolist()   # x = 2 is a tie: the lower x wins
    [3, 3, 3, 7, 7]
    """
    out = np.array(labels, copy=True)
    box = bbox_zyx(fill)
    has = labels != 0
    if box is None or not has.any():
        return out
    lbox = bbox_zyx(has)
    assert lbox is not None
    both = tuple(min(box[i], lbox[i]) for i in range(3)) + tuple(max(box[3 + i], lbox[3 + i]) for i in range(3))
    roi = roi_slices(both, geometry, 0.0)
    sub_fill = np.asarray(fill[roi], dtype=bool)
    index = nearest_feature_index(has[roi], geometry.spacing_zyx_mm, within=sub_fill)
    sub = out[roi]
    sub[sub_fill] = np.ascontiguousarray(labels[roi]).ravel()[index[sub_fill]]
    return out
