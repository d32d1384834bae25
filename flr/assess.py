"""Judge a resection plan: remnant volume, functional remnant, contiguity, inflow/outflow, margins.

The rule (source text, section 1): resection is safe when two contiguous segments of adequate volume,
with intact vascular inflow, outflow and biliary drainage, are preserved, with a tumour-free margin
(>= 1 mm R0, 1 cm desirable). Like planning workstations (Lang 2005, "functional FLR"), flr counts as
functional remnant only parenchyma that keeps its supply and drainage.

Definitions (volumes in mL, exact voxel counts x voxel volume):

* liver: union of the liver label, the Couinaud segments and the tumours (+ intrahepatic vessels when a
  whole-liver outline is given); every liver voxel belongs to the territory of its nearest segment.
* functional liver = liver - tumours.
* remnant = liver - resected segments - wedges (ablation zones and tumours left stay in the remnant).
* functional remnant = remnant - tumours left - ablation zones - segments without inflow, outflow or
  drainage - islands cut off from the main remnant piece.
* FLR % = functional remnant / functional liver; sFLR % = functional remnant / TELV; FLR/BW %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flr.errors import EmptyStructureError, PlanError
from flr.image import Geometry, Image, LabelMap, mm3_to_ml
from flr.plan import Plan
from flr.schemes import SEGMENT_NAMES
from flr.volumes import VolumetryResult, volumetry

PASS, FAIL, NOT_ASSESSED = "pass", "fail", "not_assessed"
#: Islands listed one by one in ``remnant.islands_ml``; smaller debris (cut surfaces leave single voxels
#: touching the remnant only along an edge) is counted in ``islands_count`` and ``islands_total_ml``.
ISLAND_LISTED_ML = 0.05
_SEG_CODE = {name: i + 1 for i, name in enumerate(SEGMENT_NAMES)}
SEGMENT_CODES: Mapping[int, str] = {i + 1: name for i, name in enumerate(SEGMENT_NAMES)}
_CODE_SEG = {v: k for k, v in _SEG_CODE.items()}


@dataclass(frozen=True)
class Body:
    """Patient size for standardised volumes (optional)."""

    weight_kg: float | None = None
    height_cm: float | None = None
    bsa_formula: str = "mosteller"
    telv_formula: str = "vauthey"


@dataclass(frozen=True)
class Assessment:
    """The result of :func:`assess`: the volumetry plus plan, remnant, checks and tumours."""

    volumetry: VolumetryResult
    plan: Plan
    liver: Mapping[str, Any]
    remnant: Mapping[str, Any]
    checks: Mapping[str, Any]
    tumors: tuple[Mapping[str, Any], ...]
    body: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    #: filled by :func:`judge` when a patient file and a rulebook are given
    patient: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    verdict: Mapping[str, Any] = field(default_factory=dict)
    #: arrays (z, y, x) on ``volumetry.geometry`` for figures: ``territory`` (segment codes, see
    #: :data:`SEGMENT_CODES`), ``removed``, ``ablation``, ``functional`` (bool), ``tumors`` (ids); not in the JSON
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = self.volumetry.to_dict()
        out["kind"] = "assessment"
        out["plan"] = self.plan.to_dict()
        out["liver"] = dict(self.liver)
        out["remnant"] = dict(self.remnant)
        out["checks"] = dict(self.checks)
        out["tumors"] = [dict(t) for t in self.tumors]
        out["body"] = dict(self.body)
        out["warnings"] = [*out["warnings"], *self.warnings]
        if self.verdict:
            out["patient"] = dict(self.patient)
            out["facts"] = dict(self.facts)
            out["verdict"] = dict(self.verdict)
        out["disclaimer"] = ("flr supports the multidisciplinary team's decision; it does not replace it.")
        return out

    def to_json(self, indent: int = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


@dataclass
class _Case:
    geometry: Geometry
    segment_map: np.ndarray  # int16 segment codes, 0 elsewhere
    liver: np.ndarray  # bool
    tumor: np.ndarray  # bool
    tumor_instances: np.ndarray | None
    vessels: dict[str, np.ndarray]
    has_outline: bool


def _gather(label_maps: Sequence[LabelMap], geometry: Geometry) -> _Case:
    shape = geometry.shape_zyx
    seg = np.zeros(shape, np.int16)
    liver = np.zeros(shape, bool)
    tumor = np.zeros(shape, bool)
    instances = None
    vessels: dict[str, np.ndarray] = {}
    has_outline = False
    for lm in label_maps:
        arr = lm.array
        for label, name in lm.names.items():
            if name in _SEG_CODE or name in ("liver", "tumor") or name in (
                    "portal_vein", "hepatic_vein", "hepatic_artery", "bile_duct", "inferior_vena_cava",
                    "hepatic_vessel"):
                m = arr == label
                if not m.any():
                    continue
                if name in _SEG_CODE:
                    seg[m] = _SEG_CODE[name]
                    liver |= m
                elif name == "liver":
                    liver |= m
                    has_outline = True
                elif name == "tumor":
                    tumor |= m
                    liver |= m
                else:
                    vessels[name] = vessels.get(name, np.zeros(shape, bool)) | m
        tumor_ids = lm.ids_of("tumor")
        if len(tumor_ids) > 1:  # a map whose tumours carry instance ids
            inst = np.where(np.isin(arr, tumor_ids), arr, 0).astype(np.int32)
            instances = inst if instances is None else np.maximum(instances, inst)
    return _Case(geometry, seg, liver, tumor, instances, vessels, has_outline)


def _volume_ml(mask: np.ndarray, geometry: Geometry) -> float:
    return mm3_to_ml(int(np.count_nonzero(mask)) * geometry.voxel_volume_mm3)


def assess(
    label_maps: Sequence[LabelMap],
    plan: Plan,
    *,
    ct: Image | None = None,
    body: Body | None = None,
) -> Assessment:
    """Apply ``plan`` to the case in ``label_maps`` and judge what remains.

    Raises :class:`~flr.errors.PlanError` for a plan that does not fit the case (segments or tumours
    absent, nothing left) and :class:`~flr.errors.GeometryMismatchError` for maps on different grids.
    """
    from flr.distance import nearest_label
    from flr.kernels import components_of_mask, label_stats
    from flr.tumors import find_tumors
    from flr.vessels import check_vessel
    from flr.zones import ablation_zone, tumor_margin, wedge_zone

    vol = volumetry(label_maps, ct=ct)
    g = vol.geometry
    case = _gather(label_maps, g)
    if not case.liver.any():
        raise EmptyStructureError("no liver, segment or tumour labels in "
                                  + ", ".join(str(lm.source) for lm in label_maps))
    present = sorted({_CODE_SEG[int(c)] for c in np.unique(case.segment_map) if c})
    warnings: list[str] = []

    # --- plan -> segment codes (segment 4 covers 4a/4b and the reverse) ------------------------
    resected_codes: set[int] = set()
    for name in plan.resected_segments:
        matches = [s for s in present if s == name or (name == "liver_segment_4" and s.startswith(name))]
        if not present:
            raise PlanError(f"plan {plan.name!r} removes Couinaud segments, but no label map holds segment "
                            "labels; add one (e.g. --labels segments.nii.gz:totalseg-liver-segments)")
        if not matches:
            raise PlanError(f"plan {plan.name!r} removes {name}, which is not in the label maps "
                            f"(segments present: {', '.join(s.rsplit('_', 1)[1] for s in present)})")
        resected_codes.update(_SEG_CODE[m] for m in matches)

    # --- territories: every liver voxel belongs to its nearest segment --------------------------
    if present:
        territory = nearest_label(case.segment_map, case.liver & (case.segment_map == 0), g)
        territory[~case.liver] = 0
    else:
        territory = np.zeros(g.shape_zyx, np.int16)

    # --- tumours --------------------------------------------------------------------------------
    names = {c: n for n, c in _SEG_CODE.items()}
    tumors, tumor_ids = find_tumors(case.tumor, g, segment_map=case.segment_map if present else None,
                                    segment_names=names, instance_map=case.tumor_instances)
    by_id = {t.id: t for t in tumors}
    for tid, _ in (*plan.wedges, *plan.ablations):
        if tid not in by_id:
            raise PlanError(f"plan {plan.name!r} names tumour {tid}, but the case has "
                            + (f"tumours 1-{len(tumors)}" if tumors else "no tumour"))

    resected = np.isin(territory, list(resected_codes)) if resected_codes else np.zeros(g.shape_zyx, bool)
    wedge = np.zeros(g.shape_zyx, bool)
    for tid, margin in plan.wedges:
        wedge |= wedge_zone(tumor_ids, tid, margin, g, liver_mask=case.liver)
    ablation = np.zeros(g.shape_zyx, bool)
    for tid, margin in plan.ablations:
        ablation |= ablation_zone(tumor_ids, tid, margin, g, liver_mask=case.liver)
    removed = resected | wedge
    remnant = case.liver & ~removed
    if not remnant.any():
        raise PlanError(f"plan {plan.name!r} removes the whole liver: nothing would remain")

    # --- tumour fates ---------------------------------------------------------------------------
    ablated_ids = {t for t, _ in plan.ablations}
    tumor_rows: list[dict[str, Any]] = []
    fate_of: dict[int, str] = {}
    for t in tumors:
        inside_removed = int(np.count_nonzero(removed & (tumor_ids == t.id)))
        if t.id in ablated_ids:
            fate = "ablated"
        elif inside_removed == t.voxels:
            fate = "resected"
        else:
            fate = "left"
        fate_of[t.id] = fate
        row = t.to_dict()
        row["fate"] = fate
        row["margin_mm"] = None
        row["margin_class"] = None
        if fate == "left" and inside_removed:
            row["note"] = (f"the plan cuts through this tumour ({inside_removed / t.voxels:.0%} of it removed): "
                           "residual tumour")
        tumor_rows.append(row)
    tumor_left = np.isin(tumor_ids, [i for i, f in fate_of.items() if f == "left"]) if tumors else \
        np.zeros(g.shape_zyx, bool)
    parenchyma_remnant = remnant & ~case.tumor
    for row in tumor_rows:
        if row["fate"] == "resected":
            m = tumor_margin(tumor_ids, row["id"], parenchyma_remnant, g)
            row.update(m.to_dict())

    # --- vessels ----------------------------------------------------------------------------------
    remnant_codes = sorted({int(c) for c in np.unique(territory[remnant]) if c})
    remnant_segments = [names[c] for c in remnant_codes]
    lost = removed | ablation
    common = {"geometry": g, "segment_map": case.segment_map, "segment_names": names, "lost_mask": lost,
              "liver_mask": case.liver, "remnant_segments": remnant_segments}
    checks: dict[str, Any] = {}
    v = case.vessels
    if "portal_vein" not in v and "hepatic_vessel" in v:
        warnings.append("the vessel mask does not separate portal from hepatic veins (hepatic_vessel): "
                        "inflow and outflow are not assessed")
    inflow = check_vessel("inflow", v.get("portal_vein"), vessel_name="portal_vein", **common)
    outflow = check_vessel("outflow", v.get("hepatic_vein"), vessel_name="hepatic_vein",
                           trunk_mask=v.get("inferior_vena_cava"), **common)
    drainage = check_vessel("biliary_drainage", v.get("bile_duct"), vessel_name="bile_duct", **common)
    vessel_checks = [inflow, outflow, drainage]
    if "hepatic_artery" in v:
        vessel_checks.append(check_vessel("arterial_inflow", v["hepatic_artery"], vessel_name="hepatic_artery",
                                          **common))
    for chk in vessel_checks:
        checks[chk.check] = chk.to_dict()
    failing: dict[str, list[str]] = {}
    for chk in vessel_checks:
        for s in chk.segments:
            if s.status == FAIL:
                failing.setdefault(s.segment, []).append(chk.check)

    # --- functional remnant and islands -----------------------------------------------------------
    dead_codes = [_SEG_CODE[s] for s in failing]
    devascularised = np.isin(territory, dead_codes) & remnant if dead_codes else np.zeros(g.shape_zyx, bool)
    functional = remnant & ~tumor_left & ~ablation & ~devascularised
    comp, sizes = components_of_mask(functional)
    island_sizes: list[int] = []
    if sizes.size > 1:
        main = int(np.argmax(sizes)) + 1
        functional &= comp == main
        island_sizes = sorted((int(s) for k, s in enumerate(sizes, 1) if k != main), reverse=True)
    islands_ml = [mm3_to_ml(n * g.voxel_volume_mm3) for n in island_sizes]
    vv = g.voxel_volume_mm3

    liver_ml = _volume_ml(case.liver, g)
    tumor_ml = _volume_ml(case.tumor, g)
    functional_liver_ml = liver_ml - tumor_ml
    remnant_ml = _volume_ml(remnant, g)
    functional_ml = _volume_ml(functional, g)

    # --- two contiguous segments -----------------------------------------------------------------
    functional_segments = np.where(functional, territory, 0).astype(np.int16)
    stats = label_stats(functional_segments)
    per_segment: dict[str, Any] = {}
    for c in remnant_codes:
        name = names[c]
        keeps = int(stats.count(c))
        reasons = [f"no {chk}" for chk in failing.get(name, [])]
        if keeps == 0 and not reasons:
            reasons.append("no functional parenchyma left (removed, ablated, tumour or island)")
        per_segment[name] = {"functional_volume_ml": mm3_to_ml(keeps * vv), "excluded_because": reasons}
    candidates = [c for c in remnant_codes if stats.count(c) > 0 and names[c] not in failing]
    group = _largest_group(candidates, stats, vv)
    group_names = [names[c] for c in group]
    outside = {names[c]: per_segment[names[c]]["excluded_because"] or ["not face-adjacent to the group"]
               for c in remnant_codes if c not in group}
    vascular_unknown = [chk.check for chk in vessel_checks[:2] if chk.status == NOT_ASSESSED]
    contiguity = {
        "status": PASS if len(group) >= 2 else FAIL,
        "detail": (f"largest group of contiguous remnant segments with supply: {', '.join(s[14:] for s in group_names)}"
                   if group else "no remnant segment keeps its supply")
                  + (f" ({', '.join(vascular_unknown)} not assessed: supply assumed)" if vascular_unknown else ""),
        "group": group_names,
        "group_volume_ml": mm3_to_ml(sum(int(stats.count(c)) for c in group) * vv),
        "outside_group": outside,
        "segments": per_segment,
    }
    checks = {"two_contiguous_segments": contiguity, **checks}

    left = [r for r in tumor_rows if r["fate"] == "left"]
    checks["tumor_clearance"] = {
        "status": FAIL if left else PASS,
        "detail": ("tumours left in the remnant: " + ", ".join(
            f"{r['id']} (segment {'/'.join(s[14:] for s in r['segments']) or '?'})" for r in left))
        if left else ("every tumour is resected or ablated" if tumor_rows else "no tumour in the label maps"),
        "tumors": {str(r["id"]): {"fate": r["fate"], "margin_mm": r["margin_mm"], "margin_class": r["margin_class"]}
                   for r in tumor_rows},
    }

    # --- standardised volumes ---------------------------------------------------------------------
    body_out: dict[str, Any] = {}
    sflr = flr_bw = None
    if body is not None and body.weight_kg is not None:
        from flr.scores import bsa_m2, flr_body_weight_percent, telv_ml

        body_out["weight_kg"] = body.weight_kg
        flr_bw = flr_body_weight_percent(functional_ml, body.weight_kg)
        if body.height_cm is not None:
            bsa = bsa_m2(body.weight_kg, body.height_cm, body.bsa_formula)
            telv = telv_ml(bsa, body.telv_formula)
            sflr = functional_ml / telv * 100.0
            body_out.update(height_cm=body.height_cm, bsa_m2=bsa, bsa_formula=body.bsa_formula, telv_ml=telv,
                            telv_formula=body.telv_formula)
    remnant_out = {
        "volume_ml": remnant_ml,
        "functional_volume_ml": functional_ml,
        "segments": remnant_segments,
        "percent_of_functional_liver": functional_ml / functional_liver_ml * 100.0 if functional_liver_ml else None,
        "sflr_percent": sflr,
        "flr_body_weight_percent": flr_bw,
        "islands_ml": [v for v in islands_ml if v >= ISLAND_LISTED_ML],
        "islands_count": len(islands_ml),
        "islands_total_ml": sum(islands_ml),
        "tumor_left_ml": _volume_ml(tumor_left, g),
        "ablation_zones_ml": _volume_ml(ablation & remnant, g),
        "devascularized_ml": _volume_ml(devascularised, g),
    }
    liver_out = {
        "total_volume_ml": liver_ml,
        "tumor_volume_ml": tumor_ml,
        "functional_volume_ml": functional_liver_ml,
        "resected_volume_ml": _volume_ml(removed & case.liver, g),
        "includes_intrahepatic_vessels": case.has_outline,
        "segments_ml": {names[c]: _volume_ml(territory == c, g) for c in sorted(_CODE_SEG) if names[c] in present},
    }
    if not case.has_outline and case.vessels:
        warnings.append("no whole-liver outline: intrahepatic vessel voxels labelled as vessels are not in the "
                        "liver volume")
    arrays = {"territory": territory, "removed": removed, "ablation": ablation, "functional": functional,
              "tumors": tumor_ids, "liver": case.liver}
    return Assessment(vol, plan, liver_out, remnant_out, checks, tuple(tumor_rows), body_out, tuple(warnings),
                      arrays=arrays)


def _largest_group(codes: list[int], stats: Any, voxel_mm3: float) -> list[int]:
    """Largest set of segments connected through shared faces (most segments, then most volume)."""
    seen: set[int] = set()
    best: list[int] = []
    for start in codes:
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            c = stack.pop()
            comp.append(c)
            for d in codes:
                if d not in seen and stats.adjacent(c, d):
                    seen.add(d)
                    stack.append(d)
        key = (len(comp), sum(int(stats.count(c)) for c in comp))
        if key > (len(best), sum(int(stats.count(c)) for c in best)):
            best = sorted(comp)
    return best


def judge(assessment: Assessment, patient: Any, rulebook: Any, *, scan_date: Any = None) -> Assessment:
    """Evaluate ``rulebook`` on the assessment and the patient; returns the assessment with the verdict.

    ``patient`` is a :class:`flr.patient.Patient` or None (then every rule needing patient data is
    ``not_assessed`` and the verdict says which inputs are missing).
    """
    from dataclasses import replace

    from flr.facts import assessment_facts, patient_facts
    from flr.rules import evaluate

    facts = assessment_facts(assessment.to_dict())
    warnings = list(assessment.warnings)
    if patient is not None:
        facts.update(patient_facts(patient, tumor_count=facts["tumor_count"],
                                   largest_tumor_mm=facts["largest_tumor_mm"], sflr_percent=facts["sflr_percent"],
                                   scan_date=scan_date))
        warnings.extend(patient.warnings)
    verdict = evaluate(facts, rulebook)
    return replace(assessment, patient=patient.to_dict() if patient is not None else {}, facts=facts,
                   verdict=verdict.to_dict(), warnings=tuple(warnings))
