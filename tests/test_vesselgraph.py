"""Tests of flr.vesselgraph against analytic tubes (capsules: their centerline is their axis segment)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from flr.errors import GeometryMismatchError
from flr.image import Geometry
from flr.phantom import cylinder_mask
from flr.vesselgraph import at_risk_mask, branch_territories, build_vessel_graph, cut_branches
from tests.helpers import phantom

SPACING_MM = (0.7, 0.8, 1.1)          # (x, y, z): anisotropic
VOXEL_DIAG_MM = math.sqrt(sum(s * s for s in SPACING_MM))
HALF_VOXEL_MM = 0.5 * max(SPACING_MM)


def _rotation(z_deg: float, x_deg: float) -> np.ndarray:
    cz, sz = math.cos(math.radians(z_deg)), math.sin(math.radians(z_deg))
    cx, sx = math.cos(math.radians(x_deg)), math.sin(math.radians(x_deg))
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return rz @ rx


def _grid(size_mm: float = 90.0) -> Geometry:
    """Oblique anisotropic grid centred on the LPS origin."""
    n = [int(size_mm / s) for s in SPACING_MM]
    rot = _rotation(25.0, 12.0)
    origin = -rot @ (np.asarray(n) * np.asarray(SPACING_MM) / 2.0)
    return Geometry(shape_zyx=(n[2], n[1], n[0]), spacing_mm=SPACING_MM, origin_mm=tuple(origin),
                    direction=tuple(rot.ravel()))


def _lps(g: Geometry) -> np.ndarray:
    """LPS mm (x, y, z) of every voxel centre, shape (z, y, x, 3)."""
    zz, yy, xx = np.indices(g.shape_zyx)
    idx = np.stack([xx, yy, zz], axis=-1).astype(float)
    return idx @ g.affine_lps[:3, :3].T + np.asarray(g.origin_mm)


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


JUNCTION = np.array([0.0, 0.0, 0.0])
TRUNK_END = JUNCTION + 35.0 * _unit(-1.0, -0.3, -0.8)
LEFT_END = JUNCTION + 30.0 * _unit(1.0, 0.6, 0.6)
RIGHT_END = JUNCTION + 30.0 * _unit(0.2, -0.9, 0.7)


def _y_tree(g: Geometry) -> np.ndarray:
    return (cylinder_mask(g, TRUNK_END, JUNCTION, 3.0, caps="round")
            | cylinder_mask(g, JUNCTION, LEFT_END, 2.5, caps="round")
            | cylinder_mask(g, JUNCTION, RIGHT_END, 2.5, caps="round"))


def _cut(g: Geometry, mask: np.ndarray, p0: np.ndarray, p1: np.ndarray, at_mm: float, gap_mm: float) -> np.ndarray:
    """Remove a slab ``gap_mm`` thick, normal to p0-p1, starting ``at_mm`` from p0."""
    u = _unit(*(p1 - p0))
    t = (_lps(g) - p0) @ u
    return mask & ~((t >= at_mm) & (t < at_mm + gap_mm))


def test_straight_capsule_length_and_radius():
    g = _grid()
    p0, p1 = np.array([-20.0, -15.0, -10.0]), np.array([-20.0, -15.0, -10.0]) + 60.0 * _unit(1.0, 0.8, 0.5)
    graph = build_vessel_graph(cylinder_mask(g, p0, p1, 3.0, caps="round"), g)
    assert len(graph.branches) == 1
    (b,) = graph.branches
    # each thinned end stops within half a voxel diagonal of its cap centre
    assert abs(b.length_mm - 60.0) <= VOXEL_DIAG_MM
    assert abs(b.mean_radius_mm - 3.0) <= HALF_VOXEL_MM
    assert graph.connected_branch_ids == {0}
    assert "array" not in repr(graph) and len(repr(graph)) < 120


def test_y_tree_has_three_branches_and_one_junction():
    g = _grid()
    graph = build_vessel_graph(_y_tree(g), g)
    assert len(graph.branches) == 3 and graph.n_nodes == 4 and graph.n_components == 1
    nodes = [n for b in graph.branches for n in b.node_ids]
    assert sum(nodes.count(n) == 3 for n in set(nodes)) == 1
    lengths = sorted(b.length_mm for b in graph.branches)
    # the junction of the thinned tree lies within about a vessel radius of the analytic one
    for got, want in zip(lengths, [30.0, 30.0, 35.0], strict=True):
        assert abs(got - want) <= 3.0 + VOXEL_DIAG_MM
    summary = graph.to_dict()
    assert summary["branches"] == 3 and summary["bridges"] == [] and summary["debris_count"] == 0


def test_gap_is_bridged_and_recorded():
    g = _grid()
    mask = _cut(g, _y_tree(g), JUNCTION, LEFT_END, 15.0, 2.0)
    plain = build_vessel_graph(mask, g, bridge_mm=0.0)
    assert plain.n_components == 2 and len(plain.connected_branch_ids) < len(plain.branches)
    bridged = build_vessel_graph(mask, g)
    assert len(bridged.connected_branch_ids) == len(bridged.branches)
    (bridge,) = bridged.bridges
    assert abs(bridge.gap_mm - 2.0) <= VOXEL_DIAG_MM
    assert bridge.angle_deg <= 45.0


def test_wide_gap_is_not_bridged():
    g = _grid()
    graph = build_vessel_graph(_cut(g, _y_tree(g), JUNCTION, LEFT_END, 10.0, 15.0), g)
    assert graph.bridges == () and len(graph.connected_branch_ids) < len(graph.branches)
    assert graph.disconnected_ml > 0.02


@pytest.mark.parametrize(("direction", "bridged"), [((0.0, 1.0, 0.0), False), ((1.0, 0.0, 0.0), True)])
def test_fragment_must_point_at_the_vessel(direction, bridged):
    g = _grid()
    root = cylinder_mask(g, (0.0, 0.0, -30.0), (0.0, 0.0, 30.0), 1.5, caps="round")
    end = np.array([4.0, 0.0, 0.0])       # 4 mm from the root's centerline
    fragment = cylinder_mask(g, end, end + 15.0 * np.asarray(direction), 1.0)
    graph = build_vessel_graph(root | fragment, g)
    assert graph.n_components == 2
    assert (len(graph.bridges) == 1) is bridged
    assert (len(graph.connected_branch_ids) == len(graph.branches)) is bridged


def test_specks_are_debris():
    g = _grid()
    mask = _y_tree(g)
    specks = np.zeros_like(mask)
    for k in range(3):
        specks[5 + 10 * k, 5, 5:7] = True               # 2-voxel specks, far from the tree
    mask |= specks
    graph = build_vessel_graph(mask, g)
    assert graph.debris_count == 3
    assert graph.debris_ml == pytest.approx(3 * 2 * g.voxel_volume_ml)
    connected = [graph.branches[i] for i in graph.connected_branch_ids]
    assert len(connected) == 3 and not any(specks[tuple(b.path_zyx.T)].any() for b in connected)


def test_root_from_liver_mask_and_from_trunk_mask():
    g = _grid()
    tree = _y_tree(g)
    other = cylinder_mask(g, (25.0, -30.0, -30.0), (25.0, -30.0, 10.0), 2.5, caps="round")
    liver = np.linalg.norm(_lps(g) - TRUNK_END, axis=-1) > 8.0       # all but the trunk's end
    by_liver = build_vessel_graph(tree | other, g, liver_mask=liver)
    assert by_liver.n_components == 2 and len(by_liver.root_components) == 1
    assert len(by_liver.connected_branch_ids) == 3
    trunk = cylinder_mask(g, (25.0, -30.0, -40.0), (25.0, -30.0, -29.0), 4.0)   # holds the end
    by_trunk = build_vessel_graph(tree | other, g, trunk_mask=trunk)
    assert len(by_trunk.connected_branch_ids) == 1
    (b,) = [by_trunk.branches[i] for i in by_trunk.connected_branch_ids]
    assert other[tuple(b.path_zyx.T)].all()           # the branch of the vessel touching the trunk


@pytest.mark.parametrize("spacing_mm", [(1.5, 1.5, 2.5), (0.5, 0.5, 0.6)])
def test_a_wide_vein_joining_its_trunk_is_rooted_on_fine_grids(spacing_mm):
    """A 6 mm-radius vein that ends flat on the wall of a trunk (the IVC): thinning ends its centerline about
    its radius short of the wall, 10-12 voxels on a 0.5 mm grid; the vein is still the trunk's."""
    g = Geometry(shape_zyx=tuple(int(60 / s) for s in spacing_mm[::-1]), spacing_mm=spacing_mm)
    lps = _lps(g)
    trunk = np.linalg.norm(lps[..., :2] - np.array([10.0, 30.0]), axis=-1) <= 9.0       # vertical, r 9 mm
    vein = cylinder_mask(g, (10.0, 30.0, 30.0), (50.0, 30.0, 30.0), 6.0, caps="flat") & ~trunk
    graph = build_vessel_graph(vein, g, trunk_mask=trunk)
    assert graph.root_components and len(graph.connected_branch_ids) == len(graph.branches) >= 1
    far = build_vessel_graph(vein & (lps[..., 0] > 30.0), g, trunk_mask=trunk)      # 11 mm from the wall
    assert not far.root_components


