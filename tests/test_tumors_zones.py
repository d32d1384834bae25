"""flr.tumors and flr.zones on analytic shapes (seeded, anisotropic and oblique grids) and on the phantom."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flr.errors import GeometryMismatchError, PlanError
from flr.image import Geometry
from flr.phantom import PHANTOM_LABELS, TUMOR, make_liver_phantom, sphere_mask
from flr.tumors import MIN_SEGMENT_SHARE, find_tumors
from flr.zones import (
    MARGIN_CLASSES,
    ablation_zone,
    classify_margin,
    parse_zone_spec,
    surface_offset_mm,
    tumor_margin,
    wedge_zone,
)


def rotation(axis, deg):
    """Rodrigues rotation matrix about ``axis`` by ``deg`` degrees."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    t = math.radians(deg)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def grid(shape_zyx, spacing_mm, *, deg=0.0, center_mm=(0.0, 0.0, 0.0)):
    """A grid whose central voxel position is ``center_mm``; oblique when ``deg`` != 0."""
    d = rotation((1.0, 2.0, 3.0), deg) if deg else np.eye(3)
    half_xyz = (np.asarray(shape_zyx[::-1], float) - 1) / 2
    origin = np.asarray(center_mm) - d @ (np.asarray(spacing_mm) * half_xyz)
    return Geometry(shape_zyx, spacing_mm, tuple(origin), tuple(d.ravel()))


def centres_lps(g):
    """LPS (x, y, z) mm of every voxel centre, shape (z, y, x, 3)."""
    zz, yy, xx = np.indices(g.shape_zyx)
    a = g.affine_lps
    return np.stack([xx, yy, zz], -1) @ a[:3, :3].T + a[:3, 3]


def lps_to_index_zyx(g, p):
    x, y, z = np.linalg.solve(g.affine_lps[:3, :3], np.asarray(p) - np.asarray(g.origin_mm))
    return np.array([z, y, x])


def diagonal_mm(g):
    return math.sqrt(sum(s * s for s in g.spacing_mm))


def cap_share(r, h):
    """Volume share of a ball of radius r beyond a plane at signed distance h from its centre."""
    return (r - h) ** 2 * (2 * r + h) / (4 * r**3)


# ------------------------------------------------------------------------------------------------
# find_tumors
# ------------------------------------------------------------------------------------------------

G5 = grid((44, 70, 84), (0.7, 0.9, 1.6), deg=23.0, center_mm=(31.0, -12.0, 55.0))
# three spheres of different radii, centres given as fractional (z, y, x) indices
SPHERES = [((12.3, 20.2, 22.6), 7.0), ((14.7, 52.4, 24.1), 5.0), ((32.2, 20.5, 62.8), 3.5)]
# two equal 3x3x3 cubes: B's first voxel (25, 40, 70) precedes A's (25, 60, 10) in raster order
CUBE_A = (slice(25, 28), slice(60, 63), slice(10, 13))
CUBE_B = (slice(25, 28), slice(40, 43), slice(70, 73))


def five_tumours():
    mask = np.zeros(G5.shape_zyx, bool)
    spheres = []
    for idx, r in SPHERES:
        s = sphere_mask(G5, G5.index_to_lps_mm(idx), r)
        assert not (s & mask).any()
        spheres.append(s)
        mask |= s
    mask[CUBE_A] = True
    mask[CUBE_B] = True
    return mask, spheres


