"""Inflow, outflow, arterial inflow and biliary drainage of a remnant, from vascular territories.

:func:`prepare_supply` builds, once per case, every vessel system the label maps allow (a mixed
``hepatic_vessel`` mask is first split into portal and hepatic veins by :mod:`flr.vesselsplit`) with its
graph and territories (:mod:`flr.territories`); :func:`supply_checks` applies one plan to them and gives
one typed :class:`~flr.results.SupplyCheck` per check plus the liver at risk of each system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from flr.anatomy import SEGMENT_BY_CODE
from flr.case import CaseAnatomy
from flr.model import FAIL, NOT_ASSESSED, PASS, CheckStatus
from flr.results import SegmentSupply, SupplyCheck, VesselSystemSummary
from flr.territories import (
    SEGMENT_FAIL_FRACTION,
    SYSTEMS,
    SegmentRisk,
    SystemCut,
    SystemTerritories,
    cut_system,
    prepare_system,
    segment_risks,
)

__all__ = ["PreparedSystem", "Supply", "prepare_supply", "supply_checks"]

_TRUNKS = {"outflow": "inferior_vena_cava"}


@dataclass(frozen=True, repr=False)
class PreparedSystem:
    """One check's vessel system on a case: its mask, where it came from, its territories (or why none)."""

    check: str
    vessel: str
    source: str
    mask: np.ndarray | None
    territories: SystemTerritories | None
    problem: str | None
    separation: dict[str, Any] | None = None


@dataclass(frozen=True, repr=False)
class Supply:
    """Every vessel system of a case, prepared for any number of plans; ``warnings`` about how they were built."""

    systems: Mapping[str, PreparedSystem]
    warnings: tuple[str, ...] = field(default=())


def _intrahepatic_outline(anatomy: CaseAnatomy, masks: Sequence[np.ndarray]) -> np.ndarray:
    """The liver outline that tells intra- from extrahepatic vessel (closed from the parts without one)."""
    if anatomy.has_outline:
        return anatomy.liver
    from flr.vessels import liver_outline_from_parts

    return liver_outline_from_parts(anatomy.liver, list(masks), anatomy.geometry)


#: Why a mixed mask without a trunk is not separated unless anatomical seeds are asked for.
NO_TRUNK = ("the hepatic_vessel mask (portal and hepatic veins in one class) has no trunk (no part outside the "
            "liver, no inferior_vena_cava or portal_vein mask), so nothing says where each system is fed from or "
            "drains; give those masks (TotalSegmentator's total task) or ask for anatomical seeds "
            "(--anatomical-vessel-seeds: Couinaud landmarks, low confidence)")


def _split(anatomy: CaseAnatomy, outline: np.ndarray, territory: np.ndarray | None = None,
           anatomical_seeds: bool = False
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str | None, dict[str, Any]]:
    """Portal and hepatic-venous masks (and roots) from a mixed ``hepatic_vessel`` mask; why not, if not.

    Anatomical seeds (a mask strictly inside the liver, no trunk mask) are used only when asked for: the
    separation is then a guess from Couinaud landmarks (48-94 % of the phantom's voxels right, depending
    on the grid), not good enough to judge a plan by default."""
    from flr.vesselsplit import split_vessels

    v = anatomy.vessels
    split = split_vessels(v["hepatic_vessel"], anatomy.geometry, liver_mask=outline, portal_mask=v.get("portal_vein"),
                          ivc_mask=v.get("inferior_vena_cava"), segment_map=territory,
                          anatomical_seeds=anatomical_seeds)
    summary = split.to_dict()
    if split.status == NOT_ASSESSED:
        return {}, {}, split.detail if anatomical_seeds else NO_TRUNK, summary
    masks = {"inflow": split.portal, "outflow": split.hepatic}
    roots = {k: r for k, r in (("inflow", split.portal_root), ("outflow", split.hepatic_root)) if r is not None}
    return masks, roots, None, summary


def _prepare_systems(jobs: Mapping[str, tuple[np.ndarray, str, np.ndarray | None]], anatomy: CaseAnatomy,
                     outline: np.ndarray, territory: np.ndarray | None) -> dict[str, SystemTerritories]:
    """:func:`flr.territories.prepare_system` of every job (check: mask, source, trunk), the systems at the same
    time on as many threads as flr's kernels use (issue 14): they share nothing but read-only masks, and
    thinning and the transforms release the GIL. The results do not depend on the number of threads."""
    from concurrent.futures import ThreadPoolExecutor

    from flr.kernels import _default_threads

    def one(check: str) -> SystemTerritories:
        mask, _, trunk = jobs[check]
        return prepare_system(mask, anatomy.geometry, anatomy.liver, outline_mask=outline, trunk_mask=trunk,
                              vessel=SYSTEMS[check].vessel, segment_map=None if check == "outflow" else territory)

    workers = min(len(jobs), _default_threads(None))
    if workers <= 1:
        return {check: one(check) for check in jobs}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flr-system") as pool:
        futures = {check: pool.submit(one, check) for check in jobs}
        return {check: f.result() for check, f in futures.items()}


