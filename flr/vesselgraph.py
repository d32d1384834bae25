"""Vessel centerline graphs: branches, components, the extrahepatic root, bridged gaps and debris.

The first piece of the territory model of round 2 (see ``DESIGN.md``, "Vessels (round 2)"): one vessel
system (portal vein, hepatic artery, hepatic veins or bile duct) given as a binary mask becomes a graph of
centerline branches rooted at its extrahepatic trunk. Small segmentation gaps are bridged, isolated specks
are counted as debris. :mod:`flr.territories` builds the territories of a plan on it.

Method
    1. Centerlines: 3-D thinning of the mask (Lee et al. 1994: :func:`flr.kernels._thin.thin`, voxel for voxel
       :func:`skimage.morphology.skeletonize`, 4-5x faster on vessel masks);
       the branch graph of the skeleton as :class:`skan.Skeleton` builds it (Nunez-Iglesias et al.,
       PeerJ 2018), by :func:`flr.kernels._skeleton.skeleton_paths` in numpy and Python (skan 0.13
       compiles its path functions in every process: 4-8 s), with the grid spacing. Junction voxels that
       touch each other form one junction node.
    2. Branch length: the path is smoothed by a moving average over :data:`SMOOTH_POINTS` voxels (end
       points kept) before its polyline length is summed, because the raw 26-connected path of an oblique
       vessel is a staircase that is up to ~20 % longer than the vessel.
    3. Radius: a Euclidean distance transform of the mask with the grid spacing; at each centerline voxel
       the largest value in its 3x3x3 neighbourhood, because thinning leaves the centerline up to a voxel
       off the axis, where the transform is smaller than the inscribed radius.
    4. Root: the components holding extrahepatic centerline voxels (outside ``liver_mask``) or voxels
       within the largest inscribed radius plus one voxel of ``trunk_mask`` when given (a vein's
       centerline ends about its radius short of the trunk it joins, 5-8 voxels on a 0.7 mm grid); a
       component with fewer such voxels than :data:`TRUNK_MIN_FRACTION` of the largest is not a trunk.
       With neither mask, the component of the largest vessel volume is the root.
    5. Bridging: the mask of each graph component (and each piece of vessel over ``debris_ml`` too blob-like
       to thin to a branch) is a bridging node. Between a node without a root and another node the gap is
       measured surface to surface: the smallest distance between the boxes of a voxel of each (so a
       dropped 2.5 mm slice is a 2.5 mm gap, not the 5 mm between voxel centres). The line across the gap
       runs from the centroid of one node's contact voxels (within one voxel of that smallest gap) to the
       other's. The rule: **a gap is bridged when it is at most ``bridge_mm`` (or one slice) and the line across it lies
       within ``bridge_angle_deg`` of the principal axis (PCA of the mask voxels within
       max(:data:`AXIS_MM`, 3 inscribed radii) of the contact) of either node**, i.e. one piece points at
       the other; pieces that merely run alongside, or a side branch pointing across, are refused. A gap
       of at most one voxel (the largest spacing) is below the scan's resolution and is joined whatever
       its direction: a dropped slice splits a vessel running in the slice plane lengthwise into two
       half-tubes that lie side by side, one voxel apart. Mask
       voxels, not thinned ends, give the axis, because a short thick piece (a slab of a trunk between two
       dropped slices) thins to a stub whose direction is arbitrary. The nearest admissible gap of a
       group without a root is joined, and this repeats until nothing more joins. Pieces still without a
       root and under ``debris_ml`` of vessel volume, or under :data:`DEBRIS_EXTENT_MM` long in every
       direction (bounding box), are debris.
    6. Territories (:func:`branch_territories`): each liver voxel goes to the branch with the nearest
       centerline point (Euclidean, mm). A resection, wedge or ablation (:func:`cut_branches`) cuts the
       branches with a path point in the removed parenchyma and loses everything downstream of them;
       their territories are at risk (:func:`at_risk_mask`).

Arrays are indexed ``(z, y, x)``; distances use ``geometry.spacing_zyx_mm`` (the direction matrix is
orthonormal, so index-space millimetres are patient millimetres). Points are voxel indices (z, y, x).

>>> import numpy as np
>>> from flr.image import Geometry, grid_mask
>>> mask = np.zeros((5, 5, 40), dtype=bool)
>>> mask[1:4, 1:4, 2:38] = True                              # a 3-voxel-thick rod along x
>>> g = build_vessel_graph(mask, Geometry(shape_zyx=(5, 5, 40), spacing_mm=(0.5, 1.0, 1.0)))
>>> g
VesselGraph(branches=1, components=1, connected=1, bridges=0, debris=0 (0.000 mL))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from flr.distance import bbox_zyx
from flr.image import Geometry, grid_mask

__all__ = [
    "DEBRIS_EXTENT_MM",
    "DEFAULT_BRIDGE_ANGLE_DEG",
    "DEFAULT_BRIDGE_MM",
    "DEFAULT_DEBRIS_ML",
    "SMOOTH_POINTS",
    "TRUNK_MIN_FRACTION",
    "Branch",
    "Bridge",
    "VesselGraph",
    "at_risk_mask",
    "branch_territories",
    "build_vessel_graph",
    "cut_branches",
]

#: A segmentation gap in a vessel is typically 1-3 mm (a stenosis, a partial-volume dropout); a dropped
#: slice is one slice thick, so the gap bridged is ``max(bridge_mm, largest spacing)``. A wider gap is
#: taken as a real interruption (a vessel cut or occluded): 6 mm of missing vessel measures 3.3-4.8 mm
#: surface to surface on 0.8-1.5 mm grids and is not bridged.
DEFAULT_BRIDGE_MM = 3.0
#: Both parts of an interrupted vessel point at each other; 45 degrees allows for a vessel that curves
#: across the gap and for the wobble of a thinned end, and refuses neighbours that merely run alongside.
DEFAULT_BRIDGE_ANGLE_DEG = 45.0
#: 0.02 mL = 20 mm^3, a sphere of 1.7 mm radius: below any vessel worth a territory, above the 1-10 voxel
#: specks that thresholding and network outputs leave behind.
DEFAULT_DEBRIS_ML = 0.02
#: A piece without a root that is shorter than this in every direction (its bounding box, mm) is a speck,
#: not a vessel fragment, whatever its volume: a 2x2-voxel blob on a 1.5 x 1.5 x 2.5 mm grid holds 22 mm^3
#: (over the debris volume) but 3 mm is no vessel length; any vessel piece worth a territory is longer
#: than its own 5 mm (it runs between two gaps or from a gap to its end).
DEBRIS_EXTENT_MM = 5.0
#: An extrahepatic piece with fewer centerline voxels than this fraction of the largest one is a stray
#: vessel outside the liver (a neighbouring vein, a leak), not a trunk.
TRUNK_MIN_FRACTION = 0.25
#: Moving-average window (centerline voxels) applied before measuring a branch's length.
SMOOTH_POINTS = 5
#: The axis of a fragment is taken from its mask voxels within this many millimetres of its contact (or
#: three of its radii, when larger), so a curved branch is judged by its end and a stub by all of it.
AXIS_MM = 5.0


@dataclass(frozen=True)
class Branch:
    """One centerline branch between two graph nodes.

    Attributes
    ----------
    id : int
        Index in :attr:`VesselGraph.branches`.
    node_ids : (int, int)
        End nodes; a node with one branch is a free end, with three or more a junction.
    path_zyx : numpy.ndarray
        (n, 3) int voxel indices (z, y, x) from ``node_ids[0]`` to ``node_ids[1]``, read-only.
    length_mm : float
        Length of the smoothed centerline path in mm.
    mean_radius_mm, min_radius_mm : float
        Inscribed radius along the path in mm.
    component : int
        Connected piece of the graph before bridging.
    trunk_points : numpy.ndarray or None
        (n,) bool, read-only: which points of ``path_zyx`` are trunk (extrahepatic, or near
        ``trunk_mask``: see :func:`build_vessel_graph`); set on branches of a root component only, None
        where the branch has none.
    path_radius_mm : numpy.ndarray or None
        (n,) float, read-only: the inscribed radius (mm) at each point of ``path_zyx`` (larger at a
        junction, where several vessels merge).
    """

    id: int
    node_ids: tuple[int, int]
    path_zyx: np.ndarray = field(repr=False, compare=False)
    length_mm: float
    mean_radius_mm: float
    min_radius_mm: float
    component: int
    trunk_points: np.ndarray | None = field(default=None, repr=False, compare=False)
    path_radius_mm: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Bridge:
    """A bridged gap between the masks of a fragment and another piece (see :func:`build_vessel_graph`).

    The components are numbered as :attr:`Branch.component`; a piece of vessel without a branch takes a
    number after the last component. ``fragment_point_zyx`` and ``target_point_zyx`` are the closest
    surface voxels of the two (voxel indices); ``gap_mm`` the surface-to-surface distance; ``angle_deg``
    the angle between the line across the gap and the nearer of the two pieces' principal axes.
    """

    fragment_component: int
    target_component: int
    fragment_point_zyx: tuple[float, float, float]
    target_point_zyx: tuple[float, float, float]
    gap_mm: float
    angle_deg: float


@dataclass(frozen=True, repr=False)
class VesselGraph:
    """The centerline graph of one vessel system; see :func:`build_vessel_graph`.

    Attributes
    ----------
    branches : tuple of Branch
    n_nodes : int
    n_components : int
        Connected pieces of the graph before bridging.
    root_components : tuple of int
        The components holding the trunk.
    connected_branch_ids : frozenset of int
        Branches joined to a root, bridges included.
    bridges : tuple of Bridge
    debris_count : int
        Vessel pieces under the debris volume left without a root.
    debris_ml : float
        Their vessel volume in mL.
    disconnected_ml : float
        Vessel volume in mL of the larger pieces left without a root (not debris).
    trunk_branch_ids : frozenset of int
        The branches the system is fed from: those of a root component holding trunk points, or, with
        neither ``liver_mask`` nor ``trunk_mask``, the widest (mean radius) branch of the root component.
    debris_branch_ids : frozenset of int
        The branches of the debris pieces (they supply no territory).
    """

    branches: tuple[Branch, ...]
    n_nodes: int
    n_components: int
    root_components: tuple[int, ...]
    connected_branch_ids: frozenset[int]
    bridges: tuple[Bridge, ...]
    debris_count: int
    debris_ml: float
    disconnected_ml: float
    trunk_branch_ids: frozenset[int] = frozenset()
    debris_branch_ids: frozenset[int] = frozenset()

    def __repr__(self) -> str:
        return (f"VesselGraph(branches={len(self.branches)}, components={self.n_components}, "
                f"connected={len(self.connected_branch_ids)}, bridges={len(self.bridges)}, "
                f"debris={self.debris_count} ({self.debris_ml:.3f} mL))")

    @property
    def total_length_mm(self) -> float:
        return float(sum(b.length_mm for b in self.branches))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, lengths (mm), bridges and debris (mL)."""
        connected = [b for b in self.branches if b.id in self.connected_branch_ids]
        return {
            "branches": len(self.branches),
            "nodes": self.n_nodes,
            "components": self.n_components,
            "root_components": list(self.root_components),
            "connected_branches": len(connected),
            "total_length_mm": round(self.total_length_mm, 2),
            "connected_length_mm": round(sum(b.length_mm for b in connected), 2),
            "bridges": [{"gap_mm": round(b.gap_mm, 2), "angle_deg": round(b.angle_deg, 1),
                         "fragment_point_zyx": [round(v, 2) for v in b.fragment_point_zyx],
                         "target_point_zyx": [round(v, 2) for v in b.target_point_zyx]} for b in self.bridges],
            "debris_count": self.debris_count,
            "debris_ml": round(self.debris_ml, 4),
            "disconnected_ml": round(self.disconnected_ml, 4),
        }


