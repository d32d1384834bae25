"""Per-segment inflow and outflow after a resection (flr.vessels), on the phantom and on analytic boxes.

flr.vessels is round 1's threshold model, replaced in the assessment by vascular territories
(flr.territories) and kept as the baseline of benchmarks/bench_territories.py; these tests pin its
behaviour on round 1's phantom (``hilum=False``, hilar vessels inside the parenchyma).

The phantom's vessel tree is known analytically (``truth["anatomy"]["vessels"]``: capsules in LPS mm),
so a branch can be interrupted at a known place and the segments that lose their supply are known
without flr: the segment a branch is named after, or, for a trunk, every segment downstream of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import ndimage

from flr.distance import nearest_label
from flr.errors import GeometryMismatchError
from flr.image import Geometry
from flr.phantom import HEPATIC_VEIN, IVC, PORTAL_VEIN, cylinder_mask, sphere_mask
from flr.vessels import (
    DEBRIS_ML,
    MIN_VESSEL_ML,
    ORPHAN_FRACTION,
    SMALL_SEGMENT_ML,
    check_vessel,
    liver_outline_from_parts,
    prepare_vessel_tree,
)
from tests.helpers import interrupt, piece

SEGMENTS = [f"liver_segment_{i}" for i in range(1, 9)]
NAMES = {i: f"liver_segment_{i}" for i in range(1, 9)}
RIGHT = ("liver_segment_5", "liver_segment_6", "liver_segment_7", "liver_segment_8")


def seg(*numbers: int) -> list[str]:
    return [f"liver_segment_{i}" for i in numbers]


# ------------------------------------------------------------------------------------------------
# Phantom cases
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom():
    from tests.helpers import phantom as cached

    return cached(0, hilum=False)


@pytest.fixture(scope="module")
def oblique():
    # rotated grid (15 degrees about z, 7.5 about x), anisotropic 1.5 x 1.5 x 2.5 mm voxels
    from tests.helpers import phantom as cached

    return cached(0, oblique_deg=15.0, hilum=False)


def with_segment_3_vein(p, labels: np.ndarray) -> np.ndarray:
    """Labels plus (again) a 3 mm tributary of the left hepatic vein from its distal end into segment III."""
    tip = piece(p, "left hepatic vein, distal")["p1_mm"]
    tube = cylinder_mask(p.labels.geometry, tip, (34.0, -36.0, -30.0), 3.0, caps="round")
    out = labels.copy()
    out[tube & (labels >= 1) & (labels <= 8)] = HEPATIC_VEIN
    return out


def run(p, labels: np.ndarray, check: str = "inflow", lost: Sequence[str] = (), *, lost_mask=None,
        remnant: Sequence[str] | None = None, trunk: bool = True, liver: bool = True):
    numbers = [int(s.rsplit("_", 1)[1]) for s in lost]
    if lost_mask is None:
        lost_mask = np.isin(labels, numbers)
    remnant = [s for s in SEGMENTS if s not in lost] if remnant is None else list(remnant)
    vessel = labels == (PORTAL_VEIN if check == "inflow" else HEPATIC_VEIN)
    return check_vessel(
        check, vessel, geometry=p.labels.geometry, segment_map=np.where(labels <= 8, labels, 0),
        segment_names=NAMES, lost_mask=lost_mask, liver_mask=(p.liver.array > 0) if liver else None,
        remnant_segments=remnant, trunk_mask=(labels == IVC) if (check == "outflow" and trunk) else None)


def statuses(result) -> dict[str, str]:
    return {s.segment: s.status for s in result.segments}


def failing(result) -> set[str]:
    return {s.segment for s in result.segments if s.status == "fail"}


# --- intact tree ------------------------------------------------------------------------------


def test_no_resection_every_segment_has_inflow(phantom):
    r = run(phantom, phantom.labels.array)
    assert r.status == "pass", r.detail
    assert set(statuses(r).values()) == {"pass"}
    for s in r.segments:   # nothing cut, nothing cut off
        assert s.connected_vessel_ml == pytest.approx(s.total_vessel_ml) and s.total_vessel_ml > MIN_VESSEL_ML
        assert s.orphaned_vessel_ml == 0 and s.cut_vessel_ml == 0
    # every intrahepatic portal voxel is in some territory
    lab = phantom.labels.array
    n_intra = np.count_nonzero((lab == PORTAL_VEIN) & (phantom.liver.array > 0))
    total_ml = n_intra * phantom.labels.geometry.voxel_volume_ml
    assert sum(s.total_vessel_ml for s in r.segments) == pytest.approx(total_ml)


def test_no_resection_every_segment_has_outflow(phantom):
    """Every segment drains into the IVC through a hepatic vein; III through the left vein's tributary."""
    r = run(phantom, phantom.labels.array, "outflow")
    assert r.status == "pass", r.detail
    assert r.segment("liver_segment_3").total_vessel_ml > 0.5
    assert "within one voxel of the given trunk mask" in r.detail


