"""Time the decode of a compressed DICOM CT series by ``flr.io.dicom.read_dicom`` on 1 and on N processes.

Run from the repository root::

    python benchmarks/bench_dicom_decode.py                      # 400 x 512 x 512 JPEG 2000, 1 and 2 workers
    python benchmarks/bench_dicom_decode.py --repeat 5 --workers 1 2 4
    python benchmarks/bench_dicom_decode.py --series DIR         # an existing series instead of a generated one

The series is generated once into a temporary folder (``--keep DIR`` keeps it there for the next run): a
seeded synthetic CT of int16 Hounsfield units (air, a body ellipse of soft tissue with a liver-like and a
bone-like region, Gaussian noise of 12 HU inside the body), written by
:func:`flr.io.dicom.write_dicom_series` as JPEG 2000 lossless (``--syntax jpeg-lossless``: JPEG lossless
SV1). Each timed read runs in a fresh Python process, so the time includes starting the decoder processes
as the command line pays it; the module import is outside the timing. Runs:

* ``read_dicom(decode_workers=w)`` for each ``--workers`` w, with the default process start method
  (forkserver) and, for w > 1, with ``spawn``;
* the decode alone (``_decode_array`` per file) serially and on a thread pool of the largest w, with the
  process CPU time, to show whether the decoders release the GIL (threads help only if they do);
* ``--sweep``: read_dicom on the first 16 to 256 slices with 1 and the largest w workers, the break-even
  behind ``PARALLEL_MIN_PIXELS``.

Every run's array is hashed (bytes, dtype, shape) with its geometry; the script fails if any differs from
the serial read. Best of ``--repeat``. Results are printed and written to
``benchmarks/results/dicom-decode-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPACING_MM = (0.7, 0.7, 0.8)
#: A wait of the GIL probe's waker longer than this (ms; it asks for 0.5 ms, the GIL switch interval is 5 ms)
#: means another thread held the GIL.
STALL_MS = 10.0
#: Series sizes (first slices of the series) of ``--sweep``.
SWEEP_SLICES = (16, 64, 128, 192, 256)


def synthetic_ct(n_slices: int, size: int, seed: int = 0) -> np.ndarray:
    """Seeded CT-like int16 HU (z, y, x): air, body ellipse (40 HU), liver (60 HU), spine (700 HU), noise 12 HU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    body = (yy - 0.5) ** 2 / 0.36**2 + (xx - 0.5) ** 2 / 0.44**2 < 1
    liver = (yy - 0.45) ** 2 / 0.15**2 + (xx - 0.35) ** 2 / 0.2**2 < 1
    spine = (yy - 0.75) ** 2 + (xx - 0.5) ** 2 < 0.05**2
    base = np.where(body, 40.0, -1000.0)
    base[liver] = 60.0
    base[spine] = 700.0
    out = np.empty((n_slices, size, size), np.int16)
    for k in range(n_slices):
        noise = rng.normal(0.0, 12.0, (size, size)) * body
        out[k] = np.rint(base + noise).astype(np.int16)
    return out


def write_series(folder: Path, n_slices: int, size: int, syntax: str) -> float:
    """Write the synthetic series into ``folder``; returns the seconds it took."""
    from flr.image import Geometry, Image
    from flr.io.dicom import write_dicom_series

    started = time.perf_counter()
    arr = synthetic_ct(n_slices, size)
    write_dicom_series(Image(arr, Geometry(arr.shape, SPACING_MM)), folder, transfer_syntax=syntax)  # type: ignore[arg-type]
    return time.perf_counter() - started