# ------------------------------------------------------------------------------------------------
# Input checks
# ------------------------------------------------------------------------------------------------



def _check_parameters(bridge_mm: float, bridge_angle_deg: float, debris_ml: float) -> None:
    if not (math.isfinite(bridge_mm) and bridge_mm >= 0):
        raise ValueError(f"bridge_mm must be a finite number of mm >= 0, got {bridge_mm!r}")
    if not (math.isfinite(bridge_angle_deg) and 0 <= bridge_angle_deg <= 180):
        raise ValueError(f"bridge_angle_deg must lie in [0, 180] degrees, got {bridge_angle_deg!r}")
    if not (math.isfinite(debris_ml) and debris_ml >= 0):
        raise ValueError(f"debris_ml must be a finite number of mL >= 0, got {debris_ml!r}")


# ------------------------------------------------------------------------------------------------
# Skeleton -> branches
# ------------------------------------------------------------------------------------------------


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _smoothed_length_mm(path_mm: np.ndarray) -> float:
    if len(path_mm) < 2:
        return 0.0
    smooth = ndimage.uniform_filter1d(path_mm, min(SMOOTH_POINTS, len(path_mm)), axis=0, mode="nearest")
    smooth[0], smooth[-1] = path_mm[0], path_mm[-1]
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())