@pytest.mark.parametrize(("kwargs", "match"), [({"bridge_mm": -1.0}, "bridge_mm"),
                                               ({"bridge_angle_deg": 200.0}, "bridge_angle_deg"),
                                               ({"debris_ml": float("nan")}, "debris_ml")])
def test_bad_parameters(kwargs, match):
    g = Geometry(shape_zyx=(4, 4, 4))
    with pytest.raises(ValueError, match=match):
        build_vessel_graph(np.zeros((4, 4, 4), bool), g, **kwargs)


def test_shape_mismatch_and_empty_mask():
    g = Geometry(shape_zyx=(4, 4, 4))
    with pytest.raises(GeometryMismatchError, match="liver_mask"):
        build_vessel_graph(np.zeros((4, 4, 4), bool), g, liver_mask=np.ones((4, 4, 5), bool))
    empty = build_vessel_graph(np.zeros((4, 4, 4), bool), g)
    assert empty.branches == () and empty.root_components == () and empty.to_dict()["total_length_mm"] == 0


def _portal():
    p = phantom(0)
    return p.labels.array == 10, p.liver.array.astype(bool), p.labels.geometry


def test_phantom_portal_tree_is_one_rooted_component():
    portal, liver, g = _portal()
    graph = build_vessel_graph(portal, g, liver_mask=liver)
    # 14 edges: trunk, right, left+umbilical, caudate, right anterior/posterior, segments 2-8 (two for IV)
    assert len(graph.branches) == 14 and graph.n_components == 1 and graph.bridges == ()
    assert len(graph.connected_branch_ids) == 14 and graph.debris_count == 0