def digest(image: Any) -> str:
    """sha256 of an image's bytes, dtype, shape and geometry: two reads are identical iff their digests are."""
    h = hashlib.sha256(np.ascontiguousarray(image.array).tobytes())
    h.update(f"{image.array.dtype}|{image.array.shape}|{image.geometry}".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- child runs
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed run in this (fresh) process; ``spec`` says which."""
    import flr.io.dicom as dicom

    folder = Path(spec["folder"])
    if spec["kind"] == "read":
        dicom._START_METHOD = spec.get("start_method")
        workers_cpu = count_worker_cpu()
        machine_before, cpu = machine_times(), time.process_time()
        started = time.perf_counter()
        image = dicom.read_dicom(folder, decode_workers=spec["workers"])
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu + sum(workers_cpu)
        total, idle = (after - before for after, before in zip(machine_times(), machine_before, strict=True))
        return {"seconds": seconds, "digest": digest(image), "cpu_seconds": cpu_seconds,
                "idle_share": idle / total if total > 0 else float("nan")}
    files = sorted(p for p in folder.iterdir() if p.is_file())
    dicom._decode_array(files[0])  # the decoder plugin's first use loads it: not part of the timing
    if spec["kind"] == "gil":
        return gil_probe(files[: spec["files"]])
    started, cpu = time.perf_counter(), time.process_time()
    if spec["threads"] <= 1:
        arrays = [dicom._decode_array(f) for f in files]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(spec["threads"]) as pool:
            arrays = list(pool.map(dicom._decode_array, files))
    seconds = time.perf_counter() - started
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "digest": h.hexdigest()}


def machine_times() -> tuple[float, float]:
    """(CPU seconds of all cores, idle ones) since boot, from ``/proc/stat`` ((nan, nan) elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    hz = os.sysconf("SC_CLK_TCK")
    return sum(ticks) / hz, (ticks[3] + ticks[4]) / hz  # idle + iowait


def count_worker_cpu() -> list[float]:
    """CPU seconds of every decoder process, read from ``/proc`` as its pool shuts down (filled in later)."""
    from concurrent.futures import ProcessPoolExecutor

    seen: list[float] = []
    shutdown = ProcessPoolExecutor.shutdown
    hz = os.sysconf("SC_CLK_TCK")

    def cpu_of(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # the process has gone
            return 0.0
        return (int(fields[11]) + int(fields[12])) / hz  # utime + stime

    def counting_shutdown(self: Any, *args: Any, **kwargs: Any) -> None:
        seen.extend(cpu_of(pid) for pid in list(getattr(self, "_processes", None) or {}))
        shutdown(self, *args, **kwargs)

    ProcessPoolExecutor.shutdown = counting_shutdown  # type: ignore[method-assign]
    return seen


def gil_probe(files: list[Path]) -> dict[str, Any]:
    """Does the decoder hold the GIL? A second thread asks to wake every 0.5 ms while this one decodes ``files``.
    When the decoder releases the GIL the waker keeps its pace; when it holds it, the waker waits for each
    decode to end: the share of the time it spends in waits over :data:`STALL_MS` is about the decoder's share
    of the work (the rest is Python: reading the file, checks)."""
    import threading

    import flr.io.dicom as dicom

    wakes: list[float] = []
    stop = threading.Event()

    def waker() -> None:
        while not stop.is_set():
            time.sleep(0.0005)
            wakes.append(time.perf_counter())

    thread = threading.Thread(target=waker)
    thread.start()
    started = time.perf_counter()
    for f in files:
        dicom._decode_array(f)
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    gaps = np.diff(wakes) * 1e3 if len(wakes) > 1 else np.array([0.0])
    return {"seconds": seconds, "digest": "", "decodes_per_s": len(files) / seconds,
            "wakes_per_s": len(wakes) / seconds, "max_gap_ms": float(gaps.max()),
            "stalled_share": float(gaps[gaps > STALL_MS].sum()) / 1e3 / seconds}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True, capture_output=True,
                         text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(specs: list[dict[str, Any]], repeat: int) -> list[dict[str, Any]]:
    """The fastest of ``repeat`` runs of each spec, the specs taking turns (round after round), so that a
    machine's changing load falls on all of them alike; every run of a spec must give the same digest."""
    runs: list[list[dict[str, Any]]] = [[] for _ in specs]
    for _ in range(repeat):
        for spec, done in zip(specs, runs, strict=True):
            done.append(run_child(spec) | {"load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")})
    for spec, done in zip(specs, runs, strict=True):
        if len({r["digest"] for r in done}) != 1:
            raise SystemExit(f"runs of {spec} gave different arrays")
    return [min(done, key=lambda r: r["seconds"]) for done in runs]


def subset(folder: Path, n: int, parent: Path) -> Path:
    """A folder of hard links to the first ``n`` files of ``folder`` (slice order = file order here)."""
    target = parent / f"first-{n}"
    target.mkdir(exist_ok=True)
    for f in sorted(folder.iterdir())[:n]:
        link = target / f.name
        if not link.exists():
            os.link(f, link)
    return target


# ---------------------------------------------------------------------------------------------- main
def measure(folder: Path, workers: list[int], repeat: int, sweep: bool, tmp: Path) -> dict[str, Any]:
    """Every timed run on the series in ``folder``; fails when any array differs from the serial read's."""
    w_max = max(workers)
    names: list[str] = []
    specs: list[dict[str, Any]] = []
    for w in sorted(set(workers)):
        names.append(f"read_dicom, {w} worker" + (" (this process)" if w == 1 else "s (processes, forkserver)"))
        specs.append({"kind": "read", "folder": str(folder), "workers": w})
        if w > 1:
            names.append(f"read_dicom, {w} workers (processes, spawn)")
            specs.append({"kind": "read", "folder": str(folder), "workers": w, "start_method": "spawn"})
    n_read = len(specs)
    for t in (1, w_max):
        names.append(f"decode only, {t} thread{'s' if t > 1 else ''}")
        specs.append({"kind": "decode", "folder": str(folder), "threads": t})
    results = best(specs, repeat)
    if len({r["digest"] for r in results[:n_read]}) != 1:
        raise SystemExit("a parallel read gave another array or geometry than the serial read")
    if len({r["digest"] for r in results[n_read:]}) != 1:
        raise SystemExit("threads decoded other arrays than the serial decode")
    n_files = sum(1 for p in folder.iterdir() if p.is_file())
    probe = run_child({"kind": "gil", "folder": str(folder), "files": min(40, n_files)})
    sweep_rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    subsets = [n for n in SWEEP_SLICES if n < n_files] if sweep else []
    sweep_specs = []
    for n in subsets:
        sub = subset(folder, n, tmp)
        sweep_specs += [{"kind": "read", "folder": str(sub), "workers": 1},
                        {"kind": "read", "folder": str(sub), "workers": w_max}]
    swept = best(sweep_specs, repeat) if sweep_specs else []
    for k, n in enumerate(subsets):
        one, many = swept[2 * k], swept[2 * k + 1]
        if one["digest"] != many["digest"]:
            raise SystemExit(f"{n} slices: a parallel read gave another array than the serial read")
        sweep_rows.append((n, one, many))
    return {"rows": list(zip(names[:n_read], results[:n_read], strict=True)),
            "decode_rows": list(zip(names[n_read:], results[n_read:], strict=True)), "probe": probe,
            "sweep_rows": sweep_rows, "loads": [r["load"] for r in results + swept], "w_max": w_max}


def report(m: dict[str, Any], series: str, repeat: int, load: float) -> str:
    """The results as the markdown of ``benchmarks/results``."""
    import numpy
    import pydicom

    serial = m["rows"][0][1]["seconds"]
    probe = m["probe"]
    holds = probe["stalled_share"] > 0.5
    lines = [
        f"# DICOM decode benchmark, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, numpy "
        f"{numpy.__version__}, pydicom {pydicom.__version__}; 1-minute load average {load:.1f} at the start, "
        f"{min(m['loads']):.1f}-{max(m['loads']):.1f} during the runs (other work on the machine)",
        f"- series: {series}",
        f"- best of {repeat}, each run in a fresh process (decoder processes started within the timing); the "
        "configurations take turns; every run's array, dtype and geometry identical to the serial read (sha256)",
        "- CPU s: the calling process and its decoder processes; machine idle: the share of all cores' time idle "
        "during the run (near 0 %: other work held the cores the workers needed)",
        "",
        "| run | s | speed-up | CPU s (all processes) | machine idle |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {r['seconds']:.2f} | {serial / r['seconds']:.2f}x | {r['cpu_seconds']:.2f} | "
              f"{r['idle_share']:.0%} |" for name, r in m["rows"]]
    lines += ["", "| decode only (no header scan, no rescale) | s | CPU s / s |", "|---|---:|---:|"]
    lines += [f"| {name} | {r['seconds']:.2f} | {r['cpu_seconds'] / r['seconds']:.2f} |"
              for name, r in m["decode_rows"]]
    lines += ["", f"GIL: while one thread decodes {probe['decodes_per_s']:.0f} files/s, a second thread asking to "
              f"wake every 0.5 ms spends {probe['stalled_share']:.0%} of the time in waits over {STALL_MS:g} ms "
              f"(longest {probe['max_gap_ms']:.0f} ms): the decoder {'holds' if holds else 'releases'} the GIL "
              "while it decodes" + (", so threads cannot decode in parallel." if holds else ".")]
    if m["sweep_rows"]:
        lines += ["", f"| slices | 1 worker s | {m['w_max']} workers s | speed-up | machine idle (1 / {m['w_max']}) |",
                  "|---:|---:|---:|---:|---:|"]
        lines += [f"| {n} | {a['seconds']:.2f} | {b['seconds']:.2f} | {a['seconds'] / b['seconds']:.2f}x | "
                  f"{a['idle_share']:.0%} / {b['idle_share']:.0%} |" for n, a, b in m["sweep_rows"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--size", type=int, default=512, help="rows = columns")
    parser.add_argument("--syntax", default="jpeg2000-lossless", choices=["jpeg2000-lossless", "jpeg-lossless"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", type=Path, help="an existing series folder (nothing is generated)")
    parser.add_argument("--keep", type=Path, help="generate into this folder, or reuse it when it holds the series")
    parser.add_argument("--sweep", action="store_true", help="also time 16..256-slice series (the break-even)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    with tempfile.TemporaryDirectory(prefix="flr-bench-decode-") as tmp:
        folder = args.series or args.keep or Path(tmp) / "series"
        generated = None
        if args.series is None and not (folder.is_dir() and any(folder.iterdir())):
            generated = write_series(folder, args.slices, args.size, args.syntax)
        files = sorted(p for p in folder.iterdir() if p.is_file())
        import pydicom

        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        series = (f"{len(files)} slices of {ds.Rows}x{ds.Columns}, {ds.file_meta.TransferSyntaxUID.name} "
                  f"({sum(p.stat().st_size for p in files) / 1e6:.0f} MB)"
                  + (f", from {folder}" if args.series else ", this script's synthetic_ct (seed 0)")
                  + (f", written in {generated:.0f} s" if generated is not None else ""))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        text = report(measure(folder, args.workers, args.repeat, args.sweep, Path(tmp)), series, args.repeat, load)
    print(text)
    out = REPO / "benchmarks" / "results" / f"dicom-decode-{dt.date.today().isoformat()}.md"
    out.write_text(text)
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
