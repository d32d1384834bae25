"""Time flr's exact feature transform (``flr.kernels._edt``) against scipy's, on a liver phantom, in one process.

Run from the repository root::

    python benchmarks/bench_feature_transform.py                        # 512 x 512 x 400, best of 3
    python benchmarks/bench_feature_transform.py --shape 200 256 256     # (z, y, x): a quick check
    python benchmarks/bench_feature_transform.py --repeat 5 --threads 1 2

The case is flr's liver phantom (seed 1) at 0.7 x 0.7 x 0.8 mm on ``--shape`` (z, y, x) voxels, on the
whole grid and on the liver's bounding box (2 voxels of margin). Three feature transforms, as
``flr assess`` asks for them:

* segment territories: features = the segment voxels (labels 1-8) of every 4th axial slice (a sparse
  annotation), answer wanted on the liver (``within``); indices only;
* vessel territories: features = the portal vein voxels (label 10), answer on the liver; indices only;
* tumour margins: features = the tumour voxels (label 9), answer everywhere; indices and distances.

scipy runs ``distance_transform_edt(~features, sampling=spacing, return_indices=True)`` (with
``return_distances=False`` where only indices are needed), flr ``nearest_feature`` or
``feature_transform`` with ``within=`` where the case has one, on 1 and 2 threads (``n_threads``: chunks on
Python threads), and once on 2 threads without ``within``. Every time is the best of ``--repeat``
calls after one warm-up call; the warm-up call measures the memory: the peak resident memory above the
resident memory before the call (``VmHWM`` reset through ``/proc/self/clear_refs``; inputs excluded, outputs
included) and tracemalloc's peak of numpy allocations. A sample of 200 000 voxels (of the liver where the
case has ``within``) checks that the distance to flr's feature equals the distance to scipy's.

The table is printed and written to ``benchmarks/results/feature-transform-<date>.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import os
import platform
import sys
import time
import tracemalloc
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
SAMPLE_VOXELS = 200_000
TABLE_HEAD = "| run | threads | s | CPU s | x scipy | peak RSS MB | RSS B/voxel | traced B/voxel | max rel. err |"


@dataclass
class Case:
    name: str
    features: np.ndarray
    within: np.ndarray | None
    distances: bool


@dataclass
class Timing:
    best_s: float
    cpu_s: float
    rss_mb: float
    traced_mb: float


def _status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)  # pragma: no cover - Linux always has it


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _trim() -> None:
    """Return freed heap memory to the OS (glibc), so that reused pages do not hide a call's peak."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the RSS column may then read low
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(fn: Callable[[], Any], repeat: int) -> tuple[Timing, Any]:
    """Warm-up call (memory), then the best of ``repeat`` timed calls; returns the warm-up's result."""
    _trim()
    before = _status_kb("VmRSS")
    has_peak = _reset_peak()
    tracemalloc.start()
    out = fn()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = (_status_kb("VmHWM") - before) / 1024 if has_peak else float("nan")
    times, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return Timing(min(times), min(cpus), rss, traced), out


def build(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], float]:
    from flr.phantom import make_liver_phantom

    spacing_xyz = tuple(f / n for f, n in zip(FOV_MM, (shape[2], shape[1], shape[0]), strict=True))
    t0 = time.perf_counter()
    ph = make_liver_phantom(1, spacing_mm=spacing_xyz, shape_zyx=shape)
    build_s = time.perf_counter() - t0
    labels = np.asarray(ph.labels.array)
    liver = np.asarray(ph.liver.array) > 0
    return labels, liver, (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]), build_s


def cases(labels: np.ndarray, liver: np.ndarray) -> list[Case]:
    segments = (labels >= 1) & (labels <= 8)
    segments[np.arange(labels.shape[0]) % 4 != 0] = False
    return [
        Case("segment territories (segments on every 4th slice, within the liver)", segments, liver, False),
        Case("vessel territories (portal vein voxels, within the liver)", labels == 10, liver, False),
        Case("tumour margins (tumour voxels, distances everywhere)", labels == 9, None, True),
    ]


