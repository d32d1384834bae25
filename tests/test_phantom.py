"""Analytic rasterisers and the seeded liver phantom (flr.phantom).

Counts and adjacency are recomputed here with plain numpy written for the test (bincount, shifted-array
comparisons), never with the module's own helpers.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from scipy import ndimage

from flr.image import Geometry
from flr.phantom import (
    PHANTOM_LABELS,
    PHANTOM_SCHEME,
    cylinder_mask,
    cylinder_volume_ml,
    ellipsoid_mask,
    ellipsoid_volume_ml,
    make_liver_phantom,
    sphere_mask,
    sphere_volume_ml,
)
from tests.helpers import phantom as cached_phantom

SEGMENTS = range(1, 9)
TUMOR, PV, HV, IVC = 9, 10, 11, 12
#: Textbook face adjacency (clinical-reference.md) with IVa and IVb merged into 4.
TEXTBOOK_PAIRS = {(1, 2), (1, 4), (1, 7), (1, 8), (2, 3), (2, 4), (3, 4), (4, 5), (4, 8), (5, 6), (5, 8),
                  (6, 7), (7, 8)}
REQUIRED_PAIRS = {(6, 7), (5, 6), (5, 8), (7, 8), (2, 3), (4, 5), (4, 8)}
FORBIDDEN_PAIRS = {(2, 5), (2, 6), (3, 5), (3, 6)}


# --------------------------------------------------------------------------------------------------
# helpers written for the tests
# --------------------------------------------------------------------------------------------------

def rotation(axis, deg):
    """Rodrigues rotation matrix about ``axis`` by ``deg`` degrees."""
    a = np.asarray(axis, dtype=float)
    a /= np.linalg.norm(a)
    t = math.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k


def oblique_grid(shape_zyx, spacing_mm, axis, deg, center_mm):
    """Grid of ``shape_zyx`` rotated by ``deg`` about ``axis``, whose middle voxel sits near ``center_mm``."""
    r = rotation(axis, deg)
    half = (np.asarray(shape_zyx[::-1]) - 1) * np.asarray(spacing_mm) / 2.0
    origin = np.asarray(center_mm) - r @ half
    return Geometry(shape_zyx=shape_zyx, spacing_mm=spacing_mm, origin_mm=tuple(origin), direction=tuple(r.ravel()))


def voxel_centres_lps(geometry):
    """(z, y, x, 3) LPS centres of every voxel, straight from the affine."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in geometry.shape_zyx), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(float)
    a = geometry.affine_lps
    return idx @ a[:3, :3].T + a[:3, 3]


def label_counts(labels):
    return np.bincount(labels.ravel(), minlength=13)


