"""Biliary drainage (issue 13, item 2): measured on a bile-duct mask, else inferred from portal inflow.

Sources. The source text (Liver Metastases (Liver Secondary), section 1) asks for "intact biliary drainage"
of the two contiguous segments preserved. Non-dilated ducts are invisible on portal-venous CT and no public
segmentation holds them; planning systems define the functional remnant by portal supply and venous
drainage (Lang H et al., Arch Surg 2005;140:629), and the bile duct runs in the Glissonean pedicle with the
portal vein. So for an anatomical plan whose remnant keeps its portal inflow, with no tumour or ablation zone
near the hilum (the biliary confluence), drainage is *inferred* (a status of its own, never a pass) and
confirmed on MRCP; variant anatomy (Mortele KJ, Ros PR, AJR 2001;177:389) and hilar tumours stop it.
"""

from __future__ import annotations

import numpy as np
import pytest

from flr.assessment import HILAR_DISTANCE_MM, HILUM_RADIUS_MM, Body, assess, hilum_lps_mm, judge, territories
from flr.case import Case, gather_anatomy
from flr.image import LabelMap
from flr.patient import Patient
from flr.plan import resection_plan
from flr.rules import load_rulebook
from flr.supply import prepare_supply

#: The phantom's portal bifurcation (flr.phantom's anatomy, LPS mm; the grid may be rotated, the anatomy not).
TRUE_BIFURCATION_MM = np.array([-14.0, -4.0, -10.0])
PORTAL, TUMOUR = 10, 9

SAMPLE_PATIENT = {"weight_kg": 72, "height_cm": 170, "sex": "female", "age": 61, "liver_condition": "chemotherapy",
                  "chemotherapy_weeks": 8, "fit_for_major_surgery": True,
                  "labs": {"bilirubin_mg_dl": 0.8, "albumin_g_dl": 4.1, "inr": 1.0, "creatinine_mg_dl": 0.9,
                           "sodium_mmol_l": 139, "cea_ng_ml": 35}, "ascites": "none", "encephalopathy": "none",
                  "primary": {"site": "colorectal", "synchronous": False, "node_positive_primary": True,
                              "disease_free_interval_months": 18}, "extrahepatic_disease": []}


def _lps_of_grid(g) -> np.ndarray:
    zz, yy, xx = np.indices(g.shape_zyx)
    return np.stack([xx, yy, zz], axis=-1).astype(float) @ g.affine_lps[:3, :3].T + g.affine_lps[:3, 3]


def _with_tumour_at(labels: LabelMap, liver: LabelMap, centre_mm, radius_mm: float) -> LabelMap:
    g = labels.geometry
    ball = (np.linalg.norm(_lps_of_grid(g) - np.asarray(centre_mm), axis=-1) <= radius_mm) & (liver.array > 0)
    ball &= (labels.array >= 1) & (labels.array <= 8)  # parenchyma only, vessels kept
    arr = np.where(labels.array == TUMOUR, 0, labels.array)
    arr[ball] = TUMOUR
    return LabelMap(arr.astype(np.uint8), g, "labels-hilar.nii.gz", names=labels.names)


@pytest.mark.parametrize("fixture", ["phantom_0", "phantom_0_oblique"])
def test_the_hilum_is_found_at_the_portal_bifurcation(fixture, request):
    """The hilum flr measures from lies at the phantom's true bifurcation, on a straight and a rotated grid."""
    ph = request.getfixturevalue(fixture)
    anatomy = gather_anatomy(Case.build([ph.labels, ph.liver]))
    supply = prepare_supply(anatomy, territories(anatomy))
    hilum = hilum_lps_mm(supply.systems["inflow"], anatomy.segment_map, anatomy.geometry)
    d = np.linalg.norm(hilum - TRUE_BIFURCATION_MM, axis=1)
    assert d.min() <= 5.0, d.min()  # a centerline point at the bifurcation itself
    assert d.max() <= HILUM_RADIUS_MM + 20.0  # the segment landmark is within 20 mm of it


def test_right_hemihepatectomy_infers_drainage_and_asks_for_mrcp(phantom_1):
    """The sample case (right hemihepatectomy + ablation of tumour 2): no bile-duct mask, anatomical plan,
    remnant II-IV + I keeps its portal inflow, tumour and zone far from the hilum: drainage inferred (segment
    by segment), the verdict not withheld (resectable), MRCP asked for."""
    a = assess([phantom_1.labels, phantom_1.liver], resection_plan("right-hemihepatectomy", ablations=["2:5"]),
               body=Body(weight_kg=72, height_cm=170))
    chk = a.checks.biliary_drainage
    assert a.checks.inflow.status == "pass"
    assert chk.status == "inferred"
    assert {s.status for s in chk.segments.values()} == {"inferred"}  # none measured
    assert set(chk.segments) == set(a.remnant.segments)
    assert "MRCP" in chk.detail and f"{HILAR_DISTANCE_MM:g} mm of the hilum" in chk.detail
    assert chk.undrained_ml is None and a.remnant.undrained_ml is None  # not measured: no volume invented
    judged = judge(a, Patient.from_dict(SAMPLE_PATIENT), load_rulebook("default"))
    v = judged.verdict
    reasons = {r.rule: r for r in v.reasons}
    assert reasons["biliary_drainage"].status == "inferred" and v.inferred == ("biliary_drainage",)
    assert "biliary_anatomy_confirmed" in v.cautions
    assert "biliary_drainage" not in {m["fact"] for m in v.missing_inputs}
    assert any("MRCP" in g["text"] for g in v.primary_guidance)
    assert v.status == "resectable" and v.scope == "plan"
    # MRCP showed standard anatomy: nothing left to confirm; a variant: drainage cannot be inferred
    default = load_rulebook("default")
    standard = judge(a, Patient.from_dict({**SAMPLE_PATIENT, "biliary_anatomy": "standard"}), default)
    assert "biliary_anatomy_confirmed" not in standard.verdict.cautions
    variant = judge(a, Patient.from_dict({**SAMPLE_PATIENT, "biliary_anatomy": "variant"}), default)
    assert variant.verdict.status == "insufficient_data"
    assert "bile_duct mask" in {n for m in variant.verdict.missing_inputs for n in m["needs"]}