def test_phantom_dropped_slices_are_bridged_where_the_pieces_point_at_each_other():
    portal, liver, g = _portal()
    fragmented = portal.copy()
    fragmented[::8] = False                      # every 8th axial slice (2.5 mm) lost
    plain = build_vessel_graph(fragmented, g, liver_mask=liver, bridge_mm=0.0)
    bridged = build_vessel_graph(fragmented, g, liver_mask=liver)
    assert plain.bridges == () and len(bridged.bridges) >= 4
    assert all(b.gap_mm <= 3.0 and b.angle_deg <= 45.0 for b in bridged.bridges)
    assert bridged.disconnected_ml <= plain.disconnected_ml


def test_phantom_dropped_slices_reconnect_everything():
    portal, liver, g = _portal()
    intact = build_vessel_graph(portal, g, liver_mask=liver)
    fragmented = portal.copy()
    fragmented[::8] = False                      # the 7 mm trunk becomes 17.5 mm slabs and 5 mm disks
    bridged = build_vessel_graph(fragmented, g, liver_mask=liver)
    assert len(intact.connected_branch_ids) == len(intact.branches) == 14
    # every branch is connected again; the cuts split some of the 14 into more branches
    assert len(bridged.connected_branch_ids) == len(bridged.branches) >= 14
    assert bridged.disconnected_ml == 0.0
    # 15 here: one per piece of vessel over 0.02 mL bar the root's; each bridge joins two groups, so the
    # count is that many exactly when everything reconnects, and the range allows for other thinnings
    assert 12 <= len(bridged.bridges) <= 18
    # the dropped slice is 2.5 mm thick, and surface gaps between voxel boxes measure it exactly
    assert all(b.gap_mm == pytest.approx(2.5) and b.angle_deg <= 45.0 for b in bridged.bridges)


