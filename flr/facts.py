"""The facts a rulebook judges: measurements of an assessment and the patient's data, in one flat mapping.

Keys and units are the contract between :mod:`flr.assess`, :mod:`flr.patient` and :mod:`flr.rules`
(missing facts are ``None``: the rules that need them are then ``not_assessed``).
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Any

from flr.model import CheckStatus, FrozenModel, Status

if TYPE_CHECKING:
    from flr.patient import Patient
    from flr.results import Assessment

RIGHT_LIVER = {"liver_segment_5", "liver_segment_6", "liver_segment_7", "liver_segment_8"}
LEFT_LIVER = {"liver_segment_2", "liver_segment_3", "liver_segment_4", "liver_segment_4a", "liver_segment_4b"}


def equivalent_diameter_mm(volume_ml: float) -> float:
    """Diameter (mm) of the sphere with this volume: d = (6 V / pi)^(1/3), V in mm^3."""
    return (6.0 * volume_ml * 1000.0 / math.pi) ** (1.0 / 3.0)


class Facts(FrozenModel):
    """Every fact a rulebook may read (the contract of :data:`flr.rules.FACTS`; ``None``: missing).

    Units: percentages 0-100, volumes mL, lengths mm, weeks, months, ng/mL.
    """

    # from the assessment
    flr_body_weight_percent: float | None = None
    sflr_percent: float | None = None
    flr_percent_of_functional_liver: float | None = None
    remnant_functional_volume_ml: float | None = None
    two_contiguous_segments: Status | None = None
    inflow: Status | None = None
    outflow: Status | None = None
    biliary_drainage: CheckStatus | None = None
    tumor_clearance: Status | None = None
    min_margin_mm: float | None = None
    tumor_count: int | None = None
    tumors_left: int | None = None
    tumors_ablated: int | None = None
    largest_tumor_mm: float | None = None
    largest_ablated_tumor_mm: float | None = None
    segments_involved: int | None = None
    liver_involved_percent: float | None = None
    bilobar: bool | None = None
    plan_is_anatomic: bool | None = None
    segments_resected: int | None = None
    major_hepatectomy: bool | None = None
    # from the patient file
    fit_for_major_surgery: bool | None = None
    liver_condition: str | None = None
    chemotherapy_weeks: float | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    child_pugh_points: int | None = None
    child_pugh_class: str | None = None
    albi_grade: int | None = None
    meld: int | None = None
    cea_ng_ml: float | None = None
    primary_site: str | None = None
    synchronous: bool | None = None
    node_positive_primary: bool | None = None
    disease_free_interval_months: float | None = None
    tki_response: str | None = None
    progression: str | None = None
    origin: str | None = None
    prior_liver_recurrence: bool | None = None
    prior_recurrence: bool | None = None
    biliary_anatomy: str | None = None
    extrahepatic_sites: tuple[str, ...] | None = None
    extrahepatic_extent: str | None = None
    extrahepatic_disease: str | None = None
    fong_score: int | None = None
    fong_missing: tuple[str, ...] | None = None
    pve_done: bool | None = None
    degree_of_hypertrophy_pp: float | None = None
    weeks_since_pve: float | None = None
    kinetic_growth_rate_pp_per_week: float | None = None

    def for_rules(self) -> dict[str, Any]:
        """The facts as the rule engine reads them (Python values, lists for list facts)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_dump().items()}


_TUMOUR_FACTS = ("tumor_count", "tumors_left", "tumors_ablated", "largest_tumor_mm", "segments_involved",
                 "liver_involved_percent", "bilobar")


def assessment_facts(assessment: Assessment) -> dict[str, Any]:
    """Facts from a typed assessment (:class:`flr.results.Assessment`)."""
    remnant, checks, plan, liver = assessment.remnant, assessment.checks, assessment.plan, assessment.liver
    tumors = assessment.tumors
    margins = [t.margin_mm for t in tumors if t.fate == "resected" and t.margin_mm is not None]
    segments = {s for t in tumors for s in t.segments}
    statuses = {name: chk.status for name, chk in checks.items()
                if name in ("two_contiguous_segments", "inflow", "outflow", "biliary_drainage", "tumor_clearance")}
    return {
        "flr_body_weight_percent": remnant.flr_body_weight_percent,
        "sflr_percent": remnant.sflr_percent,
        "flr_percent_of_functional_liver": remnant.percent_of_functional_liver,
        "remnant_functional_volume_ml": remnant.functional_volume_ml,
        **statuses,
        "min_margin_mm": min(margins) if margins else None,
        # no tumour (no tumour mask, or an empty one: tumor_clearance is then not_assessed): every tumour
        # fact is missing, never 0 (issue 13, item 1; Fong's count and size are then missing inputs)
        **({
            "tumor_count": len(tumors),
            "tumors_left": sum(t.fate == "left" for t in tumors),
            "tumors_ablated": sum(t.fate == "ablated" for t in tumors),
            # Fong's "largest tumour > 5 cm": the measured largest extent, not the equal-volume sphere
            "largest_tumor_mm": max(t.max_diameter_mm if t.max_diameter_mm is not None
                                    else equivalent_diameter_mm(t.volume_ml) for t in tumors),
            "segments_involved": len(segments),
            "liver_involved_percent": liver.tumor_volume_ml / liver.total_volume_ml * 100.0
            if liver.total_volume_ml else None,
            "bilobar": bool(segments & RIGHT_LIVER) and bool(segments & LEFT_LIVER),
        } if tumors else dict.fromkeys(_TUMOUR_FACTS)),
        # the ablation rule (source text: ablation for "multiple small lesions"): the largest ablated tumour
        "largest_ablated_tumor_mm": max((t.max_diameter_mm if t.max_diameter_mm is not None
                                         else equivalent_diameter_mm(t.volume_ml)
                                         for t in tumors if t.fate == "ablated"), default=None),
        "plan_is_anatomic": bool(plan.resected_segments) and not plan.wedges,
        "segments_resected": len(plan.resected_segments),
        "major_hepatectomy": len(plan.resected_segments) >= 3,
    }


