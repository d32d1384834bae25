"""Time whole ``flr assess --json`` processes against ``flr volumetry`` of the same inputs, and the round-1 code.

Run from the repository root::

    python benchmarks/bench_assess_process.py                      # 512 x 512 x 400, 7 runs each
    python benchmarks/bench_assess_process.py --shape 200 256 256 --repeat 1   # a quick check
    python benchmarks/bench_assess_process.py --round1 c68ab54     # the round-1 commit to compare with

The case is flr's liver phantom (seed 1: Couinaud segments, two tumours, portal and hepatic veins, IVC,
whole-liver outline, CT) written as NIfTI (``.nii.gz``, as users have them) on a (z, y, x) grid of
``--shape`` voxels over 358.4 x 358.4 x 320 mm (0.7 x 0.7 x 0.8 mm at 512 x 512 x 400). The plan is a
right hemihepatectomy with a 10 mm wedge of the tumour it leaves (tumour 2, in III/IV).

Measured, each in a fresh process (numba kernels loaded from the cache after one warm-up run):

1. whole processes: ``flr volumetry --labels ... --ct ... --json`` and ``flr assess`` of the same inputs with
   the plan and ``--json`` (wall seconds, best of ``--repeat``; peak RSS from ``getrusage`` of a wrapper
   process that runs only that command), and the ratio assess / volumetry (issue 14: at most 1.6);
   peak RSS per voxel of the grid (issue 14: at most 12 bytes);
2. the in-process compute after decoding: the label maps read once, then ``flr.assessment.assess`` timed
   (best of ``--repeat``), with the stage table of :class:`flr.assessment.StageClock`;
3. the same for the round-1 code (``git worktree`` of ``--round1``, its ``flr.assess.assess``), in the
   same run: whole ``flr assess --json`` process and in-process compute.

The tables are printed and written to ``benchmarks/results/assess-process-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPE = (400, 512, 512)
FOV_MM = (358.4, 358.4, 320.0)  # x, y, z
PLAN = ["--plan", "right-hemihepatectomy", "--wedge", "2:10"]

#: Runs one command and prints its wall seconds and peak RSS (kB) as JSON: a process of its own per command,
#: so that RUSAGE_CHILDREN's maximum is that command's.
WRAPPER = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        sys.exit(p.stderr[-2000:])
    print(json.dumps({"wall_s": wall, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
""")

#: In-process compute after decoding (this tree): the maps read once, assess timed with its stage clock.
IN_PROCESS = textwrap.dedent("""
    import json, sys, time
    import flr
    from flr.assessment import StageClock, assess
    from flr.plan import resection_plan
    case, repeat = sys.argv[1], int(sys.argv[2])
    maps = flr.load_all(case + "/labels.nii.gz") + flr.load_all(case + "/liver.nii.gz")
    plan = resection_plan("right-hemihepatectomy", wedges=["2:10"])
    assess(maps, plan)  # warm-up: kernels loaded, files paged in
    best, stages = None, None
    for _ in range(repeat):
        clock = StageClock()
        t = time.perf_counter()
        a = assess(maps, plan, clock=clock)
        s = time.perf_counter() - t
        if best is None or s < best:
            best, stages = s, clock.times
    statuses = {k: c.status for k, c in a.checks.items()}
    print(json.dumps({"compute_s": best, "stages": stages, "statuses": statuses,
                      "functional_ml": a.remnant.functional_volume_ml}))
""")

#: The same for round 1 (its flr.assess.assess, its flr.load).
IN_PROCESS_ROUND1 = textwrap.dedent("""
    import json, sys, time
    import flr
    from flr.assess import assess
    from flr.plan import resection_plan
    case, repeat = sys.argv[1], int(sys.argv[2])
    maps = [flr.load(case + "/labels.nii.gz"), flr.load(case + "/liver.nii.gz")]
    plan = resection_plan("right-hemihepatectomy", wedges=["2:10"])
    assess(maps, plan)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        a = assess(maps, plan)
        times.append(time.perf_counter() - t)
    print(json.dumps({"compute_s": min(times)}))
""")


