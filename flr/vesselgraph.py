"""Vessel centerline graphs: branches, components, the extrahepatic root, bridged gaps and debris.

The first piece of the territory model of round 2 (see ``DESIGN.md``, "Vessels (round 2)"): one vessel
system (portal vein, hepatic artery, hepatic veins or bile duct) given as a binary mask becomes a graph of
centerline branches rooted at its extrahepatic trunk. Small segmentation gaps are bridged, isolated specks
are counted as debris. Nothing here is wired into the assessment yet.

Method
    1. Centerlines: 3-D thinning of the mask (:func:`skimage.morphology.skeletonize`, Lee et al. 1994);
       the branch graph of the skeleton by :class:`skan.Skeleton` (Nunez-Iglesias et al., PeerJ 2018)
       with the grid spacing. Junction voxels that touch each other form one junction node.
    2. Branch length: the path is smoothed by a moving average over :data:`SMOOTH_POINTS` voxels (end
       points kept) before its polyline length is summed, because the raw 26-connected path of an oblique
       vessel is a staircase that is up to ~20 % longer than the vessel.
    3. Radius: a Euclidean distance transform of the mask with the grid spacing; at each centerline voxel
       the largest value in its 3x3x3 neighbourhood, because thinning leaves the centerline up to a voxel
       off the axis, where the transform is smaller than the inscribed radius.
    4. Root: the components holding extrahepatic centerline voxels (outside ``liver_mask``), or voxels
       within one voxel of ``trunk_mask`` when given; a component with fewer such voxels than
       :data:`TRUNK_MIN_FRACTION` of the largest is not a trunk. With neither mask, the component of the
       largest vessel volume is the root.
    5. Bridging: a free end of a fragment (a component without a root) is extended along its end
       direction to the mask surface, because thinning retracts a cut end by about its radius; when a
       centerline voxel or extended end of another component lies within ``bridge_mm`` of that surface
       point, inside a cone of ``bridge_angle_deg`` about the end direction, the nearest one is joined.
       This repeats until nothing more joins. Fragments still without a root and under ``debris_ml`` of
       vessel volume are debris.

Arrays are indexed ``(z, y, x)``; distances use ``geometry.spacing_zyx_mm`` (the direction matrix is
orthonormal, so index-space millimetres are patient millimetres). Points are voxel indices (z, y, x).

>>> import numpy as np
>>> from flr.image import Geometry
>>> mask = np.zeros((5, 5, 40), dtype=bool)
>>> mask[1:4, 1:4, 2:38] = True                              # a 3-voxel-thick rod along x
>>> g = build_vessel_graph(mask, Geometry(shape_zyx=(5, 5, 40), spacing_mm=(0.5, 1.0, 1.0)))
>>> g
VesselGraph(branches=1, components=1, connected=1, bridges=0, debris=0 (0.000 mL))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from flr.errors import GeometryMismatchError
from flr.image import Geometry

__all__ = [
    "DEFAULT_BRIDGE_ANGLE_DEG",
    "DEFAULT_BRIDGE_MM",
    "DEFAULT_DEBRIS_ML",
    "SMOOTH_POINTS",
    "TRUNK_MIN_FRACTION",
    "Branch",
    "Bridge",
    "VesselGraph",
    "build_vessel_graph",
]

#: A segmentation gap in a vessel is typically 1-3 mm (a stenosis, a partial-volume dropout, a missing
#: slice of 2.5 mm); plus one voxel diagonal of slack for where the ends fall on the grid.
DEFAULT_BRIDGE_MM = 5.0
#: Both parts of an interrupted vessel point at each other; 45 degrees allows for a vessel that curves
#: across the gap and for the wobble of a thinned end, and refuses neighbours that merely run alongside.
DEFAULT_BRIDGE_ANGLE_DEG = 45.0
#: 0.02 mL = 20 mm^3, a sphere of 1.7 mm radius: below any vessel worth a territory, above the 1-10 voxel
#: specks that thresholding and network outputs leave behind.
DEFAULT_DEBRIS_ML = 0.02
#: An extrahepatic piece with fewer centerline voxels than this fraction of the largest one is a stray
#: vessel outside the liver (a neighbouring vein, a leak), not a trunk.
TRUNK_MIN_FRACTION = 0.25
#: Moving-average window (centerline voxels) applied before measuring a branch's length.
SMOOTH_POINTS = 5
#: The end direction of a branch is taken over its last this-many millimetres (or all of it when shorter).
END_DIRECTION_MM = 5.0


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
    """

    id: int
    node_ids: tuple[int, int]
    path_zyx: np.ndarray = field(repr=False, compare=False)
    length_mm: float
    mean_radius_mm: float
    min_radius_mm: float
    component: int