def patient_facts(patient: Patient, *, tumor_count: int | None = None, largest_tumor_mm: float | None = None,
                  sflr_percent: float | None = None, scan_date: date | None = None) -> dict[str, Any]:
    """Facts from a :class:`flr.patient.Patient` (scores computed here when their inputs are present).

    ``scan_date``: the CT's date (DICOM StudyDate, else ``--scan-date``); the patient file's ``scan_date``
    is used when it is None.
    """
    from flr import scores

    labs = patient.labs
    primary = patient.primary
    f: dict[str, Any] = {
        "fit_for_major_surgery": patient.fit_for_major_surgery,
        "liver_condition": patient.liver_condition,
        "chemotherapy_weeks": patient.chemotherapy_weeks,
        "weight_kg": patient.weight_kg,
        "height_cm": patient.height_cm,
    }
    bili, alb, inr, cr = labs.bilirubin_mg_dl, labs.albumin_g_dl, labs.inr, labs.creatinine_mg_dl
    asc, enc = patient.ascites, patient.encephalopathy
    cp = None
    if bili is not None and alb is not None and inr is not None and asc is not None and enc is not None:
        cp = scores.child_pugh(bili, alb, inr, asc, enc)
    f["child_pugh_points"], f["child_pugh_class"] = cp if cp else (None, None)
    bili_umol, alb_g_l = labs.bilirubin_umol_l, labs.albumin_g_l
    f["albi_grade"] = scores.albi(bili_umol, alb_g_l)[1] if bili_umol is not None and alb_g_l is not None else None
    f["meld"] = scores.meld(cr, bili, inr, dialysis=bool(labs.dialysis)) \
        if cr is not None and bili is not None and inr is not None else None
    f["cea_ng_ml"] = labs.cea_ng_ml
    for key in ("site", "synchronous", "node_positive_primary", "disease_free_interval_months", "tki_response",
                "progression", "origin", "prior_liver_recurrence", "prior_recurrence"):
        f["primary_site" if key == "site" else key] = getattr(primary, key, None) if primary is not None else None
    ehd = patient.extrahepatic_disease
    f["extrahepatic_sites"] = None if ehd is None else [d.site for d in ehd]
    extents = [d.extent for d in ehd or [] if d.extent]
    f["extrahepatic_extent"] = ("extensive" if "extensive" in extents else "limited") if extents else None
    # none / limited / extensive in one fact (rules that apply only without, or without extensive, disease);
    # disease of unstated extent is missing unless one site is stated extensive
    f["extrahepatic_disease"] = (None if ehd is None else "none" if not ehd else
                                 "extensive" if "extensive" in extents else
                                 "limited" if len(extents) == len(ehd) else None)
    f["biliary_anatomy"] = getattr(patient, "biliary_anatomy", None)
    if f["primary_site"] == "colorectal":
        points, _risk, missing = scores.fong_score(f["node_positive_primary"], f["disease_free_interval_months"],
                                                   tumor_count, f["cea_ng_ml"], largest_tumor_mm,
                                                   synchronous=f["synchronous"])
        f["fong_score"], f["fong_missing"] = points, list(missing)
    pve = patient.pve
    f["pve_done"] = pve is not None
    if pve is not None and sflr_percent is not None and pve.sflr_before_percent is not None:
        dh = scores.degree_of_hypertrophy(pve.sflr_before_percent, sflr_percent)
        f["degree_of_hypertrophy_pp"] = dh
        # the scan's date: DICOM StudyDate (``scan_date``), else the patient file's; never today (issue 13,
        # item 3): without one the KGR is missing and DH stands alone
        scan = scan_date or patient.scan_date
        if pve.date is not None and scan is not None:
            weeks = patient.pve_weeks(scan)
            f["weeks_since_pve"] = weeks
            if weeks is not None:
                f["kinetic_growth_rate_pp_per_week"] = scores.kinetic_growth_rate(dh, weeks)
    return f
