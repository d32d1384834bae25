"""Time a first ``flr demo`` (numba's cache empty) against a second one (cache filled), per source tree.

Run from the repository root::

    python benchmarks/bench_first_run.py                          # this working tree, 2 cold + 2 warm runs
    python benchmarks/bench_first_run.py --repeat 1               # one of each
    python benchmarks/bench_first_run.py --rev b47ee20=before --rev HEAD  # commits too (git worktrees)
    python benchmarks/bench_first_run.py --tree /tmp/before=before  # a prepared tree (a change reverted)

Each run is a fresh process running ``flr demo --out <tmp>`` (the ``flr`` command's ``main``, in a small
wrapper that records numba's compile events) with ``NUMBA_CACHE_DIR`` set:

* cold: an empty temporary ``NUMBA_CACHE_DIR``, as on a fresh install or a cluster job with a throw-away home;
* warm: the same folder again, now filled by the cold run.

Runs alternate between the trees (cold, warm, next tree, ...; then the next repeat), so that a busy machine
slows them alike. Python's bytecode is compiled first (``compileall``), so only numba's compilation differs
between cold and warm. Reported per tree: wall seconds of each run and their median, the ratio cold / warm
(issue 14: at most 2) and the difference, from the medians and from the best runs; the seconds numba spent
compiling flr's kernels and other libraries' functions, per kernel (outermost compiles: nested functions are
inside their caller's time); and the compile notice lines on standard error (``flr.kernels.set_notice``, set
by the wrapper as the CLI sets it, where the tree has it). The tables are printed and written to
``benchmarks/results/first-run-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Runs ``flr`` (pipelines.cli.main, as the ``flr`` command runs it: on ``sys.argv``, so with the command's own
#: process settings) with argv[2:], recording numba's compile events into the JSON file argv[1]: per outermost
#: compile, the function, its first argument's type and the seconds.
WRAPPER = textwrap.dedent("""
    import json, sys, time
    from numba.core import event

    events, depth = [], [0]

    class Listener(event.Listener):
        def on_start(self, ev):
            if depth[0] == 0:
                d = ev.data["dispatcher"]
                f = getattr(d, "py_func", None)
                name = f"{getattr(f, '__module__', None)}.{getattr(f, '__qualname__', '?')}"
                args = ev.data.get("args") or ()
                events.append({"function": name, "arg0": str(args[0]) if args else "", "t0": time.perf_counter()})
            depth[0] += 1

        def on_end(self, ev):
            depth[0] -= 1
            if depth[0] == 0:
                events[-1]["s"] = time.perf_counter() - events[-1].pop("t0")

    event.register("numba:compile", Listener())
    import click
    import flr.kernels
    if hasattr(flr.kernels, "set_notice"):  # as pipelines/cli.py sets it (standard error)
        flr.kernels.set_notice(lambda m: click.echo(f"flr: {m}", err=True))
    from pipelines.cli import main
    out, sys.argv = sys.argv[1], ["flr", *sys.argv[2:]]
    try:
        code = main()
    finally:
        with open(out, "w") as fh:
            json.dump(events, fh)
    sys.exit(code)
""")


@dataclass
class Tree:
    label: str
    path: Path
    cold_s: list[float] = field(default_factory=list)
    warm_s: list[float] = field(default_factory=list)
    cold_events: list[list[dict]] = field(default_factory=list)  # of each cold run
    warm_events: list[list[dict]] = field(default_factory=list)  # of each warm run
    cold_notices: list[int] = field(default_factory=list)
    warm_notices: list[int] = field(default_factory=list)


def _run_demo(tree: Tree, cache: Path, scratch: Path) -> tuple[float, list[dict], int]:
    """One ``flr demo`` process: wall seconds, its compile events and the count of notice lines."""
    out = Path(tempfile.mkdtemp(prefix="demo-", dir=scratch))
    events = out / "events.json"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(tree.path)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(events), "demo", "--out", str(out / "demo")],
                          cwd=tree.path, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"flr demo failed in {tree.label}: {proc.stderr.strip()[-2000:]}")
    notices = sum(1 for line in proc.stderr.splitlines() if "compiling flr's" in line)
    return wall, json.loads(events.read_text()), notices


def _worktree(rev_label: str, where: Path) -> Tree:
    """A git worktree of REV (``REV`` or ``REV=LABEL``), labelled by LABEL or the commit's hash and subject."""
    rev, _, label = rev_label.partition("=")
    path = where / f"tree-{len(list(where.glob('tree-*')))}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    short = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h %s"], check=True, capture_output=True,
                           text=True).stdout.strip()
    return Tree(f"{short[:7]} {label}" if label else short[:60], path)


def _working_tree_label() -> str:
    head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h"], capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"working tree (HEAD {head}{', with uncommitted changes' if dirty else ''})"


