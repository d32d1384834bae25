"""Separation of a mixed vessel mask (portal + hepatic veins in one class) into the two venous systems.

Independent truth: on the phantom, its own portal-vein and hepatic-vein labels (merged before the split,
compared after); on the real MSD8 Couinaud maps, which have no truth of the split, anatomical facts that do
not come from the algorithm (the portal vein enters at the hilum, caudal of the hepatic-vein confluence at
the top of the liver, where the hepatic veins are widest).

Figures measured when this was written (phantom of ``flr.phantom`` as of then; the asserted bounds leave
a margin): IVC-, extrahepatic- and mask-seeded splits 100 % of the vessel voxels right on three grids;
strictly intrahepatic masks with anatomical seeds only 53-94 % (depending on the grid and on the
phantom's version; 67-70 % on the two asserted here, bound 60 %), at a mean confidence of 0.2-0.5: weak;
MSD8 portal shares 0.24-0.71, the portal system 9-35 mm caudal of the hepatic one. With a Couinaud segment
map (roots anchored on the segments): landmarks 12-18 mm from the phantom's truth; the phantom's split 48 %
right (bound 40 %); on MSD8 a left lateral sectionectomy keeps V-VIII 98-100 % functional (bound 90 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from flr.errors import GeometryMismatchError
from flr.image import Geometry
from flr.phantom import HEPATIC_VEIN, IVC, PORTAL_VEIN
from flr.vesselsplit import segment_landmarks, split_vessels
from tests.helpers import phantom

MSD8_CASES = ["MSD-011.nii.gz", "MSD-037.nii.gz", "MSD-207.nii.gz", "MSD-255.nii.gz"]


def truth(p):
    """(portal, hepatic, liver) bool masks of a phantom, from its labels."""
    lab = p.labels.array
    return lab == PORTAL_VEIN, lab == HEPATIC_VEIN, p.liver.array > 0


def right_fraction(split, portal, hepatic) -> float:
    """Share of the vessel voxels put in their own system."""
    right = np.count_nonzero(split.portal & portal) + np.count_nonzero(split.hepatic & hepatic)
    return right / np.count_nonzero(portal | hepatic)


def assert_partition(split, mixed) -> None:
    assert split.status == "pass", split.detail
    assert not (split.portal & split.hepatic).any()
    assert np.array_equal(split.portal | split.hepatic, mixed)
    assert split.confidence.min() >= 0.0 and split.confidence.max() <= 1.0
    assert not split.confidence[~mixed].any()
    for root, system in ((split.portal_root, split.portal), (split.hepatic_root, split.hepatic)):
        assert root is not None and root.any() and not (root & ~system).any()
    json.dumps(split.to_dict())


def touching(p, portal, hepatic, liver, radius_mm: float = 2.0):
    """A bridge of vessel (a cylinder of ``radius_mm``) between the closest intrahepatic voxels of the two
    systems, as where a segmentation merges a portal branch and a hepatic vein that cross: bool mask."""
    from scipy.spatial import cKDTree

    spacing = np.asarray(p.labels.geometry.spacing_zyx_mm)
    a, b = np.argwhere(portal & liver), np.argwhere(hepatic & liver)
    dist, k = cKDTree(b * spacing).query(a * spacing)
    i = int(np.argmin(dist))
    p0, p1 = a[i] * spacing, b[k[i]] * spacing
    grid = np.indices(portal.shape).reshape(3, -1).T * spacing
    u = (p1 - p0) / np.linalg.norm(p1 - p0)
    t = np.clip((grid - p0) @ u, 0.0, np.linalg.norm(p1 - p0))
    near = np.linalg.norm(grid - p0 - t[:, None] * u, axis=1) <= radius_mm
    return near.reshape(portal.shape)


# --- phantom with a hilum: trunks outside the liver ---------------------------------------------------------


def test_phantom_seeded_by_the_ivc():
    p = phantom(0)
    portal, hepatic, _ = truth(p)
    mixed = portal | hepatic
    split = split_vessels(mixed, p.labels.geometry, ivc_mask=p.labels.array == IVC)
    assert_partition(split, mixed)
    assert right_fraction(split, portal, hepatic) >= 0.95
    assert split.seeds_by_system[1] == "masks" and split.to_dict()["hepatic_seeds"] == "masks"


def test_phantom_seeded_by_the_extrahepatic_pieces_only():
    p = phantom(0)
    portal, hepatic, liver = truth(p)
    mixed = portal | hepatic
    split = split_vessels(mixed, p.labels.geometry, liver_mask=liver)
    assert_partition(split, mixed)
    assert split.seeds == "extrahepatic"
    assert right_fraction(split, portal, hepatic) >= 0.95
    # the roots are the trunks outside the liver
    assert not (split.portal_root & liver).any() and not (split.hepatic_root & liver).any()


def test_confidence_is_lower_where_the_systems_touch():
    p = phantom(0)
    portal, hepatic, liver = truth(p)
    touched = portal | hepatic | touching(p, portal, hepatic, liver)     # a bridge of vessel between them
    split = split_vessels(touched, p.labels.geometry, liver_mask=liver)
    assert_partition(split, touched)
    assert right_fraction(split, portal, hepatic) >= 0.95
    spacing = p.labels.geometry.spacing_zyx_mm
    to_other = np.where(portal, ndimage.distance_transform_edt(~hepatic, sampling=spacing),
                        ndimage.distance_transform_edt(~portal, sampling=spacing))[touched]
    near = to_other <= np.percentile(to_other, 2)          # the 2 % of voxels closest to the other system
    confidence = split.confidence[touched]
    assert confidence[near].mean() < confidence[~near].mean() - 0.1     # measured 0.75 against 0.99


@pytest.mark.parametrize(("seed", "options", "seeding"), [
    (2, {"spacing_mm": (1.0, 1.2, 2.0), "oblique_deg": 25.0}, "portal_mask"),
    (3, {"spacing_mm": (2.0, 1.8, 3.0), "oblique_deg": -15.0}, "ivc_and_liver"),
])
def test_phantom_on_other_grids(seed, options, seeding):
    p = phantom(seed, **options)
    portal, hepatic, liver = truth(p)
    mixed = portal | hepatic
    if seeding == "portal_mask":   # the portal trunk as TotalSegmentator gives it: outside the liver
        kwargs = {"portal_mask": portal & ~liver}
    else:
        kwargs = {"ivc_mask": p.labels.array == IVC, "liver_mask": liver}
    split = split_vessels(mixed, p.labels.geometry, **kwargs)
    assert_partition(split, mixed)
    assert right_fraction(split, portal, hepatic) >= 0.95
    assert split.seeds_by_system[0 if seeding == "portal_mask" else 1] == "masks"


# --- strictly intrahepatic (as MSD8): anatomical seeds ------------------------------------------------------


@pytest.mark.parametrize(("seed", "options"), [(0, {}), (2, {"spacing_mm": (1.0, 1.2, 2.0), "oblique_deg": 25.0})])
def test_intrahepatic_only_with_anatomical_seeds(seed, options):
    # the trunks are cut off, so the mask falls apart into one piece per segment branch; roots inferred
    # from anatomy put 67-70 % of the voxels right here (measured), at a confidence the split marks as low
    p = phantom(seed, **options)
    portal, hepatic, liver = truth(p)
    portal, hepatic = portal & liver, hepatic & liver
    mixed = portal | hepatic
    split = split_vessels(mixed, p.labels.geometry, liver_mask=liver)
    assert_partition(split, mixed)
    assert split.seeds == "anatomical" and "anatomical" in split.to_dict()["seeds"]
    assert right_fraction(split, portal, hepatic) >= 0.60
    assert split.mean_confidence is not None and split.mean_confidence <= 0.6
    assert "inferred from anatomy" in split.detail


def test_intrahepatic_only_without_anatomical_seeds_is_not_assessed():
    p = phantom(0)
    portal, hepatic, liver = truth(p)
    mixed = (portal | hepatic) & liver
    split = split_vessels(mixed, p.labels.geometry, liver_mask=liver, anatomical_seeds=False)
    assert split.status == "not_assessed" and split.seeds == "none"
    assert not split.portal.any() and not split.hepatic.any() and not split.confidence.any()
    assert "no extrahepatic trunk piece" in split.detail and "anatomical seeds off" in split.detail
    assert split.portal_root is None and split.hepatic_root is None
    assert split.to_dict()["status"] == "not_assessed"


def test_no_mask_at_all_is_not_assessed():
    split = split_vessels(np.zeros((6, 7, 8), bool), Geometry(shape_zyx=(6, 7, 8)), anatomical_seeds=False)
    assert split.status == "not_assessed" and "empty" in split.detail


def test_an_ivc_mask_far_from_every_vessel_leaves_the_hepatic_veins_unseeded():
    p = phantom(0)
    portal, hepatic, liver = truth(p)
    far = np.zeros_like(liver)
    far[:2, :2, :2] = True
    split = split_vessels(portal | hepatic, p.labels.geometry, liver_mask=liver, ivc_mask=far)
    assert split.status == "not_assessed"
    assert "ivc_mask" in split.detail and "hepatic veins" in split.detail


def test_a_mask_on_another_grid_is_refused():
    g = Geometry(shape_zyx=(6, 7, 8))
    with pytest.raises(GeometryMismatchError, match=r"liver_mask has shape .*\(6, 7, 9\)"):
        split_vessels(np.ones((6, 7, 8), bool), g, liver_mask=np.ones((6, 7, 9), bool))


# --- real data: MSD8 Couinaud maps (mixed, strictly intrahepatic, no truth of the split) ---------------------


def _msd8(shared_data: Path, name: str):
    from flr.io import read_image

    d = shared_data / "couinaud-msd8"
    if not (d / "vessel" / name).is_file():
        pytest.skip(f"{d / 'vessel' / name} not found")
    vessel = read_image(d / "vessel" / name)          # float64 0/1
    liver = read_image(d / "liver" / name)
    assert liver.geometry.shape_zyx == vessel.geometry.shape_zyx
    return vessel.array > 0.5, liver.array > 0, vessel.geometry


def _lps(geometry: Geometry, mask: np.ndarray) -> np.ndarray:
    a = geometry.affine_lps
    return np.argwhere(mask)[:, ::-1] @ a[:3, :3].T + a[:3, 3]


@pytest.mark.parametrize("name", MSD8_CASES)
def test_msd8_split_is_anatomically_plausible(shared_data, name):
    mixed, liver, g = _msd8(shared_data, name)
    split = split_vessels(mixed, g, liver_mask=liver)
    assert_partition(split, mixed)
    assert split.seeds == "anatomical"
    n = np.count_nonzero(mixed)
    assert np.count_nonzero(split.portal) >= 0.2 * n and np.count_nonzero(split.hepatic) >= 0.2 * n
    portal, hepatic, outline = _lps(g, split.portal), _lps(g, split.hepatic), _lps(g, liver)
    # the portal vein branches from the hilum, caudal of the hepatic veins' confluence (measured 9-35 mm)
    assert portal[:, 2].mean() < hepatic[:, 2].mean() - 5.0
    # the hepatic veins are widest where they leave the liver, at its cranial surface: their thickest
    # voxels lie in the upper part of the liver (measured 0.71-0.80 of its height), above the portal's
    radius = ndimage.distance_transform_edt(mixed, sampling=g.spacing_zyx_mm)
    z_lo, z_hi = outline[:, 2].min(), outline[:, 2].max()

    def thickest_height(system, points):
        r = radius[system]
        return (points[r >= np.percentile(r, 95), 2].mean() - z_lo) / (z_hi - z_lo)

    assert thickest_height(split.hepatic, hepatic) >= 0.65
    assert thickest_height(split.hepatic, hepatic) > thickest_height(split.portal, portal)


def test_msd8_split_is_deterministic(shared_data):
    mixed, liver, g = _msd8(shared_data, "MSD-037.nii.gz")
    a = split_vessels(mixed, g, liver_mask=liver)
    b = split_vessels(mixed, g, liver_mask=liver)
    assert np.array_equal(a.portal, b.portal) and np.array_equal(a.confidence, b.confidence)
    assert a.to_dict() == b.to_dict()


# --- strictly intrahepatic with a Couinaud segment map: roots anchored on the segments -------------------

#: The phantom variants of the segment-map tests: default, another spacing and oblique, anisotropic.
SEGMENT_MAP_VARIANTS = [(0, {}), (2, {"oblique_deg": 12.0, "spacing_mm": (1.2, 1.2, 3.0)}),
                        (3, {"spacing_mm": (2.0, 1.8, 3.0), "oblique_deg": -15.0})]


def _segments(p) -> np.ndarray:
    lab = p.labels.array
    return np.where((lab >= 1) & (lab <= 8), lab, 0)


def _truth_points(p) -> tuple[np.ndarray, np.ndarray]:
    """(hilum, confluence) LPS mm of the phantom: the portal trunk's end, the hepatic veins' common start."""
    vessels = p.truth["anatomy"]["vessels"]
    hilum = next(v for v in vessels if v["name"] == "portal trunk")["p1_mm"]
    confluence = next(v for v in vessels if v["structure"] == "hepatic_vein")["p0_mm"]
    return np.asarray(hilum), np.asarray(confluence)


@pytest.mark.parametrize(("seed", "options"), SEGMENT_MAP_VARIANTS)
def test_segment_landmarks_lie_near_the_true_hilum_and_confluence(seed, options):
    # measured: hilum 14-18 mm from the bifurcation (the I/IV/V meeting lies behind it, on the caudate's lower
    # face), confluence 12-14 mm from it (the VII/VIII/IV meeting is the IVC's ventral face, the IVC's
    # radius is 12 mm); bound 25 mm
    p = phantom(seed, **options)
    marks = segment_landmarks(_segments(p), p.labels.geometry)
    hilum, confluence = _truth_points(p)
    assert marks.hilum_lps_mm is not None and marks.confluence_lps_mm is not None
    assert np.linalg.norm(marks.hilum_lps_mm - hilum) <= 25.0
    assert np.linalg.norm(marks.confluence_lps_mm - confluence) <= 25.0
    assert marks.hilum_lps_mm[2] < marks.confluence_lps_mm[2] - 25.0          # caudal (LPS -z) of it


@pytest.mark.parametrize(("seed", "options"), SEGMENT_MAP_VARIANTS)
def test_intrahepatic_only_with_a_segment_map(seed, options):
    # The phantom's hilar trunks lie outside its liver, so the intrahepatic mask is one piece per segment
    # branch, the nearest portal piece 17 mm from the hilum and hepatic-vein pieces 22 mm from it: measured
    # 48 % of the voxels right on all three grids (the thickness-based roots: 53-94 %); the hepatic root
    # holds no portal voxel. Weak, and asserted as such.
    p = phantom(seed, **options)
    portal, hepatic, liver = truth(p)
    portal, hepatic = portal & liver, hepatic & liver
    mixed = portal | hepatic
    split = split_vessels(mixed, p.labels.geometry, liver_mask=liver, segment_map=_segments(p))
    assert_partition(split, mixed)
    assert split.seeds == "anatomical" and "Couinaud segment map" in split.detail
    assert right_fraction(split, portal, hepatic) >= 0.40
    assert not (split.hepatic_root & portal).any()


def test_a_segment_map_on_another_grid_is_refused():
    g = Geometry(shape_zyx=(6, 7, 8))
    with pytest.raises(GeometryMismatchError, match=r"segment_map has shape .*\(6, 7, 9\)"):
        split_vessels(np.ones((6, 7, 8), bool), g, segment_map=np.ones((6, 7, 9), np.int16))


def test_a_segment_map_without_segments_has_no_landmarks():
    marks = segment_landmarks(np.zeros((6, 7, 8), np.int16), Geometry(shape_zyx=(6, 7, 8)))
    assert marks.hilum_lps_mm is None and marks.confluence_lps_mm is None


def _msd8_segments(shared_data: Path, name: str) -> np.ndarray:
    from flr.io import read_image

    return np.asarray(read_image(shared_data / "couinaud-msd8" / "label" / name).array).astype(np.int16)


@pytest.mark.parametrize("name", MSD8_CASES)
def test_msd8_roots_lie_where_the_segments_say(shared_data, name):
    mixed, liver, g = _msd8(shared_data, name)
    segments = _msd8_segments(shared_data, name)
    split = split_vessels(mixed, g, liver_mask=liver, segment_map=segments)
    assert_partition(split, mixed)
    portal_root, hepatic_root = _lps(g, split.portal_root), _lps(g, split.hepatic_root)
    # the portal root is caudal of the hepatic root (the hilum lies 4-8 cm below the confluence)
    assert portal_root[:, 2].mean() < hepatic_root[:, 2].mean() - 20.0
    # and next to segments I, IV and V: within 40 mm of each (the mask lacks the hilar trunk)
    spacing = g.spacing_zyx_mm
    for code in (1, 4, 5):
        to_segment = ndimage.distance_transform_edt(segments != code, sampling=spacing)
        assert np.median(to_segment[split.portal_root]) <= 40.0, code


@pytest.mark.parametrize("name", MSD8_CASES)
def test_msd8_left_lateral_sectionectomy_keeps_the_right_liver(shared_data, name):
    # end to end: the territory model rooted where the segments put the trunks; measured V-VIII 98-100 %
    import flr
    from flr.assessment import assess
    from flr.image import LabelMap
    from flr.io import read_image
    from flr.plan import resection_plan

    d = shared_data / "couinaud-msd8"
    if not (d / "vessel" / name).is_file():
        pytest.skip(f"{d / 'vessel' / name} not found")
    seg = flr.load(d / "label" / name, {k: f"liver_segment_{k}" for k in range(1, 9)})
    liver = flr.load(d / "liver" / name, {1: "liver"})
    v = read_image(d / "vessel" / name)
    vessels = LabelMap((v.array > 0.5).astype(np.uint8), v.geometry, str(d / "vessel" / name),
                       names={1: "hepatic_vessel"})
    plan = resection_plan("left-lateral-sectionectomy")
    if name == MSD8_CASES[0]:  # by default a mask without any trunk is not judged, and flr says why
        plain = assess([seg, liver, vessels], plan)
        assert plain.checks.inflow.status == plain.checks.outflow.status == "not_assessed"
        assert "no trunk" in plain.checks.inflow.detail and "--anatomical-vessel-seeds" in plain.checks.inflow.detail
        assert any("hepatic_vessel" in w and "not separated" in w for w in plain.warnings)
    a = assess([seg, liver, vessels], plan, anatomical_vessel_seeds=True)
    assert a.checks.inflow.status != "not_assessed" and a.checks.inflow.system.separation["seeds"] == "anatomical"
    functional = a.remnant.functional_segments_ml or {}
    for k in (5, 6, 7, 8):
        segment = f"liver_segment_{k}"
        assert functional.get(segment, 0.0) >= 0.90 * a.liver.segments_ml[segment], segment
