"""Tumour instances: numbering, volume, centroid and the Couinaud segments each tumour lies in.

A tumour is a 6-connected component of the tumour mask, or an instance of an instance map when the
label file gives each tumour its own id. Tumours are numbered from 1 for the largest (most voxels); ties
go to the tumour whose first voxel comes first in raster order ``(z, y, x)``, so the numbering depends
only on the mask, never on the file's ids or on thread counts.

Tumour voxels usually carry the tumour label, not a segment label, so each tumour voxel is given the
segment of the nearest segment voxel (physical distance between voxel centres, anisotropic spacing
honoured), and a tumour's segments are reported in order of their share of its voxels. Every distance
transform is cropped to one tumour's bounding box plus the distance needed, never run on the whole volume.

What the nearest-voxel rule gets right and what it approximates: the *set* of segments is exact for a
convex tumour (a segment is found exactly when it touches the tumour's surface). The *shares* are those of
the tumour's surface, not of its volume, because an interior voxel takes the segment of the nearest
surface point: a sphere of radius r cut by a plane at distance h from its centre gets the share
(1 - h/r) / 2 beyond the plane (the cap's solid angle) instead of the cap's volume share
(r - h)^2 (2r + h) / (4 r^3); for h = r/2 that is 25% instead of 15.6%. A segment map that labels the
tumour voxels themselves with segments (e.g. a segment model run on the whole liver) is used as it is,
and then the shares are the volume shares.

Coordinates follow :mod:`flr.image`: arrays ``(z, y, x)``, millimetres ``(x, y, z)`` in LPS.

>>> from flr.image import Geometry
>>> g = Geometry((4, 4, 8), spacing_mm=(1.0, 1.0, 2.0))
>>> mask = np.zeros((4, 4, 8), bool)
>>> mask[1:3, 1:3, 1:3] = True          # 8 voxels
>>> mask[1, 1, 6] = True                # 1 voxel
>>> tumors, ids = find_tumors(mask, g)
>>> [(t.id, t.voxels, t.volume_ml) for t in tumors]
[(1, 8, 0.016), (2, 1, 0.002)]
>>> tumors[0].centroid_mm                # x, y, z in mm: (1.5 voxels x 1 mm, 1.5 x 1 mm, 1.5 x 2 mm)
(1.5, 1.5, 3.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flr.anatomy import SEGMENT_CODES
from flr.distance import feature_distance_mm, nearest_feature_index, roi_slices
from flr.errors import GeometryMismatchError, PlanError
from flr.image import Geometry

__all__ = ["MIN_SEGMENT_SHARE", "Tumor", "find_tumors", "segment_name"]

#: Segments holding less than this share of a tumour's voxels are left out of :attr:`Tumor.segments`
#: (they stay in :attr:`Tumor.segment_fractions`): a few voxels across a boundary are digitisation noise.
MIN_SEGMENT_SHARE = 0.01

#: First search distance (mm) beyond half a tumour's extent when looking for its nearest segment voxels.
_SEARCH_PAD_MM = 5.0


@dataclass(frozen=True)
class Tumor:
    """One tumour instance.

    Attributes
    ----------
    id : int
        1 for the largest tumour, then by decreasing size (ties by raster position of the first voxel).
    voxels : int
        Number of voxels.
    volume_ml : float
        ``voxels * geometry.voxel_volume_ml``.
    centroid_mm : (x, y, z)
        LPS position in mm of the mean of the voxel centres.
    segments : tuple of str
        Canonical names of the segments holding at least :data:`MIN_SEGMENT_SHARE` of the tumour's voxels,
        largest share first (ties by segment id); empty when no segment map was given.
    segment_fractions : dict of str to float
        Share of the tumour's voxels per segment, in the order of ``segments`` followed by the segments
        under the threshold; sums to 1 when segments are known, empty otherwise.
    bbox_zyx : (zmin, ymin, xmin, zmax, ymax, xmax)
        Inclusive voxel bounding box.
    max_diameter_mm : float
        Largest 3D extent (mm): see :func:`max_diameter_mm`.
    """

    id: int
    voxels: int
    volume_ml: float
    centroid_mm: tuple[float, float, float]
    segments: tuple[str, ...]
    segment_fractions: dict[str, float]
    bbox_zyx: tuple[int, int, int, int, int, int]
    max_diameter_mm: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: id, voxels, volume_ml, max_diameter_mm, centroid_mm, segments, segment_fractions."""
        return {
            "id": self.id,
            "voxels": self.voxels,
            "volume_ml": self.volume_ml,
            "max_diameter_mm": self.max_diameter_mm,
            "centroid_mm": list(self.centroid_mm),
            "segments": list(self.segments),
            "segment_fractions": dict(self.segment_fractions),
        }