def test_ids_by_size_then_raster_volumes_and_centroids_on_oblique_grid():
    assert G5.is_oblique()
    mask, spheres = five_tumours()
    tumors, ids = find_tumors(mask, G5)
    assert [t.id for t in tumors] == [1, 2, 3, 4, 5]
    assert ids.dtype == np.int32 and ids.shape == G5.shape_zyx
    expected = [*spheres, CUBE_B, CUBE_A]  # spheres by decreasing radius, then the tie by raster position
    for t, region in zip(tumors, expected, strict=True):
        truth = np.zeros(G5.shape_zyx, bool)
        truth[region] = True
        assert np.array_equal(ids == t.id, truth)
        assert t.voxels == int(truth.sum())
        assert t.volume_ml == pytest.approx(t.voxels * G5.voxel_volume_ml, rel=1e-12)  # float64 rounding only
        box = np.nonzero(truth)
        assert t.bbox_zyx == (*(int(i.min()) for i in box), *(int(i.max()) for i in box))
    assert tumors[3].voxels == tumors[4].voxels == 27
    # centroids within half a voxel (per index axis) of the analytic centres: a voxelised sphere is symmetric
    # up to its boundary voxels, whose imbalance moves the centroid by a small fraction of a voxel
    analytic = [idx for idx, _ in SPHERES] + [(26.0, 41.0, 71.0), (26.0, 61.0, 11.0)]
    for t, idx in zip(tumors, analytic, strict=True):
        err = np.abs(lps_to_index_zyx(G5, t.centroid_mm) - np.asarray(idx))
        assert err.max() < 0.5, (t.id, err)
    for t in tumors[3:]:  # a cube's centroid is exact; 1e-9 voxel covers float64 rounding of index -> LPS -> index
        assert np.allclose(lps_to_index_zyx(G5, t.centroid_mm), analytic[t.id - 1], atol=1e-9)
    assert tumors[0].segments == () and tumors[0].segment_fractions == {}
    row = json.loads(json.dumps(tumors[0].to_dict()))
    assert set(row) == {"id", "voxels", "volume_ml", "max_diameter_mm", "centroid_mm", "segments",
                        "segment_fractions"}


def test_instance_map_separates_touching_tumours_and_ignores_file_ids():
    mask = np.zeros(G5.shape_zyx, bool)
    inst = np.zeros(G5.shape_zyx, np.int32)
    mask[10:14, 10:14, 10:14] = True  # 64 voxels, instance 999999
    inst[10:14, 10:14, 10:14] = 999999
    mask[10:14, 10:14, 14:17] = True  # 48 voxels, touching it, instance 3
    inst[10:14, 10:14, 14:17] = 3
    mask[CUBE_A] = True  # equal cubes: the file gives A the smaller id, raster order puts B first
    inst[CUBE_A] = 5
    mask[CUBE_B] = True
    inst[CUBE_B] = 7
    inst[0, 0, 0] = 4  # an instance id outside the mask is ignored
    comps, _ = find_tumors(mask, G5)
    assert [t.voxels for t in comps] == [112, 27, 27]  # connected components merge the touching pair
    tumors, ids = find_tumors(mask, G5, instance_map=inst)
    assert [t.voxels for t in tumors] == [64, 48, 27, 27]
    assert np.array_equal(ids == 3, inst == 7) and np.array_equal(ids == 4, (inst == 5) & mask)
    assert ids[0, 0, 0] == 0


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda m: np.where(m, 1.5, 0.0), PlanError, "integer tumour ids"),
    (lambda m: np.where(m, -2, 0), PlanError, "negative"),
    (lambda m: np.zeros(m.shape, np.int32), PlanError, r"instance id 0 .*leave instance_map out"),
    (lambda _m: np.zeros((3, 3, 3), np.int32), GeometryMismatchError, "instance_map has shape"),
])
def test_bad_instance_maps(make, error, match):
    mask = np.zeros(G5.shape_zyx, bool)
    mask[CUBE_A] = True
    with pytest.raises(error, match=match):
        find_tumors(mask, G5, instance_map=make(mask))


def test_empty_mask_and_wrong_shape():
    tumors, ids = find_tumors(np.zeros(G5.shape_zyx, bool), G5)
    assert tumors == [] and ids.dtype == np.int32 and not ids.any()
    with pytest.raises(GeometryMismatchError, match="tumour mask has shape"):
        find_tumors(np.zeros((2, 2, 2), bool), G5)


