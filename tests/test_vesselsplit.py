"""Separation of a mixed vessel mask (portal + hepatic veins in one class) into the two venous systems.

Independent truth: on the phantom, its own portal-vein and hepatic-vein labels (merged before the split,
compared after); on the real MSD8 Couinaud maps, which have no truth of the split, anatomical facts that do
not come from the algorithm (the portal vein enters at the hilum, caudal of the hepatic-vein confluence at
the top of the liver, where the hepatic veins are widest).

Figures measured when this was written (phantom of ``flr.phantom`` as of then; the asserted bounds leave
a margin): IVC-, extrahepatic- and mask-seeded splits 100 % of the vessel voxels right on three grids;
strictly intrahepatic masks with anatomical seeds only 53-94 % (depending on the grid and on the
phantom's version; 67-70 % on the two asserted here, bound 60 %), at a mean confidence of 0.2-0.5: weak;
MSD8 portal shares 0.24-0.71, the portal system 9-35 mm caudal of the hepatic one.
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
from flr.vesselsplit import split_vessels
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