def face_pairs(labels):
    """{(a, b): faces} over the three axes for different non-zero labels a < b."""
    out = {}
    for axis in range(3):
        u = np.moveaxis(labels, axis, 0)[:-1].ravel()
        v = np.moveaxis(labels, axis, 0)[1:].ravel()
        keep = (u != v) & (u > 0) & (v > 0)
        lo = np.minimum(u[keep], v[keep]).astype(np.int64)
        hi = np.maximum(u[keep], v[keep]).astype(np.int64)
        codes, n = np.unique(lo * 100 + hi, return_counts=True)
        for code, count in zip(codes.tolist(), n.tolist(), strict=True):
            out[(code // 100, code % 100)] = out.get((code // 100, code % 100), 0) + count
    return out


def centroid_lps(geometry, mask):
    k, j, i = np.nonzero(mask)
    idx = np.stack([i, j, k], axis=1).astype(float)
    a = geometry.affine_lps
    return (idx @ a[:3, :3].T + a[:3, 3]).mean(axis=0)


# --------------------------------------------------------------------------------------------------
# rasterisers
# --------------------------------------------------------------------------------------------------

# Anisotropic (0.7 x 0.9 x 2.0 mm) grids turned 25 and 40 degrees about oblique axes, origins far from 0.
GRID_A = oblique_grid((70, 150, 170), (0.7, 0.9, 2.0), (1.0, 2.0, 3.0), 25.0, (12.3, -7.1, 40.2))
GRID_B = oblique_grid((60, 140, 120), (1.1, 0.8, 2.3), (-2.0, 1.0, 0.5), 40.0, (13.0, -6.0, 41.0))
CENTER = np.array([12.61, -7.27, 40.63])
ELL_AXES = rotation((1.0, -1.0, 2.0), 33.0)
P0, P1 = CENTER - np.array([30.0, 10.0, 20.0]), CENTER + np.array([25.0, 5.0, 15.0])
SEG_LEN = float(np.linalg.norm(P1 - P0))

# Each shape is >= 24 mm across its thinnest dimension, i.e. >= 12 voxels at the coarsest spacing.
# Sampling voxel centres is an unbiased volume estimate (averaged over grid offsets); what remains is a
# lattice-point fluctuation of order (R/h)^(-3/2) of the volume, ~0.1% here for R/h >= 15 (measured
# <= 0.12% on these grids), so 0.5% is a safe bound that still catches a half-voxel shift of the
# surface (>= 2%).
SHAPES = {
    "sphere": (lambda g: sphere_mask(g, CENTER, 30.0), sphere_volume_ml(30.0)),
    "ellipsoid": (lambda g: ellipsoid_mask(g, CENTER, (45.0, 35.0, 28.0), ELL_AXES),
                  ellipsoid_volume_ml((45.0, 35.0, 28.0))),
    "cylinder": (lambda g: cylinder_mask(g, P0, P1, 12.0), cylinder_volume_ml(12.0, SEG_LEN)),
    "capsule": (lambda g: cylinder_mask(g, P0, P1, 12.0, caps="round"),
                cylinder_volume_ml(12.0, SEG_LEN, caps="round")),
}


@pytest.mark.parametrize("grid", [GRID_A, GRID_B], ids=["grid_a", "grid_b"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_voxel_volume_matches_analytic_on_oblique_anisotropic_grid(shape, grid):
    assert grid.is_oblique()
    make, analytic_ml = SHAPES[shape]
    mask = make(grid)
    assert mask.shape == grid.shape_zyx and mask.dtype == bool
    assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
                or mask[:, :, 0].any() or mask[:, :, -1].any()), "shape must lie inside the grid"
    voxel_ml = np.prod(grid.spacing_mm) / 1000.0
    # voxelisation: boundary voxels (~1.3-2 mm^3) count whole or not at all; shapes of >= 12 mm radius
    # measure within 0.17% on these grids, 0.5% leaves room for other oblique grids
    assert np.count_nonzero(mask) * voxel_ml == pytest.approx(analytic_ml, rel=0.005)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_same_shape_on_two_oblique_grids_agrees(shape):
    make, _ = SHAPES[shape]
    vol = [np.count_nonzero(make(g)) * np.prod(g.spacing_mm) / 1000.0 for g in (GRID_A, GRID_B)]
    assert vol[0] == pytest.approx(vol[1], rel=0.005)  # two voxelisation errors (each <= 0.17%): <= 0.2% measured


def test_masks_equal_brute_force_evaluation_including_clipping():
    """Bounding-box, slab-wise evaluation == the formula applied to every voxel of a small oblique grid."""
    g = oblique_grid((14, 30, 26), (1.3, 0.9, 2.2), (0.2, 1.0, 0.7), 31.0, (5.0, -3.0, 7.0))
    p = voxel_centres_lps(g)
    # ellipsoid poking out of the grid on one side
    c, radii = np.array([15.0, -1.0, 9.0]), np.array([14.0, 9.0, 11.0])
    q = ((p - c) @ ELL_AXES) / radii
    np.testing.assert_array_equal(ellipsoid_mask(g, c, radii, ELL_AXES), np.sum(q * q, axis=-1) <= 1.0)
    # sphere
    np.testing.assert_array_equal(sphere_mask(g, (3.0, -4.0, 2.0), 8.5),
                                  np.sum((p - np.array([3.0, -4.0, 2.0])) ** 2, axis=-1) <= 8.5**2)
    # flat and round tube, one end inside the grid and one outside
    a, b, r = np.array([-3.0, -7.0, 2.0]), np.array([25.0, 10.0, 18.0]), 4.0
    u = (b - a) / np.linalg.norm(b - a)
    t = (p - a) @ u
    radial2 = np.sum((p - a) ** 2, axis=-1) - t * t
    flat = (t >= 0) & (t <= np.linalg.norm(b - a)) & (radial2 <= r * r)
    np.testing.assert_array_equal(cylinder_mask(g, a, b, r), flat)
    tc = np.clip(t, 0.0, np.linalg.norm(b - a))
    rounded = np.sum((p - a - tc[..., None] * u) ** 2, axis=-1) <= r * r
    np.testing.assert_array_equal(cylinder_mask(g, a, b, r, caps="round"), rounded)
    assert flat.any() and (rounded & ~flat).any()


def test_shape_outside_the_grid_gives_an_empty_mask():
    g = Geometry(shape_zyx=(10, 10, 10), spacing_mm=(1.0, 1.0, 2.0))
    assert not sphere_mask(g, (500.0, 0.0, 0.0), 5.0).any()
    assert not cylinder_mask(g, (-50.0, -50.0, 0.0), (-40.0, -50.0, 0.0), 3.0).any()


def test_analytic_volumes():
    assert sphere_volume_ml(10.0) == pytest.approx(4.0 / 3.0 * math.pi * 1000.0 / 1000.0)
    assert ellipsoid_volume_ml((10.0, 10.0, 10.0)) == pytest.approx(sphere_volume_ml(10.0))
    assert ellipsoid_volume_ml((10.0, 20.0, 30.0)) == pytest.approx(4.0 / 3.0 * math.pi * 6000.0 / 1000.0)
    assert cylinder_volume_ml(10.0, 100.0) == pytest.approx(math.pi * 100.0 * 100.0 / 1000.0)
    assert cylinder_volume_ml(10.0, 100.0, caps="round") == pytest.approx(
        cylinder_volume_ml(10.0, 100.0) + sphere_volume_ml(10.0))


G1 = Geometry(shape_zyx=(5, 5, 5))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: sphere_mask(G1, (0.0, 0.0, 0.0), -1.0), "radius_mm"),
    (lambda: sphere_mask(G1, (0.0, 0.0), 1.0), "center_mm"),
    (lambda: ellipsoid_mask(G1, (0.0, 0.0, 0.0), (1.0, 2.0, float("nan"))), "radii_mm"),
    (lambda: ellipsoid_mask(G1, (0.0, 0.0, 0.0), (1.0, 2.0, 3.0), np.ones((3, 3))), "orthonormal"),
    (lambda: cylinder_mask(G1, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0), "p0_mm != p1_mm"),
    (lambda: cylinder_mask(G1, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1.0, caps="square"), "caps"),
    (lambda: cylinder_volume_ml(1.0, -2.0), "length_mm"),
    (lambda: make_liver_phantom(spacing_mm=(1.0, 0.0, 2.0)), "spacing_mm"),
    (lambda: make_liver_phantom(oblique_deg=float("inf")), "oblique_deg"),
    (lambda: make_liver_phantom(shape_zyx=(40, 60, 60)), "touches the border"),
])
def test_bad_inputs_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------------
# the phantom
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def phantom():
    return make_liver_phantom(0)