GS = grid((40, 60, 70), (0.7, 0.9, 1.6), deg=-17.0, center_mm=(5.0, -20.0, 30.0))
NORMAL = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])


@pytest.mark.parametrize(("r", "h"), [(9.0, 2.0), (9.0, 4.5), (9.0, -3.0), (12.0, 6.0)])
def test_tumour_straddling_a_segment_plane(r, h):
    """Segment 1 | 2 split by a plane at signed distance h from a spherical tumour's centre."""
    c = GS.index_to_lps_mm((20.3, 30.2, 35.4))
    tumour = sphere_mask(GS, c, r)
    seg = np.where((centres_lps(GS) - c) @ NORMAL > h, 2, 1).astype(np.uint8)

    # segments drawn over the tumour too: the shares are the cap volumes (digitisation only)
    (t,), _ = find_tumors(tumour, GS, segment_map=seg)
    share = cap_share(r, h)
    # digitisation of a cap of a 9-12 mm sphere (3000-7200 voxels): measured <= 0.003 off the cap share
    assert t.segment_fractions["liver_segment_2"] == pytest.approx(share, abs=0.01)
    assert sum(t.segment_fractions.values()) == pytest.approx(1.0)
    big, small = ("liver_segment_2", "liver_segment_1") if share > 0.5 else ("liver_segment_1", "liver_segment_2")
    assert t.segments == (big, small)

    # the usual case, tumour voxels unlabelled: both segments found; the nearest-voxel rule gives the
    # surface (solid-angle) share (1 - h/r)/2, not the cap volume share (see flr.tumors)
    unlabelled = seg.copy()
    unlabelled[tumour] = 0
    (u,), _ = find_tumors(tumour, GS, segment_map=unlabelled)
    assert set(u.segments) == {"liver_segment_1", "liver_segment_2"}
    # the nearest labelled voxel is found across a one-voxel shell, not on the exact surface: measured up to
    # 0.0146 (r 9 mm, h -3 mm), close to this bound
    assert u.segment_fractions["liver_segment_2"] == pytest.approx((1 - h / r) / 2, abs=0.015)

    # a full label map (tumour label 9 on the tumour) with segment_names: only the named ids count
    full = seg.copy()
    full[tumour] = 9
    names = {1: "liver_segment_5", 2: "liver_segment_6"}
    (v,), _ = find_tumors(tumour, GS, segment_map=full, segment_names=names)
    assert v.segment_fractions == {names[int(k[-1])]: f for k, f in u.segment_fractions.items()}


def test_segments_under_one_percent_are_listed_in_fractions_only():
    c = GS.index_to_lps_mm((20.0, 30.0, 35.0))
    tumour = sphere_mask(GS, c, 8.0)
    seg = np.where(tumour, 4, 0).astype(np.uint8)
    seg[tuple(i[:3] for i in np.nonzero(tumour))] = 7  # 3 voxels of several hundred
    (t,), _ = find_tumors(tumour, GS, segment_map=seg)
    assert t.segments == ("liver_segment_4",)
    assert list(t.segment_fractions) == ["liver_segment_4", "liver_segment_7"]
    assert 0 < t.segment_fractions["liver_segment_7"] < MIN_SEGMENT_SHARE
    (e,), _ = find_tumors(tumour, GS, segment_map=np.zeros(GS.shape_zyx, np.uint8))
    assert e.segments == () and e.segment_fractions == {}


