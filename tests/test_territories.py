"""Vascular territories on the phantom: gaps, cut branches, every named plan, fragmentation, mixed masks.

Independent truth: the phantom's analytic anatomy (its Couinaud planes and vessel pieces in LPS mm,
``truth["anatomy"]``) and the label map's own segment voxels; the model under test only sees masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from flr.anatomy import RESECTIONS
from flr.assessment import assess
from flr.image import LabelMap
from flr.phantom import HEPATIC_VEIN, IVC, PHANTOM_LABELS, PORTAL_VEIN
from flr.plan import resection_plan
from tests.helpers import first_intrahepatic_mm, interrupt, phantom, relabel

SEGMENTS = [f"liver_segment_{k}" for k in range(1, 9)]
#: the axis-aligned phantom and one on another grid: oblique (12 degrees about z) with other spacing
VARIANTS = {"axial": (0, {}), "oblique": (2, {"oblique_deg": 12.0, "spacing_mm": (1.2, 1.2, 3.0)})}


@pytest.fixture(scope="module")
def p():
    return phantom(0)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def v(request):
    seed, options = VARIANTS[request.param]
    return phantom(seed, **options)


def segment_ml(a, name: str) -> float:
    return a.liver.segments_ml[name]


def parenchyma_ml(a, code: int) -> float:
    """mL of segment ``code`` in the remnant that can function: without the tumour left in it."""
    arr = a.arrays
    left = np.isin(arr.tumors, [t.id for t in a.tumors if t.fate == "left"])
    seg = (arr.territory == code) & arr.liver & ~arr.removed & ~left & ~arr.ablation
    return float(np.count_nonzero(seg)) * a.geometry.voxel_volume_ml


def at_risk_in(a, check: str, code: int) -> tuple[float, float]:
    """mL of the remnant at risk for ``check`` inside segment ``code`` and outside it."""
    risk = a.arrays.at_risk[check]
    vv = a.geometry.voxel_volume_ml
    inside = risk & (a.arrays.territory == code)
    return float(inside.sum()) * vv, float((risk & ~inside).sum()) * vv


# --- analytic phantom -----------------------------------------------------------------------------------


def test_intact_tree_resecting_one_segment_puts_nothing_else_at_risk(p):
    a = assess([p.labels, p.liver], resection_plan("6"))
    assert a.checks.inflow.status == "pass" and a.checks.outflow.status == "pass"
    assert a.checks.inflow.system.disconnected_ml == 0.0
    assert a.remnant.at_risk_ml <= 0.02 * a.remnant.volume_ml


def test_gap_in_the_segment_3_portal_branch_costs_exactly_segment_3(v):
    p = v
    name = "segment 3 portal branch"
    start = first_intrahepatic_mm(p, name)
    labels = interrupt(p, p.labels.array, name, start - 2.0, start + 8.0)          # 10 mm: not bridged
    a = assess(relabel(p, labels), resection_plan("right-posterior-sectionectomy"))
    iii = parenchyma_ml(a, 3)
    inside, outside = at_risk_in(a, "inflow", 3)
    assert inside == pytest.approx(iii, rel=0.02)
    assert outside <= 0.02 * iii
    seg = a.checks.inflow.segments
    assert seg["liver_segment_3"].status == "fail" and a.checks.inflow.status == "fail"
    assert all(seg[s].status == "pass" for s in seg if s != "liver_segment_3")
    assert "liver_segment_3" not in a.checks.two_contiguous_segments.group
    assert a.checks.inflow.system.assumed_joins_mm == ()          # one interruption is read as real


@pytest.mark.parametrize(("offset_mm", "width_mm"), [(8.0, 3.5), (14.0, 4.5)])
def test_small_gaps_are_bridged_and_cost_nothing(p, offset_mm, width_mm):
    """Vessel voxels with centres along 3.5-4.5 mm of the axis removed: the mask falls apart (26-connected)
    with a 1.5-2.1 mm gap between the voxels left, which is bridged."""
    name = "segment 3 portal branch"
    start = first_intrahepatic_mm(p, name)
    labels = interrupt(p, p.labels.array, name, start + offset_mm, start + offset_mm + width_mm)
    assert ndimage.label(labels == PORTAL_VEIN, structure=np.ones((3, 3, 3)))[1] == 2     # a real gap
    a = assess(relabel(p, labels), resection_plan("right-posterior-sectionectomy"))
    assert a.checks.inflow.system.bridges == 1 and a.checks.inflow.system.disconnected_ml == 0.0
    assert a.checks.inflow.segments["liver_segment_3"].at_risk_fraction <= 0.02
    assert a.checks.inflow.status == "pass"


def test_cut_hepatic_branch_of_segment_3_through_segment_2_costs_2_a_sliver(p):
    name = "left hepatic vein, segment 3 tributary"
    labels = interrupt(p, p.labels.array, name, 0.0, 8.0)
    a = assess(relabel(p, labels), resection_plan("right-hemihepatectomy"))
    ii = a.checks.outflow.segments["liver_segment_2"]
    assert ii.status == "pass" and ii.at_risk_fraction <= 0.10
    assert a.remnant.functional_segments_ml["liver_segment_2"] >= 0.9 * segment_ml(a, "liver_segment_2")


@pytest.mark.parametrize("name", sorted(RESECTIONS))
def test_every_named_plan_on_an_intact_tree_keeps_its_remnant_functional(v, name):
    p = v
    a = assess([p.labels, p.liver], resection_plan(name))
    r, arr = a.remnant, a.arrays
    left = np.isin(arr.tumors, [t.id for t in a.tumors if t.fate == "left"])
    # the functional candidates: remnant parenchyma without the tumour left in it and the ablation zones
    candidates = float(np.count_nonzero(arr.liver & ~arr.removed & ~left & ~arr.ablation)) * a.geometry.voxel_volume_ml
    assert r.at_risk_ml <= 0.02 * candidates, (name, a.checks.inflow.detail, a.checks.outflow.detail)
    assert a.checks.inflow.status == "pass" and a.checks.outflow.status == "pass"
    assert r.functional_volume_ml >= 0.98 * candidates - r.islands_total_ml
    # the functional remnant subtracts exactly the union at risk (and the islands)
    assert r.functional_volume_ml + r.at_risk_ml + r.islands_total_ml == pytest.approx(candidates, abs=1e-6)


def test_middle_hepatic_vein_taken_with_a_right_hemihepatectomy_congests_segment_4(v):
    p = v
    kept = assess([p.labels, p.liver], resection_plan("right-hemihepatectomy"))
    taken = assess([p.labels, p.liver], resection_plan("right-hemihepatectomy", keep_plane_vessels=False))
    iv_kept = kept.checks.outflow.segments["liver_segment_4"]
    iv_taken = taken.checks.outflow.segments["liver_segment_4"]
    assert iv_kept.at_risk_fraction <= 0.02
    assert iv_taken.at_risk_fraction >= 0.3                 # IV drains through the middle hepatic vein
    assert taken.remnant.congested_ml == pytest.approx(taken.checks.outflow.congested_ml)
    assert taken.remnant.functional_volume_ml < kept.remnant.functional_volume_ml - 0.3 * segment_ml(
        kept, "liver_segment_4")
    # the segments drained by the left hepatic vein keep their outflow
    assert taken.checks.outflow.segments["liver_segment_2"].at_risk_fraction <= 0.1


# --- fragmented masks ---------------------------------------------------------------------------------------


def fragment(p, labels: np.ndarray, rng: np.random.Generator, *, every_n: int = 0, gaps: int = 0,
             debris: int = 0) -> np.ndarray:
    """Vessel labels broken: every n-th axial slice of vessel dropped, ``gaps`` cuts of 1-3 mm right across
    random vessel pieces (at random points of their axis), ``debris`` specks of 1-4 voxels of vessel added
    in the parenchyma."""
    out = labels.copy()
    vessel = (out == PORTAL_VEIN) | (out == HEPATIC_VEIN)
    if every_n:
        drop = np.zeros_like(vessel)
        drop[::every_n] = True
        out[vessel & drop] = 0
    pieces = [v for v in p.truth["anatomy"]["vessels"] if v["structure"] in ("portal_vein", "hepatic_vein")]
    for _ in range(gaps):
        v = pieces[int(rng.integers(len(pieces)))]
        length = float(np.linalg.norm(np.subtract(v["p1_mm"], v["p0_mm"])))
        t0, width = rng.uniform(0.0, length - 3.0), rng.uniform(1.0, 3.0)
        out = interrupt(p, out, v["name"], t0, t0 + width, allow_empty=True)
    parenchyma = np.argwhere((out >= 1) & (out <= 8))
    for c in parenchyma[rng.choice(len(parenchyma), size=debris, replace=False)] if debris else []:
        out[c[0], c[1]:c[1] + int(rng.integers(1, 3)), c[2]:c[2] + int(rng.integers(1, 3))] = \
            PORTAL_VEIN if rng.random() < 0.5 else HEPATIC_VEIN
    return out


@pytest.mark.parametrize("name", ["right-hemihepatectomy", "left-lateral-sectionectomy",
                                  "right-posterior-sectionectomy"])
def test_fragmented_vessels_give_the_intact_result(p, name):
    intact = assess([p.labels, p.liver], resection_plan(name))
    broken = fragment(p, p.labels.array, np.random.default_rng(7), every_n=9, gaps=12, debris=40)
    a = assess(relabel(p, broken), resection_plan(name))
    assert a.checks.inflow.system.bridges > 0 and a.checks.inflow.system.debris_count > 0
    liver_ml = a.liver.total_volume_ml
    assert abs(a.remnant.functional_volume_ml - intact.remnant.functional_volume_ml) <= 0.02 * liver_ml
    for check in ("inflow", "outflow"):
        got, want = getattr(a.checks, check), getattr(intact.checks, check)
        assert got.status == want.status
        assert {s: r.status for s, r in got.segments.items()} == {s: r.status for s, r in want.segments.items()}


def test_many_wide_gaps_read_as_an_incomplete_mask_and_are_assumed_joined(p):
    """10 mm cut out of four portal branches: no longer one interruption but a mask that lost its
    connections; the pieces join the nearest part of the tree, the result says so, and the remnant keeps
    the intact result."""
    labels = p.labels.array
    names = ["segment 3 portal branch", "segment 6 portal branch", "segment 8 portal branch",
             "segment 4 superior portal branch"]
    for name in names:
        start = first_intrahepatic_mm(p, name)
        labels = interrupt(p, labels, name, start + 2.0, start + 12.0)
    plan = resection_plan("left-lateral-sectionectomy")
    a = assess(relabel(p, labels), plan)
    intact = assess([p.labels, p.liver], plan)
    joins = a.checks.inflow.system.assumed_joins_mm
    assert len(joins) == 4 and all(10.0 <= j <= 25.0 for j in joins)     # centerline ends: the gap + radii
    assert any("portal_vein mask" in w and "fragmented" in w for w in a.warnings)
    assert abs(a.remnant.functional_volume_ml - intact.remnant.functional_volume_ml) <= 0.02 * a.liver.total_volume_ml
    assert a.checks.inflow.status == "pass"


# --- mixed masks ----------------------------------------------------------------------------------------------


def mixed(p) -> list[LabelMap]:
    labels = p.labels.array.copy()
    labels[(labels == PORTAL_VEIN) | (labels == HEPATIC_VEIN)] = 13
    names = {k: v for k, v in PHANTOM_LABELS.items() if k not in (PORTAL_VEIN, HEPATIC_VEIN)}
    names[13] = "hepatic_vessel"
    return relabel(p, labels, names)


def test_mixed_mask_is_separated_and_gives_the_separate_masks_result(p):
    pytest.importorskip("flr.vesselsplit")
    a = assess(mixed(p), resection_plan("right-hemihepatectomy"))
    want = assess([p.labels, p.liver], resection_plan("right-hemihepatectomy"))
    portal = a.arrays.vessels["inflow"]
    truth = p.labels.array == PORTAL_VEIN
    hv_truth = p.labels.array == HEPATIC_VEIN
    vessel = truth | hv_truth
    right = (portal & truth) | (a.arrays.vessels["outflow"] & hv_truth)
    assert right.sum() >= 0.95 * vessel.sum()
    assert a.checks.inflow.status == want.checks.inflow.status
    assert a.checks.outflow.status == want.checks.outflow.status
    assert abs(a.remnant.functional_volume_ml - want.remnant.functional_volume_ml) <= 0.02 * a.liver.total_volume_ml
    assert a.checks.inflow.system.source == "separated from the hepatic_vessel mask"
    assert any("hepatic_vessel" in w for w in a.warnings)


def test_mixed_mask_without_any_seed_is_not_assessed_and_says_why(p):
    pytest.importorskip("flr.vesselsplit")
    labels = mixed(p)[0].array.copy()
    labels[~(p.liver.array > 0) & (labels == 13)] = 0       # strictly intrahepatic, as MSD8
    labels[labels == IVC] = 0
    names = {k: v for k, v in mixed(p)[0].names.items() if k != IVC}
    a = assess(relabel(p, labels, names), resection_plan("left-lateral-sectionectomy"))
    for check in ("inflow", "outflow"):
        assert getattr(a.checks, check).status == "not_assessed"
        assert "no trunk" in getattr(a.checks, check).detail
    assert a.remnant.at_risk_ml == 0.0 and "hepatic_vessel" in " ".join(a.warnings)
    # asked for, anatomical seeds separate it, and the result says how
    guessed = assess(relabel(p, labels, names), resection_plan("left-lateral-sectionectomy"),
                     anatomical_vessel_seeds=True)
    assert guessed.checks.inflow.status != "not_assessed"
    assert "anatomical" in (guessed.checks.inflow.system.separation or {}).get("seeds", "")


def test_no_vessel_mask_is_not_assessed(p):
    labels = p.labels.array.copy()
    labels[(labels == PORTAL_VEIN) | (labels == HEPATIC_VEIN)] = 0
    a = assess(relabel(p, labels), resection_plan("right-hemihepatectomy"))
    assert a.checks.inflow.status == "not_assessed" and "portal_vein" in a.checks.inflow.detail
    assert a.remnant.at_risk_ml == 0.0
    assert a.remnant.devascularized_ml is None and a.remnant.congested_ml is None     # not measured, not 0