@pytest.fixture(scope="module")
def oblique_phantom():
    return make_liver_phantom(0, oblique_deg=25.0)


def test_phantom_images_and_label_scheme(phantom):
    g = phantom.ct.geometry
    assert phantom.ct.array.dtype == np.int16
    assert phantom.labels.array.dtype == np.uint8
    assert phantom.labels.geometry == g and phantom.liver.geometry == g
    assert g.spacing_mm == (1.5, 1.5, 2.5) and not g.is_oblique()
    assert phantom.labels.scheme == PHANTOM_SCHEME == "flr-phantom"
    assert phantom.labels.names == PHANTOM_LABELS
    assert {phantom.labels.names[k] for k in SEGMENTS} == {f"liver_segment_{k}" for k in SEGMENTS}
    assert (phantom.labels.names[9], phantom.labels.names[10], phantom.labels.names[11],
            phantom.labels.names[12]) == ("tumor", "portal_vein", "hepatic_vein", "inferior_vena_cava")
    assert set(np.unique(phantom.labels.array).tolist()) == set(range(13))
    # small enough for sample data: a few million voxels
    assert phantom.ct.array.size < 4_000_000
    assert json.loads(json.dumps(phantom.truth)) == phantom.truth


def test_each_segment_is_one_6_connected_piece(phantom, oblique_phantom):
    for p in (phantom, oblique_phantom):
        for s in SEGMENTS:
            _, n = ndimage.label(p.labels.array == s)  # default structure: 6-connectivity
            assert n == 1, f"segment {s} has {n} pieces"


def test_truth_counts_equal_an_independent_count(phantom):
    labels = phantom.labels.array
    liver = phantom.liver.array.astype(bool)
    voxel_ml = np.prod(phantom.labels.spacing_mm) / 1000.0
    counts = label_counts(labels)
    truth = phantom.truth
    for k in range(1, 13):
        assert truth["labels"][str(k)]["voxels"] == counts[k]
        # same count x voxel volume, computed twice: float64 rounding only
        assert truth["labels"][str(k)]["volume_ml"] == pytest.approx(counts[k] * voxel_ml, rel=1e-12)
    for k in SEGMENTS:
        assert truth["segments"][str(k)]["voxels"] == counts[k]
    # the liver: segments + tumours + portal and hepatic vein voxels inside the outline; never the IVC
    inside = label_counts(labels[liver])
    assert inside[0] == 0 and inside[IVC] == 0
    assert label_counts(labels[~liver])[1:10].sum() == 0
    liver_voxels = int(np.count_nonzero(liver))
    assert liver_voxels == counts[1:10].sum() + inside[PV] + inside[HV]
    assert truth["liver"]["voxels"] == liver_voxels
    # "structures" uses canonical names only (DESIGN.md), each count again from the arrays
    assert set(truth["structures"]) == {"liver", *PHANTOM_LABELS.values()}
    for k, name in PHANTOM_LABELS.items():
        assert truth["structures"][name]["voxels"] == counts[k]
    assert truth["structures"]["liver"]["voxels"] == liver_voxels
    assert truth["structures"]["liver"]["segments_and_tumor_voxels"] == counts[1:10].sum()
    assert truth["structures"]["liver"]["intrahepatic_vessel_voxels"] == inside[PV] + inside[HV]
    assert truth["liver"]["volume_ml"] == pytest.approx(liver_voxels * voxel_ml, rel=1e-12)  # float64 rounding
    assert truth["structures"]["portal_vein"]["intrahepatic_voxels"] == inside[PV]
    assert truth["structures"]["hepatic_vein"]["intrahepatic_voxels"] == inside[HV]
    assert truth["structures"]["portal_vein"]["extrahepatic_voxels"] == counts[PV] - inside[PV] > 0


def test_liver_volume_matches_the_analytic_ellipsoid(phantom):
    truth = phantom.truth["liver"]
    a, b, c = truth["ellipsoid_radii_mm"]
    ellipsoid_ml = 4.0 / 3.0 * math.pi * a * b * c / 1000.0
    voxel_ml = np.prod(phantom.labels.spacing_mm) / 1000.0
    assert truth["ellipsoid_volume_ml"] == pytest.approx(ellipsoid_ml)
    # voxelisation of a ~1700 mL ellipsoid on 1.5 x 1.5 x 2.5 mm voxels: measured 0.014% (seed 0); 1% also
    # covers the IVC-overlap quadrature in the analytic volume
    assert truth["volume_ml"] == pytest.approx(truth["analytic_volume_ml"], rel=0.01)
    # independently of the module's IVC-overlap and carve quadratures: liver + IVC-in-ellipsoid + hilar carve
    # + crumbs == ellipsoid
    in_ellipsoid = (truth["voxels"] + phantom.truth["structures"]["inferior_vena_cava"]["within_liver_ellipsoid_voxels"]
                    + truth["hilar_carve_voxels"] + phantom.truth["liver_crumbs_dropped_voxels"])
    assert in_ellipsoid * voxel_ml == pytest.approx(ellipsoid_ml, rel=0.01)  # voxelisation only: 0.008% measured
    assert 1400.0 < truth["volume_ml"] < 2000.0