def test_phantom_tumour_segments_match_truth():
    p = make_liver_phantom(0)
    labels = np.asarray(p.labels.array)
    names = {k: PHANTOM_LABELS[k] for k in range(1, 9)}
    tumors, _ = find_tumors(labels == TUMOR, p.labels.geometry, segment_map=labels, segment_names=names)
    truth = p.truth["tumors"]
    assert len(tumors) == len(truth)
    assert [t.voxels for t in tumors] == sorted((row["voxels"] for row in truth), reverse=True)
    for t in tumors:
        row = min(truth, key=lambda q: np.linalg.norm(np.subtract(q["center_mm"], t.centroid_mm)))
        # mm; a voxelised sphere's centroid is within 0.11 mm of its centre here (1.5 mm voxels), and the nearest
        # other tumour is centimetres away, so 0.5 mm pairs each tumour with its truth row unambiguously
        assert np.linalg.norm(np.subtract(row["center_mm"], t.centroid_mm)) < 0.5
        assert t.voxels == row["voxels"]
        assert set(t.segments) == set(t.segment_fractions) == {f"liver_segment_{k}" for k in row["segments"]}


# ------------------------------------------------------------------------------------------------
# wedge and ablation zones
# ------------------------------------------------------------------------------------------------

SPACING_Z = (0.8, 0.8, 1.5)


def zone_case(r, m, seed):
    """A sphere tumour of radius r inside a liver filling the grid, its centre off the lattice."""
    R = r + m + 3
    shape = (int(2 * R / 1.5) + 4, int(2 * R / 0.8) + 4, int(2 * R / 0.8) + 4)
    g = grid(shape, SPACING_Z, center_mm=(10.0, -20.0, 5.0))
    c = np.array([10.0, -20.0, 5.0]) + np.random.default_rng(seed).uniform(-0.8, 0.8, 3)
    return g, c, sphere_mask(g, c, r)


@pytest.mark.parametrize(("r", "m", "seed"), [(25.0, 10.0, 0), (20.0, 10.0, 1), (10.0, 10.0, 2), (8.0, 5.0, 3)])
def test_zone_volume_against_analytic_sphere(r, m, seed):
    g, c, tumour = zone_case(r, m, seed)
    ids = tumour.astype(np.int32)
    liver = np.ones(g.shape_zyx, bool)
    zone = wedge_zone(ids, 1, m, g, liver_mask=liver)
    assert np.array_equal(zone, ablation_zone(ids, 1, m, g, liver_mask=liver))
    # sandwich: the zone holds every voxel centre within r + m - diagonal of the centre and none beyond
    # r + m + offset + diagonal (the tumour's centres sit within a voxel diagonal of its surface)
    offset = surface_offset_mm(g)
    assert not (zone & ~sphere_mask(g, c, r + m + offset + diagonal_mm(g))).any()
    assert not (sphere_mask(g, c, r + m - diagonal_mm(g)) & ~zone).any()
    # the criterion: zone and shell volumes within 2% of the analytic sphere and sphere-shell volumes
    # (measured +0.4% to +0.9% zone, +0.5% to +1.1% shell on this 0.8 x 0.8 x 1.5 mm grid)
    v_ml = zone.sum() * g.voxel_volume_ml
    analytic = 4 / 3 * math.pi * (r + m) ** 3 / 1000
    shell = 4 / 3 * math.pi * ((r + m) ** 3 - r**3) / 1000
    assert abs(v_ml / analytic - 1) < 0.02
    assert abs((v_ml - tumour.sum() * g.voxel_volume_ml) / shell - 1) < 0.02


def test_zone_clipped_to_liver_keeps_the_tumour():
    g, c, tumour = zone_case(8.0, 10.0, 4)
    # liver = half-space whose boundary passes 3 mm from the tumour centre: the tumour pokes out of it
    liver = (centres_lps(g) - c) @ NORMAL < 3.0
    ids = tumour.astype(np.int32) * 2  # tumour id 2
    zone = wedge_zone(ids, 2, 10.0, g, liver_mask=liver)
    free = wedge_zone(ids, 2, 10.0, g, liver_mask=np.ones(g.shape_zyx, bool))
    assert not (zone & ~(liver | tumour)).any()
    assert (tumour <= zone).all()
    assert np.array_equal(zone, (free & liver) | tumour)
    assert zone.sum() < free.sum()