#: The 13 of a voxel's 26 neighbours that come after it in C order (the other 13 see it as theirs)
_FORWARD_26 = np.array([(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                        if (dz, dy, dx) > (0, 0, 0)], np.int64)


def _junction_nodes(coords: np.ndarray, degrees: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Node id of every skeleton pixel: touching junction pixels (degree >= 3) share one id.

    The clusters are the 26-connected components of the junction pixels, numbered as
    ``scipy.ndimage.label`` numbers them (in C order of their first pixel), found among the junction
    pixels alone (their pairs of neighbours): no labelling of the whole vessel box (issue 14).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    is_junction = degrees >= 3
    where = np.asarray(coords[is_junction], np.int64)
    n_junction = len(where)
    node = np.arange(len(coords)) + 0
    if not n_junction:
        return node
    extent = np.asarray(shape, np.int64)
    flat = np.ravel_multi_index(tuple(where.T), shape)
    order = np.argsort(flat, kind="stable")
    sorted_flat = flat[order]
    pairs_a, pairs_b = [], []
    for off in _FORWARD_26:
        other = where + off
        ok = np.all((other >= 0) & (other < extent), axis=1)
        if not ok.any():
            continue
        f = np.ravel_multi_index(tuple(other[ok].T), shape)
        k = np.minimum(np.searchsorted(sorted_flat, f), n_junction - 1)
        hit = sorted_flat[k] == f
        pairs_a.append(np.flatnonzero(ok)[hit])
        pairs_b.append(order[k[hit]])
    a = np.concatenate(pairs_a) if pairs_a else np.zeros(0, np.int64)
    b = np.concatenate(pairs_b) if pairs_b else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n_junction, n_junction))
    n_clusters, comp = connected_components(graph, directed=False)
    first = np.full(n_clusters, np.iinfo(np.int64).max)
    np.minimum.at(first, comp, flat)
    rank = np.empty(n_clusters, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_clusters)  # C order of each cluster's first pixel
    node += n_clusters
    node[is_junction] = rank[comp]
    return node