def test_no_resection_every_segment_has_outflow_when_segment_3_has_a_vein(phantom):
    r = run(phantom, with_segment_3_vein(phantom, phantom.labels.array), "outflow")
    assert r.status == "pass", r.detail
    assert r.segment("liver_segment_3").total_vessel_ml > 0.5


# --- resections -------------------------------------------------------------------------------


def test_right_hemihepatectomy_keeps_inflow_and_outflow_of_segments_1_to_4(phantom):
    labels = with_segment_3_vein(phantom, phantom.labels.array)
    inflow = run(phantom, labels, "inflow", RIGHT)
    outflow = run(phantom, labels, "outflow", RIGHT)
    assert [s.segment for s in inflow.segments] == seg(1, 2, 3, 4)
    assert inflow.status == "pass", inflow.detail
    assert outflow.status == "pass", outflow.detail
    # remnant territories lose nothing: the right-sided vessel is cut in the territories of V-VIII only
    for s in (*inflow.segments, *outflow.segments):
        assert s.cut_vessel_ml == 0 and s.orphaned_vessel_ml == 0


def test_middle_hepatic_vein_drains_segment_4_without_resected_parenchyma(phantom):
    """Independent check (scipy.ndimage.label, flr.distance.nearest_label) of the right hemihepatectomy.

    The middle hepatic vein runs in the plane between IV and V/VIII, so the right hemihepatectomy takes
    the half of it that lies in V/VIII. The half on the IV side must still reach the IVC through
    territories I-IV only: it does, so segment IV keeps its outflow.
    """
    lab = phantom.labels.array
    g = phantom.labels.geometry
    liver = phantom.liver.array > 0
    hv = lab == HEPATIC_VEIN
    territory = nearest_label(np.where(lab <= 8, lab, 0), hv & liver, g)
    kept = hv & ~(liver & (territory >= 5))                             # drop the V-VIII territories
    mhv = cylinder_mask(g, *(piece(phantom, "middle hepatic vein")[k] for k in ("p0_mm", "p1_mm")),
                        piece(phantom, "middle hepatic vein")["radius_mm"], caps="round")
    mhv_in_4 = kept & mhv & (territory == 4)
    assert mhv_in_4.sum() > 100
    comps, _ = ndimage.label(kept)
    at_ivc = set(np.unique(comps[ndimage.binary_dilation(lab == IVC, np.ones((3, 3, 3), bool)) & kept])) - {0}
    assert set(np.unique(comps[mhv_in_4])) <= at_ivc
    r = run(phantom, lab, "outflow", RIGHT)
    s4 = r.segment("liver_segment_4")
    assert s4.status == "pass"
    # same territories up to ties between equidistant segment voxels
    expected_ml = np.count_nonzero(hv & liver & (territory == 4)) * g.voxel_volume_ml
    assert s4.connected_vessel_ml == pytest.approx(expected_ml, rel=0.02)


def test_right_posterior_sectionectomy_keeps_the_anterior_section(phantom):
    r = run(phantom, phantom.labels.array, "inflow", seg(6, 7))
    assert r.status == "pass", r.detail


# --- interrupted vessels -----------------------------------------------------------------------


def test_portal_gap_in_the_segment_6_branch_fails_exactly_segment_6(phantom):
    labels = interrupt(phantom, phantom.labels.array, "segment 6 portal branch", 12.0, 18.0)
    r = run(phantom, labels)
    assert failing(r) == {"liver_segment_6"}, r.detail
    assert all(s.status == "pass" for s in r.segments if s.segment != "liver_segment_6")
    s6 = r.segment("liver_segment_6")
    assert s6.orphaned_vessel_ml > 0.5 and s6.cut_vessel_ml == 0           # nothing resected: cut off only
    assert "cut off from its trunk" in s6.detail