def test_remnant_after_a_wedge_keeps_the_margin():
    """Removing wedge_zone(m) leaves remnant parenchyma more than m from the tumour (same distance rule)."""
    g, _, tumour = zone_case(6.0, 5.0, 5)
    ids = tumour.astype(np.int32)
    liver = np.ones(g.shape_zyx, bool)
    for m in (0.0, 2.0, 5.0):
        remnant = liver & ~wedge_zone(ids, 1, m, g, liver_mask=liver)
        assert tumor_margin(ids, 1, remnant, g).margin_mm > m


@pytest.mark.parametrize(("tid", "margin", "error", "match"), [
    (3, 5.0, PlanError, r"tumour 3 is not in the tumour id map \(ids present: 1\)"),
    (0, 5.0, PlanError, "integer >= 1"),
    (1, -1.0, PlanError, "margin_mm must be a finite distance >= 0"),
    (1, math.nan, PlanError, "margin_mm"),
])
def test_bad_zone_requests(tid, margin, error, match):
    ids = np.zeros((5, 6, 7), np.int32)
    ids[2, 3, 3] = 1
    g = Geometry((5, 6, 7), SPACING_Z)
    with pytest.raises(error, match=match):
        wedge_zone(ids, tid, margin, g, liver_mask=np.ones((5, 6, 7), bool))
    with pytest.raises(GeometryMismatchError, match="liver mask has shape"):
        ablation_zone(ids, 1, 1.0, g, liver_mask=np.ones((5, 6, 8), bool))


# ------------------------------------------------------------------------------------------------
# margins
# ------------------------------------------------------------------------------------------------


def plane_case(g, c, r, d, normal):
    """Tumour sphere (radius r, centre c) and remnant = voxel centres beyond the plane at r + d from c."""
    tumour = sphere_mask(g, c, r)
    remnant = (centres_lps(g) - c) @ normal > r + d
    return tumour.astype(np.int32), remnant


@pytest.mark.parametrize(("d", "klass"), [(0.5, "<1 mm"), (5.0, "1-10 mm"), (12.0, ">=10 mm")])
def test_margin_to_a_resection_plane_aligned_grid(d, klass):
    # the plane's normal is the x axis (0.8 mm voxels) and the tumour's extreme voxel centre lies 0.02 mm
    # inside its surface, so the centre distance exceeds d by at most one x spacing (0.3, 0.6 and 0.8 mm
    # here): d = 0.5 mm reads 0.8 mm, "<1 mm"
    g = grid((30, 70, 80), (0.8, 0.9, 1.5), center_mm=(-5.0, 3.0, 12.0))
    c = g.index_to_lps_mm((15, 35, 20))
    t_ids, remnant = plane_case(g, c, 8.02, d, np.array([1.0, 0.0, 0.0]))
    m = tumor_margin(t_ids, 1, remnant, g)
    assert d <= m.margin_mm <= d + 0.8 + 1e-9
    assert m.margin_class == klass == classify_margin(m.margin_mm)


