"""Benchmark flr.kernels against numpy, SimpleITK, scipy and cc3d on CT-like label maps.

Run from the repository root::

    python benchmarks/bench_kernels.py [--sizes 400,900] [--repeat 5] [--threads N]

Each size builds a seeded 512 x 512 x Z uint8 label map (liver ellipsoid, about 20% of the volume, cut
by three planes into segments 1-8; spherical tumours 9; tube vessels 10-12; background 0) and times, in
one process on one machine, the best of ``--repeat`` wall-clock runs of:

* ``arr.copy()`` (the floor: one read and one write of the map), ``np.bincount`` (counts only),
  SimpleITK ``LabelShapeStatisticsImageFilter.Execute`` with its defaults (perimeter on) and in its
  cheapest setting (perimeter and Feret diameter off), the image converted outside the timing, and
  ``flr.kernels.label_stats`` (counts + face adjacency + boxes in one pass);
* ``scipy.ndimage.label`` and ``cc3d.connected_components`` (6-connectivity) on the liver + tumour mask
  (computed outside their timing) and ``flr.kernels.connected_components`` on the label map with
  ``include`` = the same labels (its mask is built inside the timing);
* numba compile time of the kernels, cold (empty ``NUMBA_CACHE_DIR``) and cached (a second process
  loading that cache), each in a fresh subprocess.

SimpleITK and cc3d are optional: their rows are marked skipped when they are not installed. The
markdown table is printed and written to ``benchmarks/results/kernels-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEGMENTS = tuple(range(1, 9))
TUMOUR = 9
VESSELS = (10, 11, 12)
LIVER_AND_TUMOUR = (*SEGMENTS, TUMOUR)


# ---------------------------------------------------------------------------------------------
# phantom
# ---------------------------------------------------------------------------------------------


def _tube_dist2(xx: np.ndarray, yy: np.ndarray, z: float, p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Squared distance (voxels^2) from (x, y, z) to the line through ``p`` with unit direction ``d``."""
    vx, vy, vz = xx - p[0], yy - p[1], z - p[2]
    along = vx * d[0] + vy * d[1] + vz * d[2]
    return vx * vx + vy * vy + vz * vz - along * along