def test_cutting_the_left_portal_vein_at_the_hilum_fails_segments_2_3_4(phantom):
    # the left portal vein runs 22 mm from the bifurcation; cut 9-15 mm from it (clear of the trunk's cap)
    labels = interrupt(phantom, phantom.labels.array, "left portal vein", 9.0, 15.0)
    r = run(phantom, labels)
    assert failing(r) == set(seg(2, 3, 4)), r.detail
    assert {s for s, v in statuses(r).items() if v == "pass"} == set(seg(1, 5, 6, 7, 8))
    # segment IV keeps trunk-connected vein (the portal trunk runs through its territory) yet fails:
    # its own branches, fed from the umbilical portion, are cut off
    s4 = r.segment("liver_segment_4")
    assert s4.connected_vessel_ml > s4.orphaned_vessel_ml >= ORPHAN_FRACTION * (s4.connected_vessel_ml
                                                                              + s4.orphaned_vessel_ml)


def test_segment_with_its_branch_missing_is_not_supplied_by_a_vessel_grazing_its_boundary(phantom):
    """Without its own branch, segment VI keeps only the half of the right posterior portal vein that runs
    along its boundary with VII and V (0.5 mL in its territory, connected): that is not supply."""
    labels = interrupt(phantom, phantom.labels.array, "segment 6 portal branch", 6.0, 100.0)
    r = run(phantom, labels)
    s6 = r.segment("liver_segment_6")
    assert s6.connected_vessel_ml > 0.3 and s6.orphaned_vessel_ml == 0
    assert s6.status == "fail" and "only runs along its boundary" in s6.detail
    assert failing(r) == {"liver_segment_6"}


def test_small_segment_without_a_branch_is_not_assessed(phantom):
    labels = interrupt(phantom, phantom.labels.array, "caudate portal branch", 8.0, 100.0)
    r = run(phantom, labels)
    s1 = r.segment("liver_segment_1")
    assert phantom.truth["segments"]["1"]["volume_ml"] < SMALL_SEGMENT_ML
    assert s1.status == "not_assessed" and "small" in s1.detail
    assert r.status == "not_assessed"          # never a pass over a segment that could not be judged
    assert all(s.status == "pass" for s in r.segments if s.segment != "liver_segment_1")


def test_hepatic_vein_disconnected_from_the_ivc_fails_the_segments_it_drains(phantom):
    """The right hepatic vein, cut 16-22 mm from the IVC axis (4-10 mm outside the IVC wall).

    It runs in the plane between V/VIII and VI/VII and drains all four; VI and VII have no other vein.
    Its first 30 mm pass beside the IVC at the level of the caudate (I), whose territory holds a third
    of them. II, III (with its tributary) and IV drain through the left and middle veins and pass.
    """
    labels = interrupt(phantom, with_segment_3_vein(phantom, phantom.labels.array), "right hepatic vein", 16.0,
                       22.0)
    r = run(phantom, labels, "outflow")
    assert failing(r) == set(seg(1, 5, 6, 7, 8)), r.detail
    assert {s for s, v in statuses(r).items() if v == "pass"} == set(seg(2, 3, 4))
    assert r.segment("liver_segment_6").connected_vessel_ml == 0


# --- wedges and ablations ----------------------------------------------------------------------


@pytest.mark.parametrize("include_vessel", [True, False], ids=["zone-with-vessels", "parenchyma-only"])
def test_wedge_across_a_segmental_pedicle_fails_the_segment(phantom, include_vessel):
    """A 7 mm ablation zone centred 14 mm along the segment 6 branch (clear of the segment 7 branch and of
    the right posterior portal vein, which start where it starts): the branch beyond it is cut off.

    A zone given as parenchyma only (vessel voxels left out) cuts the same vessel: a vessel voxel is cut
    when its nearest parenchyma voxel is lost.
    """
    lab = phantom.labels.array
    v = piece(phantom, "segment 6 portal branch")
    p0, p1 = np.asarray(v["p0_mm"]), np.asarray(v["p1_mm"])
    zone = sphere_mask(phantom.labels.geometry, p0 + 14.0 * (p1 - p0) / np.linalg.norm(p1 - p0), 7.0)
    zone &= phantom.liver.array > 0
    if not include_vessel:
        zone &= (lab >= 1) & (lab <= 8)
    r = run(phantom, lab, lost_mask=zone)
    s6 = r.segment("liver_segment_6")
    assert s6.cut_vessel_ml > 0 and s6.orphaned_vessel_ml > 0.3
    assert failing(r) == {"liver_segment_6"}


