"""Vascular territories: which parenchyma each vessel branch supplies, and what a plan cuts off.

The round-2 vessel model (``DESIGN.md``, "Vessels (round 2)"; Selle et al., IEEE TMI 2002; Lang et al.,
Arch Surg 2005; Slicer-Liver's nearest-centerline territories). It replaces the per-segment threshold
rules of round 1 (kept in :mod:`flr.vessels` for comparison only).

For one vessel system (portal vein, hepatic artery, hepatic veins, bile duct) given as a mask:

1. **Graph** (:func:`flr.vesselgraph.build_vessel_graph`): centerlines, branches with radius and
   length, the root (the part outside the liver outline, or the part touching a given trunk mask:
   the IVC for the hepatic veins, the portal vein trunk for a separated portal system), gaps of at
   most 3 mm (or one slice) bridged where one piece points at the other (45 degrees), gaps of one voxel
   whatever their direction, debris (< 0.02 mL, or under 5 mm in every direction) dropped.
   The graph is taken down to its centerline **points**: consecutive path points are joined, and every
   bridge joins the nearest points of the two pieces it bridges.
2. **Territories** (:func:`prepare_system`): every liver voxel is supplied (or drained) by the nearest
   centerline point of that system inside the liver (Euclidean, grid spacing honoured): one distance
   transform with indices on the liver's bounding box per system, shared by every plan. Debris and
   extrahepatic points supply nothing (the extrahepatic trunk gives off no parenchymal branch).
3. **Cut** (:func:`cut_system`): a point is cut where it lies in parenchyma the plan removes (resected
   segments, wedges, ablation zones), unless it lies outside the liver outline or on the root (hilar and
   extrahepatic vessel is never cut by an anatomical plan), or lies **on the transection plane**: within
   its branch's radius plus one voxel (the largest spacing) of remnant parenchyma, because a surgeon
   transecting along a vein or pedicle that also serves the remnant keeps it (the middle hepatic vein
   along Cantlie's line in a right hemihepatectomy). ``keep_plane_vessels=False`` takes those vessels
   with the specimen (a right hemihepatectomy with the middle hepatic vein: the textbook congestion of
   segment IV). Then every point no longer joined to the root through uncut points is lost, and so is
   its territory: at risk. A piece that was cut off from the root before any plan (a gap too wide to
   bridge) is lost in every plan: one such piece reads as a real interruption (an occluded or invaded
   pedicle). More than :data:`MAX_INTERRUPTIONS` such pieces read as an incompletely segmented mask
   (public vessel annotations, e.g. MSD Task08, lose many connections: 9-20 pieces over 0.1 mL, 4-20 mm
   apart): each piece is then **assumed** to join the nearest part of the tree already joined to the
   root (nearest piece first, Prim's order), the joins are counted with their lengths and a warning
   says that an interruption would not be seen.
4. **Per remnant segment** (:func:`segment_risks`): its remnant volume, the volume and fraction at risk,
   and a status: ``fail`` when at least :data:`SEGMENT_FAIL_FRACTION` of it is at risk (a segment that
   keeps less than half its supply does not count towards the two contiguous segments). The functional
   remnant subtracts exactly the union of the at-risk volumes of all systems, not whole segments.

Arrays are ``(z, y, x)``; volumes in mL, distances in mm.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from flr.distance import nearest_seed_id
from flr.image import Geometry, grid_mask
from flr.vesselgraph import (
    DEFAULT_BRIDGE_ANGLE_DEG,
    DEFAULT_BRIDGE_MM,
    DEFAULT_DEBRIS_ML,
    VesselGraph,
    build_vessel_graph,
)

__all__ = [
    "SEGMENT_FAIL_FRACTION",
    "SYSTEMS",
    "SegmentRisk",
    "SystemCut",
    "SystemSpec",
    "SystemTerritories",
    "cut_system",
    "prepare_system",
    "segment_risks",
]

#: A remnant segment fails a check when at least this fraction of its remnant volume is at risk.
SEGMENT_FAIL_FRACTION = 0.5
#: Pieces of one system left unjoined to its root (after bridging, debris aside) that are read as real
#: interruptions; with more, the mask is taken as incompletely segmented and the pieces are joined to the
#: nearest part of the tree (an occlusion or tumour invasion interrupts one pedicle; a segmentation that
#: lost its connections leaves many pieces).
MAX_INTERRUPTIONS = 1


@dataclass(frozen=True)
class SystemSpec:
    """One check and the vessel system it uses; ``lost_key`` names the volume at risk in the JSON."""

    check: str
    vessel: str
    lost_key: str
    what: str


#: The checks, their default vessel system and the name of what the remnant loses.
SYSTEMS: dict[str, SystemSpec] = {
    "inflow": SystemSpec("inflow", "portal_vein", "devascularized_ml", "portal inflow"),
    "arterial_inflow": SystemSpec("arterial_inflow", "hepatic_artery", "devascularized_ml", "arterial inflow"),
    "outflow": SystemSpec("outflow", "hepatic_vein", "congested_ml", "hepatic-venous outflow"),
    "biliary_drainage": SystemSpec("biliary_drainage", "bile_duct", "undrained_ml", "biliary drainage"),
}


@dataclass(frozen=True, repr=False)
class SystemTerritories:
    """One vessel system prepared for a case: its point graph and the territory of every point.

    ``points`` (n, 3) voxel indices of the centerline points; ``branch`` the branch of each (lowest id at
    a junction); ``radius_mm`` the vessel's radius there (:func:`_point_radius_mm`); ``fixed`` points
    never cut (outside the liver outline, or root); ``root`` points the system is fed from; ``seed``
    points that supply territory; ``edges`` (m, 2) vertex pairs over ``n_vertices`` (points, then pieces
    too blob-like to thin);
    ``nearest`` int32 on ``box``: the point supplying each voxel, -1 outside the liver. ``problem`` says
    why the system cannot be judged (no root, nothing inside the liver), None when it can.
    """

    vessel: str
    geometry: Geometry
    graph: VesselGraph
    points: np.ndarray
    branch: np.ndarray
    radius_mm: np.ndarray
    fixed: np.ndarray
    root: np.ndarray
    seed: np.ndarray
    edges: np.ndarray
    n_vertices: int
    box: tuple[slice, slice, slice]
    nearest: np.ndarray = field(repr=False)
    problem: str | None = None
    assumed_joins_mm: tuple[float, ...] = ()

    def __repr__(self) -> str:
        return (f"SystemTerritories({self.vessel}: {len(self.points)} points, {len(self.graph.branches)} branches, "
                f"{int(self.root.sum())} root points, {len(self.graph.bridges)} bridges"
                + (f", problem={self.problem!r})" if self.problem else ")"))

    @property
    def intact_lost(self) -> np.ndarray:
        """Points cut off from the root before any plan (gaps too wide to bridge), bool (n,)."""
        return self._reached(np.zeros(len(self.points), bool)) == 0

    def _reached(self, cut: np.ndarray) -> np.ndarray:
        """1 for every point joined to an uncut root point through uncut points, else 0 (int8, (n,))."""
        n = len(self.points)
        alive = np.ones(self.n_vertices, bool)
        alive[:n] = ~cut
        keep = alive[self.edges[:, 0]] & alive[self.edges[:, 1]] if len(self.edges) else np.zeros(0, bool)
        e = self.edges[keep]
        adj = sparse.coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])),
                                shape=(self.n_vertices, self.n_vertices)).tocsr()
        _, comp = csgraph.connected_components(adj, directed=False)
        rooted = np.unique(comp[:n][self.root & alive[:n]])
        return np.isin(comp[:n], rooted).astype(np.int8)

    def territory_labels(self) -> np.ndarray:
        """int32 (z, y, x) on the whole grid: 0 outside the liver, else 1 + the id of the supplying branch."""
        out = np.zeros(self.geometry.shape_zyx, np.int32)
        sub = self.nearest
        out[self.box] = np.append(self.branch + 1, 0)[sub]  # -1 (no point) reads the appended 0
        return out


@dataclass(frozen=True, repr=False)
class SystemCut:
    """What one plan does to one system: ``lost`` points (n,) and the ``at_risk`` liver (z, y, x, bool)."""

    system: SystemTerritories
    cut: np.ndarray
    lost: np.ndarray
    at_risk: np.ndarray
    plane_kept: int

    def __repr__(self) -> str:
        return (f"SystemCut({self.system.vessel}: {int(self.cut.sum())} points cut, {int(self.lost.sum())} lost, "
                f"{int(self.at_risk.sum())} voxels at risk, {self.plane_kept} kept on the plane)")


@dataclass(frozen=True)
class SegmentRisk:
    """One remnant segment against one system: remnant volume, volume at risk (mL), fraction, own branch."""

    segment_code: int
    volume_ml: float
    at_risk_ml: float
    own_branch: bool
    total_vessel_ml: float
    connected_vessel_ml: float
    orphaned_vessel_ml: float
    cut_vessel_ml: float

    @property
    def at_risk_fraction(self) -> float:
        return self.at_risk_ml / self.volume_ml if self.volume_ml > 0 else 0.0


# ------------------------------------------------------------------------------------------------
# Preparing a system (once per case)
# ------------------------------------------------------------------------------------------------



def _liver_box(liver: np.ndarray) -> tuple[slice, slice, slice]:
    if not liver.any():
        return (slice(0, 0), slice(0, 0), slice(0, 0))
    idx = [np.flatnonzero(liver.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    return (slice(int(idx[0][0]), int(idx[0][-1]) + 1), slice(int(idx[1][0]), int(idx[1][-1]) + 1),
            slice(int(idx[2][0]), int(idx[2][-1]) + 1))


def _point_graph(graph: VesselGraph, shape: tuple[int, int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Unique centerline points, their branch, the point-to-point edges (bridges included), vertex count."""
    if not graph.branches:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2), np.int64), 0
    paths = [b.path_zyx for b in graph.branches]
    flat = np.concatenate([np.ravel_multi_index(tuple(p.T), shape) for p in paths])
    owner = np.concatenate([np.full(len(p), b.id) for p, b in zip(paths, graph.branches, strict=True)])
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    points = np.stack(np.unravel_index(uniq, shape), axis=1)
    branch = owner[first]
    starts = np.cumsum([0] + [len(p) for p in paths])
    edges = [np.stack([inverse[a:b - 1], inverse[a + 1:b]], axis=1) for a, b in itertools.pairwise(starts)
             if b - a > 1]
    at_node: dict[int, list[int]] = {}                  # path ends meeting at one junction node
    for b, a, z in zip(graph.branches, starts[:-1], starts[1:], strict=True):
        at_node.setdefault(b.node_ids[0], []).append(int(inverse[a]))
        at_node.setdefault(b.node_ids[1], []).append(int(inverse[z - 1]))
    edges += [np.array([[ends[0], e] for e in ends[1:]]) for ends in at_node.values() if len(ends) > 1]
    by_component: dict[int, np.ndarray] = {}
    component_of = np.array([b.component for b in graph.branches])[branch]
    blobs: dict[int, int] = {}
    n = len(points)
    bridge_edges = []
    for br in graph.bridges:
        ends = []
        for comp, pt in ((br.fragment_component, br.fragment_point_zyx), (br.target_component, br.target_point_zyx)):
            if comp not in by_component:
                by_component[comp] = np.flatnonzero(component_of == comp)
            members = by_component[comp]
            if len(members) == 0:
                ends.append(blobs.setdefault(comp, n + len(blobs)))
            else:
                d = np.sum((points[members] - np.asarray(pt)) ** 2, axis=1)
                ends.append(int(members[int(np.argmin(d))]))
        bridge_edges.append(ends)
    all_edges = np.concatenate([*edges, np.asarray(bridge_edges, np.int64).reshape(-1, 2)]) if edges or bridge_edges \
        else np.zeros((0, 2), np.int64)
    return points, branch, component_of, all_edges.astype(np.int64), n + len(blobs)


