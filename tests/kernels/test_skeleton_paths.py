"""flr.kernels._skeleton against skan.Skeleton, its reference: points, degrees and paths, on hand-made
skeletons, thinned seeded blobs and tubes, seeded random voxel sets and the phantom's portal vein; and
build_vessel_graph on the phantom unchanged from its skan version.

skan compiles its path functions on every first use in a process (~4 s), once for this module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import skeletonize

import flr.vesselgraph as vesselgraph
from flr.errors import KernelInputError
from flr.image import Geometry
from flr.kernels._skeleton import skeleton_paths
from flr.phantom import HEPATIC_VEIN, PORTAL_VEIN
from tests.helpers import phantom

skan = pytest.importorskip("skan", reason="skan is the reference implementation (pip install skan)")

REPO = Path(__file__).resolve().parents[2]
ISOTROPIC = (1.0, 1.0, 1.0)
SPACINGS = [ISOTROPIC, (2.5, 0.7, 0.7), (0.5, 1.0, 1.0)]   # (z, y, x) mm; the MST of a junction depends on it


def normalised(path: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    return min(path, path[::-1])


def assert_same_as_skan(skeleton: np.ndarray, spacing_zyx: tuple[float, float, float]) -> list[np.ndarray]:
    """Coordinates, degrees and paths equal skan's: as sets of coordinate paths and, stronger, in order."""
    coords, degrees, paths = skeleton_paths(skeleton, spacing_zyx)
    ref = skan.Skeleton(skeleton, spacing=spacing_zyx)
    assert coords.dtype == np.int64 and coords.shape == (np.count_nonzero(skeleton), 3)
    assert degrees.dtype == np.int64
    np.testing.assert_array_equal(coords, ref.coordinates)
    np.testing.assert_array_equal(degrees, ref.degrees)
    ref_paths = [np.asarray(p, dtype=np.int64) for p in ref.paths_list()]

    def as_set(ps: list[np.ndarray]) -> set[tuple[tuple[int, ...], ...]]:
        return {normalised(tuple(map(tuple, coords[p].tolist()))) for p in ps}

    assert as_set(paths) == as_set(ref_paths)
    assert [p.tolist() for p in paths] == [p.tolist() for p in ref_paths]   # same order and direction
    assert all(p.dtype == np.int64 for p in paths)
    return paths


def skeleton_of(points: list[tuple[int, int, int]], shape: tuple[int, int, int] = (7, 7, 7)) -> np.ndarray:
    sk = np.zeros(shape, bool)
    sk[tuple(np.asarray(points).T)] = True
    return sk


