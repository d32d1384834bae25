"""Time the round-2 vessel checks (vascular territories) against the round-1 checks, in one process.

Run from the repository root::

    python benchmarks/bench_territories.py                          # 512 x 512 x 400, best of 3
    python benchmarks/bench_territories.py --shape 200 300 300      # (z, y, x): a quick check
    python benchmarks/bench_territories.py --repeat 5 --no-assess

The case is flr's liver phantom (seed 1: segments, tumours, portal and hepatic veins, IVC, liver outline)
on a (z, y, x) grid of ``--shape`` voxels over the field of view of ``benchmarks/bench_assess.py``
(358.4 x 358.4 x 320 mm, that is 0.7 x 0.7 x 0.8 mm at 512 x 512 x 400); a smaller shape gets coarser voxels.
Both rounds judge the same arrays: the case's anatomy (``flr.case.gather_anatomy``), the segment
territories and each plan's zones (``flr.assessment.plan_zones``) are built once, outside the timings.

Round 1 (``flr.vessels``, still in the tree): portal inflow and hepatic-venous outflow (trunk: the IVC) per
plan, as round-1 ``assess`` did: ``check_vessel`` (prepare + evaluate) for each plan; and the prepared path,
``prepare_vessel_tree`` once per check, then ``VesselTree.evaluate`` per plan.

Round 2 (``flr.supply``): ``prepare_supply`` once (every vessel system the maps allow: centerline graph, root,
bridges, branch territories), then ``supply_checks`` per plan (cuts, territories at risk, per-segment volumes).
Optionally ``flr.assessment.assess`` end to end for one plan (everything, the territories included).

Every time is the best of ``--repeat`` runs after one warm-up run of every path (numba kernels compiled or
loaded from the cache). Ratios are round 2 / round 1: above 1 round 2 is slower. The tables are printed and
written to ``benchmarks/results/territories-<date>.md``; each plan's statuses from both rounds follow (they
differ by design: round 1 asks whether a segment keeps a trunk-connected vessel, round 2 how much of it loses
its branch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPE = (400, 512, 512)
#: The field of view of benchmarks/bench_assess.py (x, y, z mm): 512 x 0.7, 512 x 0.7, 400 x 0.8.
FOV_MM = (358.4, 358.4, 320.0)
ROUND1_CHECKS = (("inflow", "portal_vein", None), ("outflow", "hepatic_vein", "inferior_vena_cava"))


@dataclass
class PlanInputs:
    """What both rounds need of one plan, the masks bit-packed (ten plans of 512 x 512 x 400 stay small)."""

    name: str
    lost: np.ndarray
    remnant: np.ndarray           # remnant minus ablation zones, as assess passes it to supply_checks
    remnant_codes: list[int]
    remnant_segments: list[str]
    keep_plane_vessels: bool
    shape: tuple[int, int, int]

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        n = int(np.prod(self.shape))
        return tuple(np.unpackbits(m, count=n).view(bool).reshape(self.shape) for m in (self.lost, self.remnant))


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(best seconds of ``repeat`` calls, the last result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def best_timed(fn: Callable[[], tuple[float, Any]], repeat: int) -> tuple[float, Any]:
    """(best of the seconds ``fn`` itself measures over ``repeat`` calls, the last call's other result)."""
    times, out = [], None
    for _ in range(repeat):
        seconds, out = fn()
        times.append(seconds)
    return min(times), out


def plan_inputs(anatomy: Any, territory: np.ndarray, tumor_ids: np.ndarray, names: list[str]
                ) -> tuple[list[PlanInputs], list[str]]:
    """Zones of each named plan (those that do not fit the case are skipped, with the reason)."""
    from flr.anatomy import SEGMENT_BY_CODE
    from flr.assessment import plan_zones, resected_codes
    from flr.errors import PlanError
    from flr.plan import resection_plan

    out, skipped = [], []
    for name in names:
        plan = resection_plan(name)
        try:
            zones = plan_zones(plan, anatomy, territory, tumor_ids, resected_codes(plan, anatomy.present_segments))
        except PlanError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        codes = sorted(int(c) for c in np.unique(territory[zones.remnant]) if c)
        out.append(PlanInputs(name, np.packbits(zones.lost.ravel()),
                              np.packbits((zones.remnant & ~zones.ablation).ravel()), codes,
                              [SEGMENT_BY_CODE[c].name for c in codes], plan.keep_plane_vessels,
                              anatomy.geometry.shape_zyx))
    return out, skipped


def round1_naive(anatomy: Any, plans: list[PlanInputs]) -> tuple[float, dict[str, dict[str, str]]]:
    """Seconds of ``check_vessel`` (inflow + outflow) summed over ``plans`` (unpacking excluded); statuses."""
    from flr.anatomy import SEGMENT_CODES
    from flr.vessels import check_vessel

    total, statuses = 0.0, {}
    for p in plans:
        lost, _ = p.masks()
        t0 = time.perf_counter()
        checks = {check: check_vessel(check, anatomy.vessels.get(vessel), vessel_name=vessel,
                                      geometry=anatomy.geometry, segment_map=anatomy.segment_map,
                                      segment_names=SEGMENT_CODES, lost_mask=lost, liver_mask=anatomy.liver,
                                      remnant_segments=p.remnant_segments,
                                      trunk_mask=anatomy.vessels.get(trunk) if trunk else None)
                  for check, vessel, trunk in ROUND1_CHECKS}
        total += time.perf_counter() - t0
        statuses[p.name] = {k: c.status for k, c in checks.items()}
    return total, statuses


def round1_prepare(anatomy: Any) -> dict[str, Any]:
    """The round-1 trees of inflow and outflow, prepared for any number of plans."""
    from flr.anatomy import SEGMENT_CODES
    from flr.vessels import prepare_vessel_tree

    return {check: prepare_vessel_tree(check, anatomy.vessels.get(vessel), vessel_name=vessel,
                                       geometry=anatomy.geometry, segment_map=anatomy.segment_map,
                                       segment_names=SEGMENT_CODES, liver_mask=anatomy.liver,
                                       trunk_mask=anatomy.vessels.get(trunk) if trunk else None)
            for check, vessel, trunk in ROUND1_CHECKS}


def round1_evaluate(trees: dict[str, Any], plans: list[PlanInputs]) -> tuple[float, None]:
    """Seconds of ``VesselTree.evaluate`` (inflow + outflow) summed over ``plans`` (unpacking excluded)."""
    total = 0.0
    for p in plans:
        lost, _ = p.masks()
        t0 = time.perf_counter()
        for tree in trees.values():
            tree.evaluate(lost, p.remnant_segments)
        total += time.perf_counter() - t0
    return total, None


def round2_checks(supply: Any, territory: np.ndarray, plans: list[PlanInputs]
                  ) -> tuple[float, dict[str, dict[str, str]]]:
    """Seconds of ``supply_checks`` summed over ``plans`` (unpacking excluded); inflow/outflow statuses."""
    from flr.supply import supply_checks

    total, statuses = 0.0, {}
    for p in plans:
        lost, remnant = p.masks()
        t0 = time.perf_counter()
        checks, _ = supply_checks(supply, lost, remnant, territory, p.remnant_codes,
                                  keep_plane_vessels=p.keep_plane_vessels)
        total += time.perf_counter() - t0
        statuses[p.name] = {k: f"{c.status}" + (f" ({c.at_risk_ml:.1f} mL at risk)" if c.at_risk_ml else "")
                            for k, c in checks.items() if k in ("inflow", "outflow")}
    return total, statuses


def prepare_supply_of(anatomy: Any, territory: np.ndarray) -> Any:
    """``prepare_supply(anatomy, territory)`` (the territory argument where this version of flr takes one)."""
    import inspect

    from flr.supply import prepare_supply

    if "territory" in inspect.signature(prepare_supply).parameters:
        return prepare_supply(anatomy, territory)
    return prepare_supply(anatomy)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "—"


def run(shape: tuple[int, int, int], repeat: int, with_assess: bool) -> str:
    from flr.anatomy import RESECTIONS, SEGMENT_CODES
    from flr.assessment import assess, territories
    from flr.case import Case, gather_anatomy
    from flr.phantom import make_liver_phantom
    from flr.plan import resection_plan
    from flr.tumors import find_tumors

    spacing = tuple(f / n for f, n in zip(FOV_MM, shape[::-1], strict=True))  # (x, y, z) mm
    t0 = time.perf_counter()
    ph = make_liver_phantom(1, spacing_mm=spacing, shape_zyx=shape)
    build_s = time.perf_counter() - t0
    maps = [ph.labels, ph.liver]
    case_s, anatomy = best(lambda: gather_anatomy(Case.build(maps)), repeat)
    territory = territories(anatomy)
    _, tumor_ids = find_tumors(anatomy.tumor, anatomy.geometry, segment_map=anatomy.segment_map,
                               segment_names=SEGMENT_CODES, instance_map=anatomy.tumor_instances)
    plans, skipped = plan_inputs(anatomy, territory, tumor_ids, list(RESECTIONS))
    one = [p for p in plans if p.name == "right-hemihepatectomy"]

    # warm-up: every path once (numba compile or cache load, first-touch of the arrays)
    round1_naive(anatomy, one)
    round1_evaluate(round1_prepare(anatomy), one)
    warm_supply = prepare_supply_of(anatomy, territory)
    round2_checks(warm_supply, territory, one)

    r1_one, _ = best_timed(lambda: round1_naive(anatomy, one), repeat)
    r1_all, r1_status = best_timed(lambda: round1_naive(anatomy, plans), repeat)
    r1_prep, trees = best(lambda: round1_prepare(anatomy), repeat)
    r1_eval_one, _ = best_timed(lambda: round1_evaluate(trees, one), repeat)
    r1_eval_all, _ = best_timed(lambda: round1_evaluate(trees, plans), repeat)
    del warm_supply
    r2_prep, supply = best(lambda: prepare_supply_of(anatomy, territory), repeat)
    r2_one, _ = best_timed(lambda: round2_checks(supply, territory, one), repeat)
    r2_all, r2_status = best_timed(lambda: round2_checks(supply, territory, plans), repeat)
    assess_s = None
    if with_assess:
        plan = resection_plan("right-hemihepatectomy")
        assess(maps, plan)  # warm-up
        assess_s, _ = best(lambda: assess(maps, plan), repeat)

    n = len(plans)
    r1_prepared_one, r1_prepared_all = r1_prep + r1_eval_one, r1_prep + r1_eval_all
    r2_one_total, r2_all_total = r2_prep + r2_one, r2_prep + r2_all
    today = dt.date.today().isoformat()
    lines = [
        f"# flr vascular territories benchmark, {today}",
        "",
        f"- machine: {platform.machine()}, python {platform.python_version()}, numpy {np.__version__}",
        f"- case: liver phantom seed 1 on {shape[2]}x{shape[1]}x{shape[0]} (x,y,z), spacing "
        f"({spacing[0]:.3g}, {spacing[1]:.3g}, {spacing[2]:.3g}) mm (built in {build_s:.1f} s); "
        f"Case.build + gather_anatomy {case_s:.2f} s (shared by both rounds, not in the times below)",
        f"- plans: {n} named resections (flr.anatomy.RESECTIONS)" + (f"; skipped: {'; '.join(skipped)}"
                                                                    if skipped else ""),
        f"- best of {repeat} runs after a warm-up of every path; round 1 = portal inflow + hepatic-venous outflow "
        "(flr.vessels), round 2 = every system the maps allow (flr.supply)",
        "",
        "| run | s | round 2 / round 1 |",
        "|---|---:|---:|",
        f"| round 1: prepare_vessel_tree x 2 (once) | {r1_prep:.2f} | |",
        f"| round 1: VesselTree.evaluate x 2, per plan (mean of {n}) | {r1_eval_all / n:.3f} | |",
        f"| round 2: prepare_supply (once) | {r2_prep:.2f} | {_ratio(r2_prep, r1_prep)} (vs prepare_vessel_tree) |",
        f"| round 2: supply_checks, per plan (mean of {n}) | {r2_all / n:.3f} | "
        f"{_ratio(r2_all, r1_eval_all)} (vs evaluate) |",
        f"| **1 plan**, round 1 check_vessel | {r1_one:.2f} | |",
        f"| **1 plan**, round 1 prepared (prepare + evaluate) | {r1_prepared_one:.2f} | |",
        f"| **1 plan**, round 2 (prepare_supply + supply_checks) | {r2_one_total:.2f} | "
        f"{_ratio(r2_one_total, r1_one)} (vs check_vessel), {_ratio(r2_one_total, r1_prepared_one)} (vs prepared) |",
        f"| **{n} plans**, round 1 check_vessel per plan | {r1_all:.2f} | |",
        f"| **{n} plans**, round 1 prepared once + evaluate per plan | {r1_prepared_all:.2f} | |",
        f"| **{n} plans**, round 2 prepared once + supply_checks per plan | {r2_all_total:.2f} | "
        f"{_ratio(r2_all_total, r1_all)} (vs check_vessel), {_ratio(r2_all_total, r1_prepared_all)} (vs prepared) |",
    ]
    if assess_s is not None:
        lines.append(f"| flr.assessment.assess end to end, right hemihepatectomy (everything) | {assess_s:.2f} | |")
    lines += ["", "| plan | round 1 inflow | round 1 outflow | round 2 inflow | round 2 outflow |",
              "|---|---|---|---|---|"]
    for p in plans:
        a, b = r1_status[p.name], r2_status[p.name]
        lines.append(f"| {p.name} | {a['inflow']} | {a['outflow']} | {b.get('inflow', '—')} "
                     f"| {b.get('outflow', '—')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing, the best kept (default 3)")
    parser.add_argument("--shape", type=int, nargs=3, default=list(SHAPE), metavar=("Z", "Y", "X"),
                        help="grid size (z, y, x) over the same field of view (default 400 512 512)")
    parser.add_argument("--no-assess", action="store_true", help="skip the end-to-end flr.assessment.assess timing")
    args = parser.parse_args()
    if args.repeat < 1 or min(args.shape) < 16:
        parser.error(f"--repeat must be >= 1 and every --shape size >= 16, got {args.repeat} and {args.shape}")
    text = run(tuple(args.shape), args.repeat, not args.no_assess)
    print(text)
    out = REPO / "benchmarks" / "results" / f"territories-{dt.date.today().isoformat()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