def prepare_supply(anatomy: CaseAnatomy, territory: np.ndarray | None = None, *,
                   anatomical_seeds: bool = False) -> Supply:
    """Prepare the vessel systems of ``anatomy`` (graph, root, bridges, territories) for :func:`supply_checks`.

    ``territory`` (segment codes of every liver voxel) makes the territories of the Glissonean systems
    (portal vein, hepatic artery, bile duct) stay inside the segments they run through.
    ``anatomical_seeds`` lets a mixed mask without any trunk be separated from Couinaud landmarks.
    """
    v = anatomy.vessels
    outline = _intrahepatic_outline(anatomy, [m for k, m in v.items() if k != "inferior_vena_cava"])
    split_masks: dict[str, np.ndarray] = {}
    split_roots: dict[str, np.ndarray] = {}
    split_problem, separation = None, None
    warnings: list[str] = []
    if "hepatic_vessel" in v and ("portal_vein" not in v or "hepatic_vein" not in v):
        split_masks, split_roots, split_problem, separation = _split(anatomy, outline, territory, anatomical_seeds)
        warnings.append("the vessel mask mixes portal and hepatic veins (hepatic_vessel): "
                        + (f"not separated: {split_problem}" if split_problem else
                           f"separated by flr ({separation.get('detail', '')})"))
    systems: dict[str, PreparedSystem] = {}
    jobs: dict[str, tuple[np.ndarray, str, np.ndarray | None]] = {}
    for check, spec in SYSTEMS.items():
        if check == "arterial_inflow" and spec.vessel not in v:
            continue
        mask, source, trunk = v.get(spec.vessel), f"{spec.vessel} mask", v.get(_TRUNKS.get(check, ""))
        if check in split_masks:
            given = v.get(spec.vessel) if check == "outflow" else v.get("portal_vein")
            mask = split_masks[check] | given if given is not None else split_masks[check]
            source = "separated from the hepatic_vessel mask"
            trunk = split_roots.get(check, trunk)
        if mask is None:
            why = (split_problem if check in ("inflow", "outflow") and split_problem
                   else f"no {spec.vessel} mask in the label maps")
            systems[check] = PreparedSystem(check, spec.vessel, "none", None, None, why, separation)
            continue
        jobs[check] = (mask, source, trunk)
    prepared = _prepare_systems(jobs, anatomy, outline, territory)
    for check in SYSTEMS:  # in SYSTEMS order, as one at a time gave
        if check not in jobs:
            continue
        (mask, source, _), t, vessel = jobs[check], prepared[check], SYSTEMS[check].vessel
        if t.assumed_joins_mm:
            warnings.append(f"the {vessel} mask ({source}) is fragmented: {len(t.assumed_joins_mm)} pieces "
                            f"are not joined to its trunk; flr assumed each joins the nearest part of the tree "
                            f"(up to {max(t.assumed_joins_mm):.0f} mm), so an interruption of this system would "
                            "not be seen")
        systems[check] = PreparedSystem(check, vessel, source, mask, t, t.problem,
                                        separation if check in split_masks else None)
    systems = {k: systems[k] for k in SYSTEMS if k in systems}
    return Supply(systems, tuple(warnings))


# ------------------------------------------------------------------------------------------------
# One plan
# ------------------------------------------------------------------------------------------------


#: Why a segment without a bile duct of its own in the mask is not judged: non-dilated ducts are often not
#: visible on portal-venous CT, so a duct missing from the mask is no evidence that the segment is undrained.
DUCT_NOT_VISIBLE = ("no bile duct of its own in the mask (non-dilated ducts are often invisible on CT): its "
                    "drainage is not assessed, never failed")


def _segment_row(risk: SegmentRisk, what: str, check: str = "") -> SegmentSupply:
    f = risk.at_risk_fraction
    status: CheckStatus = FAIL if risk.volume_ml > 0 and f >= SEGMENT_FAIL_FRACTION else PASS
    detail = (f"{risk.at_risk_ml:.1f} of {risk.volume_ml:.1f} mL ({100 * f:.1f} %) lose their {what}"
              + (f": at least {100 * SEGMENT_FAIL_FRACTION:.0f} %, the segment fails" if status == FAIL else ""))
    if not risk.own_branch and check == "biliary_drainage" and risk.volume_ml > 0:
        status, detail = NOT_ASSESSED, f"{detail}; {DUCT_NOT_VISIBLE}"
    elif not risk.own_branch:
        detail += "; no branch of its own in the mask, supplied by the nearest branches"
    return SegmentSupply(status=status, detail=detail, connected_vessel_ml=risk.connected_vessel_ml,
                         total_vessel_ml=risk.total_vessel_ml, orphaned_vessel_ml=risk.orphaned_vessel_ml,
                         cut_vessel_ml=risk.cut_vessel_ml, volume_ml=risk.volume_ml, at_risk_ml=risk.at_risk_ml,
                         at_risk_fraction=min(1.0, f), own_branch=risk.own_branch)