def max_diameter_mm(voxels_zyx: tuple[np.ndarray, ...], spacing_zyx_mm: Sequence[float]) -> float:
    """Largest 3D extent of a tumour (mm): the farthest pair of its voxel centres (over the convex hull's
    vertices) plus a quarter of a voxel's extent along that pair's direction at each end. The tumour's
    farthest voxel centres lie inside it, between its true ends and one voxel in; the farthest pair of a
    voxelised round shape lies close to the ends, so a quarter voxel each side estimates the extent of the
    tumour itself (not of its voxels' boxes, which overshoot by up to a voxel). Measured on ellipsoids of
    20 and 60 mm on rotated grids of 0.7-2 mm in plane and 1-5 mm slices: within half the largest spacing.
    Spacing honoured; the grid's direction matrix is orthonormal, so index-space millimetres are patient
    millimetres. A single voxel: half its diagonal.
    """
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist, squareform

    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    pts = np.stack([np.asarray(v, dtype=float) for v in voxels_zyx], axis=1) * spacing
    if len(pts) < 2:
        return 0.5 * float(np.linalg.norm(spacing))
    candidates = pts
    if len(pts) > 64:
        try:
            candidates = pts[ConvexHull(pts).vertices]
        except QhullError:  # all voxels in one plane or line: every voxel is a candidate (few of them)
            candidates = pts
    d = squareform(pdist(candidates))
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    length = float(d[i, j])
    if length == 0.0:
        return 0.5 * float(np.linalg.norm(spacing))
    u = (candidates[j] - candidates[i]) / length
    return length + 0.5 * float(np.sum(np.abs(u) * spacing))


def segment_name(segment_id: int, segment_names: Mapping[int, str] | None = None) -> str:
    """Canonical name of a segment id: ``segment_names[id]`` when given, else the registry's name of that code
    (:data:`flr.anatomy.SEGMENT_CODES`: 1-8, IVa 9, IVb 10)."""
    if segment_names is not None:
        return str(segment_names[int(segment_id)])
    return SEGMENT_CODES.get(int(segment_id), f"liver_segment_{int(segment_id)}")


def _check_map(arr: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.shape != shape:
        raise GeometryMismatchError(f"{what} has shape (z,y,x) {a.shape}, the tumour mask {shape} "
                                    "(put both on one grid first)")
    return a


def _instance_values(tumor_mask: np.ndarray, instance_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices of tumour voxels, their instance ids), checking that every tumour voxel has an id."""
    inst = _check_map(instance_map, tumor_mask.shape, "instance_map")
    if inst.dtype.kind not in "iub":
        raise PlanError(f"instance_map must hold integer tumour ids, got dtype {inst.dtype} (cast it to int32)")
    flat = np.flatnonzero(tumor_mask)
    vals = inst.reshape(-1)[flat].astype(np.int64)
    if vals.size and vals.min() < 0:
        raise PlanError(f"instance_map holds negative ids (minimum {int(vals.min())}); tumour ids must be > 0")
    unlabelled = int(np.count_nonzero(vals == 0))
    if unlabelled:
        raise PlanError(f"{unlabelled} tumour voxels have instance id 0 in instance_map; give every tumour voxel "
                        "its instance id > 0, or leave instance_map out to number connected components")
    return flat, vals


def _numbered(tumor_mask: np.ndarray, instance_map: np.ndarray | None
              ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Tumour id map (int32, 1 = largest) and, per id in order, its voxel indices ``(z, y, x)``.

    One scan of the mask; everything after it works on the tumour voxels only.
    """
    shape = tumor_mask.shape
    if instance_map is None:
        from flr.kernels import components_of_mask

        comps, _ = components_of_mask(tumor_mask)
        flat = np.flatnonzero(tumor_mask)
        vals = comps.reshape(-1)[flat]
    else:
        flat, vals = _instance_values(tumor_mask, instance_map)
    ids_map = np.zeros(shape, np.int32)
    if flat.size == 0:
        return ids_map, []
    # flat is increasing, so return_index gives each instance's first voxel in raster order
    _, first, inverse, counts = np.unique(vals, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, -counts))  # by size (descending), then raster position
    rank = np.empty(order.size, np.int32)
    rank[order] = np.arange(1, order.size + 1, dtype=np.int32)
    per_voxel = rank[inverse.reshape(-1)]
    ids_map.reshape(-1)[flat] = per_voxel
    by_id = np.argsort(per_voxel, kind="stable")
    z, y, x = np.unravel_index(flat[by_id], shape)
    ends = np.cumsum(counts[order])
    starts = ends - counts[order]
    return ids_map, [(z[a:b], y[a:b], x[a:b]) for a, b in zip(starts, ends, strict=True)]