# ------------------------------------------------------------------------------------------------
# Territories and cuts
# ------------------------------------------------------------------------------------------------


def _segment_distance_mm(points: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    d = p1 - p0
    t = np.clip((points - p0) @ d / (d @ d), 0.0, 1.0)
    return np.linalg.norm(points - (p0 + t[..., None] * d), axis=-1)


def _y_tree_in_liver():
    """The Y tree, and a liver: the grid less a ball of 8 mm around the trunk's end (the extrahepatic root)."""
    g = _grid()
    lps = _lps(g)
    liver = np.linalg.norm(lps - TRUNK_END, axis=-1) > 8.0
    graph = build_vessel_graph(_y_tree(g), g, liver_mask=liver)
    assert len(graph.branches) == 3 and len(graph.trunk_branch_ids) == 1
    # which branch is which: the analytic segment its path lies along
    segments = {"trunk": (TRUNK_END, JUNCTION), "left": (JUNCTION, LEFT_END), "right": (JUNCTION, RIGHT_END)}
    ids = {}
    for name, (p0, p1) in segments.items():
        ids[name] = min(graph.branches, key=lambda b: float(np.median(
            _segment_distance_mm(lps[tuple(b.path_zyx.T)], p0, p1)))).id
    assert sorted(ids.values()) == [0, 1, 2] and graph.trunk_branch_ids == {ids["trunk"]}
    return g, lps, liver, graph, segments, ids


def _ball(lps: np.ndarray, centre: np.ndarray, radius_mm: float) -> np.ndarray:
    return np.linalg.norm(lps - centre, axis=-1) <= radius_mm


def test_territories_are_the_voronoi_regions_of_the_branches():
    g, lps, liver, graph, segments, ids = _y_tree_in_liver()
    territories = branch_territories(graph, liver, g)
    assert territories.dtype == np.int32 and territories.shape == g.shape_zyx
    assert np.array_equal(territories > 0, liver)               # together exactly the liver
    assert set(np.unique(territories)) == {0, 1, 2, 3}
    # analytic Voronoi regions of the three axis segments; where the nearest segment is nearer than the
    # next by a clear margin the territory must agree. The margin covers the thinned centerline's offset
    # from the axis (<= half a voxel diagonal on each side) and its junction, within a radius (3 mm) of
    # the analytic one.
    names = list(segments)
    dist = np.stack([_segment_distance_mm(lps, *segments[n]) for n in names], axis=-1)
    order = np.sort(dist, axis=-1)
    clear = liver & (order[..., 1] - order[..., 0] > 3.0 + VOXEL_DIAG_MM)
    want = np.array([ids[n] + 1 for n in names])[np.argmin(dist, axis=-1)]
    assert clear.mean() > 0.5                                  # 63 % of the liver here
    assert np.array_equal(territories[clear], want[clear])
    # a few voxels by hand: beyond each free end, and far along the trunk's side
    for name, point in (("left", LEFT_END * 1.3), ("right", RIGHT_END * 1.3), ("trunk", TRUNK_END * 0.6)):
        zyx = np.unravel_index(np.argmin(np.linalg.norm(lps - point, axis=-1)), g.shape_zyx)
        assert territories[zyx] == ids[name] + 1, name


def test_cutting_a_distal_branch_loses_it_and_its_territory_only():
    g, lps, liver, graph, _, ids = _y_tree_in_liver()
    territories = branch_territories(graph, liver, g)
    lost = cut_branches(graph, _ball(lps, 0.5 * LEFT_END, 4.0) & liver)
    assert lost == {ids["left"]}
    risk = at_risk_mask(territories, lost)
    assert risk.dtype == bool and np.array_equal(risk, territories == ids["left"] + 1)
    assert cut_branches(graph, np.zeros(g.shape_zyx, bool)) == frozenset()


def test_cutting_the_stem_near_the_root_loses_everything():
    g, lps, liver, graph, _, _ = _y_tree_in_liver()
    near_root = TRUNK_END + 12.0 * _unit(*(JUNCTION - TRUNK_END))        # inside the liver, 4 mm past its edge
    lost = cut_branches(graph, _ball(lps, near_root, 3.0) & liver)
    assert lost == {0, 1, 2}
    assert np.array_equal(at_risk_mask(branch_territories(graph, liver, g), lost), liver)


def test_extrahepatic_trunk_is_never_cut():
    _, _, liver, graph, _, _ = _y_tree_in_liver()
    assert cut_branches(graph, ~liver) == frozenset()              # the ball around the trunk's end


def test_cut_follows_bridges():
    g = _grid()
    lps = _lps(g)
    liver = np.linalg.norm(lps - TRUNK_END, axis=-1) > 8.0
    graph = build_vessel_graph(_cut(g, _y_tree(g), JUNCTION, LEFT_END, 15.0, 2.0), g, liver_mask=liver)
    assert len(graph.bridges) == 1 and len(graph.connected_branch_ids) == len(graph.branches)
    assert cut_branches(graph, np.zeros(g.shape_zyx, bool)) == frozenset()
    # cutting the left branch before the gap loses the bridged piece beyond it too
    (beyond,) = [b.id for b in graph.branches if b.component != graph.root_components[0]]
    lost = cut_branches(graph, _ball(lps, 0.25 * LEFT_END, 3.0))
    assert beyond in lost and len(lost) == 2


def test_territory_bad_input():
    g = Geometry(shape_zyx=(4, 4, 4))
    empty = build_vessel_graph(np.zeros((4, 4, 4), bool), g)
    with pytest.raises(GeometryMismatchError, match="liver_mask"):
        branch_territories(empty, np.ones((4, 4, 5), bool), g)
    with pytest.raises(ValueError, match="no centerline point"):
        branch_territories(empty, np.ones((4, 4, 4), bool), g)
    assert not branch_territories(empty, np.zeros((4, 4, 4), bool), g).any()


def test_phantom_cut_at_segment_iii_puts_segment_iii_at_risk():
    p = phantom(0)
    portal, liver, g = _portal()
    graph = build_vessel_graph(portal, g, liver_mask=liver)
    labels = p.labels.array
    # the segment-III branch: the one whose surrounding parenchyma (3 voxels around its path) is most
    # segment III
    def seg3_share(path: np.ndarray) -> float:
        near = np.zeros(g.shape_zyx, bool)
        near[tuple(path.T)] = True
        near = ndimage.binary_dilation(near, iterations=3) & (labels >= 1) & (labels <= 8)
        return float((labels[near] == 3).mean()) if near.any() else 0.0
    branch = max(graph.branches, key=lambda b: seg3_share(b.path_zyx))
    assert seg3_share(branch.path_zyx) > 0.5
    territories = branch_territories(graph, liver, g)
    # cut the branch inside segment III: a 3 mm ball at its middle path point
    zz, yy, xx = np.indices(g.shape_zyx)
    spacing = np.asarray(g.spacing_zyx_mm)
    idx_mm = np.stack([zz, yy, xx], axis=-1) * spacing
    entry = branch.path_zyx[len(branch.path_zyx) // 2]
    lost = cut_branches(graph, np.linalg.norm(idx_mm - entry * spacing, axis=-1) <= 3.0)
    assert branch.id in lost and len(lost) < len(graph.branches)
    risk = at_risk_mask(territories, lost)
    share = float((labels[risk] == 3).mean())
    # measured: 1 branch lost, 86.9 mL at risk of segment III's 149.5 mL, 96.3 % of it in segment III (the
    # rest is neighbouring parenchyma nearer the branch than any other, e.g. beyond the segment's face)
    assert share > 0.8


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 5, 7), (2, 3, 3), (9, 8, 7), (20, 21, 22)])
@pytest.mark.parametrize("density", [0.3, 0.9, 1.0])
def test_face_ring_and_surface_equal_scipy_morphology(shape, density):
    """The shifted-OR/AND ring and surface of the vessel box are scipy's cross dilation / erosion (border 0)."""
    from flr.vesselgraph import _face_ring, _surface

    mask = np.random.default_rng(len(shape) + shape[0]).random(shape) < density
    cross = ndimage.generate_binary_structure(3, 1)
    np.testing.assert_array_equal(_face_ring(mask), ndimage.binary_dilation(mask, structure=cross) & ~mask)
    np.testing.assert_array_equal(_surface(mask), mask & ~ndimage.binary_erosion(mask, structure=cross))