def test_a_wedge_plan_is_not_inferred(phantom_1):
    """A wedge's plane may cross any pedicle: drainage stays not assessed, saying why."""
    a = assess([phantom_1.labels, phantom_1.liver], resection_plan(wedges=["1:10"]))
    assert a.checks.inflow.status == "pass"
    assert a.checks.biliary_drainage.status == "not_assessed"
    assert "wedge" in a.checks.biliary_drainage.detail


def test_without_portal_inflow_drainage_is_not_inferred(phantom_1):
    arr = np.where(phantom_1.labels.array == PORTAL, 0, phantom_1.labels.array).astype(np.uint8)
    names = {k: v for k, v in phantom_1.labels.names.items() if k != PORTAL}
    labels = LabelMap(arr, phantom_1.labels.geometry, "labels-no-portal.nii.gz", names=names)
    a = assess([labels, phantom_1.liver], resection_plan("right-hemihepatectomy"))
    assert a.checks.inflow.status == "not_assessed"
    assert a.checks.biliary_drainage.status == "not_assessed"
    assert "portal inflow is not assessed" in a.checks.biliary_drainage.detail


@pytest.mark.parametrize(("offset_mm", "hilar"), [((0.0, 0.0, 16.0), True), ((0.0, 0.0, 60.0), False)])
def test_a_tumour_at_the_hilum_stops_the_inference(phantom_1, offset_mm, hilar):
    """A 6 mm tumour 16 mm above the bifurcation (its surface within 10 mm of the hilum) may involve the
    biliary confluence: not inferred; the same tumour 60 mm above it does not stop the inference."""
    labels = _with_tumour_at(phantom_1.labels, phantom_1.liver, TRUE_BIFURCATION_MM + np.asarray(offset_mm), 6.0)
    assert (labels.array == TUMOUR).sum() > 100
    a = assess([labels, phantom_1.liver], resection_plan("left-lateral-sectionectomy"))
    assert a.checks.inflow.status == "pass"
    chk = a.checks.biliary_drainage
    if hilar:
        assert chk.status == "not_assessed"
        assert "of the hilum (tumour 1" in chk.detail and "confluence" in chk.detail
    else:
        assert chk.status == "inferred"


def _bile_ducts(phantom, drop_segment: int | None = None) -> LabelMap:
    """A bile-duct mask where the ducts run: along the portal veins (Glissonean pedicles); optionally without
    the ducts inside one segment (not visible)."""
    g = phantom.labels.geometry
    ducts = phantom.labels.array == PORTAL
    if drop_segment is not None:
        from flr.distance import nearest_label

        seg = np.where((phantom.labels.array >= 1) & (phantom.labels.array <= 8), phantom.labels.array, 0)
        owner = nearest_label(seg.astype(np.int16), ducts, g)
        ducts &= owner != drop_segment
    return LabelMap(ducts.astype(np.uint8), g, "bile_duct.nii.gz", names={1: "bile_duct"})


def test_a_bile_duct_mask_is_measured_and_a_duct_not_visible_is_never_a_fail(phantom_1):
    plan = resection_plan("right-hemihepatectomy")
    measured = assess([phantom_1.labels, phantom_1.liver, _bile_ducts(phantom_1)], plan)
    assert measured.checks.biliary_drainage.status == "pass"
    assert measured.checks.biliary_drainage.undrained_ml is not None
    unseen = assess([phantom_1.labels, phantom_1.liver, _bile_ducts(phantom_1, drop_segment=1)], plan)
    row = unseen.checks.biliary_drainage.segments["liver_segment_1"]
    # not visible: not assessed by the mask (never failed), then inferred from its portal inflow
    assert row.status == "inferred" and "invisible on CT" in row.detail and "portal inflow" in row.detail
    assert {r.status for n, r in unseen.checks.biliary_drainage.segments.items() if n != "liver_segment_1"} == {"pass"}
    assert {s for s, r in unseen.checks.biliary_drainage.segments.items() if r.status == "fail"} == set()
    # the rest of the ducts measured, I not visible: inferred from I's portal inflow, never failed
    assert unseen.checks.biliary_drainage.status == "inferred"
    assert "liver_segment_1" in unseen.checks.biliary_drainage.detail
