"""Time ``flr batch -j 2`` on 29 MSD8-size cases against a shell loop of ``flr volumetry`` and a plain script.

Run from the repository root (needs ``../shared/data/couinaud-msd8/``)::

    python benchmarks/bench_batch.py [--cases 29] [--jobs 2]

The dataset is the four shared MSD Task08 Couinaud cases (``label/``, ``liver/``, ``vessel/``, 512 x 512 x 37-
~100 voxels) replicated into a temporary couinaud-layout folder of ``--cases`` cases. In one run, each from a
cold process:

* ``flr batch DATA --layout couinaud --out OUT -j 2``: one command, workers loading the kernels once;
* a shell loop: ``for case ...; do flr volumetry --labels ... --json OUT/case.json -q; done`` (one process,
  imports and kernel loading per case), as users write it today;
* a plain nibabel/numpy script in one process: per case load the three masks, count the voxels of each segment,
  of the liver (the union) and of the vessels with ``np.bincount``/``count_nonzero``, write a CSV. No checks
  (grids, schemes, truncation, contacts, warnings): the floor of what reading and counting costs.

The liver volumes of the three agree (checked). Results are printed and written to
``benchmarks/results/batch-<date>.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("FLR_SHARED_DATA", REPO.parent / "shared" / "data")) / "couinaud-msd8"

PLAIN_SCRIPT = r'''
import csv, sys
from pathlib import Path
import nibabel as nib
import numpy as np
data, out = Path(sys.argv[1]), Path(sys.argv[2])
with out.open("w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["case_id", "liver_ml", *[f"liver_segment_{i}_ml" for i in range(1, 9)], "hepatic_vessel_ml"])
    for seg_path in sorted((data / "label").glob("*.nii.gz")):
        seg_img = nib.load(seg_path)
        seg = np.asanyarray(seg_img.dataobj).astype(np.int64)
        liver = np.asanyarray(nib.load(data / "liver" / seg_path.name).dataobj) > 0
        vessel = np.asanyarray(nib.load(data / "vessel" / seg_path.name).dataobj) > 0.5
        voxel_ml = float(np.prod(seg_img.header.get_zooms()[:3])) / 1000.0
        counts = np.bincount(seg.ravel().clip(0, 9), minlength=10)
        union = int(np.count_nonzero(((seg >= 1) & (seg <= 8)) | liver))
        w.writerow([seg_path.name[:-7], union * voxel_ml, *[counts[i] * voxel_ml for i in range(1, 9)],
                    int(np.count_nonzero(vessel)) * voxel_ml])
'''


def make_dataset(target: Path, n_cases: int) -> list[str]:
    """``n_cases`` couinaud-layout cases copied round-robin from the four shared ones; their ids."""
    sources = sorted((SOURCE / "label").glob("*.nii.gz"))
    ids = []
    for k in range(n_cases):
        src = sources[k % len(sources)]
        case = f"{src.name[:-7]}-r{k:02d}"
        for sub in ("label", "liver", "vessel"):
            (target / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SOURCE / sub / src.name, target / sub / f"{case}.nii.gz")
        ids.append(case)
    return ids


def flr_command() -> list[str]:
    """The ``flr`` console script of this environment (or ``python -m`` of the CLI)."""
    script = Path(sys.executable).with_name("flr")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())"]


def timed(cmd: list[str], **kwargs: object) -> float:
    """Wall seconds of a command (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=REPO, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def shell_loop(data: Path, out: Path) -> str:
    """The bash loop a user writes: one ``flr volumetry`` per case."""
    flr = " ".join(flr_command())
    return (f'mkdir -p "{out}"; for f in "{data}"/label/*.nii.gz; do n=$(basename "$f" .nii.gz); '
            f'{flr} volumetry --labels "$f:totalseg-liver-segments" --labels "{data}/liver/$n.nii.gz:lits" '
            f'--labels "{data}/vessel/$n.nii.gz:msd-hepaticvessel" --json "{out}/$n.json" -q || exit 1; done')


def liver_volumes(batch_out: Path, loop_out: Path, plain_csv: Path) -> tuple[dict, dict, dict]:
    """Liver volume per case from each method's output."""
    with (batch_out / "results.csv").open() as fh:
        batch = {r["case_id"]: float(r["liver_ml"]) for r in csv.DictReader(fh)}
    loop = {p.stem: json.loads(p.read_text())["structures"]["liver"]["volume_ml"] for p in loop_out.glob("*.json")}
    with plain_csv.open() as fh:
        plain = {r["case_id"]: float(r["liver_ml"]) for r in csv.DictReader(fh)}
    return batch, loop, plain


def main() -> int:
    """Build the dataset, time the three methods, check they agree, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=29)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not (SOURCE / "label").is_dir():
        print(f"{SOURCE} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="flr-bench-batch-") as tmp:
        root = Path(tmp)
        ids = make_dataset(root / "data", args.cases)
        t_batch = timed([*flr_command(), "batch", str(root / "data"), "--layout", "couinaud", "--out",
                         str(root / "batch"), "-j", str(args.jobs)])
        t_loop = timed(["bash", "-c", shell_loop(root / "data", root / "loop")])
        t_plain = timed([sys.executable, "-c", PLAIN_SCRIPT, str(root / "data"), str(root / "plain.csv")])
        batch, loop, plain = liver_volumes(root / "batch", root / "loop", root / "plain.csv")
        assert set(batch) == set(loop) == set(plain) == set(ids)
        assert batch == loop, "flr batch and flr volumetry differ"
        worst = max(abs(batch[c] - plain[c]) for c in ids)
    rows = [(f"flr batch -j {args.jobs}", t_batch), ("shell loop of flr volumetry", t_loop),
            ("plain nibabel/numpy script (counts only)", t_plain)]
    import numpy as np

    lines = [f"# flr batch benchmark, {dt.date.today().isoformat()}", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
             f"numpy {np.__version__}",
             f"- dataset: {args.cases} cases replicated from the four MSD8 Couinaud cases of {SOURCE.name} "
             "(label/ + liver/ + vessel/, 512x512 in-plane)",
             "- each method from a cold process, in one run; liver volumes: batch == loop exactly, "
             f"plain script within {worst:.3g} mL", "",
             "| method | s | cases/min | time vs flr batch |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t:.1f} | {60 * args.cases / t:.1f} | {t / t_batch:.2f}x |" for name, t in rows]
    lines += ["", f"flr batch is {t_loop / t_batch:.1f}x faster than the shell loop "
              f"(issue 12's target: at least 3x)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "benchmarks" / "results" / f"batch-{dt.date.today().isoformat()}.md"
    out.write_text(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