def test_tumours_lie_inside_the_liver_in_the_segments_the_truth_names(phantom):
    labels = phantom.labels.array
    g = phantom.labels.geometry
    voxel_ml = np.prod(g.spacing_mm) / 1000.0
    tumors = phantom.truth["tumors"]
    assert 2 <= len(tumors) <= 4
    assert tumors[0]["segment"] in (7, 8) and tumors[1]["segment"] in (2, 3)
    comp, n = ndimage.label(labels == TUMOR)
    assert n == len(tumors)
    liver = phantom.liver.array.astype(bool)
    assert not np.any((labels == TUMOR) & ~liver)
    for t in tumors:
        assert 8.0 <= t["radius_mm"] <= 25.0
        assert t["segment"] in t["segments"]
        k, j, i = np.round(np.linalg.solve(g.affine_lps[:3, :3], np.subtract(t["center_mm"], g.origin_mm))[::-1])
        piece = comp == comp[int(k), int(j), int(i)]
        assert labels[int(k), int(j), int(i)] == TUMOR
        assert np.count_nonzero(piece) == t["voxels"]
        # a voxelised sphere's centroid stays well inside a third of the smallest spacing (1.5 mm): 0.11 mm
        # measured, for the 10 mm tumour, whose vessel-clearance cut-outs pull it most
        assert np.linalg.norm(centroid_lps(g, piece) - t["center_mm"]) < 0.5
        # the smallest tumour (r 10 mm, ~1200 voxels of 5.6 mm^3) loses 2.1% to voxelisation and the 1.5 mm
        # clearance kept around vessels; 3% bounds that
        assert t["voxels"] * voxel_ml == pytest.approx(4.0 / 3.0 * math.pi * t["radius_mm"] ** 3 / 1000.0, rel=0.03)
        shell = ndimage.binary_dilation(piece) & ~piece
        around = set(np.unique(labels[shell]).tolist())
        assert around <= set(SEGMENTS) | {PV, HV}, f"tumour {t['id']} touches {around}"
        assert around & set(SEGMENTS) == set(t["segments"])


def test_same_seed_same_phantom_other_seed_other_tumours(phantom):
    again = make_liver_phantom(0)
    np.testing.assert_array_equal(again.ct.array, phantom.ct.array)
    np.testing.assert_array_equal(again.labels.array, phantom.labels.array)
    assert again.truth == phantom.truth
    other = make_liver_phantom(1)
    assert other.truth["seed"] == 1
    assert [t["center_mm"] for t in other.truth["tumors"]] != [t["center_mm"] for t in phantom.truth["tumors"]]
    assert not np.array_equal(other.labels.array == TUMOR, phantom.labels.array == TUMOR)
    assert not np.array_equal(other.ct.array, phantom.ct.array)
    # the anatomy other than the tumours is fixed
    assert other.truth["liver"]["voxels"] == phantom.truth["liver"]["voxels"]
    np.testing.assert_array_equal(other.labels.array == IVC, phantom.labels.array == IVC)


def test_orientation_and_extent(phantom):
    g = phantom.labels.geometry
    labels, ct = phantom.labels.array, phantom.ct.array
    body = ct > -500
    liver = phantom.liver.array.astype(bool)
    for mask in (body, liver):
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
                    or mask[:, :, 0].any() or mask[:, :, -1].any())
    c = {s: centroid_lps(g, labels == s) for s in range(1, 13)}
    # liver on the patient's right: LPS x below the body's centre
    assert centroid_lps(g, liver)[0] < centroid_lps(g, body)[0] - 20.0
    right = np.mean([c[s] for s in (5, 6, 7, 8)], axis=0)
    left = np.mean([c[s] for s in (2, 3, 4)], axis=0)
    assert right[0] < left[0]
    # II superior and posterior to III; VII/VIII superior to VI/V; VI/VII posterior to V/VIII
    assert c[2][2] > c[3][2] and c[2][1] > c[3][1]
    assert c[7][2] > c[6][2] and c[8][2] > c[5][2]
    assert c[7][1] > c[8][1] and c[6][1] > c[5][1]
    # caudate next to the IVC; IVC runs above and below the liver
    pairs = face_pairs(labels)
    assert pairs.get((1, IVC), 0) > 0
    z_of = lambda m: np.nonzero(m.any(axis=(1, 2)))[0]  # noqa: E731
    assert z_of(labels == IVC).min() < z_of(liver).min() and z_of(labels == IVC).max() > z_of(liver).max()
    # portal trunk leaves the liver inferiorly
    assert z_of((labels == PV) & ~liver).min() < z_of(liver).min()


def test_segment_face_adjacency_is_the_textbook_table(phantom):
    pairs = face_pairs(phantom.labels.array)
    seg_pairs = {p for p in pairs if p[1] <= 8}
    assert seg_pairs == TEXTBOOK_PAIRS
    assert [tuple(p) for p in phantom.truth["segment_adjacency"]] == sorted(seg_pairs)
    assert {(a, b): n for a, b, n in phantom.truth["face_adjacency"]} == pairs


def test_vessel_trees_are_connected(phantom):
    labels = phantom.labels.array
    assert ndimage.label(labels == PV)[1] == 1
    assert ndimage.label(labels == IVC)[1] == 1
    assert ndimage.label((labels == HV) | (labels == IVC))[1] == 1  # the hepatic veins drain into the IVC
    assert face_pairs(labels).get((PV, HV), 0) == 0


def test_ct_intensities(phantom):
    ct = phantom.ct.array.astype(float)
    labels = phantom.labels.array
    body = ct > -500
    assert np.all(ct[~body] == -1000)
    interior = ndimage.binary_erosion(np.isin(labels, list(SEGMENTS)), iterations=2)
    # seeded Gaussian noise, NOISE_SD_HU = 10, over >= 6000 voxels per structure: the median's and the SD's
    # sampling errors are ~0.2 HU and ~0.1 HU, so 2 HU and 1 HU catch a wrong tissue value or noise level
    # (one HU step of rounding to int16 included), not the noise
    assert np.median(ct[interior]) == pytest.approx(60, abs=2)
    assert np.std(ct[interior]) == pytest.approx(10, abs=1)
    assert np.median(ct[labels == TUMOR]) == pytest.approx(30, abs=2)
    assert np.median(ct[labels == IVC]) == pytest.approx(150, abs=2)
    assert np.median(ct[labels == PV]) == pytest.approx(150, abs=2)