def test_wedge_at_the_tip_of_a_branch_leaves_the_segment_supplied(phantom):
    lab = phantom.labels.array
    tip = piece(phantom, "segment 6 portal branch")["p1_mm"]
    zone = sphere_mask(phantom.labels.geometry, tip, 10.0) & (phantom.liver.array > 0)
    r = run(phantom, lab, lost_mask=zone)
    s6 = r.segment("liver_segment_6")
    assert s6.cut_vessel_ml > 0.1 and s6.status == "pass", s6.detail


# --- missing or unusable input -----------------------------------------------------------------


def test_absent_mask_is_not_assessed_for_every_segment(phantom):
    lab = phantom.labels.array
    r = check_vessel("biliary_drainage", None, geometry=phantom.labels.geometry,
                     segment_map=np.where(lab <= 8, lab, 0), segment_names=NAMES, lost_mask=np.zeros(lab.shape, bool),
                     liver_mask=phantom.liver.array > 0, remnant_segments=SEGMENTS)
    assert r.status == "not_assessed" and r.vessel == "bile_duct"
    assert r.detail == "no bile_duct mask given"
    assert [s.status for s in r.segments] == ["not_assessed"] * 8


@pytest.mark.parametrize(("check", "vessel"), [("inflow", "portal_vein"), ("outflow", "hepatic_vein"),
                                               ("arterial_inflow", "hepatic_artery")])
def test_empty_mask_is_not_assessed(phantom, check, vessel):
    lab = phantom.labels.array
    r = check_vessel(check, np.zeros(lab.shape, np.uint8), geometry=phantom.labels.geometry,
                     segment_map=np.where(lab <= 8, lab, 0), segment_names=NAMES, lost_mask=np.zeros(lab.shape, bool),
                     liver_mask=phantom.liver.array > 0, remnant_segments=seg(2, 3), trunk_mask=lab == IVC)
    assert r.status == "not_assessed" and r.vessel == vessel and f"no {vessel} mask given" in r.detail
    assert {s.status for s in r.segments} == {"not_assessed"}


def test_vessel_without_a_trunk_is_not_assessed(phantom):
    lab = phantom.labels.array
    liver = phantom.liver.array > 0
    r = check_vessel("inflow", (lab == PORTAL_VEIN) & liver, geometry=phantom.labels.geometry,
                     segment_map=np.where(lab <= 8, lab, 0), segment_names=NAMES, lost_mask=np.zeros(lab.shape, bool),
                     liver_mask=liver, remnant_segments=SEGMENTS)
    assert r.status == "not_assessed" and "no trunk" in r.detail
    assert {s.status for s in r.segments} == {"not_assessed"}


def test_vessel_outside_the_liver_only_is_not_assessed(phantom):
    lab = phantom.labels.array
    liver = phantom.liver.array > 0
    r = check_vessel("inflow", (lab == PORTAL_VEIN) & ~liver, geometry=phantom.labels.geometry,
                     segment_map=np.where(lab <= 8, lab, 0), segment_names=NAMES, lost_mask=np.zeros(lab.shape, bool),
                     liver_mask=liver, remnant_segments=SEGMENTS)
    assert r.status == "not_assessed" and "does not show the intrahepatic tree" in r.detail


def test_outflow_without_an_ivc_uses_the_extrahepatic_veins_and_says_so(phantom):
    """The phantom's three hepatic veins meet only inside the IVC, and only the left one leaves the liver
    outline (10 voxels). Without the IVC that stub is the only trunk: the segments the left vein drains
    pass, those of the right and middle veins fail (conservative: no connection is assumed)."""
    r = run(phantom, with_segment_3_vein(phantom, phantom.labels.array), "outflow", trunk=False)
    assert "no IVC mask given; trunk: the extrahepatic hepatic_vein voxels" in r.detail
    assert r.segment("liver_segment_2").status == "pass"
    assert r.segment("liver_segment_6").status == "fail" and r.segment("liver_segment_6").connected_vessel_ml == 0


def test_unknown_remnant_segment_is_not_assessed(phantom):
    r = run(phantom, phantom.labels.array, remnant=["liver_segment_2", "liver_segment_4a"])
    assert statuses(r) == {"liver_segment_2": "pass", "liver_segment_4a": "not_assessed"}
    assert r.status == "not_assessed"