@dataclass(frozen=True)
class Bridge:
    """A bridged gap: from a fragment's extended free end to another component's centerline.

    ``fragment_point_zyx`` is the fragment end on the mask surface, ``target_point_zyx`` the joined point
    (fractional voxel indices); ``gap_mm`` their distance; ``angle_deg`` the angle between the fragment's
    end direction and the direction to the target.
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


def _bool_mask(mask: Any, what: str, shape: tuple[int, int, int]) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise GeometryMismatchError(f"{what} has shape (z,y,x) {arr.shape}, the grid has {shape}; "
                                    "resample it onto the vessel grid first")
    return arr.astype(bool, copy=False)


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


def _junction_nodes(coords: np.ndarray, degrees: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Node id of every skeleton pixel: touching junction pixels (degree >= 3) share one id."""
    junction = np.zeros(shape, dtype=bool)
    is_junction = degrees >= 3
    junction[tuple(coords[is_junction].T)] = True
    clusters, n_clusters = ndimage.label(junction, structure=np.ones((3, 3, 3)))
    node = np.arange(len(coords)) + n_clusters
    node[is_junction] = clusters[tuple(coords[is_junction].T)] - 1
    return node


def _skeleton_branches(mask: np.ndarray, spacing_zyx: np.ndarray) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Centerline paths (voxel indices) and their end node ids; junction clusters merged."""
    import skan  # heavy (numba, pandas): imported when a graph is built
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask)
    if np.count_nonzero(skeleton) < 2:
        return [], []
    sk = skan.Skeleton(skeleton, spacing=tuple(spacing_zyx))
    coords = np.asarray(sk.coordinates, dtype=np.int64)
    node = _junction_nodes(coords, np.asarray(sk.degrees), mask.shape)
    paths, ends = [], []
    for ids in sk.paths_list():
        ids = np.asarray(ids)
        a, b = int(node[ids[0]]), int(node[ids[-1]])
        if a == b and np.all(node[ids] == a):
            continue  # a step inside one junction cluster
        paths.append(coords[ids])
        ends.append((a, b))
    return paths, ends


def _radii_mm(mask: np.ndarray, spacing_zyx: np.ndarray, paths: Sequence[np.ndarray]) -> list[np.ndarray]:
    if not paths:
        return []
    lo = np.min([p.min(axis=0) for p in paths], axis=0)
    hi = np.max([p.max(axis=0) for p in paths], axis=0)
    pad = np.ceil(15.0 / spacing_zyx).astype(int) + 2   # the distance transform sees 15 mm around
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad + 1, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    inscribed = ndimage.maximum_filter(ndimage.distance_transform_edt(mask[box], sampling=spacing_zyx), size=3)
    return [inscribed[tuple((p - lo).T)] for p in paths]


# ------------------------------------------------------------------------------------------------
# Free ends and bridging
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FreeEnd:
    branch: int
    point_mm: np.ndarray      # the centerline end
    direction: np.ndarray     # unit, pointing out of the branch
    tip_mm: np.ndarray        # extended to the mask surface


def _end_direction(path_mm: np.ndarray) -> np.ndarray | None:
    """Unit direction out of the last point of ``path_mm``, over its last :data:`END_DIRECTION_MM`."""
    back = np.linalg.norm(path_mm - path_mm[-1], axis=1)
    far = np.nonzero(back >= END_DIRECTION_MM)[0]
    start = path_mm[far[-1]] if far.size else path_mm[np.argmax(back)]
    vec = path_mm[-1] - start
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else None


def _surface_tip(mask: np.ndarray, spacing_zyx: np.ndarray, start_mm: np.ndarray, direction: np.ndarray,
                 max_mm: float) -> np.ndarray:
    """Last point inside ``mask`` on the ray from ``start_mm`` along ``direction`` (at most ``max_mm``)."""
    step = 0.25 * float(spacing_zyx.min())
    t = np.arange(0.0, max_mm + step, step)
    points = start_mm[None, :] + t[:, None] * direction[None, :]
    index = np.rint(points / spacing_zyx).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.asarray(mask.shape)), axis=1)
    inside[inside] = mask[tuple(index[inside].T)]
    outside = np.nonzero(~inside)[0]
    last = (outside[0] - 1) if outside.size else len(t) - 1
    return points[max(int(last), 0)]


def _free_ends(mask: np.ndarray, spacing_zyx: np.ndarray, paths: Sequence[np.ndarray],
               ends: Sequence[tuple[int, int]], radii: Sequence[np.ndarray]) -> list[_FreeEnd]:
    degree: dict[int, int] = {}
    for a, b in ends:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    out = []
    for i, (path, (a, b)) in enumerate(zip(paths, ends, strict=True)):
        path_mm = path * spacing_zyx
        for node, oriented in ((b, path_mm), (a, path_mm[::-1])):
            if degree[node] != 1 or len(oriented) < 2:
                continue
            direction = _end_direction(oriented)
            if direction is None:
                continue
            reach = 3.0 * float(radii[i].max()) + 2.0 * float(np.linalg.norm(spacing_zyx))
            tip = _surface_tip(mask, spacing_zyx, oriented[-1], direction, reach)
            out.append(_FreeEnd(i, oriented[-1], direction, tip))
    return out


def _best_target(end: _FreeEnd, group: int, tree: cKDTree, points: np.ndarray, point_groups: np.ndarray,
                 bridge_mm: float, cos_max: float) -> tuple[int, float, float] | None:
    """(point index, gap mm, angle deg) of the nearest admissible target of another group."""
    best: tuple[int, float, float] | None = None
    for j in tree.query_ball_point(end.tip_mm, bridge_mm):
        if point_groups[j] == group:
            continue
        vec = points[j] - end.point_mm
        norm = float(np.linalg.norm(vec))
        cos = float(vec @ end.direction) / norm if norm > 0 else 1.0
        if cos < cos_max:
            continue
        gap = float(np.linalg.norm(points[j] - end.tip_mm))
        if best is None or gap < best[1]:
            best = (j, gap, math.degrees(math.acos(min(1.0, cos))))
    return best


def _bridge(uf: _UnionFind, branch_component: Sequence[int], is_root: set[int], free_ends: Sequence[_FreeEnd],
            points: np.ndarray, point_branch: np.ndarray, spacing_zyx: np.ndarray, bridge_mm: float,
            bridge_angle_deg: float) -> list[Bridge]:
    """Join fragments to the nearest component their free ends point at, until nothing more joins."""
    if not free_ends or len(points) == 0 or bridge_mm <= 0:
        return []
    tree = cKDTree(points)
    cos_max = math.cos(math.radians(bridge_angle_deg)) - 1e-9
    point_component = np.asarray(branch_component)[point_branch]
    bridges: list[Bridge] = []
    joined = True
    while joined:
        joined = False
        groups = np.array([uf.find(int(c)) for c in point_component])
        rooted = {uf.find(c) for c in is_root}
        for end in free_ends:
            group = uf.find(branch_component[end.branch])
            if group in rooted:
                continue
            found = _best_target(end, group, tree, points, groups, bridge_mm, cos_max)
            if found is None:
                continue
            j, gap, angle = found
            target = int(point_component[j])
            uf.union(group, target)
            bridges.append(Bridge(branch_component[end.branch], target,
                                  tuple(float(v) for v in end.tip_mm / spacing_zyx),  # type: ignore[arg-type]
                                  tuple(float(v) for v in points[j] / spacing_zyx),  # type: ignore[arg-type]
                                  gap, angle))
            joined = True
            break  # groups changed: recompute them before the next join
    return bridges


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


def _trunk_region(shape: tuple[int, int, int], liver_mask: Any | None, trunk_mask: Any | None) -> np.ndarray | None:
    if trunk_mask is not None:
        trunk = _bool_mask(trunk_mask, "trunk_mask", shape)
        return ndimage.binary_dilation(trunk, structure=np.ones((3, 3, 3)))
    if liver_mask is not None:
        return ~_bool_mask(liver_mask, "liver_mask", shape)
    return None


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


def _tally(uf: _UnionFind, branch_component: Sequence[int], branch_piece: Sequence[int], roots: set[int],
           volume_ml: np.ndarray, debris_ml: float) -> tuple[frozenset[int], int, float, float]:
    """Connected branches; debris count and mL; disconnected non-debris mL."""
    rooted = {uf.find(c) for c in roots}
    connected = frozenset(i for i, c in enumerate(branch_component) if uf.find(c) in rooted)
    group_pieces: dict[int, set[int]] = {}
    for c, piece in zip(branch_component, branch_piece, strict=True):
        group_pieces.setdefault(uf.find(c), set()).add(piece)
    in_root = set().union(*(group_pieces[g] for g in rooted)) if rooted else set()
    groups = [p for g, p in group_pieces.items() if g not in rooted]
    groups += [{k} for k in range(1, len(volume_ml)) if not any(k in p for p in group_pieces.values())]
    n_debris, debris, disconnected = 0, 0.0, 0.0
    for pieces in groups:
        ml = float(volume_ml[sorted(pieces - in_root)].sum())
        if ml < debris_ml:
            n_debris, debris = n_debris + 1, debris + ml
        else:
            disconnected += ml
    return connected, n_debris, debris, disconnected


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
        within one voxel of it are the trunk. Takes precedence over ``liver_mask``.
    bridge_mm : float
        Largest gap (mm) bridged, from a fragment's end on the mask surface to another component's
        centerline (default :data:`DEFAULT_BRIDGE_MM` = 5 mm: a 1-3 mm segmentation gap plus a voxel
        diagonal). 0 disables bridging.
    bridge_angle_deg : float
        Largest angle (degrees) between a fragment's end direction and the direction to the joined
        point (default :data:`DEFAULT_BRIDGE_ANGLE_DEG` = 45).
    debris_ml : float
        Pieces left without a root and smaller than this (mL of vessel) are debris (default
        :data:`DEFAULT_DEBRIS_ML` = 0.02 mL).

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
    mask = _bool_mask(vessel_mask, "vessel_mask", geometry.shape_zyx)
    outside = _trunk_region(geometry.shape_zyx, liver_mask, trunk_mask)
    spacing = np.asarray(geometry.spacing_zyx_mm, dtype=float)
    paths, ends = _skeleton_branches(mask, spacing)
    radii = _radii_mm(mask, spacing, paths)
    branch_component, n_components = _components(ends)
    _, piece_ml, branch_piece = _piece_volumes(mask, paths, geometry.voxel_volume_ml)
    component_ml = np.zeros(n_components)
    for comp, piece in {(c, p) for c, p in zip(branch_component, branch_piece, strict=True)}:
        component_ml[comp] += piece_ml[piece]
    roots = _root_components(paths, branch_component, n_components, outside, component_ml)
    uf = _UnionFind(n_components)
    points = np.concatenate([p * spacing for p in paths]) if paths else np.zeros((0, 3))
    point_branch = np.concatenate([np.full(len(p), i) for i, p in enumerate(paths)]) if paths else np.zeros(0, int)
    free = _free_ends(mask, spacing, paths, ends, radii)
    tips = np.array([e.tip_mm for e in free]).reshape(-1, 3)
    bridges = _bridge(uf, branch_component, roots, free, np.concatenate([points, tips]),
                      np.concatenate([point_branch, [e.branch for e in free]]).astype(int), spacing,
                      bridge_mm, bridge_angle_deg)
    connected, n_debris, debris, disconnected = _tally(uf, branch_component, branch_piece, roots, piece_ml,
                                                        debris_ml)
    branches = []
    for i, (path, node_ids, r) in enumerate(zip(paths, ends, radii, strict=True)):
        path.flags.writeable = False
        branches.append(Branch(i, node_ids, path, _smoothed_length_mm(path * spacing), float(r.mean()),
                               float(r.min()), branch_component[i]))
    return VesselGraph(tuple(branches), len({n for e in ends for n in e}), n_components, tuple(sorted(roots)),
                       connected, tuple(bridges), n_debris, debris, disconnected)