def _nearest_segments(seg_map: np.ndarray, valid_ids: np.ndarray | None, voxels_zyx: tuple[np.ndarray, ...],
                      box: tuple[int, int, int, int, int, int], geometry: Geometry) -> np.ndarray:
    """Segment id of the nearest segment voxel for each tumour voxel (absolute indices ``voxels_zyx``).

    The feature transform (:func:`flr.distance.nearest_feature_index`, answering the tumour voxels only)
    runs on the tumour's box grown by a pad that doubles until every tumour voxel's nearest segment voxel
    lies within the pad (then no voxel outside the crop can be nearer). Returns zeros when the map holds
    no segment voxel at all.
    """
    sx, sy, sz = geometry.spacing_mm
    sampling = (sz, sy, sx)
    extent_mm = max((box[3 + a] - box[a] + 1) * sampling[a] for a in range(3))
    pad = 0.5 * extent_mm + _SEARCH_PAD_MM
    shape = geometry.shape_zyx
    while True:
        roi = roi_slices(box, geometry, pad)
        whole = all(s.start == 0 and s.stop == n for s, n in zip(roi, shape, strict=True))
        sub = seg_map[roi]
        has = sub != 0 if valid_ids is None else np.isin(sub, valid_ids)
        if has.any():
            where = tuple(voxels_zyx[a] - roi[a].start for a in range(3))
            ask = np.zeros(sub.shape, bool)
            ask[where] = True
            index = nearest_feature_index(has, sampling, within=ask)
            if whole or float(feature_distance_mm(index, where, sampling).max()) <= pad:
                return np.ascontiguousarray(sub).ravel()[index[where]]
        elif whole:
            return np.zeros(voxels_zyx[0].size, seg_map.dtype)
        pad *= 2.0


def _fractions(seg_ids: np.ndarray, segment_names: Mapping[int, str] | None
               ) -> tuple[tuple[str, ...], dict[str, float]]:
    known = seg_ids[seg_ids != 0]
    if known.size == 0:
        return (), {}
    ids, counts = np.unique(known, return_counts=True)
    order = np.lexsort((ids, -counts))
    total = float(known.size)
    fractions = {segment_name(int(ids[i]), segment_names): counts[i] / total for i in order}
    segments = tuple(name for name, share in fractions.items() if share >= MIN_SEGMENT_SHARE)
    return segments, {k: float(v) for k, v in fractions.items()}


def find_tumors(
    tumor_mask: np.ndarray,
    geometry: Geometry,
    *,
    segment_map: np.ndarray | None = None,
    segment_names: Mapping[int, str] | None = None,
    instance_map: np.ndarray | None = None,
) -> tuple[list[Tumor], np.ndarray]:
    """Number the tumours of a mask and measure each one.

    Parameters
    ----------
    tumor_mask : ndarray of bool, shape (z, y, x)
        Tumour voxels (any array; nonzero = tumour).
    geometry : Geometry
        The grid of every array given.
    segment_map : ndarray of int, shape (z, y, x), optional
        Couinaud segment ids; every nonzero voxel counts as a segment voxel, unless ``segment_names`` is
        given, in which case only its ids do (so a full label map with tumour and vessel ids may be passed
        with ``segment_names`` naming the segment ids). Each tumour voxel gets the segment of the nearest
        segment voxel (itself, when the map labels it with a segment).
    segment_names : mapping of int to str, optional
        Segment id -> canonical name; by default id k is named ``liver_segment_k``.
    instance_map : ndarray of int, shape (z, y, x), optional
        Tumour instance ids (> 0 on every tumour voxel); when given, tumours are its instances instead of
        the 6-connected components of ``tumor_mask``. Its values outside the mask are ignored.

    Returns
    -------
    tumors : list of Tumor
        By id (1 = largest; ties by raster order ``(z, y, x)`` of each tumour's first voxel); empty when
        the mask is empty.
    ids_map : ndarray of int32, shape (z, y, x)
        0 outside tumours, k on the voxels of tumour k.

    Raises
    ------
    GeometryMismatchError
        When an array's shape is not the grid's.
    PlanError
        When ``instance_map`` is not integer, holds negative ids, or leaves tumour voxels at 0.
    """
    mask = np.asarray(tumor_mask)
    if mask.shape != geometry.shape_zyx:
        raise GeometryMismatchError(f"tumour mask has shape (z,y,x) {mask.shape}, the grid "
                                    f"{geometry.shape_zyx} (resample it onto the reference grid first)")
    mask = mask.astype(bool, copy=False)
    seg = None if segment_map is None else _check_map(segment_map, mask.shape, "segment_map")
    valid_ids = None
    if seg is not None and segment_names is not None:
        valid_ids = np.asarray(sorted(int(k) for k in segment_names), dtype=np.int64)
    ids_map, voxel_lists = _numbered(mask, instance_map)
    vv = geometry.voxel_volume_ml
    tumors: list[Tumor] = []
    for k, voxels in enumerate(voxel_lists, start=1):
        x, y, z = (float(v) for v in geometry.index_to_lps_mm([float(np.mean(i)) for i in voxels]))
        lo = [int(i.min()) for i in voxels]
        hi = [int(i.max()) for i in voxels]
        box = (lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
        segments: tuple[str, ...] = ()
        fractions: dict[str, float] = {}
        if seg is not None:
            near = _nearest_segments(seg, valid_ids, voxels, box, geometry)
            segments, fractions = _fractions(np.asarray(near, dtype=np.int64), segment_names)
        n = int(voxels[0].size)
        tumors.append(Tumor(id=k, voxels=n, volume_ml=n * vv, centroid_mm=(x, y, z), segments=segments,
                            segment_fractions=fractions, bbox_zyx=box,
                            max_diameter_mm=max_diameter_mm(voxels, geometry.spacing_zyx_mm)))
    return tumors, ids_map