def _assumed_joins(points: np.ndarray, edges: np.ndarray, n_vertices: int, root: np.ndarray, seed: np.ndarray,
                   spacing: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """Edges joining each piece not joined to the root to the nearest joined point, and their lengths (mm),
    when more than :data:`MAX_INTERRUPTIONS` pieces are unjoined (see the module docstring)."""
    n = len(points)
    none = (np.zeros((0, 2), np.int64), ())
    if not n or not root.any():
        return none
    e = edges if len(edges) else np.zeros((0, 2), np.int64)
    adj = sparse.coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n_vertices, n_vertices))
    _, comp = csgraph.connected_components(adj.tocsr(), directed=False)
    comp = comp[:n]
    joined = np.isin(comp, np.unique(comp[root]))
    pieces = np.unique(comp[~joined & seed])
    if len(pieces) <= MAX_INTERRUPTIONS:
        return none
    mm = points * spacing
    new, lengths = [], []
    todo = {int(c) for c in pieces}
    while todo:
        tree = cKDTree(mm[joined])
        ids = np.flatnonzero(joined)
        best = None
        for c in sorted(todo):
            members = np.flatnonzero(comp == c)
            d, j = tree.query(mm[members])
            k = int(np.argmin(d))
            if best is None or d[k] < best[0]:
                best = (float(d[k]), c, int(members[k]), int(ids[j[k]]))
        assert best is not None
        dist, c, a, b = best
        new.append((a, b))
        lengths.append(round(dist, 2))
        joined |= comp == c
        todo.discard(c)
    return np.asarray(new, np.int64), tuple(lengths)