@pytest.mark.parametrize("d", [0.5, 5.0, 12.0])
def test_margin_within_one_voxel_diagonal_on_oblique_anisotropic_grid(d):
    rng = np.random.default_rng(int(d * 10))
    g = grid((34, 60, 60), (0.8, 0.8, 1.5), deg=31.0, center_mm=(40.0, -10.0, 20.0))
    diag = diagonal_mm(g)
    errors = []
    for _ in range(4):
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        r = rng.uniform(6.0, 9.0)
        c = np.array([40.0, -10.0, 20.0]) + rng.uniform(-1, 1, 3) - normal * (r + d) / 2
        t_ids, remnant = plane_case(g, c, r, d, normal)
        m = tumor_margin(t_ids, 1, remnant, g)
        # one-sided: tumour centres lie inside the ball and remnant centres beyond the plane, so the centre
        # distance can only exceed the analytic surface distance d (by less than one voxel diagonal)
        assert d - 1e-9 <= m.margin_mm <= d + diag  # 1e-9 mm: float rounding of the voxel-centre positions
        errors.append(m.margin_mm - d)
        tp, rp = np.asarray(m.tumor_point_mm), np.asarray(m.remnant_point_mm)
        assert np.linalg.norm(tp - rp) == pytest.approx(m.margin_mm)
        assert t_ids[tuple(np.rint(lps_to_index_zyx(g, tp)).astype(int))] == 1
        assert remnant[tuple(np.rint(lps_to_index_zyx(g, rp)).astype(int))]
        assert r - diag <= np.linalg.norm(tp - c) <= r  # on the tumour's surface layer
        assert 0 < (rp - c) @ normal - (r + d) <= diag  # on the remnant's cut face
    assert max(errors) < diag


def test_no_remnant_and_overlap():
    g = Geometry((6, 6, 6), SPACING_Z)
    ids = np.zeros((6, 6, 6), np.int32)
    ids[2:4, 2:4, 2:4] = 1
    m = tumor_margin(ids, 1, np.zeros((6, 6, 6), bool), g)
    assert m.margin_mm == math.inf and m.tumor_point_mm is None and m.remnant_point_mm is None
    assert m.margin_class == ">=10 mm"
    assert json.loads(json.dumps(m.to_dict())) == {"margin_mm": None, "margin_class": ">=10 mm",
                                                   "tumor_point_mm": None, "remnant_point_mm": None}
    overlap = tumor_margin(ids, 1, ids == 1, g)
    assert overlap.margin_mm == 0.0 and overlap.margin_class == "<1 mm"


def test_classify_margin():
    assert [classify_margin(v) for v in (0.0, 0.99, 1.0, 9.99, 10.0, 40.0)] == \
        ["<1 mm", "<1 mm", "1-10 mm", "1-10 mm", ">=10 mm", ">=10 mm"]
    assert MARGIN_CLASSES == (">=10 mm", "1-10 mm", "<1 mm")
    for bad in (-0.1, math.nan):
        with pytest.raises(PlanError, match="margin_mm must be >= 0"):
            classify_margin(bad)


# ------------------------------------------------------------------------------------------------
# parse_zone_spec
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("3", (3, 10.0)), ("3:5", (3, 5.0)), ("3:5mm", (3, 5.0)), (" 12 : 7.5 MM ", (12, 7.5)), ("1:0", (1, 0.0)),
    ("2:1e1", (2, 10.0)),
])
def test_parse_zone_spec(spec, expected):
    assert parse_zone_spec(spec) == expected


def test_parse_zone_spec_default_margin():
    assert parse_zone_spec("4", default_margin_mm=2.5) == (4, 2.5)
    with pytest.raises(PlanError, match="margin_mm"):
        parse_zone_spec("4", default_margin_mm=-1.0)


@pytest.mark.parametrize(("spec", "match"), [
    ("", "tumour id '' is not a whole number"),
    ("a", "'a'.*not a whole number"),
    ("3.5", "'3.5'.*not a whole number"),
    ("-1", "'-1'.*not a whole number"),
    ("0", "'0'.*must be >= 1"),
    ("3:", "'3:'.*not a number of mm"),
    ("3:abc", "'3:abc'.*not a number of mm"),
    ("3:-5", "'3:-5'.*must be >= 0 mm"),
    ("3:inf", "'3:inf'.*not a number of mm"),
    ("3:nan", "'3:nan'.*not a number of mm"),
    ("3:5:6", "'3:5:6' is not ID or ID:MARGIN_MM"),
    ("3:5cm", "'3:5cm'.*not a number of mm"),
])
def test_parse_zone_spec_rejects(spec, match):
    with pytest.raises(PlanError, match=match):
        parse_zone_spec(spec)