def test_trunk_region_on_the_box_equals_the_whole_grid_crop():
    """The trunk region made on the vessel box only equals the whole-grid region cropped to the box,
    also where the trunk lies partly or wholly outside the box (anisotropic spacing)."""
    from flr.vesselgraph import _trunk_region

    shape, spacing = (30, 40, 50), np.array([2.5, 0.8, 0.7])
    rng = np.random.default_rng(3)
    liver = np.zeros(shape, bool)
    liver[5:25, 8:35, 10:45] = True
    for trunk_box in [(slice(10, 14), slice(2, 6), slice(40, 49)), (slice(0, 3), slice(0, 4), slice(0, 5))]:
        trunk = np.zeros(shape, bool)
        trunk[trunk_box] = rng.random(trunk[trunk_box].shape) < 0.7
        reach = 4.0
        whole = ndimage.distance_transform_edt(~trunk, sampling=spacing) <= reach
        whole |= ~liver
        for box in [(slice(6, 20), slice(10, 30), slice(12, 40)), (slice(None), slice(None), slice(None))]:
            got = _trunk_region(box, shape, liver, trunk, spacing, reach)
            np.testing.assert_array_equal(got, whole[box])
        assert _trunk_region(box, shape, None, None, spacing, reach) is None


def _junction_nodes_by_labelling(coords, degrees, shape):
    """The reference: label the junction pixels on the whole box (scipy), as before issue 14."""
    from scipy import ndimage

    junction = np.zeros(shape, dtype=bool)
    is_junction = degrees >= 3
    junction[tuple(coords[is_junction].T)] = True
    clusters, n_clusters = ndimage.label(junction, structure=np.ones((3, 3, 3)))
    node = np.arange(len(coords)) + n_clusters
    node[is_junction] = clusters[tuple(coords[is_junction].T)] - 1
    return node


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("density", [0.002, 0.05, 0.3])
def test_junction_clusters_are_scipy_s_labels(seed, density):
    from flr.vesselgraph import _junction_nodes

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 20)), int(rng.integers(1, 20)), int(rng.integers(2, 30)))
    pixels = np.argwhere(rng.random(shape) < density)
    if not len(pixels):
        pixels = np.zeros((1, 3), np.int64)
    pixels = pixels[rng.permutation(len(pixels))]  # skeleton order is not C order
    degrees = rng.integers(0, 6, len(pixels))
    got = _junction_nodes(pixels, degrees, shape)
    assert np.array_equal(got, _junction_nodes_by_labelling(pixels, degrees, shape))


def test_junction_clusters_on_the_phantom_veins(phantom_1):
    from skimage.morphology import skeletonize

    from flr.kernels._skeleton import skeleton_paths
    from flr.vesselgraph import _junction_nodes

    for name in ("portal_vein", "hepatic_vein"):
        mask = np.isin(phantom_1.labels.array, phantom_1.labels.ids_of(name))
        skeleton = skeletonize(mask)
        coords, degrees, _ = skeleton_paths(skeleton.astype(bool), np.asarray(phantom_1.labels.geometry.spacing_zyx_mm))
        assert (degrees >= 3).sum() > 3  # a tree with junctions
        got = _junction_nodes(coords, degrees, mask.shape)
        assert np.array_equal(got, _junction_nodes_by_labelling(coords, degrees, mask.shape))