def _skeleton_branches(mask: np.ndarray, spacing_zyx: np.ndarray) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Centerline paths (voxel indices) and their end node ids; junction clusters merged."""
    from flr.kernels._skeleton import skeleton_paths  # imported when a graph is built
    from flr.kernels._thin import thin

    skeleton = thin(mask)  # skimage.morphology.skeletonize's Lee thinning, on the foreground voxels only
    if np.count_nonzero(skeleton) < 2:
        return [], []
    # skan.Skeleton's coordinates, degrees and paths_list(), without its uncached numba compilation
    coords, degrees, skeleton_path_ids = skeleton_paths(skeleton.astype(bool, copy=False), spacing_zyx)
    node = _junction_nodes(coords, degrees, mask.shape)
    paths, ends = [], []
    for ids in skeleton_path_ids:
        a, b = int(node[ids[0]]), int(node[ids[-1]])
        if a == b and np.all(node[ids] == a):
            continue  # a step inside one junction cluster
        paths.append(coords[ids])
        ends.append((a, b))
    return paths, ends


def _face_shifts(shape: tuple[int, ...]) -> list[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """Per axis, the index pair (voxels 1..n-1, voxels 0..n-2): each voxel against its face neighbour below."""
    pairs = []
    for axis, n in enumerate(shape):
        hi, lo = [slice(None)] * 3, [slice(None)] * 3
        hi[axis], lo[axis] = slice(1, n), slice(0, n - 1)
        pairs.append((tuple(hi), tuple(lo)))
    return pairs


def _face_ring(sub: np.ndarray) -> np.ndarray:
    """Voxels outside ``sub`` with a face neighbour in it: ``binary_dilation`` by the 6-neighbour cross,
    minus ``sub``, by six shifted ORs (scipy's dilation is several times slower on a vessel box)."""
    grown = sub.copy()
    for hi, lo in _face_shifts(sub.shape):
        grown[hi] |= sub[lo]
        grown[lo] |= sub[hi]
    grown &= ~sub
    return grown


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it or on the grid's border: ``mask &
    ~binary_erosion(mask)`` (6-neighbour cross, border 0), by six shifted ANDs."""
    inner = mask.copy()
    for axis, (hi, lo) in enumerate(_face_shifts(mask.shape)):
        inner[hi] &= mask[lo]
        inner[lo] &= mask[hi]
        edge = [slice(None)] * 3
        for k in (0, mask.shape[axis] - 1):
            edge[axis] = slice(k, k + 1)
            inner[tuple(edge)] = False
    return mask & ~inner


#: The distance transform of :func:`_radii_mm` sees this far around the centerline (mm): no radius is larger.
_RADIUS_HORIZON_MM = 15.0


def _radii_mm(mask: np.ndarray, spacing_zyx: np.ndarray, paths: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The vessel's radius at every centerline point: the largest distance (mm) to the nearest voxel outside
    the mask over the point's 3 x 3 x 3 neighbourhood (a distance transform's values, maximum-filtered).

    Only those values are computed (issue 14: a whole distance transform of the vessel box threw all but
    these away): the nearest outside voxel of an inside voxel is always a face neighbour of the mask (a
    step from it towards the point along an axis where they differ comes closer), so a k-d tree of those
    voxels answers exactly what ``scipy.ndimage.distance_transform_edt`` would, within the horizon of
    :data:`_RADIUS_HORIZON_MM` around the centerline (the same crop as before).
    """
    from scipy.spatial import cKDTree

    if not paths:
        return []
    lo = np.min([p.min(axis=0) for p in paths], axis=0)
    hi = np.max([p.max(axis=0) for p in paths], axis=0)
    pad = np.ceil(_RADIUS_HORIZON_MM / spacing_zyx).astype(int) + 2
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad + 1, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = np.asarray(mask[box], bool)
    outside = np.argwhere(_face_ring(sub))
    points = np.concatenate(paths) - lo
    offsets = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    around = (points[:, None, :] + offsets[None, :, :]).reshape(-1, 3)
    valid = np.all((around >= 0) & (around < np.asarray(sub.shape)), axis=1)
    inside = np.zeros(len(around), bool)
    inside[valid] = sub[tuple(around[valid].T)]
    dist = np.zeros(len(around))
    if len(outside) and inside.any():
        # neighbouring points share most of their 27 voxels: each distinct voxel is asked once
        flat = np.ravel_multi_index(tuple(around[inside].T), sub.shape)
        voxels, which = np.unique(flat, return_inverse=True)
        asked = np.stack(np.unravel_index(voxels, sub.shape), axis=1)
        dist[inside] = cKDTree(outside * spacing_zyx).query(asked * spacing_zyx, k=1)[0][which.ravel()]
    elif inside.any():  # no voxel outside the mask in the box (a blob filling it): at least the horizon
        dist[inside] = _RADIUS_HORIZON_MM
    radii = dist.reshape(len(points), 27).max(axis=1)
    cuts = np.cumsum([len(p) for p in paths])[:-1]
    return list(np.split(radii, cuts))


# ------------------------------------------------------------------------------------------------
# Free ends and bridging
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """The mask of one graph component: all its voxels and its surface voxels, in mm (z, y, x)."""

    voxels_mm: np.ndarray
    surface_mm: np.ndarray
    radius_mm: float
    lo: np.ndarray            # bounding box (voxel indices), inclusive
    hi: np.ndarray


@dataclass(frozen=True)
class _Edge:
    fragment: int             # component
    target: int
    fragment_point_mm: np.ndarray
    target_point_mm: np.ndarray
    gap_mm: float
    angle_deg: float


def _inscribed_radius_mm(piece: np.ndarray, spacing_zyx: np.ndarray) -> float:
    """Largest distance (mm) from a voxel of ``piece`` to the nearest voxel of its box outside it: the
    maximum of ``scipy.ndimage.distance_transform_edt(piece, sampling=spacing_zyx)``, by flr's exact feature
    transform answering the piece's voxels only (issue 14), with scipy's formula for the distance."""
    from flr.distance import feature_distance_mm, nearest_feature_index

    if piece.all():  # no voxel outside the piece in its box (it fills the grid): scipy's own answer
        return float(ndimage.distance_transform_edt(piece, sampling=spacing_zyx).max())
    spacing = tuple(float(v) for v in spacing_zyx)
    index = nearest_feature_index(~piece, spacing, within=piece)
    return float(feature_distance_mm(index, np.nonzero(piece), spacing).max())


def _pieces(mask: np.ndarray, labels: np.ndarray, spacing_zyx: np.ndarray, node_pieces: Sequence[set[int]]
            ) -> list[_Piece | None]:
    """The mask of every bridging node (the 26-connected mask pieces it is made of)."""
    surface = _surface(mask)
    boxes = ndimage.find_objects(labels)
    out: list[_Piece | None] = []
    for pieces in node_pieces:
        voxels, rim, radius = [], [], 0.0
        for piece in sorted(pieces):
            box = boxes[piece - 1]
            if box is None:
                continue
            offset = np.array([s.start for s in box])
            inside = labels[box] == piece
            grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
            radius = max(radius, _inscribed_radius_mm(labels[grown] == piece, spacing_zyx))
            voxels.append(np.argwhere(inside) + offset)
            rim.append(np.argwhere(inside & surface[box]) + offset)
        if not voxels:
            out.append(None)
            continue
        v = np.concatenate(voxels)
        out.append(_Piece(v * spacing_zyx, np.concatenate(rim) * spacing_zyx, radius, v.min(axis=0), v.max(axis=0)))
    return out


def _principal_axis(points_mm: np.ndarray) -> np.ndarray | None:
    """Unit eigenvector of the largest eigenvalue of the points' covariance (None for < 3 points)."""
    if len(points_mm) < 3:
        return None
    _, vectors = np.linalg.eigh(np.cov(points_mm, rowvar=False))
    return vectors[:, -1]


def _edge(fragment: int, target: int, f: _Piece, t: _Piece, spacing_zyx: np.ndarray, bridge_mm: float,
          bridge_angle_deg: float) -> _Edge | None:
    """The bridge from ``fragment`` to ``target`` when the rule of :func:`build_vessel_graph` admits it."""
    # voxel centres of boxes within bridge_mm, and of every contact voxel (box within gap + one voxel)
    reach = bridge_mm + float(spacing_zyx.max()) + float(np.linalg.norm(spacing_zyx))
    dist, j = cKDTree(t.surface_mm).query(f.surface_mm, distance_upper_bound=reach)
    near = np.isfinite(dist)
    if not near.any():
        return None
    f_rim, t_rim = f.surface_mm[near], t.surface_mm[j[near]]
    # surface to surface: the distance between the two voxels' boxes, not between their centres
    box_mm = np.linalg.norm(np.maximum(np.abs(f_rim - t_rim) - spacing_zyx, 0.0), axis=1)
    k = int(np.argmin(box_mm))
    gap = float(box_mm[k])
    if gap > bridge_mm:
        return None
    if gap <= float(spacing_zyx.max()) + 1e-6:            # one voxel: below the resolution, no direction
        return _Edge(fragment, target, f_rim[k], t_rim[k], gap, 0.0)
    contact = box_mm <= gap + float(spacing_zyx.max())
    f_contact, t_contact = f_rim[contact].mean(axis=0), t_rim[contact].mean(axis=0)
    across = t_contact - f_contact
    if float(np.linalg.norm(across)) == 0.0:
        across = t_rim[k] - f_rim[k]
    across = across / max(float(np.linalg.norm(across)), 1e-12)
    angle = 90.0
    for piece, at in ((f, f_contact), (t, t_contact)):
        around = max(AXIS_MM, 3.0 * piece.radius_mm)
        axis = _principal_axis(piece.voxels_mm[np.linalg.norm(piece.voxels_mm - at, axis=1) <= around])
        if axis is not None:
            angle = min(angle, math.degrees(math.acos(min(1.0, abs(float(axis @ across))))))
    if angle > bridge_angle_deg + 1e-9:
        return None
    return _Edge(fragment, target, f_rim[k], t_rim[k], gap, angle)


def _edges(pieces: Sequence[_Piece | None], roots: set[int], spacing_zyx: np.ndarray, bridge_mm: float,
           bridge_angle_deg: float) -> list[_Edge]:
    """Every admissible bridge from a component outside the roots to another component, nearest first."""
    pad = np.ceil((bridge_mm + float(spacing_zyx.max())) / spacing_zyx).astype(int) + 2
    out = []
    for a, f in enumerate(pieces):
        if f is None or a in roots:
            continue
        for b, t in enumerate(pieces):
            if t is None or b == a or np.any(t.lo > f.hi + pad) or np.any(t.hi < f.lo - pad):
                continue
            edge = _edge(a, b, f, t, spacing_zyx, bridge_mm, bridge_angle_deg)
            if edge is not None:
                out.append(edge)
    return sorted(out, key=lambda e: (e.gap_mm, e.fragment, e.target))


def _bridge(uf: _UnionFind, roots: set[int], edges: Sequence[_Edge], spacing_zyx: np.ndarray) -> list[Bridge]:
    """Join fragments along the nearest admissible bridge of a group without a root, until none is left."""
    bridges: list[Bridge] = []
    while True:
        rooted = {uf.find(c) for c in roots}
        edge = next((e for e in edges if uf.find(e.fragment) not in rooted
                     and uf.find(e.fragment) != uf.find(e.target)), None)
        if edge is None:
            return bridges
        uf.union(edge.fragment, edge.target)
        bridges.append(Bridge(edge.fragment, edge.target,
                              tuple(float(v) for v in edge.fragment_point_mm / spacing_zyx),  # type: ignore[arg-type]
                              tuple(float(v) for v in edge.target_point_mm / spacing_zyx),  # type: ignore[arg-type]
                              edge.gap_mm, edge.angle_deg))


# ------------------------------------------------------------------------------------------------
# Root and debris
# ------------------------------------------------------------------------------------------------


def _root_components(paths: Sequence[np.ndarray], branch_component: Sequence[int], n_components: int,
                     outside: np.ndarray | None, component_ml: np.ndarray) -> set[int]:
    if n_components == 0:
        return set()
    if outside is None:
        return {int(np.argmax(component_ml))}
    count = np.zeros(n_components)
    for path, comp in zip(paths, branch_component, strict=True):
        count[comp] += np.count_nonzero(outside[tuple(path.T)])
    if count.max() == 0:
        return set()
    return {int(c) for c in np.nonzero(count >= TRUNK_MIN_FRACTION * count.max())[0]}


def _trunk_region(box: tuple[slice, slice, slice], shape: tuple[int, int, int], liver_mask: Any | None,
                  trunk_mask: Any | None, spacing: np.ndarray, reach_mm: float) -> np.ndarray | None:
    """Where a centerline point of the vessel ``box`` is trunk (bool on the box): within ``reach_mm`` of
    ``trunk_mask``, or outside ``liver_mask``. Only the box is made (issue 14: not two whole-grid masks);
    the distances are those of ``trunk_mask``'s own box grown by ``reach_mm``, as before."""
    box = tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, shape, strict=True))  # type: ignore[assignment]
    region = None if liver_mask is None else ~grid_mask(liver_mask, "liver_mask", shape)[box]
    if trunk_mask is None:
        return region
    trunk = grid_mask(trunk_mask, "trunk_mask", shape)
    near = np.zeros(tuple(s.stop - s.start for s in box), bool)
    extent = bbox_zyx(trunk)
    if extent is not None:
        pad = np.ceil(reach_mm / spacing).astype(int) + 1
        lo = np.maximum(np.asarray(extent[:3]) - pad, 0)
        hi = np.minimum(np.asarray(extent[3:]) + pad + 1, shape)
        blo, bhi = np.array([s.start for s in box]), np.array([s.stop for s in box])
        ilo, ihi = np.maximum(lo, blo), np.minimum(hi, bhi)
        if np.all(ihi > ilo):
            tbox = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            d = ndimage.distance_transform_edt(~trunk[tbox], sampling=spacing) <= reach_mm
            near[tuple(slice(int(a), int(b)) for a, b in zip(ilo - blo, ihi - blo, strict=True))] = \
                d[tuple(slice(int(a), int(b)) for a, b in zip(ilo - lo, ihi - lo, strict=True))]
    return near if region is None else near | region