def test_cropped_segment_search_matches_whole_volume_nearest_label():
    """The per-tumour cropped search gives the shares of flr.distance.nearest_label on the whole volume."""
    from flr.distance import nearest_label

    p = make_liver_phantom(3, spacing_mm=(2.0, 2.0, 3.0))
    labels = np.asarray(p.labels.array)
    g = p.labels.geometry
    seg = np.where(labels <= 8, labels, 0)
    tumors, ids = find_tumors(labels == TUMOR, g, segment_map=seg)
    near = nearest_label(seg, ids > 0, g)
    for t in tumors:
        codes, counts = np.unique(near[ids == t.id], return_counts=True)
        expected = {f"liver_segment_{c}": n / t.voxels for c, n in zip(codes, counts, strict=True)}
        assert t.segment_fractions.keys() == expected.keys()
        for name, share in expected.items():
            # room for one voxel of the smallest tumour (1/282 = 0.0035) to fall the other way at a distance
            # tie between the cropped search and the whole-volume transform; measured identical (seed 3)
            assert t.segment_fractions[name] == pytest.approx(share, abs=0.005)


def test_segment_search_grows_until_it_finds_the_nearest_segment():
    g = Geometry((30, 30, 120), (1.0, 1.0, 1.0))
    mask = np.zeros(g.shape_zyx, bool)
    mask[14:17, 14:17, 5:8] = True
    seg = np.zeros(g.shape_zyx, np.uint8)
    seg[:, :, 100:] = 3  # 93 mm away: far beyond the first search pad
    seg[:, :, 110:] = 6
    (t,), _ = find_tumors(mask, g, segment_map=seg)
    assert t.segments == ("liver_segment_3",)


@pytest.mark.parametrize(("spacing_mm", "z_deg"), [((0.8, 0.8, 1.5), 0.0), ((1.5, 1.5, 2.5), 20.0),
                                                   ((0.7, 1.1, 3.0), 35.0)])
def test_max_diameter_is_the_largest_extent_on_any_grid(spacing_mm, z_deg):
    """An oblique 60 x 40 x 40 mm ellipsoid measures 60 mm within one voxel on anisotropic rotated grids; a
    rod of n voxels along x measures n - 1 voxel steps plus a quarter voxel at each end; a single voxel half
    its diagonal."""
    from flr.tumors import max_diameter_mm

    c, s = math.cos(math.radians(z_deg)), math.sin(math.radians(z_deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    n = [int(100 / v) for v in spacing_mm]
    g = Geometry(shape_zyx=(n[2], n[1], n[0]), spacing_mm=spacing_mm,
                 origin_mm=tuple(-rot @ (np.asarray(n) * np.asarray(spacing_mm) / 2)), direction=tuple(rot.ravel()))
    zz, yy, xx = np.indices(g.shape_zyx)
    lps = np.stack([xx, yy, zz], axis=-1).astype(float) @ g.affine_lps[:3, :3].T + np.asarray(g.origin_mm)
    u = np.array([1.0, 1.0, 0.5]) / np.linalg.norm([1.0, 1.0, 0.5])
    t = lps @ u
    radial = np.linalg.norm(lps - t[..., None] * u, axis=-1)
    tumors, _ = find_tumors((t / 30.0) ** 2 + (radial / 20.0) ** 2 <= 1.0, g)
    assert abs(tumors[0].max_diameter_mm - 60.0) <= max(spacing_mm)
    rod = (np.full(7, 3), np.full(7, 4), np.arange(10, 17))
    assert max_diameter_mm(rod, g.spacing_zyx_mm) == pytest.approx(6.5 * spacing_mm[0])
    one = (np.array([1]), np.array([1]), np.array([1]))
    assert max_diameter_mm(one, g.spacing_zyx_mm) == pytest.approx(0.5 * float(np.linalg.norm(spacing_mm)))