def _kernel_rows(events: list[dict]) -> list[str]:
    """Compile seconds per function (outermost compiles), flr's first."""
    rows = []
    for e in sorted(events, key=lambda e: (not e["function"].startswith("flr."), -e["s"])):
        arg0 = e["arg0"].replace("Array(", "").split(",")[0] if e["arg0"] else ""
        rows.append(f"| `{e['function']}` | {arg0} | {e['s']:.2f} |")
    return rows


def _flr_compile_s(events: list[dict]) -> float:
    return sum(e["s"] for e in events if e["function"].startswith("flr."))


def _median_run(walls: list[float]) -> int:
    """Index of the run with the median wall time (the lower middle one of an even count)."""
    return sorted(range(len(walls)), key=lambda i: walls[i])[(len(walls) - 1) // 2]


def render(trees: list[Tree], repeat: int) -> str:
    import numba
    import numpy as np

    lines = [
        f"# flr demo, first run (empty numba cache) against a second run, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the "
        f"end; python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}",
        f"- each run a fresh `flr demo --out <tmp>` process; cold: empty temporary `NUMBA_CACHE_DIR`, warm: the same "
        f"folder after the cold run; {repeat} of each per tree, alternating between the trees",
        "- flr compile s: seconds inside numba's outermost compiles (`numba:compile` events) of flr's functions, in "
        "the median cold run, in the `flr` process itself: where the tree has `compile_in_background`, a helper "
        "process compiles the feature transform and thinning kernels at the same time (not counted here)",
        "",
        "- cold s, warm s: the median of the runs (each run in brackets); cold / warm and extra s (cold - warm) "
        "from the medians, and from the best runs in brackets",
        "",
        "| tree | cold s | warm s | cold / warm | extra s | flr compile s | notices cold / warm |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in trees:
        cold, warm = statistics.median(t.cold_s), statistics.median(t.warm_s)
        best_cold, best_warm = min(t.cold_s), min(t.warm_s)
        lines.append(
            f"| {t.label} | {cold:.1f} ({', '.join(f'{s:.1f}' for s in t.cold_s)}) "
            f"| {warm:.1f} ({', '.join(f'{s:.1f}' for s in t.warm_s)}) "
            f"| {cold / warm:.2f}x ({best_cold / best_warm:.2f}x) | {cold - warm:.1f} ({best_cold - best_warm:.1f}) "
            f"| {_flr_compile_s(t.cold_events[_median_run(t.cold_s)]):.1f} "
            f"| {'/'.join(map(str, t.cold_notices))} / {'/'.join(map(str, t.warm_notices))} |"
        )
    for t in trees:
        cold_events = t.cold_events[_median_run(t.cold_s)]
        lines += ["", f"## {t.label}", "", "Compiled by the median cold run (seconds, outermost compiles):", "",
                  "| function | first argument | s |", "|---|---|---:|", *_kernel_rows(cold_events)]
        other = sum(e["s"] for e in cold_events) - _flr_compile_s(cold_events)
        warm = ", ".join(f"`{e['function']}` {e['s']:.2f} s" for runs in t.warm_events for e in runs) or "nothing"
        lines += ["", f"flr {_flr_compile_s(cold_events):.2f} s, other libraries {other:.2f} s. Compiled by the "
                  f"warm runs: {warm}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="cold and warm runs per tree (default 2)")
    parser.add_argument("--rev", action="append", default=[], metavar="REV[=LABEL]",
                        help="a commit to time too (git worktree); repeatable")
    parser.add_argument("--tree", action="append", default=[], metavar="PATH=LABEL",
                        help="a prepared source tree to time too (e.g. a worktree with a change reverted); repeatable")
    parser.add_argument("--no-working-tree", action="store_true", help="time only the --rev trees")
    parser.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/results/...)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flr-first-run-") as tmp:
        scratch = Path(tmp)
        trees = [_worktree(rev, scratch) for rev in args.rev]
        trees += [Tree(label or path, Path(path).resolve()) for path, _, label in (t.partition("=") for t in args.tree)]
        if not args.no_working_tree:
            trees.append(Tree(_working_tree_label(), REPO))
        try:
            for t in trees:
                subprocess.run([sys.executable, "-m", "compileall", "-q", "flr", "pipelines"], cwd=t.path,
                               check=True, capture_output=True)
            for _ in range(args.repeat):
                for t in trees:
                    cache = Path(tempfile.mkdtemp(prefix="numba-", dir=scratch))
                    wall, events, notices = _run_demo(t, cache, scratch)
                    t.cold_s.append(wall)
                    t.cold_notices.append(notices)
                    t.cold_events.append(events)
                    wall, events, notices = _run_demo(t, cache, scratch)
                    t.warm_s.append(wall)
                    t.warm_notices.append(notices)
                    t.warm_events.append(events)
                    print(f"{t.label}: cold {t.cold_s[-1]:.1f} s, warm {wall:.1f} s", flush=True)
        finally:
            for t in trees:
                if t.path.is_relative_to(scratch):
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(t.path)],
                                   check=False, capture_output=True)
    text = render(trees, args.repeat)
    print(text)
    out = args.out or REPO / "benchmarks" / "results" / f"first-run-{dt.date.today().isoformat()}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