def test_without_a_liver_outline_the_closing_gives_the_same_statuses(phantom):
    labels = interrupt(phantom, phantom.labels.array, "left portal vein", 9.0, 15.0)
    with_outline = run(phantom, labels)
    without = run(phantom, labels, liver=False)
    assert statuses(without) == statuses(with_outline)
    assert "no liver outline given" in without.detail


def test_liver_outline_from_parts_encloses_intrahepatic_vessels(phantom):
    lab = phantom.labels.array
    liver = phantom.liver.array > 0
    est = liver_outline_from_parts((lab >= 1) & (lab <= 9), [lab == PORTAL_VEIN, lab == HEPATIC_VEIN],
                                   phantom.labels.geometry)
    vessels = (lab == PORTAL_VEIN) | (lab == HEPATIC_VEIN)
    assert not (est & ~liver).any()                 # never more than the true outline
    # it misses only vessel voxels at the liver surface (under 2% of the intrahepatic ones)
    assert np.count_nonzero(vessels & liver & ~est) < 0.02 * np.count_nonzero(vessels & liver)


@pytest.mark.parametrize(("bad", "error", "match"), [
    ({"check": "drainage"}, ValueError, "check must be one of"),
    ({"lost_mask": np.zeros((3, 3, 3), bool)}, GeometryMismatchError, "lost_mask has shape"),
    ({"segment_map": np.zeros((3, 3, 3), np.uint8)}, GeometryMismatchError, "segment_map has shape"),
    ({"liver_mask": np.zeros((3, 3, 3), bool)}, GeometryMismatchError, "liver_mask has shape"),
    ({"segment_map": None}, ValueError, "integer segment ids"),         # None: a float map of the right shape
])
def test_bad_inputs_raise(phantom, bad, error, match):
    lab = phantom.labels.array
    args = {"check": "inflow", "vessel_mask": lab == PORTAL_VEIN, "geometry": phantom.labels.geometry,
            "segment_map": np.where(lab <= 8, lab, 0), "segment_names": NAMES,
            "lost_mask": np.zeros(lab.shape, bool), "liver_mask": phantom.liver.array > 0,
            "remnant_segments": SEGMENTS}
    args.update(bad)
    if args["segment_map"] is None:
        args["segment_map"] = np.zeros(lab.shape, np.float32)
    with pytest.raises(error, match=match):
        check_vessel(args.pop("check"), args.pop("vessel_mask"), **args)


# --- results -----------------------------------------------------------------------------------


def test_result_is_json_ready(phantom):
    labels = interrupt(phantom, phantom.labels.array, "segment 6 portal branch", 12.0, 18.0)
    d = run(phantom, labels, "inflow", RIGHT[1:]).to_dict()
    assert set(d) == {"status", "detail", "vessel", "segments"}
    assert list(d["segments"]) == seg(1, 2, 3, 4, 5)
    assert set(d["segments"]["liver_segment_5"]) >= {"status", "detail", "connected_vessel_ml", "total_vessel_ml"}
    assert json.loads(json.dumps(d)) == d


def test_prepared_tree_serves_many_plans(phantom):
    lab = phantom.labels.array
    tree = prepare_vessel_tree("inflow", lab == PORTAL_VEIN, geometry=phantom.labels.geometry,
                               segment_map=np.where(lab <= 8, lab, 0), segment_names=NAMES,
                               liver_mask=phantom.liver.array > 0)
    for lost in ((), RIGHT, seg(6, 7), seg(2, 3)):
        remnant = [s for s in SEGMENTS if s not in lost]
        assert tree.evaluate(np.isin(lab, [int(s[-1]) for s in lost]), remnant) == run(phantom, lab, "inflow", lost)


# --- grid independence -------------------------------------------------------------------------


def scenarios(p) -> dict[str, object]:
    lab = p.labels.array
    hv3 = with_segment_3_vein(p, lab)
    return {
        "none inflow": run(p, lab),
        "none outflow": run(p, lab, "outflow"),
        "right hemi inflow": run(p, lab, "inflow", RIGHT),
        "right hemi outflow": run(p, hv3, "outflow", RIGHT),
        "segment 6 gap": run(p, interrupt(p, lab, "segment 6 portal branch", 12.0, 18.0)),
        "left portal cut": run(p, interrupt(p, lab, "left portal vein", 9.0, 15.0)),
        "right hepatic vein cut": run(p, interrupt(p, hv3, "right hepatic vein", 16.0, 22.0), "outflow"),
        "segment 6 branch missing": run(p, interrupt(p, lab, "segment 6 portal branch", 6.0, 100.0)),
    }