def ct_like_labels(nz: int, ny: int = 512, nx: int = 512, seed: int = 0) -> np.ndarray:
    """Seeded uint8 label map (z, y, x): liver segments 1-8, tumours 9, vessels 10-12, background 0."""
    rng = np.random.default_rng(seed)
    out = np.zeros((nz, ny, nx), np.uint8)
    cx, cy, cz = nx * 0.5, ny * 0.5, nz * 0.5
    ax, ay, az = 0.80 * nx / 2, 0.70 * ny / 2, 0.68 * nz / 2  # 0.5236 * 0.8 * 0.7 * 0.68 ~ 20%
    tumours = [
        (
            cx + rng.uniform(-0.5, 0.5) * ax,
            cy + rng.uniform(-0.5, 0.5) * ay,
            cz + rng.uniform(-0.5, 0.5) * az,
            rng.uniform(8, 30),
        )
        for _ in range(6)
    ]
    ivc_p, ivc_d = np.array([cx + 0.2 * ax, cy + 0.6 * ay, 0.0]), np.array([0.0, 0.0, 1.0])
    pv_p = np.array([cx, cy, cz])
    pv_d = np.array([0.6, 0.5, 0.62])
    pv_d /= np.linalg.norm(pv_d)
    hv = []
    for angle in (-0.6, 0.0, 0.6):
        d = np.array([np.sin(angle), -np.cos(angle), 0.8])
        hv.append((ivc_p + np.array([0.0, 0.0, cz + 0.3 * az]), d / np.linalg.norm(d)))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    for z in range(nz):
        e = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 + ((z - cz) / az) ** 2
        liver = e < 1.0
        if not liver.any():
            continue
        # three cutting planes (Cantlie-like, portal-like, and an oblique one) -> 8 segments
        seg = (((xx - cx) + 0.3 * (z - cz)) > 0).astype(np.uint8)
        seg += np.uint8(2) * (((yy - cy) - 0.2 * (xx - cx)) > 0)
        seg += np.uint8(4) * (((z - cz) + 0.25 * (yy - cy)) > 0)
        sl = np.where(liver, seg + 1, 0).astype(np.uint8)
        for tx, ty, tz, tr in tumours:
            if abs(z - tz) < tr:
                sl[((xx - tx) ** 2 + (yy - ty) ** 2 + (z - tz) ** 2 < tr * tr) & liver] = TUMOUR
        sl[(_tube_dist2(xx, yy, z, pv_p, pv_d) < 36.0) & liver] = VESSELS[0]
        for p, d in hv:
            sl[(_tube_dist2(xx, yy, z, p, d) < 25.0) & liver] = VESSELS[1]
        sl[_tube_dist2(xx, yy, z, ivc_p, ivc_d) < 144.0] = VESSELS[2]
        out[z] = sl
    return out


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time in seconds over ``repeat`` calls (after one untimed warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


_COMPILE_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
from flr.kernels import label_stats, connected_components
a = np.zeros((4, 8, 16), np.uint8); a[1:3, 2:6, 3:9] = 2
label_stats(a); connected_components(a, include=[2])
print(time.perf_counter() - t0)
"""


def compile_times() -> tuple[float, float]:
    """Seconds to import + first-call the uint8 kernels in a fresh process: cold cache, then cached."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(REPO)}
        times = []
        for _ in range(2):
            res = subprocess.run(
                [sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True, text=True, check=True
            )
            times.append(float(res.stdout.strip().splitlines()[-1]))
    return times[0], times[1]


# A row: (key, label, seconds or None when skipped, note)
Row = tuple[str, str, float | None, str]


def _sitk_rows(arr: np.ndarray, repeat: int) -> list[Row]:
    try:
        import SimpleITK as sitk
    except ImportError:
        return [("sitk", "SimpleITK LabelShapeStatisticsImageFilter", None, "SimpleITK not installed")]
    image = sitk.GetImageFromArray(arr)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()

    def shape_stats(perimeter: bool) -> Callable[[], None]:
        def run() -> None:
            f = sitk.LabelShapeStatisticsImageFilter()
            f.SetComputePerimeter(perimeter)
            f.SetComputeFeretDiameter(False)
            f.Execute(image)

        return run

    return [
        ("sitk_default", "SimpleITK LabelShapeStatistics, defaults", best_of(shape_stats(True), repeat),
         f"Execute only (perimeter on, its default); {threads} threads"),
        ("sitk_cheap", "SimpleITK LabelShapeStatistics, cheapest", best_of(shape_stats(False), repeat),
         f"Execute only, perimeter and Feret off; {threads} threads"),
        ("sitk_convert", "sitk.GetImageFromArray", best_of(lambda: sitk.GetImageFromArray(arr), repeat),
         "conversion, not counted above"),
    ]


def bench_size(nz: int, repeat: int, n_threads: int | None) -> list[Row]:
    """Timed rows for one 512 x 512 x nz map (components on the liver + tumour mask)."""
    from scipy import ndimage

    from flr.kernels import connected_components, label_stats

    arr = ct_like_labels(nz)
    rows: list[Row] = [
        ("copy", "numpy arr.copy()", best_of(arr.copy, repeat), "floor: one read + one write"),
        ("bincount", "np.bincount(arr.ravel())", best_of(lambda: np.bincount(arr.ravel()), repeat),
         "counts only; 1 thread"),
        *_sitk_rows(arr, repeat),
        ("stats", "flr label_stats", best_of(lambda: label_stats(arr, n_threads=n_threads), repeat),
         "counts + face adjacency + boxes, one pass"),
    ]
    mask = np.isin(arr, LIVER_AND_TUMOUR)
    six = ndimage.generate_binary_structure(3, 1)
    rows.append(("scipy", "scipy.ndimage.label (6-conn)", best_of(lambda: ndimage.label(mask, six), repeat),
                 "on the mask; 1 thread"))
    try:
        import cc3d
    except ImportError:
        rows.append(("cc3d", "cc3d.connected_components (6)", None, "cc3d not installed"))
    else:
        rows.append(("cc3d", "cc3d.connected_components (6)",
                     best_of(lambda: cc3d.connected_components(mask, connectivity=6), repeat),
                     f"on the mask; cc3d {_version('connected-components-3d')}"))
    rows.append(("components", "flr connected_components",
                 best_of(lambda: connected_components(arr, LIVER_AND_TUMOUR, n_threads=n_threads), repeat),
                 "label map + include (mask built inside the timing)"))
    return rows


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _ratio(num: float | None, den: float | None) -> str:
    return "n/a" if num is None or den is None else f"{num / den:.1f}x"


def _targets(t: dict[str, float | None]) -> list[str]:
    """Markdown rows: target, measured, met."""
    stats, comps = t["stats"], t["components"]

    def line(what: str, ok: bool | None, measured: str) -> str:
        verdict = "n/a" if ok is None else ("yes" if ok else "**no**")
        return f"| {what} | {measured} | {verdict} |"

    def faster(key: str, factor: float, mine: float | None) -> tuple[bool | None, str]:
        other = t.get(key)
        if other is None or mine is None:
            return None, "skipped"
        return other / mine >= factor, f"{other / mine:.1f}x"

    out = ["| target | measured | met |", "|---|---:|---|"]
    for key, name in (("bincount", "np.bincount"), ("sitk_default", "SimpleITK (defaults)"),
                      ("sitk_cheap", "SimpleITK (cheapest setting)")):
        ok, measured = faster(key, 10.0, stats)
        out.append(line(f"label_stats >= 10x faster than {name}", ok, measured))
    copy = t["copy"]
    within = None if stats is None or copy is None else stats / copy <= 3.0
    out.append(line("label_stats within 3x of arr.copy()", within, f"{_ratio(stats, copy)} of copy"))
    ok, measured = faster("cc3d", 1.0, comps)
    out.append(line("connected_components at least as fast as cc3d (6)", ok, measured))
    return out


def render(results: dict[int, list[Row]], compile_s: tuple[float, float], repeat: int,
           n_threads: int | None) -> str:
    import numba

    from flr.kernels import _default_threads

    lines = [
        f"# flr.kernels benchmark, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; python "
        f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
        f"(kernel chunks on Python threads; NUMBA_NUM_THREADS {numba.config.NUMBA_NUM_THREADS})",
        f"- flr n_threads = {n_threads or _default_threads(None)}; best of {repeat} wall-clock runs after "
        "one warm-up call",
        "- map: `ct_like_labels` (seeded): liver ellipsoid ~20% of the volume in segments 1-8, tumours 9, "
        "vessels 10-12; components on labels 1-9",
        "- `x flr`: time of the row / time of the flr function it competes with (> 1: flr is faster)",
        "",
    ]
    for nz, rows in results.items():
        t = {key: s for key, _, s, _ in rows}
        lines += [f"## 512 x 512 x {nz} uint8 ({512 * 512 * nz / 1e6:.0f} MB)", "",
                  "| operation | ms | x flr | note |", "|---|---:|---:|---|"]
        for key, label, s, note in rows:
            if s is None:
                lines.append(f"| {label} | skipped | | {note} |")
                continue
            mine = t["components"] if key in ("scipy", "cc3d", "components") else t["stats"]
            lines.append(f"| {label} | {s * 1e3:.1f} | {_ratio(s, mine)} | {note} |")
        lines += ["", *_targets(t), ""]
    cold, cached = compile_s
    lines += ["## numba compile (uint8 kernels: import + first call in a fresh process)", "",
              "| cache | s |", "|---|---:|", f"| cold (empty NUMBA_CACHE_DIR) | {cold:.2f} |",
              f"| cached (second process, same cache) | {cached:.2f} |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="400,900", help="comma-separated z sizes (default 400,900)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="flr n_threads (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    compile_s = compile_times()
    results = {nz: bench_size(nz, args.repeat, args.threads) for nz in sizes}
    text = render(results, compile_s, args.repeat, args.threads)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"kernels-{dt.date.today().isoformat()}.md"
    path.write_text(text + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
