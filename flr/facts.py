"""The facts a rulebook judges: measurements of an assessment and the patient's data, in one flat mapping.

Keys and units are the contract between :mod:`flr.assess`, :mod:`flr.patient` and :mod:`flr.rules`
(missing facts are ``None``: the rules that need them are then ``not_assessed``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

RIGHT_LIVER = {"liver_segment_5", "liver_segment_6", "liver_segment_7", "liver_segment_8"}
LEFT_LIVER = {"liver_segment_2", "liver_segment_3", "liver_segment_4", "liver_segment_4a", "liver_segment_4b"}


def equivalent_diameter_mm(volume_ml: float) -> float:
    """Diameter (mm) of the sphere with this volume: d = (6 V / pi)^(1/3), V in mm^3."""
    return (6.0 * volume_ml * 1000.0 / math.pi) ** (1.0 / 3.0)


def assessment_facts(result: Mapping[str, Any]) -> dict[str, Any]:
    """Facts from an assessment result (the dict of :meth:`flr.assess.Assessment.to_dict`)."""
    remnant, checks, plan, liver = result["remnant"], result["checks"], result["plan"], result["liver"]
    tumors = result.get("tumors", [])
    margins = [t["margin_mm"] for t in tumors if t.get("fate") == "resected" and t.get("margin_mm") is not None]
    segments = {s for t in tumors for s in t.get("segments", [])}
    tumor_ml = liver.get("tumor_volume_ml") or 0.0
    return {
        "flr_body_weight_percent": remnant.get("flr_body_weight_percent"),
        "sflr_percent": remnant.get("sflr_percent"),
        "flr_percent_of_functional_liver": remnant.get("percent_of_functional_liver"),
        "remnant_functional_volume_ml": remnant.get("functional_volume_ml"),
        **{name: checks[name]["status"] for name in
           ("two_contiguous_segments", "inflow", "outflow", "biliary_drainage", "tumor_clearance") if name in checks},
        "min_margin_mm": min(margins) if margins else None,
        "tumor_count": len(tumors),
        "tumors_left": sum(t.get("fate") == "left" for t in tumors),
        "tumors_ablated": sum(t.get("fate") == "ablated" for t in tumors),
        "largest_tumor_mm": max((equivalent_diameter_mm(t["volume_ml"]) for t in tumors), default=None),
        "segments_involved": len(segments),
        "liver_involved_percent": tumor_ml / liver["total_volume_ml"] * 100.0 if liver.get("total_volume_ml") else None,
        "bilobar": bool(segments & RIGHT_LIVER) and bool(segments & LEFT_LIVER),
        "plan_is_anatomic": bool(plan.get("resected_segments")) and not plan.get("wedges"),
        "segments_resected": len(plan.get("resected_segments", [])),
        "major_hepatectomy": len(plan.get("resected_segments", [])) >= 3,
    }


def patient_facts(patient: Any, *, tumor_count: int | None = None, largest_tumor_mm: float | None = None,
                  sflr_percent: float | None = None, scan_date: date | None = None) -> dict[str, Any]:
    """Facts from a :class:`flr.patient.Patient` (scores computed here when their inputs are present)."""
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
    bili, alb, inr = labs.bilirubin_mg_dl, labs.albumin_g_dl, labs.inr
    cp = None
    if None not in (bili, alb, inr, patient.ascites, patient.encephalopathy):
        cp = scores.child_pugh(bili, alb, inr, patient.ascites, patient.encephalopathy)
    f["child_pugh_points"], f["child_pugh_class"] = cp if cp else (None, None)
    f["albi_grade"] = scores.albi(labs.bilirubin_umol_l, labs.albumin_g_l)[1] if None not in (bili, alb) else None
    cr = labs.creatinine_mg_dl
    f["meld"] = scores.meld(cr, bili, inr, dialysis=bool(getattr(labs, "dialysis", False))) \
        if None not in (cr, bili, inr) else None
    f["cea_ng_ml"] = labs.cea_ng_ml
    for key in ("site", "synchronous", "node_positive_primary", "disease_free_interval_months", "tki_response",
                "progression", "origin", "prior_liver_recurrence"):
        f["primary_site" if key == "site" else key] = getattr(primary, key, None) if primary is not None else None
    ehd = patient.extrahepatic_disease
    f["extrahepatic_sites"] = None if ehd is None else [d.site for d in ehd]
    extents = [d.extent for d in ehd or [] if d.extent]
    f["extrahepatic_extent"] = ("extensive" if "extensive" in extents else "limited") if extents else None
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
        if pve.date is not None and (scan_date or date.today()) > pve.date:
            weeks = patient.pve_weeks(scan_date or date.today())
            f["weeks_since_pve"] = weeks
            f["kinetic_growth_rate_pp_per_week"] = scores.kinetic_growth_rate(dh, weeks)
    return f