def build_case(folder: Path, shape: tuple[int, int, int]) -> None:
    """Write the phantom's labels (+ scheme), outline and CT as .nii.gz into ``folder``."""
    sys.path.insert(0, str(REPO))
    from flr.io import write_nifti
    from flr.phantom import make_liver_phantom

    spacing = (FOV_MM[0] / shape[2], FOV_MM[1] / shape[1], FOV_MM[2] / shape[0])
    ph = make_liver_phantom(1, spacing_mm=spacing, shape_zyx=shape)
    write_nifti(ph.labels, folder / "labels.nii.gz")
    write_nifti(ph.liver, folder / "liver.nii.gz")
    write_nifti(ph.ct, folder / "ct.nii.gz")
    scheme = {"name": ph.labels.scheme, "labels": {str(k): v for k, v in ph.labels.names.items()}}
    (folder / "labels.scheme.json").write_text(json.dumps(scheme), encoding="utf-8")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    cwd = env.get("PYTHONPATH") if env else None  # round 1: its tree first on sys.path, not this one
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, env=env, check=False,
                         cwd=cwd)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    walls = sorted(r["wall_s"] for r in runs)
    return {"wall_s": walls[0], "median_s": walls[len(walls) // 2], "maxrss_kb": max(r["maxrss_kb"] for r in runs)}


def _best(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> dict[str, float]:
    _run(cmd, env)  # warm-up: numba cache, page cache
    return _summary([_run(cmd, env) for _ in range(repeat)])


def _alternating(cmds: list[list[str]], repeat: int) -> list[dict[str, float]]:
    """Each command ``repeat`` times, taking turns (a shared machine's slow minutes hit all of them alike)."""
    for cmd in cmds:
        _run(cmd)  # warm-up: numba cache, page cache
    runs: list[list[dict[str, float]]] = [[] for _ in cmds]
    for _ in range(repeat):
        for k, cmd in enumerate(cmds):
            runs[k].append(_run(cmd))
    return [_summary(r) for r in runs]


def _in_process(script: str, case: Path, repeat: int, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", script, str(case), str(repeat)], capture_output=True, text=True,
                         env=env, check=False, cwd=env.get("PYTHONPATH") if env else None)
    if out.returncode:
        raise SystemExit(f"in-process run failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _round1_tree(rev: str, where: Path) -> Path:
    tree = where / "round1"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=SHAPE, metavar=("Z", "Y", "X"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--round1", default="c68ab54", help="round-1 commit (empty: skip round 1)")
    args = parser.parse_args()
    shape = tuple(args.shape)
    voxels = shape[0] * shape[1] * shape[2]
    flr_exe = str(Path(sys.executable).with_name("flr"))
    with tempfile.TemporaryDirectory(prefix="flr-bench-") as tmp:
        case = Path(tmp) / "case"
        case.mkdir()
        build_case(case, shape)
        labels = ["--labels", str(case / "labels.nii.gz"), "--labels", str(case / "liver.nii.gz")]
        vol, ass = _alternating([
            [flr_exe, "volumetry", *labels, "--ct", str(case / "ct.nii.gz"), "--json", str(Path(tmp) / "v.json"), "-q"],
            [flr_exe, "assess", *labels, "--ct", str(case / "ct.nii.gz"), *PLAN, "--json", str(Path(tmp) / "a.json"),
             "-q"]], args.repeat)
        inproc = _in_process(IN_PROCESS, case, args.repeat)
        r1 = r1_in = None
        tree = None
        if args.round1:
            tree = _round1_tree(args.round1, Path(tmp))
            env = {**os.environ, "PYTHONPATH": str(tree)}
            r1 = _best([sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())",
                        "assess", *labels, "--ct", str(case / "ct.nii.gz"), *PLAN, "--json",
                        str(Path(tmp) / "a1.json"), "-q"], args.repeat, env)
            r1_in = _in_process(IN_PROCESS_ROUND1, case, args.repeat, env)
        if tree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    ratio = ass["wall_s"] / vol["wall_s"]
    lines = [
        f"# flr assess, whole process, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
        f"- case: liver phantom seed 1, {shape[2]}x{shape[1]}x{shape[0]} (x,y,z) = {voxels / 1e6:.1f} M voxels, "
        f".nii.gz labels + outline + CT; plan: right hemihepatectomy + 10 mm wedge of tumour 2",
        f"- {args.repeat} runs of each after a warm-up run (numba kernels cached), volumetry and assess taking "
        "turns; best and median wall seconds",
        "",
        "| process | best s | median s | peak RSS MB | bytes / voxel |",
        "|---|---:|---:|---:|---:|",
        f"| `flr volumetry --json` | {vol['wall_s']:.2f} | {vol['median_s']:.2f} | {vol['maxrss_kb'] / 1024:.0f} | "
        f"{vol['maxrss_kb'] * 1024 / voxels:.1f} |",
        f"| `flr assess --json` | {ass['wall_s']:.2f} | {ass['median_s']:.2f} | {ass['maxrss_kb'] / 1024:.0f} | "
        f"{ass['maxrss_kb'] * 1024 / voxels:.1f} |",
    ]
    if r1 is not None:
        lines.append(f"| round 1 `flr assess --json` ({args.round1}) | {r1['wall_s']:.2f} | {r1['median_s']:.2f} | "
                     f"{r1['maxrss_kb'] / 1024:.0f} | {r1['maxrss_kb'] * 1024 / voxels:.1f} |")
    lines += ["", f"- assess / volumetry: **{ratio:.2f}x** best to best, {ass['median_s'] / vol['median_s']:.2f}x "
              f"median to median (target at most 1.6x); peak {ass['maxrss_kb'] * 1024 / voxels:.1f} bytes per "
              "voxel (target at most 12)", "",
              "In-process compute after decoding (maps read once). Rows marked *second thread* ran alongside the "
              "others (their time is not added to the total); the rows after them are the first thread's waits:",
              "", "| stage | s |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in inproc["stages"].items()]
    lines += [f"| **assess (this tree)** | **{inproc['compute_s']:.2f}** |"]
    if r1_in is not None:
        lines += [f"| round-1 assess ({args.round1}) | {r1_in['compute_s']:.2f} |", "",
                  f"- this tree / round 1: {inproc['compute_s'] / r1_in['compute_s']:.2f}x (round 2 does more: "
                  "vessel territories, centerline graphs, biliary inference)"]
    lines += ["", f"- statuses: {inproc['statuses']}; functional remnant {inproc['functional_ml']:.1f} mL"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "benchmarks" / "results" / f"assess-process-{dt.date.today().isoformat()}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