def _not_assessed(system: PreparedSystem, remnant_codes: Sequence[int]) -> SupplyCheck:
    why = system.problem or "not assessed"
    rows = {SEGMENT_BY_CODE[c].name: SegmentSupply(status=NOT_ASSESSED, detail=why, connected_vessel_ml=0.0,
                                                   total_vessel_ml=0.0, orphaned_vessel_ml=0.0, cut_vessel_ml=0.0)
            for c in remnant_codes}
    return SupplyCheck(status=NOT_ASSESSED, detail=why, vessel=system.vessel, segments=rows)


def _summary(system: PreparedSystem, cut: SystemCut) -> VesselSystemSummary:
    t = cast(SystemTerritories, system.territories)
    gr = t.graph
    return VesselSystemSummary(
        source=system.source, branches=len(gr.branches), total_length_mm=round(gr.total_length_mm, 2),
        root_points=int(t.root.sum()), bridges=len(gr.bridges),
        bridged_gaps_mm=tuple(round(b.gap_mm, 2) for b in gr.bridges), debris_count=gr.debris_count,
        debris_ml=gr.debris_ml, disconnected_ml=gr.disconnected_ml, assumed_joins_mm=t.assumed_joins_mm,
        cut_points=int(cut.cut.sum()),
        lost_points=int(cut.lost.sum()), kept_on_plane_points=cut.plane_kept, separation=system.separation)


def _check(system: PreparedSystem, lost: np.ndarray, remnant: np.ndarray, territory: np.ndarray,
           remnant_codes: Sequence[int], keep_plane_vessels: bool) -> tuple[SupplyCheck, np.ndarray | None]:
    spec = SYSTEMS[system.check]
    if system.territories is None or system.problem or system.mask is None:
        return _not_assessed(system, remnant_codes), None
    cut = cut_system(system.territories, lost, remnant, keep_plane_vessels=keep_plane_vessels)
    at_risk = cut.at_risk & remnant
    risks = segment_risks(cut, territory, remnant, system.mask, lost, remnant_codes)
    rows = {SEGMENT_BY_CODE[c].name: _segment_row(r, spec.what, system.check) for c, r in risks.items()}
    ml = float(np.count_nonzero(at_risk)) * system.territories.geometry.voxel_volume_ml
    failing = [n for n, r in rows.items() if r.status == FAIL]
    unseen = [n for n, r in rows.items() if r.status == NOT_ASSESSED]
    status: CheckStatus = FAIL if failing else NOT_ASSESSED if unseen else PASS
    detail = (f"{ml:.1f} mL of the remnant lose their {spec.what}"
              + (f"; failing: {', '.join(failing)}" if failing else "")
              + (f"; not assessed (no duct of their own visible in the mask): {', '.join(unseen)}" if unseen else ""))
    chk = SupplyCheck(status=status, detail=detail, vessel=system.vessel, segments=rows, at_risk_ml=ml,
                      system=_summary(system, cut), **{spec.lost_key: ml})
    return chk, at_risk


def supply_checks(supply: Supply, lost: np.ndarray, remnant: np.ndarray, territory: np.ndarray,
                  remnant_codes: Sequence[int], *, keep_plane_vessels: bool = True
                  ) -> tuple[dict[str, SupplyCheck], dict[str, np.ndarray]]:
    """Every check for one plan: ``lost`` removed or ablated parenchyma, ``remnant`` the parenchyma left
    that can function (the assessment leaves out the tumour left in it and the ablation zones), on which
    volumes and fractions at risk are measured.

    Returns the checks (``inflow``, ``outflow``, ``biliary_drainage``, and ``arterial_inflow`` with an
    artery mask) and, per assessed check, the remnant at risk (bool, z, y, x).
    """
    checks: dict[str, SupplyCheck] = {}
    at_risk: dict[str, np.ndarray] = {}
    for check, system in supply.systems.items():
        checks[check], risk = _check(system, lost, remnant, territory, remnant_codes, keep_plane_vessels)
        if risk is not None:
            at_risk[check] = risk
    return checks, at_risk