def test_oblique_phantom_has_the_same_volumes(phantom, oblique_phantom):
    g = oblique_phantom.labels.geometry
    assert g.is_oblique()
    a, b = phantom.truth, oblique_phantom.truth
    same = ("center_mm", "radius_mm", "segment", "segments")
    assert [{k: t[k] for k in same} for t in a["tumors"]] == [{k: t[k] for k in same} for t in b["tumors"]]
    # two voxelisations of each structure: segments are cut by planes oblique to one grid, so small ones
    # move most (measured up to 0.8%, segment II); the whole liver only by its surface (0.01% measured)
    for k in (*SEGMENTS, IVC):  # every structure above 40 mL
        assert b["labels"][str(k)]["volume_ml"] == pytest.approx(a["labels"][str(k)]["volume_ml"], rel=0.02)
    assert b["liver"]["volume_ml"] == pytest.approx(a["liver"]["volume_ml"], rel=0.005)
    assert b["liver"]["volume_ml"] == pytest.approx(b["liver"]["analytic_volume_ml"], rel=0.01)  # as when straight
    # planes oblique to the grid may add a few staircase faces between diagonal neighbours (V-VII, VI-VIII)
    pairs = face_pairs(oblique_phantom.labels.array)
    assert set(pairs) >= REQUIRED_PAIRS and not FORBIDDEN_PAIRS & set(pairs)
    smallest_true = min(pairs[p] for p in TEXTBOOK_PAIRS)
    # staircase contacts are a few faces where a corner grazes (22 measured) against >= 306 on a real
    # boundary: a tenth of the smallest true contact separates the two
    assert all(n < 0.1 * smallest_true for p, n in pairs.items() if p[1] <= 8 and p not in TEXTBOOK_PAIRS)


# --------------------------------------------------------------------------------------------------
# the hilum: hilar plate, umbilical fissure and hepatic-vein confluence carved out of the liver
# --------------------------------------------------------------------------------------------------

#: sha256 of (labels, liver, ct) of make_liver_phantom(0, spacing_mm=(3, 3, 5)) before the hilum existed
#: (commit e90e8de); hilum=False must keep reproducing them, because round-1 outputs are pinned on it.
ROUND1_SHA256 = (
    "d63171beee12cd0d094f0b34182d80ebaa6d96b8a5ad35180507f0250e2dde28",
    "5a5311966a0f809b83dbfbe3e86b6928e296b084c5017feec22d77adfa5ca5f7",
    "24c33f43d5965ddc3c37bff289cfdf7c93548ec0988c064449e0ad7f11174d64",
)
#: The vessel pieces whose whole axis lies in the hilar plate or the umbilical fissure.
HILAR_PORTAL = ("portal trunk", "right portal vein", "left portal vein", "umbilical portion")
#: Segment(s) each intrahepatic portal branch supplies (a sectoral branch: both segments of its section).
PORTAL_BRANCH_SEGMENTS = {
    "right anterior portal vein": {5, 8}, "segment 5 portal branch": {5}, "segment 8 portal branch": {8},
    "right posterior portal vein": {6, 7}, "segment 6 portal branch": {6}, "segment 7 portal branch": {7},
    "segment 2 portal branch": {2}, "segment 3 portal branch": {3}, "segment 4 superior portal branch": {4},
    "segment 4 inferior portal branch": {4}, "caudate portal branch": {1},
}
#: The default grid, the coarse grid and a coarse grid turned 20 degrees.
HILUM_CASES = {
    "default": (0, {}),
    "coarse": (0, {"spacing_mm": (3.0, 3.0, 5.0)}),
    "oblique_coarse": (1, {"spacing_mm": (3.0, 3.0, 5.0), "oblique_deg": 20.0}),
}


def sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def box_centres(geometry, lo_mm, hi_mm):
    """Index box (z, y, x slices) holding the LPS box lo-hi, and the LPS centres (z, y, x, 3) of its voxels."""
    corners = np.array([[x, y, z] for x in (lo_mm[0], hi_mm[0]) for y in (lo_mm[1], hi_mm[1])
                        for z in (lo_mm[2], hi_mm[2])])
    a = geometry.affine_lps
    idx = np.linalg.solve(a[:3, :3], (corners - a[:3, 3]).T).T
    size = np.asarray(geometry.shape_zyx[::-1])
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, size)
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, size)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    k, j, i = np.meshgrid(*(np.arange(lo[n], hi[n]) for n in (2, 1, 0)), indexing="ij")
    return box, np.stack([i, j, k], axis=-1).astype(float) @ a[:3, :3].T + a[:3, 3]