def test_oblique_anisotropic_grid_gives_the_same_statuses(phantom, oblique):
    assert oblique.labels.geometry.is_oblique()
    straight, rotated = scenarios(phantom), scenarios(oblique)
    for name in straight:
        assert statuses(rotated[name]) == statuses(straight[name]), name
        assert rotated[name].status == straight[name].status, name


# ------------------------------------------------------------------------------------------------
# Analytic boxes: trunk pieces, debris and the orphan fraction with counted volumes
# ------------------------------------------------------------------------------------------------


def box_case():
    """1 mm voxels, (z, y, x) = (24, 24, 60). Liver: z, y in [2, 22), x in [10, 58); segment 1 x < 34,
    segment 2 x >= 34. Portal vein: a 3 x 3 voxel tube at y = z = 11..13 from x = 2 to x = 49, so its
    first 8 columns (72 voxels) lie outside the liver (the trunk)."""
    g = Geometry((24, 24, 60), (1.0, 1.0, 1.0))
    liver = np.zeros(g.shape_zyx, bool)
    liver[2:22, 2:22, 10:58] = True
    vessel = np.zeros(g.shape_zyx, bool)
    vessel[11:14, 11:14, 2:50] = True
    return g, liver, vessel


def box_check(g, liver, vessel, remnant=("liver_segment_1", "liver_segment_2")):
    segments = np.zeros(g.shape_zyx, np.int16)
    segments[2:22, 2:22, 10:34] = 1
    segments[2:22, 2:22, 34:58] = 2
    segments[vessel] = 0
    return check_vessel("inflow", vessel, geometry=g, segment_map=segments,
                        segment_names={1: "liver_segment_1", 2: "liver_segment_2"},
                        lost_mask=np.zeros(g.shape_zyx, bool), liver_mask=liver, remnant_segments=list(remnant))


def test_box_intact_volumes_are_counted_exactly():
    g, liver, vessel = box_case()
    r = box_check(g, liver, vessel)
    assert r.status == "pass", r.detail
    # 24 columns of 9 voxels in segment 1 (x 10..33), 16 in segment 2 (x 34..49); 1 voxel = 0.001 mL
    assert r.segment("liver_segment_1").total_vessel_ml == pytest.approx(0.216)
    assert r.segment("liver_segment_2").total_vessel_ml == pytest.approx(0.144)


def test_box_branch_bulging_through_the_surface_is_not_a_trunk():
    """A gap at x 38..40 cuts off the distal tube (81 voxels), and a 1-voxel column from it leaves the
    liver through its top surface (8 voxels inside, 2 outside). The 2 extrahepatic voxels are under 10%
    of the 72-voxel trunk: they are not a trunk, and segment 2 is cut off."""
    g, liver, vessel = box_case()
    vessel[:, :, 38:41] = False
    vessel[14:24, 12, 45] = True
    r = box_check(g, liver, vessel)
    s2 = r.segment("liver_segment_2")
    assert s2.connected_vessel_ml == pytest.approx(0.036)           # x 34..37
    assert s2.orphaned_vessel_ml == pytest.approx(0.089)            # x 41..49 and the column inside the liver
    assert s2.status == "fail" and failing(r) == {"liver_segment_2"}


def test_box_debris_is_ignored_but_a_cut_off_piece_is_not():
    g, liver, vessel = box_case()
    debris = vessel.copy()
    debris[5:7, 5:7, 15:20] = True                   # an isolated blob of 19 voxels (0.019 mL) in segment 1
    debris[5, 5, 15] = False
    assert 19 * g.voxel_volume_ml < DEBRIS_ML
    assert box_check(g, liver, debris).status == "pass"
    piece_ = vessel.copy()
    piece_[5:9, 5:9, 15:19] = True                   # 64 voxels = 0.064 mL: 23% of segment 1's uncut vessel
    r = box_check(g, liver, piece_)
    s1 = r.segment("liver_segment_1")
    assert s1.orphaned_vessel_ml == pytest.approx(0.064)
    assert s1.orphaned_vessel_ml / (s1.orphaned_vessel_ml + s1.connected_vessel_ml) >= ORPHAN_FRACTION
    assert s1.status == "fail"