def liver_box(liver: np.ndarray, margin: int = 2) -> tuple[slice, ...]:
    where = np.argwhere(liver)
    lo = np.maximum(where.min(axis=0) - margin, 0)
    hi = np.minimum(where.max(axis=0) + 1 + margin, liver.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _sample_check(case: Case, spacing: tuple[float, ...], flr_index: np.ndarray, scipy_at: np.ndarray) -> float:
    """Largest relative difference between the distances to flr's and to scipy's features, on a sample."""
    rng = np.random.default_rng(0)
    pool = np.flatnonzero(case.within) if case.within is not None else np.arange(case.features.size)
    voxels = rng.choice(pool, size=min(SAMPLE_VOXELS, pool.size), replace=False)
    here = np.stack(np.unravel_index(voxels, case.features.shape), axis=1)
    mine = np.stack(np.unravel_index(flr_index.ravel()[voxels], case.features.shape), axis=1)
    theirs = np.stack([scipy_at[a].ravel()[voxels] for a in range(3)], axis=1)
    w = np.asarray(spacing)
    d_mine = np.sqrt((((mine - here) * w) ** 2).sum(axis=1))
    d_theirs = np.sqrt((((theirs - here) * w) ** 2).sum(axis=1))
    return float(np.max(np.abs(d_mine - d_theirs) / np.maximum(d_theirs, 1e-300)))


def time_case(case: Case, spacing: tuple[float, float, float], repeat: int, threads: list[int]) -> list[str]:
    from scipy import ndimage

    from flr.kernels._edt import feature_transform, nearest_feature

    n = case.features.size

    def scipy_call() -> Any:
        return ndimage.distance_transform_edt(~case.features, sampling=spacing, return_indices=True,
                                              return_distances=case.distances)

    def flr_call(k: int, within: np.ndarray | None) -> Callable[[], Any]:
        if case.distances:
            return lambda: feature_transform(case.features, spacing, within=within, n_threads=k)
        return lambda: nearest_feature(case.features, spacing, within=within, n_threads=k)

    sp, sp_out = measure(scipy_call, repeat)
    scipy_at = sp_out[1] if case.distances else sp_out
    del sp_out
    rows = [_row("scipy distance_transform_edt", "1", sp, sp, n, "")]
    runs = [(k, case.within) for k in threads]
    if case.within is not None:
        runs.append((max(threads), None))
    for k, within in runs:
        t, out = measure(flr_call(k, within), repeat)
        index = out[0] if case.distances else out
        err = _sample_check(case, spacing, index, scipy_at)
        del out, index
        what = "flr " + ("feature_transform" if case.distances else "nearest_feature")
        what += ", within" if within is not None else (", no within" if case.within is not None else "")
        rows.append(_row(what, str(k), t, sp, n, f"{err:.1e}"))
    return rows


def _row(what: str, threads: str, t: Timing, scipy: Timing, n: int, err: str) -> str:
    ratio = f"{scipy.best_s / t.best_s:.1f}x" if t is not scipy else ""
    per_voxel = 2**20 / n
    return (f"| {what} | {threads} | {t.best_s:.2f} | {t.cpu_s:.2f} | {ratio} | {t.rss_mb:.0f} "
            f"| {t.rss_mb * per_voxel:.1f} | {t.traced_mb * per_voxel:.1f} | {err} |")


def run(shape: tuple[int, int, int], repeat: int, threads: list[int]) -> str:
    import numba
    import scipy

    from flr.kernels._edt import feature_transform

    feature_transform(np.ones((2, 2, 2), bool), (1.0, 1.0, 1.0))  # numba: compile or load from the cache
    load_before = os.getloadavg()[0]
    labels, liver, spacing, build_s = build(shape)
    box = liver_box(liver)
    grids = [("whole grid", (slice(None),) * 3), ("liver box", box)]
    lines = [
        f"# flr feature transform benchmark, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, numba {numba.__version__} (kernel "
        "chunks on Python threads)",
        f"- case: liver phantom seed 1 on {shape[2]}x{shape[1]}x{shape[0]} (x,y,z), spacing (z, y, x) "
        f"({spacing[0]:.3g}, {spacing[1]:.3g}, {spacing[2]:.3g}) mm (built in {build_s:.1f} s)",
        f"- best of {repeat} calls after one warm-up call; the warm-up call measures memory: peak RSS above the "
        "RSS before the call (inputs excluded, outputs included) and tracemalloc's peak (numpy allocations)",
        "- `s`: best wall-clock seconds; `CPU s`: best process time (all threads); "
        f"`x scipy`: scipy's wall time / this row's; `max rel. err`: largest relative difference between the "
        f"distances to flr's and to scipy's nearest feature over {SAMPLE_VOXELS} sampled voxels (both exact)",
    ]
    for grid_name, sl in grids:
        sub_labels, sub_liver = np.ascontiguousarray(labels[sl]), np.ascontiguousarray(liver[sl])
        z, y, x = sub_labels.shape
        lines += ["", f"## {grid_name}: {x} x {y} x {z} voxels (x, y, z), {sub_labels.size / 1e6:.1f} M", ""]
        for case in cases(sub_labels, sub_liver):
            lines += [f"### {case.name}: {int(case.features.sum())} features", "", TABLE_HEAD,
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            lines += time_case(case, spacing, repeat, threads)
            lines.append("")
            print("\n".join(lines[-9:]), flush=True)
    lines.append(f"Load average (1 min) {load_before:.1f} before the runs, {os.getloadavg()[0]:.1f} after: "
                 "other processes on the machine slow the wall-clock times; `CPU s` (process time, all "
                 "threads) is the steadier measure.")
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per row, the best kept (default 3)")
    parser.add_argument("--shape", type=int, nargs=3, default=list(SHAPE), metavar=("Z", "Y", "X"),
                        help="grid size (z, y, x) over the same field of view (default 400 512 512)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="flr thread counts (default 1 2)")
    args = parser.parse_args()
    if args.repeat < 1 or min(args.shape) < 16 or min(args.threads) < 1:
        parser.error(f"--repeat and --threads must be >= 1 and every --shape size >= 16, got {args.repeat}, "
                     f"{args.threads} and {args.shape}")
    text = run(tuple(args.shape), args.repeat, args.threads)
    print(text)
    out = REPO / "benchmarks" / "results" / f"feature-transform-{dt.date.today().isoformat()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