def raw_degrees(skeleton: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """26-neighbour count of each point (before skan's junction thinning)."""
    count = ndimage.convolve(skeleton.astype(int), np.ones((3, 3, 3), int), mode="constant") - 1
    return count[tuple(coords.T)]


def line(a: tuple[int, int, int], b: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """26-connected voxel line from a to b (inclusive)."""
    n = int(np.max(np.abs(np.subtract(b, a))))
    return [tuple(round(v) for v in np.add(a, np.subtract(b, a) * t / n)) for t in range(n + 1)]


# --- hand-made skeletons ---------------------------------------------------------------------

Y = line((3, 3, 0), (3, 3, 3)) + line((3, 3, 3), (0, 6, 6)) + line((3, 3, 3), (6, 6, 6))
# a cross of the eight body diagonals: one junction voxel of degree 8 (the arms never touch)
CROSS = [v for dz in (-3, 3) for dy in (-3, 3) for dx in (-3, 3) for v in line((3, 3, 3), (3 + dz, 3 + dy, 3 + dx))]
# a plus: its six arms' first voxels touch each other, so the centre is a junction cluster with cycles
PLUS = line((3, 3, 0), (3, 3, 6)) + line((3, 0, 3), (3, 6, 3)) + line((0, 3, 3), (6, 3, 3))
# two junction voxels side by side, two arms each (an H): the 2-point path between them is a path too
H = [(3, 3, 2), (3, 3, 3), (3, 2, 1), (3, 1, 0), (3, 4, 1), (3, 5, 0), (3, 2, 4), (3, 1, 5), (3, 4, 4), (3, 5, 5)]
RING = [(3, 1, 2), (3, 1, 3), (3, 2, 4), (3, 3, 4), (3, 4, 3), (3, 4, 2), (3, 3, 1), (3, 2, 1)]
# three mutually touching junction voxels, an arm each: skan's MST drops one side of the triangle
TRIANGLE = [(3, 3, 3), (3, 3, 4), (3, 4, 3), *line((3, 3, 3), (0, 0, 0)), *line((3, 3, 4), (3, 3, 6)),
            *line((3, 4, 3), (6, 6, 3))]


HAND_MADE = {
    "Y": Y, "cross": CROSS, "plus": PLUS, "adjacent junctions": H, "ring": RING, "triangle": TRIANGLE,
    "segment of 2": [(3, 3, 3), (3, 4, 4)], "ring and isolated voxel": [*RING, (0, 6, 6)],
    "segment and isolated voxel": [(1, 1, 1), (1, 1, 2), (5, 5, 5)],
    "border to border": line((0, 0, 0), (6, 6, 6)), "along the border": line((0, 6, 0), (0, 6, 6)),
}


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("points", [pytest.param(v, id=k) for k, v in HAND_MADE.items()])
def test_hand_made_skeletons_match_skan(points, spacing):
    """(A lone voxel is left out: skan 0.13 raises on a graph without edges; it is checked below.)"""
    assert_same_as_skan(skeleton_of(points), spacing)


def test_the_hand_made_cases_are_what_they_say():
    """The cases reach the rules they are meant to (skan agreeing is checked above)."""
    _, degrees, paths = skeleton_paths(skeleton_of(Y), ISOTROPIC)
    assert sorted(degrees.tolist()).count(3) == 1 and len(paths) == 3
    _, degrees, paths = skeleton_paths(skeleton_of(CROSS), ISOTROPIC)
    assert degrees.max() == 8 and (degrees >= 3).sum() == 1 and len(paths) == 8
    coords, degrees, paths = skeleton_paths(skeleton_of(PLUS), ISOTROPIC)
    assert (raw_degrees(skeleton_of(PLUS), coords) >= 3).sum() == 7     # the centre and the 6 first voxels ...
    assert degrees.max() == 6 and (degrees >= 3).sum() == 1 and len(paths) == 6   # ... thinned to a star
    coords, degrees, paths = skeleton_paths(skeleton_of(H), ISOTROPIC)
    assert (degrees == 3).sum() == 2 and len(paths) == 5
    assert [[3, 3, 2], [3, 3, 3]] in [coords[p].tolist() for p in paths]
    coords, degrees, paths = skeleton_paths(skeleton_of(RING), ISOTROPIC)
    assert set(degrees.tolist()) == {2} and len(paths) == 1 and paths[0][0] == paths[0][-1] == 0
    assert len(paths[0]) == len(RING) + 1
    coords, degrees, paths = skeleton_paths(skeleton_of(TRIANGLE), ISOTROPIC)
    assert (raw_degrees(skeleton_of(TRIANGLE), coords) >= 3).sum() == 3 and (degrees >= 3).sum() == 1  # a side dropped
    _, degrees, paths = skeleton_paths(skeleton_of([(3, 3, 3)]), ISOTROPIC)
    assert degrees.tolist() == [0] and paths == []
    _, degrees, paths = skeleton_paths(skeleton_of([(3, 3, 3), (3, 4, 4)]), ISOTROPIC)
    assert degrees.tolist() == [1, 1] and [p.tolist() for p in paths] == [[0, 1]]


def test_empty_skeleton():
    coords, degrees, paths = skeleton_paths(np.zeros((3, 4, 5), bool), ISOTROPIC)
    assert coords.shape == (0, 3) and degrees.shape == (0,) and paths == []


# --- seeded random skeletons -----------------------------------------------------------------


def blob_skeleton(shape: tuple[int, int, int], seed: int, quantile: float) -> np.ndarray:
    """Skeleton of smoothed Gaussian noise above a quantile (blobs, or a tangle of tubes near 0.5)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    return skeletonize(field > np.quantile(field, quantile))


def tube_skeleton(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Skeleton of a few random straight tubes (radius 1-3 voxels), crossing and touching the border."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).reshape(3, -1).T.astype(float)
    mask = np.zeros(int(np.prod(shape)), bool)
    for _ in range(4):
        a, b = rng.uniform(0, shape, 3), rng.uniform(0, shape, 3)
        t = np.clip((grid - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
        mask |= np.linalg.norm(grid - a - t[:, None] * (b - a), axis=1) <= rng.uniform(1, 3)
    return skeletonize(mask.reshape(shape))


@pytest.mark.parametrize("seed", range(20))
def test_thinned_blobs_and_tubes_match_skan(seed):
    shape = [(24, 30, 36), (40, 40, 40), (16, 50, 33)][seed % 3]
    spacing = SPACINGS[seed % len(SPACINGS)]
    for skeleton in (blob_skeleton(shape, seed, 0.7), blob_skeleton(shape, seed, 0.5), tube_skeleton(shape, seed)):
        assert np.count_nonzero(skeleton) > 10
        assert_same_as_skan(skeleton, spacing)


@pytest.mark.parametrize("seed", range(20))
def test_random_voxel_sets_match_skan(seed):
    """Unthinned random voxels: large junction clusters with cycles and ties, the MST rule at its hardest."""
    rng = np.random.default_rng(seed)
    for density in (0.05, 0.15, 0.3):
        voxels = rng.random((10, 12, 13)) < density
        for spacing in SPACINGS:
            assert_same_as_skan(voxels, spacing)


# --- the phantom -----------------------------------------------------------------------------


@pytest.mark.parametrize("label", [PORTAL_VEIN, HEPATIC_VEIN])
def test_phantom_vessel_skeleton_matches_skan(label):
    labels = phantom(0).labels
    spacing = tuple(float(s) for s in labels.geometry.spacing_zyx_mm)
    skeleton = skeletonize(labels.array == label)
    paths = assert_same_as_skan(skeleton, spacing)
    assert len(paths) > 5


def skan_skeleton_branches(mask: np.ndarray, spacing_zyx: np.ndarray) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``flr.vesselgraph._skeleton_branches`` as it was with skan (the reference)."""
    skeleton = skeletonize(mask)
    if np.count_nonzero(skeleton) < 2:
        return [], []
    sk = skan.Skeleton(skeleton, spacing=tuple(spacing_zyx))
    coords = np.asarray(sk.coordinates, dtype=np.int64)
    node = vesselgraph._junction_nodes(coords, np.asarray(sk.degrees), mask.shape)
    paths, ends = [], []
    for ids in sk.paths_list():
        ids = np.asarray(ids)
        a, b = int(node[ids[0]]), int(node[ids[-1]])
        if a == b and np.all(node[ids] == a):
            continue
        paths.append(coords[ids])
        ends.append((a, b))
    return paths, ends


@pytest.mark.parametrize(("label", "drop_every"), [(PORTAL_VEIN, 0), (HEPATIC_VEIN, 0), (PORTAL_VEIN, 8)])
def test_phantom_vessel_graph_unchanged_from_skan(monkeypatch, label, drop_every):
    p = phantom(0)
    vessel, liver, geometry = p.labels.array == label, p.liver.array.astype(bool), p.labels.geometry
    if drop_every:
        vessel = vessel.copy()
        vessel[::drop_every] = False                  # dropped slices: fragments, bridges
    got = vesselgraph.build_vessel_graph(vessel, geometry, liver_mask=liver)
    monkeypatch.setattr(vesselgraph, "_skeleton_branches", skan_skeleton_branches)
    want = vesselgraph.build_vessel_graph(vessel, geometry, liver_mask=liver)
    assert len(got.branches) > 5
    assert got == want                 # counts, roots, bridges, debris; branch ids, nodes, lengths, radii
    assert got.total_length_mm == want.total_length_mm
    for g, w in zip(got.branches, want.branches, strict=True):
        np.testing.assert_array_equal(g.path_zyx, w.path_zyx)
        np.testing.assert_array_equal(g.path_radius_mm, w.path_radius_mm)
        assert (g.trunk_points is None) == (w.trunk_points is None)
        if g.trunk_points is not None:
            np.testing.assert_array_equal(g.trunk_points, w.trunk_points)


def test_specks_only_give_an_empty_graph_where_skan_raised(monkeypatch):
    """Two lone voxels thin to a skeleton of 2 points and no edge: no path, two pieces of debris (skan 0.13
    raised ValueError there, from an empty path table)."""
    vessel = np.zeros((9, 9, 9), bool)
    vessel[1, 1, 1] = vessel[6, 6, 6] = True
    geometry = Geometry(shape_zyx=(9, 9, 9), spacing_mm=(1.0, 1.0, 1.0))
    graph = vesselgraph.build_vessel_graph(vessel, geometry)
    assert graph.branches == () and graph.debris_count == 2
    monkeypatch.setattr(vesselgraph, "_skeleton_branches", skan_skeleton_branches)
    with pytest.raises(ValueError, match="index pointer size"):
        vesselgraph.build_vessel_graph(vessel, geometry)


# --- no compile, and skan stays out of the vessel-graph path --------------------------


def run_python(code: str) -> None:
    """Run ``code`` in a fresh interpreter (its own sys.modules) from the repository root; it must exit 0."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_centerlines_compile_nothing():
    """No numba on the centerline path: importing and running skeleton_paths loads neither numba nor skan."""
    code = ("import sys, numpy as np\n"
            "from flr.kernels._skeleton import skeleton_paths\n"
            "sk = np.zeros((1, 5, 5), bool); sk[0, 2, :] = True; sk[0, :2, 2] = True\n"
            "coords, degrees, paths = skeleton_paths(sk, (1.0, 1.0, 1.0))\n"
            "assert [p.tolist() for p in paths] == [[0, 1, 4], [2, 3, 4], [4, 5, 6]], paths\n"
            "assert all(p.dtype == np.int64 for p in paths)\n"
            "loaded = [k for k in sys.modules if k.split('.')[0] in ('numba', 'skan')]\n"
            "assert not loaded, loaded\n")
    run_python(code)


def test_building_a_vessel_graph_imports_no_skan():
    code = ("import sys, numpy as np\n"
            "from flr.image import Geometry\n"
            "from flr.vesselgraph import build_vessel_graph\n"
            "m = np.zeros((5, 5, 30), bool); m[1:4, 1:4, 2:28] = True; m[1:4, 2, 14:28] = False\n"
            "g = build_vessel_graph(m, Geometry(shape_zyx=(5, 5, 30), spacing_mm=(1.0, 1.0, 1.0)))\n"
            "assert g.branches, g\n"
            "assert not [k for k in sys.modules if k.split('.')[0] == 'skan'], 'skan imported'\n")
    run_python(code)


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skeleton", "spacing", "match"),
    [(np.zeros((4, 4), bool), ISOTROPIC, "3-D"),
     ([[[True]]], ISOTROPIC, "3-D numpy array"),
     (np.zeros((3, 3, 3), np.uint8), ISOTROPIC, "bool array, got dtype uint8"),
     (np.zeros((3, 3, 3), bool), (1.0, 1.0), "3 finite positive"),
     (np.zeros((3, 3, 3), bool), (1.0, 0.0, 1.0), r"3 finite positive numbers of mm, got \(1.0, 0.0, 1.0\)"),
     (np.zeros((3, 3, 3), bool), (1.0, float("nan"), 1.0), "finite")],
)
def test_bad_inputs_are_refused(skeleton, spacing, match):
    with pytest.raises(KernelInputError, match=match):
        skeleton_paths(skeleton, spacing)