def axis_distance(points, p0, p1):
    """Distance (mm) from points (..., 3) to the segment p0-p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((points - p0) @ d) / float(d @ d), 0.0, 1.0)
    return np.linalg.norm(points - p0 - t[..., None] * d, axis=-1)


def liver_box_masks(p):
    """On the liver ellipsoid's box: (box, centres, ellipsoid, IVC, carve), from the truth's numbers.

    The ellipsoid and the carve (union of the recorded capsules) are evaluated here with plain numpy; the
    IVC is read from the label map (its label is the IVC cylinder: painted after every vessel, never a tumour).
    """
    tr = p.truth
    c = np.asarray(tr["liver"]["ellipsoid_center_mm"])
    radii = np.asarray(tr["liver"]["ellipsoid_radii_mm"])
    axes = np.asarray(tr["liver"]["ellipsoid_axes"])
    half = np.sqrt(np.sum((axes * radii[None, :]) ** 2, axis=1))
    box, pts = box_centres(p.labels.geometry, c - half, c + half)
    q = ((pts - c) @ axes) / radii
    ellipsoid = np.sum(q * q, axis=-1) <= 1.0
    ivc = p.labels.array[box] == IVC
    carve = np.zeros(ellipsoid.shape, bool)
    if tr["anatomy"]["hilum"]["carved"]:
        for h in tr["anatomy"]["hilum"]["pieces"]:
            carve |= axis_distance(pts, h["p0_mm"], h["p1_mm"]) <= h["radius_mm"]
    return box, pts, ellipsoid, ivc, carve


@pytest.fixture(scope="module", params=sorted(HILUM_CASES))
def hilum_case(request):
    seed, options = HILUM_CASES[request.param]
    return request.param, cached_phantom(seed, **options)


def test_hilum_false_reproduces_the_round1_phantom_bit_for_bit():
    p = make_liver_phantom(0, spacing_mm=(3.0, 3.0, 5.0), hilum=False)
    assert (sha256(p.labels.array), sha256(p.liver.array), sha256(p.ct.array)) == ROUND1_SHA256
    assert p.truth["hilum"] is False and p.truth["anatomy"]["hilum"]["carved"] is False
    assert p.truth["liver"]["hilar_carve_voxels"] == 0 and p.truth["liver"]["hilar_carve_ml"] == 0.0
    # and the default carves: same grid, other arrays
    q = make_liver_phantom(0, spacing_mm=(3.0, 3.0, 5.0))
    assert q.truth["hilum"] is True and sha256(q.liver.array) != ROUND1_SHA256[1]
    np.testing.assert_array_equal(q.labels.array == IVC, p.labels.array == IVC)


def test_hilar_carve_record_follows_the_vessels(phantom):
    an = phantom.truth["anatomy"]
    hil = an["hilum"]
    vessels = {v["name"]: v for v in an["vessels"]}
    clearance = hil["clearance_mm"]
    assert 2.5 <= clearance <= 4.0  # >= one voxel of the coarsest default spacing between vessel and liver
    assert hil["hepatic_vein_stub_mm"] > an["ivc_radius_mm"]
    pieces = {h["name"]: h for h in hil["pieces"]}
    hv_first = ("right hepatic vein", "middle hepatic vein", "left hepatic vein")
    assert set(pieces) == {*HILAR_PORTAL, "right posterior portal vein, first part",
                           "caudate portal branch, first part", *(f"{v}, first part" for v in hv_first)}
    for h in pieces.values():
        v = vessels[h["vessel"]]
        assert h["structure"] == v["structure"]
        assert h["vessel_radius_mm"] == v["radius_mm"]
        assert h["radius_mm"] == pytest.approx(v["radius_mm"] + clearance)
        assert h["p0_mm"] == v["p0_mm"]
        # the end lies on the vessel's axis, between its ends
        d = np.subtract(v["p1_mm"], v["p0_mm"])
        e = np.subtract(h["p1_mm"], h["p0_mm"])
        assert np.linalg.norm(np.cross(d, e)) == pytest.approx(0.0, abs=1e-9 * float(d @ d))
        assert 0.0 < float(e @ d) <= float(d @ d) * (1 + 1e-12)
    for name in HILAR_PORTAL:
        assert pieces[name]["p1_mm"] == vessels[name]["p1_mm"]
    ivc_xy = np.asarray(an["ivc_axis_xy_mm"])
    for name in hv_first:
        h = pieces[f"{name}, first part"]
        assert h["p0_mm"][:2] == list(ivc_xy)  # from the confluence on the IVC axis
        assert np.linalg.norm(np.subtract(h["p1_mm"][:2], ivc_xy)) == pytest.approx(hil["hepatic_vein_stub_mm"])
    # the right posterior portal vein's axis leaves the carve (its end cap) on the right hepatic vein plane
    # (vertical, through the IVC axis); the caudate branch is carved up to the caudate's floor
    u = np.asarray(an["plane_directions_xy"]["right_hepatic_vein"])
    rp = pieces["right posterior portal vein, first part"]
    along = np.subtract(vessels[rp["vessel"]]["p1_mm"], rp["p0_mm"])
    exit_mm = np.asarray(rp["p1_mm"]) + rp["radius_mm"] * along / np.linalg.norm(along)
    end = exit_mm[:2] - ivc_xy
    assert end[0] * u[1] - end[1] * u[0] == pytest.approx(0.0, abs=1e-9)
    assert pieces["caudate portal branch, first part"]["p1_mm"][2] == pytest.approx(an["caudate"]["z_mm"][0])


def test_carved_voxels_are_not_liver(hilum_case):
    _, p = hilum_case
    labels, liver = p.labels.array, p.liver.array.astype(bool)
    box, _, ellipsoid, ivc, carve = liver_box_masks(p)
    hilar = ellipsoid & ~ivc & carve
    assert np.count_nonzero(hilar) == p.truth["liver"]["hilar_carve_voxels"] > 0
    assert not (liver[box] & carve).any()
    assert set(np.unique(labels[box][hilar]).tolist()) <= {0, PV, HV}  # background, or a hilar vessel
    # the outline: ellipsoid minus IVC minus carve, less the recorded crumbs, and nothing outside the box
    expected = ellipsoid & ~ivc & ~carve
    assert not (liver[box] & ~expected).any()
    assert np.count_nonzero(expected & ~liver[box]) == p.truth["liver_crumbs_dropped_voxels"]
    assert np.count_nonzero(liver) == np.count_nonzero(liver[box]) == p.truth["liver"]["voxels"]
    # the hilar plate is fat on the CT (seeded noise of 10 HU over >= 200 voxels: the median within 5 HU)
    fat = hilar & (labels[box] == 0)
    assert np.count_nonzero(fat) > 200
    assert np.median(p.ct.array[box][fat]) == pytest.approx(-100, abs=5)


def test_hilar_vessels_lie_outside_the_liver(hilum_case):
    """The trunk, the bifurcation, the right/left/umbilical portal portions and each hepatic vein's first
    part: their vessel voxels (within 0.8 radius of the axis, inside the ellipsoid) are vessel, never liver."""
    _, p = hilum_case
    labels, liver = p.labels.array, p.liver.array.astype(bool)
    box, pts, ellipsoid, ivc, _ = liver_box_masks(p)
    hil = p.truth["anatomy"]["hilum"]
    for h in hil["pieces"]:
        core = ellipsoid & (axis_distance(pts, h["p0_mm"], h["p1_mm"]) <= 0.8 * h["vessel_radius_mm"])
        assert np.count_nonzero(core & ~ivc) > 0, h["name"]
        assert not (liver[box] & core).any(), h["name"]
        allowed = {PV} if h["structure"] == "portal_vein" else {HV, IVC}
        assert set(np.unique(labels[box][core]).tolist()) <= allowed, h["name"]
    # the bifurcation itself
    hilum_point = next(v for v in p.truth["anatomy"]["vessels"] if v["name"] == "right portal vein")["p0_mm"]
    near = np.linalg.norm(pts - np.asarray(hilum_point), axis=-1) <= 3.0
    assert near.any() and np.all(labels[box][near] == PV) and not liver[box][near].any()


def test_intrahepatic_branches_start_at_the_carve_in_their_own_segment(hilum_case):
    name, p = hilum_case
    labels, liver = p.labels.array, p.liver.array.astype(bool)
    g = p.labels.geometry
    box, pts, _, _, _ = liver_box_masks(p)
    whole = {h["vessel"] for h in p.truth["anatomy"]["hilum"]["pieces"] if h["p1_mm"] == next(
        v for v in p.truth["anatomy"]["vessels"] if v["name"] == h["vessel"])["p1_mm"]}
    assert whole == set(HILAR_PORTAL)
    h_max = 0.5 * float(np.linalg.norm(g.spacing_mm))  # the nearest voxel centre lies within this of a point
    for v in p.truth["anatomy"]["vessels"]:
        if v["name"] in whole:
            continue
        core = axis_distance(pts, v["p0_mm"], v["p1_mm"]) <= 0.8 * v["radius_mm"]
        inside = core & liver[box]
        assert np.count_nonzero(inside) > 0, v["name"]
        structure = PV if v["structure"] == "portal_vein" else HV
        assert np.all(labels[box][inside] == structure), v["name"]
        # it starts at the carved surface: its axis is not liver deep in the carve, and is liver just outside
        # it (inside the ellipsoid, off the IVC and the carve by more than a voxel)
        t = np.linspace(0.0, 1.0, 400)[:, None]
        axis = np.asarray(v["p0_mm"]) + t * np.subtract(v["p1_mm"], v["p0_mm"])
        i, j, k = np.round(np.linalg.solve(g.affine_lps[:3, :3], (axis - g.origin_mm).T)).astype(int)
        on_liver = liver[k, j, i]
        depth = np.min([axis_distance(axis, h["p0_mm"], h["p1_mm"]) - h["radius_mm"]
                        for h in p.truth["anatomy"]["hilum"]["pieces"]], axis=0)
        assert not on_liver[depth < -h_max].any(), v["name"]
        q = ((axis - p.truth["liver"]["ellipsoid_center_mm"]) @ np.asarray(p.truth["liver"]["ellipsoid_axes"])
             ) / np.asarray(p.truth["liver"]["ellipsoid_radii_mm"])
        in_liver_analytic = (np.sum(q * q, axis=1) < 0.9) & (depth > h_max) & (
            np.linalg.norm(axis[:, :2] - p.truth["anatomy"]["ivc_axis_xy_mm"], axis=1)
            > p.truth["anatomy"]["ivc_radius_mm"] + h_max)
        assert on_liver[in_liver_analytic].all(), v["name"]
        # the left hepatic vein's first piece (32 mm) is carved to 25 mm from the IVC axis plus its 8 mm end
        # cap: its intrahepatic course begins with the distal piece
        assert in_liver_analytic.any() or v["name"] == "left hepatic vein", v["name"]
        if v["name"] in PORTAL_BRANCH_SEGMENTS:
            # the parenchyma around its intrahepatic part is its own segment(s): the commonest one, and each
            # named segment of a sectoral branch is there
            around = ndimage.binary_dilation(inside, iterations=2) & ~inside & liver[box]
            segs = labels[box][around]
            counts = np.bincount(segs[(segs >= 1) & (segs <= 8)], minlength=9)
            want = PORTAL_BRANCH_SEGMENTS[v["name"]]
            assert int(np.argmax(counts)) in want and all(counts[s] > 0 for s in want), (name, v["name"], counts)


def test_hilar_carve_volume(hilum_case):
    name, p = hilum_case
    tr = p.truth
    g = p.labels.geometry
    carve_ml = tr["liver"]["hilar_carve_ml"]
    # an independent count: a 0.7 mm lattice over the carve's box, plain numpy, one z slab at a time
    c = np.asarray(tr["liver"]["ellipsoid_center_mm"])
    radii = np.asarray(tr["liver"]["ellipsoid_radii_mm"])
    axes = np.asarray(tr["liver"]["ellipsoid_axes"])
    an = tr["anatomy"]
    pieces = an["hilum"]["pieces"]
    ends = np.array([e for h in pieces for e in (h["p0_mm"], h["p1_mm"])])
    pad = np.repeat([h["radius_mm"] for h in pieces], 2)[:, None]
    half = np.sqrt(np.sum((axes * radii[None, :]) ** 2, axis=1))
    lo, hi = np.maximum((ends - pad).min(axis=0), c - half), np.minimum((ends + pad).max(axis=0), c + half)
    step = 0.7
    xs, ys, zs = (np.arange(lo[n] + step / 2, hi[n], step) for n in range(3))
    xx, yy = np.meshgrid(xs, ys, indexing="ij")
    n_in = 0
    for z in zs:
        pts = np.stack([xx, yy, np.full_like(xx, z)], axis=-1)
        q = ((pts - c) @ axes) / radii
        m = (np.sum(q * q, axis=-1) <= 1.0) & ~(
            (np.sum((pts[..., :2] - an["ivc_axis_xy_mm"]) ** 2, axis=-1) <= an["ivc_radius_mm"] ** 2)
            & (an["ivc_z_mm"][0] <= z <= an["ivc_z_mm"][1]))
        hit = np.zeros(m.shape, bool)
        for h in pieces:
            hit |= axis_distance(pts, h["p0_mm"], h["p1_mm"]) <= h["radius_mm"]
        n_in += int(np.count_nonzero(m & hit))
    lattice_ml = n_in * step**3 / 1000.0
    # two lattice quadratures (0.5 and 0.7 mm) of a ~49 mL union of tubes of radius >= 6.5 mm: 0.06% apart
    # measured; 0.5% catches a missing or misplaced piece (the smallest, the caudate branch's, is ~4%)
    assert carve_ml == pytest.approx(lattice_ml, rel=0.005)
    # analytic: a flat cylinder pi r^2 L per piece (L its axis length inside the liver, off the IVC), plus a
    # hemisphere at each free end (the umbilical, right posterior, caudate and hepatic-vein ends); this
    # counts the overlaps at the three junctions (the bifurcation, the right and left portal corners)
    # twice, so it lies above the union (+8% measured) and the cylinders alone below it (-6%); halfway,
    # +0.9% measured
    t = (np.arange(4000) + 0.5) / 4000
    flat_ml = caps_ml = 0.0
    for h in pieces:
        p0, p1 = np.asarray(h["p0_mm"]), np.asarray(h["p1_mm"])
        axis = p0 + t[:, None] * (p1 - p0)
        q = ((axis - c) @ axes) / radii
        inside = (np.sum(q * q, axis=1) <= 1.0) & (
            np.linalg.norm(axis[:, :2] - an["ivc_axis_xy_mm"], axis=1) > an["ivc_radius_mm"])
        flat_ml += math.pi * h["radius_mm"] ** 2 * inside.mean() * np.linalg.norm(p1 - p0) / 1000.0
        if h["name"] not in ("portal trunk", "right portal vein", "left portal vein"):
            caps_ml += 2.0 / 3.0 * math.pi * h["radius_mm"] ** 3 / 1000.0
    assert flat_ml < carve_ml < flat_ml + caps_ml
    assert carve_ml == pytest.approx(flat_ml + caps_ml / 2.0, rel=0.10)
    # the grid's voxels: 0.06% off on the default grid, up to 1.4% on the coarse oblique one (thin tubes
    # of 6.5-10.5 mm radius on 3 x 3 x 5 mm voxels)
    voxel_ml = tr["liver"]["hilar_carve_voxels"] * g.voxel_volume_ml
    assert voxel_ml == pytest.approx(carve_ml, rel=0.005 if name == "default" else 0.03)
    assert 40.0 < carve_ml < 60.0


def test_hilum_keeps_the_phantom_invariants(hilum_case):
    name, p = hilum_case
    labels, liver = p.labels.array, p.liver.array.astype(bool)
    tr = p.truth
    counts = label_counts(labels)
    for s in SEGMENTS:
        assert ndimage.label(labels == s)[1] == 1, f"{name}: segment {s} is not one 6-connected piece"
    for k in range(1, 13):
        assert tr["labels"][str(k)]["voxels"] == counts[k]
    inside = label_counts(labels[liver])
    assert inside[0] == 0 and inside[IVC] == 0
    assert label_counts(labels[~liver])[1:10].sum() == 0  # no parenchyma or tumour in the carve
    assert tr["liver"]["voxels"] == counts[1:10].sum() + inside[PV] + inside[HV]
    assert tr["liver"]["volume_ml"] == pytest.approx(tr["liver"]["analytic_volume_ml"], rel=0.01)
    pairs = face_pairs(labels)
    seg_pairs = {q for q in pairs if q[1] <= 8}
    if p.labels.geometry.is_oblique():
        assert seg_pairs >= REQUIRED_PAIRS and not FORBIDDEN_PAIRS & seg_pairs
        # on 3 x 3 x 5 mm voxels a grazing corner is a few faces (9 measured, V-VII and VI-VIII, as without
        # the hilum) against >= 54 on a real boundary (I-IV, which the carve under the caudate shortens)
        smallest_true = min(pairs[q] for q in TEXTBOOK_PAIRS)
        assert all(n < 0.2 * smallest_true for q, n in pairs.items() if q[1] <= 8 and q not in TEXTBOOK_PAIRS)
    else:
        assert seg_pairs == TEXTBOOK_PAIRS
    tumors = tr["tumors"]
    assert 2 <= len(tumors) <= 4 and ndimage.label(labels == TUMOR)[1] == len(tumors)
    clearance = 3.0  # the documented tumour clearance (TUMOR_CLEARANCE_MM)
    for t in tumors:
        assert 8.0 <= t["radius_mm"] <= 25.0
        for h in tr["anatomy"]["hilum"]["pieces"]:
            gap = axis_distance(np.asarray(t["center_mm"]), h["p0_mm"], h["p1_mm"]) - h["radius_mm"] - t["radius_mm"]
            assert gap >= clearance - 1e-9, (t["id"], h["name"])