def _point_radius_mm(graph: VesselGraph, points: np.ndarray, branch: np.ndarray, shape: tuple[int, int, int]
                     ) -> np.ndarray:
    """Radius (mm) at each unique point: the largest inscribed radius of the paths through it (a junction
    is as wide as its widest vessel and more), never under its branch's mean radius."""
    radius = np.array([graph.branches[b].mean_radius_mm for b in branch]) if len(points) else np.zeros(0)
    if not len(points):
        return radius
    order = np.argsort(np.ravel_multi_index(tuple(points.T), shape))
    flat_sorted = np.ravel_multi_index(tuple(points[order].T), shape)
    for b in graph.branches:
        if b.path_radius_mm is None:
            continue
        at = order[np.searchsorted(flat_sorted, np.ravel_multi_index(tuple(b.path_zyx.T), shape))]
        np.maximum.at(radius, at, b.path_radius_mm)
    return radius


def _root_points(graph: VesselGraph, points: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Points the system is fed from: the trunk points of the trunk branches (all points of a widest-branch root)."""
    trunk = np.zeros(shape, bool)
    for i in graph.trunk_branch_ids:
        b = graph.branches[i]
        p = b.path_zyx if b.trunk_points is None else b.path_zyx[b.trunk_points]
        trunk[tuple(p.T)] = True
    return trunk[tuple(points.T)] if len(points) else np.zeros(0, bool)


def _nearest_point(seed_points: np.ndarray, seed_ids: np.ndarray, liver: np.ndarray, box: tuple[slice, slice, slice],
                   geometry: Geometry) -> np.ndarray:
    """int32 on ``box``: index (into the point arrays) of the nearest seed point of each liver voxel, -1 elsewhere.

    flr's exact feature transform (issue 14, :func:`flr.distance.nearest_seed_id`): its one int32 array
    is turned into the answer in place (4 bytes per voxel of the box in all; scipy's gave three index arrays
    of the whole box); ties as scipy breaks them (lowest x, then y, then z). A voxel holding two seeds is the
    last one's (as an assignment gives).
    """
    lo = np.array([s.start for s in box])
    sub_liver = liver[box]
    if not len(seed_points) or not sub_liver.any():
        return np.full(sub_liver.shape, -1, np.int32)
    local = seed_points - lo
    inside = np.all((local >= 0) & (local < np.asarray(sub_liver.shape)), axis=1)
    if not inside.any():
        return np.full(sub_liver.shape, -1, np.int32)
    flat = np.ravel_multi_index(tuple(local[inside].T), sub_liver.shape)
    uniq, last = np.unique(flat[::-1], return_index=True)  # the last seed written to a voxel wins
    ids = seed_ids[inside][::-1][last].astype(np.int32)
    return nearest_seed_id(uniq, ids, sub_liver.shape, geometry.spacing_zyx_mm, within=sub_liver)


def _downstream_codes(points: np.ndarray, edges: np.ndarray, n_vertices: int, root: np.ndarray,
                      code_of: np.ndarray) -> np.ndarray:
    """int64 bit set per point: the segment codes in which the branches downstream of it end.

    Downstream is away from the root along the shortest path tree (mm); the end points (degree 1, not
    root) carry the code of their segment, and every point the union of the codes below it. A point not
    joined to the root (a fragment) carries every code: its direction is unknown.
    """
    n = len(points)
    everything = np.int64(-1)
    if not n or not root.any() or np.any(code_of >= 63):
        return np.full(n, everything)
    e = edges if len(edges) else np.zeros((0, 2), np.int64)
    w = np.ones(len(e))                                   # a blob too thick to thin: one step across
    both = (e[:, 0] < n) & (e[:, 1] < n)
    w[both] = np.linalg.norm((points[e[both, 0]] - points[e[both, 1]]).astype(float), axis=1) + 1e-3
    adj = sparse.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n_vertices, n_vertices)).tocsr()
    dist, pred, _ = csgraph.dijkstra(adj, directed=False, indices=np.flatnonzero(root), min_only=True,
                                     return_predecessors=True)
    degree = np.bincount(e.ravel(), minlength=n_vertices)[:n]
    ends = (degree <= 1) & ~root & (code_of > 0)
    all_bits = np.zeros(n_vertices, np.int64)
    all_bits[:n][ends] = np.left_shift(np.int64(1), code_of[ends].astype(np.int64))
    reached = np.isfinite(dist)
    for i in np.flatnonzero(reached)[np.argsort(-dist[reached], kind="stable")]:
        if pred[i] >= 0:
            all_bits[pred[i]] |= all_bits[i]
    bits = all_bits[:n]
    bits[~reached[:n]] = everything
    return bits


def _seeded_codes(points: np.ndarray, seed: np.ndarray, segment_map: np.ndarray) -> np.ndarray:
    """The segment codes (> 0) holding a seed point: those whose voxels :func:`_within_segments` re-assigns."""
    seg_of = segment_map[tuple(points[np.flatnonzero(seed)].T)]
    return np.unique(seg_of[seg_of > 0])


def _within_segments(nearest: np.ndarray, points: np.ndarray, seed: np.ndarray, segment_map: np.ndarray,
                     liver: np.ndarray, box: tuple[slice, slice, slice], geometry: Geometry,
                     downstream: np.ndarray) -> None:
    """Re-assign, in place, each segment's voxels to the nearest seed point inside that segment whose
    branches end in it (``downstream``, from :func:`_downstream_codes`): a branch that only crosses a
    segment on its way to another supplies the other (all the segment's points when none ends in it)."""
    from scipy import ndimage

    lo = np.array([s.start for s in box])
    ids = np.flatnonzero(seed)
    seg_of = segment_map[tuple(points[ids].T)]
    liver_codes = np.where(liver[box], segment_map[box], 0)  # the segment codes of the box's liver voxels
    extents = ndimage.find_objects(liver_codes)  # each segment's box in one pass (no per-segment masks)
    for code in _seeded_codes(points, seed, segment_map):
        own = ids[seg_of == code]
        ending = own[(downstream[own] & np.left_shift(np.int64(1), np.int64(code))) != 0] if code < 63 else own
        own = ending if len(ending) else own
        extent = extents[int(code) - 1] if int(code) <= len(extents) else None
        if extent is None:
            continue
        rlo = np.minimum([e.start for e in extent], points[own].min(axis=0) - lo)
        rhi = np.maximum([e.stop - 1 for e in extent], points[own].max(axis=0) - lo) + 1
        sl = tuple(slice(int(a), int(b)) for a, b in zip(rlo, rhi, strict=True))
        shape = (int(rhi[0] - rlo[0]), int(rhi[1] - rlo[1]), int(rhi[2] - rlo[2]))
        flat = np.ravel_multi_index(tuple((points[own] - lo - rlo).T), shape)  # distinct: points are unique
        r = liver_codes[sl] == code
        np.copyto(nearest[sl], nearest_seed_id(flat, own, shape, geometry.spacing_zyx_mm, within=r), where=r)


def prepare_system(vessel_mask: Any, geometry: Geometry, liver_mask: Any, *, outline_mask: Any | None = None,
                   trunk_mask: Any | None = None, vessel: str = "vessel", bridge_mm: float = DEFAULT_BRIDGE_MM,
                   bridge_angle_deg: float = DEFAULT_BRIDGE_ANGLE_DEG, debris_ml: float = DEFAULT_DEBRIS_ML,
                   segment_map: np.ndarray | None = None) -> SystemTerritories:
    """Graph and territories of one vessel system, for every plan on this case.

    Parameters
    ----------
    vessel_mask : array (z, y, x)
        The system (nonzero = vessel).
    geometry : Geometry
        The grid of every mask.
    liver_mask : array (z, y, x)
        The liver whose voxels get territories.
    outline_mask : array (z, y, x), optional
        The liver outline that decides intra- from extrahepatic vessel (default ``liver_mask``).
    trunk_mask : array (z, y, x), optional
        A trunk structure the system is fed from or drains into (IVC, portal trunk): centerline points
        within the vessel's largest radius plus one voxel of it are the root, as is the extrahepatic part.
    vessel : str
        Name used in messages.
    bridge_mm, bridge_angle_deg, debris_ml
        Gap bridging and debris (see :func:`flr.vesselgraph.build_vessel_graph`).
    segment_map : array (z, y, x) of segment codes, optional
        Glissonean systems (portal vein, hepatic artery, bile duct): Couinaud segments are by definition
        the territories of their pedicles, so a voxel of a segment through which the system runs is
        supplied by the nearest point *inside that segment* of a branch that ends in it (a pedicle that
        only crosses the segment on its way to the next one does not supply it); a segment without a
        point of its own takes the nearest point anywhere. Leave it out for the hepatic veins, which run
        between segments and drain both sides.
    """
    shape = geometry.shape_zyx
    mask = grid_mask(vessel_mask, f"{vessel} mask", shape)
    liver = grid_mask(liver_mask, "liver mask", shape)
    outline = liver if outline_mask is None else grid_mask(outline_mask, "liver outline", shape)
    graph = build_vessel_graph(mask, geometry, liver_mask=outline, trunk_mask=trunk_mask, bridge_mm=bridge_mm,
                               bridge_angle_deg=bridge_angle_deg, debris_ml=debris_ml)
    points, branch, _, edges, n_vertices = _point_graph(graph, shape)
    root = _root_points(graph, points, shape)
    inside = outline[tuple(points.T)] if len(points) else np.zeros(0, bool)
    fixed = root | ~inside
    debris = np.isin(branch, sorted(graph.debris_branch_ids))
    # extrahepatic points supply the parenchyma next to them too (the short veins at the IVC, the pedicles
    # at the hilar plate); they are never cut, so that parenchyma is never at risk
    seed = ~debris
    in_liver = liver[tuple(points.T)] if len(points) else np.zeros(0, bool)
    box = _liver_box(liver)
    radius = _point_radius_mm(graph, points, branch, shape)
    problem = None
    if not mask.any():
        problem = f"the {vessel} mask is empty"
    elif not root.any():
        problem = (f"no trunk for the {vessel}: no part of it lies outside the liver outline"
                   + (" or touches its trunk mask" if trunk_mask is not None else "")
                   + ", so nothing says where it is fed from")
    elif not (seed & in_liver).any():
        problem = f"no {vessel} centerline lies inside the liver"
    joins, joins_mm = _assumed_joins(points, edges, n_vertices, root, seed, np.asarray(geometry.spacing_zyx_mm))
    edges = np.concatenate([edges, joins]) if len(joins) else edges
    glissonean = segment_map is not None and seed.any()
    seg = np.asarray(segment_map) if glissonean else None
    # the voxels of a segment holding seed points are all re-assigned inside that segment (_within_segments):
    # the liver-wide search answers the others only
    elsewhere = liver if seg is None else liver & ~np.isin(seg, _seeded_codes(points, seed, seg))
    nearest = _nearest_point(points[seed], np.flatnonzero(seed).astype(np.int32), elsewhere, box, geometry)
    if seg is not None:
        code_of = seg[tuple(points.T)].astype(np.int64)
        _within_segments(nearest, points, seed, seg, liver, box, geometry,
                         _downstream_codes(points, edges, n_vertices, root, code_of))
    return SystemTerritories(vessel, geometry, graph, points, branch, radius, fixed, root, seed, edges, n_vertices,
                             box, nearest, problem, joins_mm)


# ------------------------------------------------------------------------------------------------
# What a plan cuts
# ------------------------------------------------------------------------------------------------


def _on_plane(system: SystemTerritories, candidates: np.ndarray, remnant: np.ndarray) -> np.ndarray:
    """Which candidate points lie within their radius + one voxel of remnant parenchyma (bool per candidate)."""
    spacing = np.asarray(system.geometry.spacing_zyx_mm, float)
    shape = np.asarray(remnant.shape)
    out = np.zeros(len(candidates), bool)
    for k, i in enumerate(candidates):
        reach = float(system.radius_mm[i]) + float(spacing.max())
        h = np.ceil(reach / spacing).astype(int)
        p = system.points[i]
        lo, hi = np.maximum(p - h, 0), np.minimum(p + h + 1, shape)
        cube = remnant[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if not cube.any():
            continue
        where = np.argwhere(cube) + lo - p
        out[k] = bool(np.min(np.sum((where * spacing) ** 2, axis=1)) <= reach * reach)
    return out


def cut_system(system: SystemTerritories, lost_mask: Any, remnant_mask: Any, *, keep_plane_vessels: bool = True
               ) -> SystemCut:
    """What removing ``lost_mask`` (resected, wedged and ablated parenchyma) does to ``system``.

    ``remnant_mask`` is the parenchyma left (for the transection-plane rule). Returns the cut points,
    the lost points (cut, or no longer joined to the root) and the liver at risk (their territories).
    """
    shape = system.geometry.shape_zyx
    lost_region = grid_mask(lost_mask, "lost mask", shape)
    n = len(system.points)
    cut = np.zeros(n, bool)
    kept = 0
    if n:
        cut = lost_region[tuple(system.points.T)] & ~system.fixed
        if keep_plane_vessels and cut.any():
            remnant = grid_mask(remnant_mask, "remnant mask", shape)
            cand = np.flatnonzero(cut)
            on = _on_plane(system, cand, remnant)
            cut[cand[on]] = False
            kept = int(on.sum())
    lost = system._reached(cut) == 0 if n else np.zeros(0, bool)
    at_risk = np.zeros(shape, bool)
    sub = system.nearest
    if n and sub.size:
        # one gather: -1 (no supplying point, outside the liver) reads the appended False
        at_risk[system.box] = np.append(lost, False)[sub]
    return SystemCut(system, cut, lost, at_risk, kept)


def segment_risks(cut: SystemCut, territory: np.ndarray, remnant: np.ndarray, vessel_mask: np.ndarray,
                  lost_region: np.ndarray, codes: Sequence[int]) -> dict[int, SegmentRisk]:
    """Per remnant segment code: remnant volume and volume at risk (mL), own branch, vessel volumes (mL).

    The vessel volumes keep round 1's keys: ``total`` is the system's vessel in the segment's territory,
    ``cut`` the part in removed parenchyma, ``orphaned`` the rest whose supplying point is lost,
    ``connected`` what remains.
    """
    from flr.kernels import value_counts

    s = cut.system
    g = s.geometry
    vv = g.voxel_volume_ml
    box = s.box
    terr = np.asarray(territory)[box]
    rem = np.asarray(remnant)[box]
    risk = cut.at_risk[box]
    top = max([*codes, 0]) + 1
    # one counting pass over (territory code, remnant, at risk, vessel, lost) packed into one small code
    dtype = np.uint8 if (top + 1) << 4 <= 256 else np.uint16  # a byte while the codes are below 15
    key = np.clip(terr, 0, top).astype(dtype)
    key <<= 4
    for bit, part in enumerate((rem, risk, vessel_mask[box], lost_region[box])):
        key |= np.asarray(part, bool).view(np.uint8) << np.uint8(bit)
    keys, counts = value_counts(key)  # counts alone: the word path whatever the box's width
    n = np.zeros(((top + 1) << 4), np.int64)
    n[keys] = counts
    n = n.reshape(top + 1, 2, 2, 2, 2)  # [code, lost, vessel, risk, remnant]
    volume = n[:, :, :, :, 1].sum(axis=(1, 2, 3)) * vv
    at_risk = n[:, :, :, 1, 1].sum(axis=(1, 2)) * vv
    total = n[:, :, 1].sum(axis=(1, 2, 3)) * vv
    total[0] = 0.0  # vessel outside every territory
    cut_v = n[:, 1, 1].sum(axis=(1, 2)) * vv
    orphan = n[:, 0, 1, 1].sum(axis=1) * vv
    own = np.zeros(top + 1, bool)
    if len(s.points):
        sp = s.points[s.seed]
        seg_at = np.asarray(territory)[tuple(sp.T)]
        own[np.unique(np.clip(seg_at, 0, top))] = True
    return {c: SegmentRisk(c, float(volume[c]), float(at_risk[c]), bool(own[c]), float(total[c]),
                           float(total[c] - cut_v[c] - orphan[c]), float(orphan[c]), float(cut_v[c]))
            for c in codes}


def describe_fraction(fraction: float) -> str:
    """``0.4321`` -> ``"43.2 %"``."""
    return f"{100.0 * fraction:.1f} %"


def union_ml(masks: Mapping[str, np.ndarray], within: np.ndarray, geometry: Geometry) -> float:
    """Volume (mL) of the union of ``masks`` inside ``within``."""
    if not masks:
        return 0.0
    u = np.zeros(geometry.shape_zyx, bool)
    for m in masks.values():
        u |= m
    return float(np.count_nonzero(u & within)) * geometry.voxel_volume_ml