def _shifted(point: tuple[float, float, float], lo: np.ndarray) -> tuple[float, float, float]:
    return float(point[0] + lo[0]), float(point[1] + lo[1]), float(point[2] + lo[2])


def _shifted_bridges(bridges: Sequence[Bridge], lo: np.ndarray) -> list[Bridge]:
    """The bridges with their points moved from the vessel's box to the whole grid."""
    return [replace(b, fragment_point_zyx=_shifted(b.fragment_point_zyx, lo),
                    target_point_zyx=_shifted(b.target_point_zyx, lo)) for b in bridges]


def _vessel_box(mask: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The bounding box of ``mask`` grown by two voxels (clipped to the grid) and its lower corner; the
    whole grid for an empty mask. Thinning, labelling and bridging then work on the vessel, not the scan."""
    shape = np.asarray(mask.shape)
    if not mask.any():
        return (slice(None), slice(None), slice(None)), np.zeros(3, np.int64)
    nz = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    lo = np.maximum(np.array([v[0] for v in nz]) - 2, 0)
    hi = np.minimum(np.array([v[-1] for v in nz]) + 3, shape)
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2]))), lo


def _piece_volumes(mask: np.ndarray, paths: Sequence[np.ndarray], voxel_ml: float
                   ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Mask pieces (26-connected): their labels, volumes (mL), and the piece of each branch."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    volume_ml = np.bincount(labels.ravel(), minlength=n + 1).astype(float) * voxel_ml
    volume_ml[0] = 0.0
    return labels, volume_ml, [int(labels[tuple(p[0])]) for p in paths]


# ------------------------------------------------------------------------------------------------
# The graph
# ------------------------------------------------------------------------------------------------


def _components(ends: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    nodes = sorted({n for e in ends for n in e})
    index = {n: i for i, n in enumerate(nodes)}
    uf = _UnionFind(len(nodes))
    for a, b in ends:
        uf.union(index[a], index[b])
    roots = sorted({uf.find(i) for i in range(len(nodes))})
    number = {r: i for i, r in enumerate(roots)}
    return [number[uf.find(index[a])] for a, _ in ends], len(roots)


def _extent_mm(pieces: set[int], boxes: Sequence[tuple[slice, ...] | None], spacing: np.ndarray) -> float:
    """Largest side (mm) of the bounding box of ``pieces`` (labels of :func:`_piece_volumes`)."""
    sides = [b for b in (boxes[k - 1] for k in pieces) if b is not None]
    if not sides:
        return 0.0
    lo = np.min([[s.start for s in b] for b in sides], axis=0)
    hi = np.max([[s.stop for s in b] for b in sides], axis=0)
    return float(np.max((hi - lo) * spacing))


def _tally(uf: _UnionFind, branch_component: Sequence[int], node_pieces: Sequence[set[int]], roots: set[int],
           volume_ml: np.ndarray, debris_ml: float, boxes: Sequence[tuple[slice, ...] | None], spacing: np.ndarray
           ) -> tuple[frozenset[int], int, float, float, frozenset[int]]:
    """Connected branches; debris count and mL; disconnected non-debris mL; the branches of debris."""
    rooted = {uf.find(c) for c in roots}
    connected = frozenset(i for i, c in enumerate(branch_component) if uf.find(c) in rooted)
    group_pieces: dict[int, set[int]] = {}
    for node, pieces in enumerate(node_pieces):
        group_pieces.setdefault(uf.find(node), set()).update(pieces)
    in_root = set().union(*(group_pieces[g] for g in rooted)) if rooted else set()
    groups = [(g, p) for g, p in group_pieces.items() if g not in rooted]
    groups += [(-1, {k}) for k in range(1, len(volume_ml)) if not any(k in p for p in group_pieces.values())]
    n_debris, debris, disconnected = 0, 0.0, 0.0
    debris_groups = set()
    for g, pieces in groups:
        own = pieces - in_root
        ml = float(volume_ml[sorted(own)].sum())
        if ml < debris_ml or _extent_mm(own, boxes, spacing) < DEBRIS_EXTENT_MM:
            n_debris, debris = n_debris + 1, debris + ml
            debris_groups.add(g)
        else:
            disconnected += ml
    debris_branches = frozenset(i for i, c in enumerate(branch_component) if uf.find(c) in debris_groups)
    return connected, n_debris, debris, disconnected, debris_branches


def _branches(paths: Sequence[np.ndarray], lo: np.ndarray, ends: Sequence[tuple[int, int]],
              radii: Sequence[np.ndarray], branch_component: Sequence[int], roots: set[int], outside: np.ndarray | None,
              spacing: np.ndarray) -> list[Branch]:
    """The :class:`Branch` records (paths moved from the vessel box at ``lo`` to the grid): smoothed length,
    radius, component and trunk points (``outside``: on the box)."""
    branches = []
    for i, (local, node_ids, r) in enumerate(zip(paths, ends, radii, strict=True)):
        path = local + lo
        path.flags.writeable = False
        trunk_points = None
        if outside is not None and branch_component[i] in roots and outside[tuple(local.T)].any():
            trunk_points = outside[tuple(local.T)]
            trunk_points.flags.writeable = False
        r = np.asarray(r, float)
        r.flags.writeable = False
        branches.append(Branch(i, node_ids, path, _smoothed_length_mm(path * spacing), float(r.mean()),
                               float(r.min()), branch_component[i], trunk_points, r))
    return branches


def build_vessel_graph(vessel_mask: Any, geometry: Geometry, *, liver_mask: Any | None = None,
                       trunk_mask: Any | None = None, bridge_mm: float = DEFAULT_BRIDGE_MM,
                       bridge_angle_deg: float = DEFAULT_BRIDGE_ANGLE_DEG,
                       debris_ml: float = DEFAULT_DEBRIS_ML) -> VesselGraph:
    """Centerline graph of one vessel system, rooted at its trunk, with small gaps bridged.

    Parameters
    ----------
    vessel_mask : array (z, y, x)
        The vessel system; nonzero = vessel.
    geometry : Geometry
        Its grid; ``spacing_zyx_mm`` sets all lengths, radii and volumes.
    liver_mask : array (z, y, x), optional
        Liver outline: centerline voxels outside it are the extrahepatic trunk.
    trunk_mask : array (z, y, x), optional
        A trunk structure (the IVC for hepatic veins, the portal vein for its branches): centerline voxels
        within the largest inscribed radius plus one voxel of it are trunk, as are those outside
        ``liver_mask``.
    bridge_mm : float
        Largest gap (mm) bridged, surface to surface between the masks of the two pieces, or the
        largest grid spacing when that is larger (one dropped slice); default :data:`DEFAULT_BRIDGE_MM`
        = 3 mm (a 1-3 mm segmentation gap). 0 disables bridging.
    bridge_angle_deg : float
        Largest angle (degrees) between the line across the gap and the principal axis of either piece
        near it (default :data:`DEFAULT_BRIDGE_ANGLE_DEG` = 45).
    debris_ml : float
        Pieces left without a root and smaller than this (mL of vessel) are debris (default
        :data:`DEFAULT_DEBRIS_ML` = 0.02 mL), as are those under :data:`DEBRIS_EXTENT_MM` in every direction.

    Returns
    -------
    VesselGraph
        An empty mask gives an empty graph (no branches, no root).

    Raises
    ------
    GeometryMismatchError
        A mask's shape differs from ``geometry.shape_zyx``.
    ValueError
        A parameter is out of range.
    """
    _check_parameters(bridge_mm, bridge_angle_deg, debris_ml)
    full = grid_mask(vessel_mask, "vessel_mask", geometry.shape_zyx)
    spacing = np.asarray(geometry.spacing_zyx_mm, dtype=float)
    box, lo = _vessel_box(full)          # everything below works on the vessel's bounding box
    mask = full[box]
    paths, ends = _skeleton_branches(mask, spacing)
    radii = _radii_mm(mask, spacing, paths)
    # a vein's centerline ends about its radius short of the trunk it joins
    reach_mm = max((float(r.max()) for r in radii if len(r)), default=0.0) + float(spacing.max())
    outside = _trunk_region(box, geometry.shape_zyx, liver_mask, trunk_mask, spacing, reach_mm)  # on the box
    branch_component, n_components = _components(ends)
    labels, piece_ml, branch_piece = _piece_volumes(mask, paths, geometry.voxel_volume_ml)
    component_ml = np.zeros(n_components)
    for comp, piece in {(c, p) for c, p in zip(branch_component, branch_piece, strict=True)}:
        component_ml[comp] += piece_ml[piece]
    roots = _root_components(paths, branch_component, n_components, outside, component_ml)
    # bridging nodes: the graph components, then the pieces of vessel too blob-like to thin to a branch
    node_pieces: list[set[int]] = [set() for _ in range(n_components)]
    for comp, piece in zip(branch_component, branch_piece, strict=True):
        node_pieces[comp].add(piece)
    with_branch = set(branch_piece)
    node_pieces += [{k} for k in range(1, len(piece_ml)) if k not in with_branch and piece_ml[k] >= debris_ml]
    uf = _UnionFind(len(node_pieces))
    bridges: list[Bridge] = []
    if bridge_mm > 0 and len(node_pieces) > 1:
        reach_mm = max(bridge_mm, float(spacing.max())) + 1e-6       # a dropped slice is always bridgeable
        pieces = _pieces(mask, labels, spacing, node_pieces)
        bridges = _bridge(uf, roots, _edges(pieces, roots, spacing, reach_mm, bridge_angle_deg), spacing)
    connected, n_debris, debris, disconnected, debris_branches = _tally(
        uf, branch_component, node_pieces, roots, piece_ml, debris_ml, ndimage.find_objects(labels), spacing)
    branches = _branches(paths, lo, ends, radii, branch_component, roots, outside, spacing)
    bridges = _shifted_bridges(bridges, lo)
    trunk_ids = frozenset(b.id for b in branches if b.trunk_points is not None)
    if outside is None and roots:
        trunk_ids = frozenset({max((b for b in branches if b.component in roots),
                                   key=lambda b: (b.mean_radius_mm, -b.id)).id})
    return VesselGraph(tuple(branches), len({n for e in ends for n in e}), n_components, tuple(sorted(roots)),
                       connected, tuple(bridges), n_debris, debris, disconnected, trunk_ids, debris_branches)


# ------------------------------------------------------------------------------------------------
# Territories and what a resection cuts
# ------------------------------------------------------------------------------------------------


def branch_territories(graph: VesselGraph, liver_mask: Any, geometry: Geometry) -> np.ndarray:
    """The territory of every branch: each liver voxel goes to the branch with the nearest centerline point.

    Nearest is Euclidean in mm (``geometry.spacing_zyx_mm``), over the centerline points inside the liver's
    bounding box, by one exact feature transform of those points answering the liver voxels only
    (:func:`flr.distance.nearest_feature_index`: a discrete Voronoi partition of the liver by branch; ties
    as scipy breaks them). A point shared by several paths (a junction voxel) is labelled with the lowest
    branch id.

    Parameters
    ----------
    graph : VesselGraph
        Built on ``geometry``'s grid.
    liver_mask : array (z, y, x)
        The liver outline; nonzero = liver.
    geometry : Geometry
        The grid.

    Returns
    -------
    numpy.ndarray
        int32 (z, y, x): 0 outside the liver, else 1 + the id of the branch. An empty liver gives all 0.

    Raises
    ------
    GeometryMismatchError
        ``liver_mask``'s shape differs from ``geometry.shape_zyx``.
    ValueError
        The liver is not empty but no centerline point lies in its bounding box.
    """
    liver = grid_mask(liver_mask, "liver_mask", geometry.shape_zyx)
    out = np.zeros(geometry.shape_zyx, dtype=np.int32)
    if not liver.any():
        return out
    lo = np.argwhere(liver).min(axis=0)
    hi = np.argwhere(liver).max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    seeds = np.zeros(tuple(int(n) for n in hi - lo), dtype=np.int32)
    for branch in reversed(graph.branches):               # lowest id written last: it wins a shared voxel
        p = branch.path_zyx - lo
        p = p[np.all((p >= 0) & (p < hi - lo), axis=1)]
        seeds[tuple(p.T)] = branch.id + 1
    if not seeds.any():
        raise ValueError(f"no centerline point of the graph ({len(graph.branches)} branches) lies in the liver's "
                         f"bounding box (z, y, x) {tuple(int(v) for v in lo)}..{tuple(int(v) - 1 for v in hi)}; "
                         "build the graph on the liver's grid")
    from flr.distance import nearest_feature_index

    sub_liver = liver[box]
    index = nearest_feature_index(seeds != 0, geometry.spacing_zyx_mm, within=sub_liver)
    out[box][sub_liver] = seeds.ravel()[index[sub_liver]]
    return out


def _branch_links(graph: VesselGraph) -> list[set[int]]:
    """Neighbours of every branch: branches sharing a node, and the branches a bridge joins.

    A bridge joins the branch of each of its two components nearest to its end point; a component
    without a branch (a blob too thick to thin) is a vertex of its own, after the branches.
    """
    n = len(graph.branches)
    by_component: dict[int, list[Branch]] = {}
    for b in graph.branches:
        by_component.setdefault(b.component, []).append(b)
    blob = {c: n + k for k, c in enumerate(sorted({c for br in graph.bridges
                                                    for c in (br.fragment_component, br.target_component)}
                                                   - set(by_component)))}
    links: list[set[int]] = [set() for _ in range(n + len(blob))]
    at_node: dict[int, list[int]] = {}
    for b in graph.branches:
        for node in set(b.node_ids):
            at_node.setdefault(node, []).append(b.id)
    for ids in at_node.values():
        for i in ids:
            links[i].update(j for j in ids if j != i)

    def vertex(component: int, point_zyx: tuple[float, float, float]) -> int:
        if component in blob:
            return blob[component]
        return min(by_component[component],
                   key=lambda b: float(np.min(np.sum((b.path_zyx - np.asarray(point_zyx)) ** 2, axis=1)))).id

    for br in graph.bridges:
        u = vertex(br.fragment_component, br.fragment_point_zyx)
        v = vertex(br.target_component, br.target_point_zyx)
        links[u].add(v)
        links[v].add(u)
    return links


def cut_branches(graph: VesselGraph, lost_mask: Any) -> frozenset[int]:
    """The branches lost when the parenchyma in ``lost_mask`` is removed (resected, wedged or ablated).

    A branch is cut where a point of its path (trunk points aside: the extrahepatic trunk is never cut)
    lies in ``lost_mask``. From the trunk branches (:attr:`VesselGraph.trunk_branch_ids`) the graph is
    followed through uncut branches only, from branch to branch through shared nodes and across recorded
    bridges; the connected branches it no longer reaches are lost, as are the cut ones.

    Parameters
    ----------
    graph : VesselGraph
    lost_mask : array (z, y, x)
        Nonzero = removed; on the graph's grid.

    Returns
    -------
    frozenset of int
        Ids of the lost branches (cut, or connected before and cut off now).

    Raises
    ------
    ValueError
        A path point lies outside ``lost_mask``'s grid (the graph was built on another grid).
    """
    lost = np.asarray(lost_mask).astype(bool, copy=False)
    if lost.ndim != 3:
        raise ValueError(f"lost_mask must be a (z, y, x) array, got shape {lost.shape}")
    cut = set()
    for b in graph.branches:
        if len(b.path_zyx) and (np.any(b.path_zyx >= lost.shape) or np.any(b.path_zyx < 0)):
            raise ValueError(f"branch {b.id} has points outside lost_mask's grid {lost.shape} (z, y, x); "
                             "pass a mask on the graph's grid")
        hit = lost[tuple(b.path_zyx.T)]
        if b.trunk_points is not None:
            hit = hit & ~b.trunk_points
        if hit.any():
            cut.add(b.id)
    links = _branch_links(graph)
    reached = {i for i in graph.trunk_branch_ids if i not in cut}
    todo = list(reached)
    while todo:
        for j in links[todo.pop()]:
            if j not in reached and j not in cut:
                reached.add(j)
                todo.append(j)
    return frozenset(cut | {i for i in graph.connected_branch_ids if i not in reached})


def at_risk_mask(territories: np.ndarray, lost_branch_ids: Any) -> np.ndarray:
    """The liver at risk: the territories (from :func:`branch_territories`) of the lost branches.

    Parameters
    ----------
    territories : numpy.ndarray
        int (z, y, x), 0 outside the liver, else 1 + branch id.
    lost_branch_ids : iterable of int
        For instance from :func:`cut_branches`.

    Returns
    -------
    numpy.ndarray
        bool, the shape of ``territories``.
    """
    ids = np.fromiter((int(i) + 1 for i in lost_branch_ids), dtype=np.int64)
    return np.isin(np.asarray(territories), ids)
