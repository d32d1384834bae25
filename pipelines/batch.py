"""``flr batch``: a whole dataset in one command, exact, resumable and parallel (local processes or Dask).

Per case (:func:`run_case`, the same function for local workers and Dask workers): volumetry, or with a plan a
full assessment, exactly as ``flr volumetry`` / ``flr assess`` compute it from the same ``--labels``/``--ct``.

What ``OUT`` holds, and why a crash loses nothing but the cases in flight:

* ``cases/<case_id>.json``: the case's usual result, written atomically (temporary name + rename);
* ``state/<case_id>.json``: written atomically *after* the case file: the sha256 of every input, the options,
  the sha256 of the case file (or the case's error). A case is skipped when its state says ``ok``, its options
  and input hashes are unchanged and its case file still has the recorded hash (``--force`` recomputes);
* ``results.csv``, ``results.parquet``, ``errors.csv`` (and ``metrics.csv``, ``summary.html``): rebuilt from
  the case and state files at the end, each written atomically.

SIGKILL at any moment leaves complete files only; the next run recomputes the cases whose state is missing or
stale (failed cases are always retried) and rebuilds the tables.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flr.errors import FlrError, InputFileError, one_line, short_path
from pipelines.layouts import LAYOUTS, CaseSpec, discover

#: State file format of a case (``OUT/state/<case_id>.json``).
STATE_VERSION = 1
SEGMENT_COLUMNS = tuple(f"liver_segment_{i}_ml" for i in range(1, 9))
VOLUME_COLUMNS = ("liver_ml", *SEGMENT_COLUMNS, "tumor_ml")
CHECK_NAMES = ("two_contiguous_segments", "inflow", "outflow", "biliary_drainage", "arterial_inflow",
               "tumor_clearance")
PLAN_COLUMNS = ("plan", "remnant_ml", "functional_remnant_ml", "flr_percent", "sflr_percent",
                *(f"check_{c}" for c in CHECK_NAMES), "verdict")
#: ``results.csv`` columns without a plan; with one, :data:`PLAN_COLUMNS` follow.
BASE_COLUMNS = ("case_id", "status", "warnings", *VOLUME_COLUMNS, "liver_truncated", "truncated_structures")
ERROR_COLUMNS = ("case_id", "input", "error")
FLOAT_COLUMNS = frozenset({*VOLUME_COLUMNS, "remnant_ml", "functional_remnant_ml", "flr_percent", "sflr_percent"})
#: Separator of a case's warnings in its row (a warning may itself hold ``;``).
WARNING_SEPARATOR = " | "


class BatchError(FlrError, RuntimeError):
    """Some cases of a batch failed (their rows are in ``errors.csv``)."""


@dataclass(frozen=True)
class BatchOptions:
    """What every case of one batch run is asked: the default plan, and the reference dataset's cases."""

    plan: str | None = None
    tolerance_mm: float = 1.0
    anatomical_vessel_seeds: bool = False


# --- one case (runs in a worker) ---------------------------------------------------------------------------


def init_worker() -> None:
    """Load flr and its compiled kernels once per worker process (numba's on-disk cache, first call)."""
    import numpy as np

    from flr.image import Geometry, LabelMap
    from flr.volumes import volumetry

    tiny = np.zeros((3, 3, 3), np.uint8)
    tiny[1, 1, 1] = 1
    volumetry([LabelMap(tiny, Geometry((3, 3, 3)), "warm-up", names={1: "liver"})])


def _init_pool_worker() -> None:
    """A local worker process: SIGINT (Ctrl-C reaches the whole process group) is left to the parent, which
    stops handing out cases; then :func:`init_worker`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker()


def run_case(spec: CaseSpec, options: BatchOptions, reference: CaseSpec | None = None) -> dict[str, Any]:
    """Compute one case; never raises for the case's own problems (they come back as ``status: error``).

    Returns ``{case_id, status, result, error, input, hashes, options, seconds, metrics}``: ``result`` is the
    result's JSON form, ``hashes`` the sha256 of every input (None for an absent optional sidecar).
    """
    started = time.perf_counter()
    out: dict[str, Any] = {"case_id": spec.case_id, "status": "error", "result": None, "error": spec.error,
                           "input": spec.error_input, "hashes": {}, "options": case_options(spec, options),
                           "metrics": None}
    if spec.error is None:
        try:
            out["result"] = _compute(spec, options)
            if reference is not None:
                out["metrics"] = _metrics(spec, reference, options.tolerance_mm)
            out["hashes"] = input_hashes(spec)
            out["status"] = "ok"
        except FlrError as exc:
            out["error"] = one_line(exc)
        except OSError as exc:
            where = short_path(str(exc.filename)) if exc.filename else spec.case_id
            out["error"] = one_line(f"{where}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - a bug or a library's failure on odd data: this case fails, the others go on
            out["error"] = one_line(f"internal error: {type(exc).__name__}: {exc}")
        if out["status"] == "error":
            out["input"] = _culprit(spec, out["error"])
    out["seconds"] = time.perf_counter() - started
    return out


def _compute(spec: CaseSpec, options: BatchOptions) -> dict[str, Any]:
    """The case's result as JSON data: an assessment when the case or the batch has a plan, else volumetry."""
    ct = Path(spec.ct) if spec.ct else None
    plan_name = spec.plan or options.plan
    if plan_name is None:
        from pipelines.volumetry import run_volumetry

        return run_volumetry(list(spec.labels), ct=ct).to_dict()
    from pipelines.assess import AssessRequest, cli_plan, run_assess

    request = AssessRequest(labels=spec.labels, plan=cli_plan(plan_name), ct=ct, weight_kg=spec.weight_kg,
                            height_cm=spec.height_cm, patient=Path(spec.patient) if spec.patient else None,
                            anatomical_vessel_seeds=options.anatomical_vessel_seeds)
    return run_assess(request).to_dict()


def _metrics(spec: CaseSpec, reference: CaseSpec, tolerance_mm: float) -> list[dict[str, Any]]:
    """Per structure metrics of the case's label maps against the reference case's (the i-th map of each).

    The CTs only place the label maps (their grid; a DICOM-SEG's or RTSTRUCT's frames and instances): they are
    opened from their headers (:func:`flr.io.open_image`, built on :func:`flr.io.read_image_header`), and no voxel
    of them is decoded here.
    """
    from flr.metrics import compare_label_maps
    from pipelines.inputs import load_case

    _, pred = load_case(spec.labels, ct=Path(spec.ct) if spec.ct else None)
    _, ref = load_case(reference.labels, ct=Path(reference.ct) if reference.ct else None)
    if len(pred) != len(ref):
        raise InputFileError(f"{reference.case_id}: the reference has {len(ref)} label map(s), the case {len(pred)}; "
                             "--reference needs the same layout")
    by_structure: dict[str, dict[str, Any]] = {}
    for p, r in zip(pred, ref, strict=True):  # a later map's structure wins (couinaud: liver/ over label/'s union)
        for name, m in compare_label_maps(p, r, tolerance_mm=tolerance_mm).items():
            by_structure[name] = {"structure": name, **m.to_dict()}
    return list(by_structure.values())


def input_hashes(spec: CaseSpec) -> dict[str, str | None]:
    """sha256 of each input file or folder of a case (None: an optional sidecar that is absent)."""
    from flr.io import sha256_of

    return {p: (sha256_of(p) if Path(p).exists() else None) for p in spec.files()}


def case_options(spec: CaseSpec, options: BatchOptions) -> dict[str, Any]:
    """What a case's result depends on besides its input files' bytes (compared on resume)."""
    import flr

    return {"labels": list(spec.labels), "ct": spec.ct, "plan": spec.plan or options.plan,
            "patient": spec.patient, "weight_kg": spec.weight_kg, "height_cm": spec.height_cm,
            "flr_version": flr.__version__,
            **({"anatomical_vessel_seeds": True} if options.anatomical_vessel_seeds else {})}


def _culprit(spec: CaseSpec, message: str | None) -> str:
    """The input an error message names (the longest input path in it), else the case's first label map."""
    text = message or ""
    named = [p for p in [*spec.label_paths(), spec.ct, spec.patient] if p and p in text]
    if named:
        return max(named, key=len)
    return spec.error_input or (spec.label_paths()[0] if spec.labels else "")


# --- resumability ------------------------------------------------------------------------------------------


def _case_file(out: Path, case_id: str) -> Path:
    return out / "cases" / f"{case_id}.json"


def _state_file(out: Path, case_id: str) -> Path:
    return out / "state" / f"{case_id}.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(out: Path, spec: CaseSpec, options: BatchOptions, *, with_metrics: bool) -> bool:
    """The case's outputs are complete and were computed from these very inputs and options."""
    from flr.io import sha256_of

    state = _read_json(_state_file(out, spec.case_id))
    case = _case_file(out, spec.case_id)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or state.get("status") != "ok":
        return False
    if state.get("options") != case_options(spec, options) or (with_metrics and state.get("metrics") is None):
        return False
    if not case.is_file() or sha256_of(case) != state.get("result_sha256"):
        return False
    try:
        return bool(state.get("hashes") == input_hashes(spec))
    except OSError:
        return False


def record(out: Path, outcome: dict[str, Any]) -> None:
    """Write a finished case: its result file, then its state (each atomic; see the module docstring)."""
    from flr.io import sha256_of, write_json_atomic

    case_id = outcome["case_id"]
    state = {"version": STATE_VERSION, **{k: outcome[k] for k in ("case_id", "status", "error", "input",
                                                                   "hashes", "options", "seconds", "metrics")}}
    if outcome["status"] == "ok":
        write_json_atomic(outcome["result"], _case_file(out, case_id))
        state["result_sha256"] = sha256_of(_case_file(out, case_id))
    else:
        _case_file(out, case_id).unlink(missing_ok=True)  # a stale result must not stand for a failed case
    write_json_atomic(state, _state_file(out, case_id))


# --- running: in this process, local worker processes, or a Dask cluster ------------------------------------

Task = tuple[CaseSpec, CaseSpec | None]


def _failed(spec: CaseSpec, options: BatchOptions, message: str) -> dict[str, Any]:
    return {"case_id": spec.case_id, "status": "error", "result": None, "error": one_line(message),
            "input": spec.error_input or (spec.label_paths()[0] if spec.labels else ""), "hashes": {},
            "options": case_options(spec, options), "metrics": None, "seconds": 0.0}


def run_local(tasks: Sequence[Task], options: BatchOptions, jobs: int) -> Iterator[dict[str, Any]]:
    """Outcomes of the tasks as they finish: in this process for one job, else in ``jobs`` worker processes
    (spawned, each loading the kernels once in :func:`init_worker`, one case at a time)."""
    if jobs <= 1 or len(tasks) <= 1:
        init_worker()
        for spec, ref in tasks:
            yield run_case(spec, options, ref)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_pool_worker)
    try:
        futures = {pool.submit(run_case, spec, options, ref): spec for spec, ref in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:  # noqa: PERF203 - one case's outcome, not a hot loop
                yield _failed(futures[future], options, "the worker process died (out of memory?); run again")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_dask(tasks: Sequence[Task], options: BatchOptions, address: str) -> Iterator[dict[str, Any]]:
    """Outcomes of the tasks on the Dask cluster at ``address`` (``tcp://HOST:PORT``), as they finish.

    The same :func:`run_case` runs on the workers (they must see the dataset under the same paths); at most
    one case per worker is in flight, so a worker's memory holds one case. The results are written here.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency of flr
        raise BatchError("--scheduler needs dask.distributed (pip install distributed)") from None
    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"--scheduler {address}: cannot reach the Dask scheduler ({one_line(exc, 200)}); "
                         "start one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    with client:
        client.run(init_worker)
        slots = max(1, len(client.scheduler_info()["workers"]))
        queue = iter(tasks)
        by_key: dict[str, CaseSpec] = {}

        def submit(task: Task) -> Any:
            future = client.submit(run_case, task[0], options, task[1], pure=False,
                                   key=f"flr-case-{task[0].case_id}-{os.urandom(4).hex()}")
            by_key[future.key] = task[0]
            return future

        first = [submit(t) for t in itertools.islice(queue, slots)]
        if not first:
            return
        running = as_completed(first, loop=client.loop)
        for future in running:
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - a worker lost, a task the cluster could not run: this case fails
                yield _failed(by_key[future.key], options, f"Dask: {type(exc).__name__}: {exc}")
            task = next(queue, None)
            if task is not None:
                running.add(submit(task))


class Progress:
    """A tqdm bar (done, failed, ETA) when standard output is a terminal, else one line per case."""

    def __init__(self, total: int, skipped: int) -> None:
        self.total, self.done, self.failed = total, skipped, 0
        self.bar: Any = None
        if sys.stdout.isatty():
            import shutil

            from tqdm import tqdm

            size = shutil.get_terminal_size()  # a pty reporting 0 x 0 gets 80 x 24 (tqdm would hide the bar)
            self.bar = tqdm(total=total, initial=skipped, unit="case", file=sys.stdout,
                            ncols=max(size.columns, 40), nrows=max(size.lines, 2))
            self.bar.set_postfix(failed=0)

    def update(self, outcome: dict[str, Any]) -> None:
        """Count a finished case and show it."""
        self.done += 1
        self.failed += outcome["status"] != "ok"
        if self.bar is not None:
            self.bar.set_postfix(failed=self.failed)
            self.bar.update(1)
            return
        what = "ok" if outcome["status"] == "ok" else f"error: {outcome['error']}"
        click.echo(f"[{self.done}/{self.total}] {outcome['case_id']}: {what} ({outcome['seconds']:.1f} s)")

    def close(self) -> None:
        """End the bar."""
        if self.bar is not None:
            self.bar.close()


# --- tables (rebuilt from the case files) ------------------------------------------------------------------


def case_row(case_id: str, data: dict[str, Any], *, with_plan: bool) -> dict[str, Any]:
    """One ``results.csv`` row from a case's result JSON (volumetry or assessment)."""
    structures: dict[str, Any] = data.get("structures", {})

    def volume(name: str) -> float | None:
        return structures[name]["volume_ml"] if name in structures else None

    row: dict[str, Any] = {"case_id": case_id, "status": "ok",
                           "warnings": WARNING_SEPARATOR.join(data.get("warnings", ()))}
    row["liver_ml"] = volume("liver")
    row.update({f"liver_segment_{i}_ml": volume(f"liver_segment_{i}") for i in range(1, 9)})
    row["tumor_ml"] = volume("tumor")
    row["liver_truncated"] = structures["liver"]["touches_border"] if "liver" in structures else None
    row["truncated_structures"] = ";".join(n for n, s in structures.items() if s.get("touches_border"))
    if with_plan:
        row.update(dict.fromkeys(PLAN_COLUMNS))
        if data.get("kind") == "assessment":
            remnant, checks = data["remnant"], data.get("checks", {})
            row.update(plan=data["plan"].get("name"), remnant_ml=remnant["volume_ml"],
                       functional_remnant_ml=remnant["functional_volume_ml"],
                       flr_percent=remnant.get("percent_of_functional_liver"),
                       sflr_percent=remnant.get("sflr_percent"),
                       verdict=(data.get("verdict") or {}).get("status"))
            row.update({f"check_{c}": checks[c]["status"] for c in CHECK_NAMES if checks.get(c)})
    return row


def collect(out: Path, specs: Sequence[CaseSpec], *, with_plan: bool) -> tuple[list[dict[str, Any]],
                                                                                 list[dict[str, Any]],
                                                                                 list[dict[str, Any]]]:
    """Rows of results, errors and metrics, from the case and state files of ``specs`` (in dataset order).

    A case with neither a complete result nor a recorded error (interrupted) has no row.
    """
    results, errors, metrics = [], [], []
    empty = dict.fromkeys(BASE_COLUMNS + (PLAN_COLUMNS if with_plan else ()))
    for spec in specs:
        state = _read_json(_state_file(out, spec.case_id))
        if not isinstance(state, dict):
            continue
        data = _read_json(_case_file(out, spec.case_id)) if state.get("status") == "ok" else None
        if isinstance(data, dict):
            results.append(case_row(spec.case_id, data, with_plan=with_plan))
            metrics.extend({"case_id": spec.case_id, **m} for m in state.get("metrics") or ())
        else:
            error = state.get("error") or f"{_case_file(out, spec.case_id)}: missing or unreadable"
            results.append({**empty, "case_id": spec.case_id, "status": "error"})
            errors.append({"case_id": spec.case_id, "input": state.get("input") or "", "error": error})
    return results, errors, metrics


def _csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with the given columns; None is empty, floats keep every digit (``repr``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buffer.getvalue()


def _columns(rows: Sequence[dict[str, Any]], first: Sequence[str]) -> list[str]:
    cols = list(first)
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols


def write_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """The rows as a Parquet file (typed columns: float64 volumes, bool flags, strings), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flr.io._common import atomic_path

    def kind(column: str) -> Any:
        if column in FLOAT_COLUMNS or column.endswith(("_ml", "_mm", "_percent")) or column in (
                "dice", "jaccard", "surface_dice"):
            return pa.float64()
        return pa.bool_() if column == "liver_truncated" else pa.string()

    def cell(value: Any, column: str) -> Any:
        if value is None or kind(column) != pa.string():
            return value
        return str(value)

    table = pa.table({c: pa.array([cell(r.get(c), c) for r in rows], type=kind(c)) for c in columns})
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp)


def write_tables(out: Path, specs: Sequence[CaseSpec], *, with_plan: bool, with_metrics: bool,
                 summary: bool = True) -> tuple[int, int]:
    """Rebuild results.csv/.parquet, errors.csv (metrics.csv, summary.html) from the case files; (ok, failed)."""
    from flr.io import write_text_atomic

    results, errors, metrics = collect(out, specs, with_plan=with_plan)
    columns = list(BASE_COLUMNS + (PLAN_COLUMNS if with_plan else ()))
    write_text_atomic(_csv_text(results, columns), out / "results.csv")
    write_parquet(results, columns, out / "results.parquet")
    write_text_atomic(_csv_text(errors, ERROR_COLUMNS), out / "errors.csv")
    if with_metrics:
        write_text_atomic(_csv_text(metrics, _columns(metrics, ("case_id", "structure"))), out / "metrics.csv")
    if summary:
        from pipelines.summary import write_summary

        write_summary(out / "summary.html", results, errors, metrics if with_metrics else None,
                      plan_columns=with_plan)
    return len(results) - len(errors), len(errors)


# --- the command -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRequest:
    """Everything ``flr batch`` was asked to do."""

    dataset: Path
    layout: str
    out: Path
    plan: str | None = None
    jobs: int = 1
    scheduler: str | None = None
    force: bool = False
    reference: Path | None = None
    tolerance_mm: float = 1.0
    anatomical_vessel_seeds: bool = False


def _prepare_out(out: Path) -> None:
    """Create ``OUT`` (its parent must exist), ``OUT/cases`` and ``OUT/state``."""
    if out.exists() and not out.is_dir():
        raise InputFileError(f"{out}: exists and is not a folder; --out needs a folder")
    if not out.parent.is_dir():
        raise InputFileError(f"{out}: its folder {out.parent} does not exist")
    for sub in (out, out / "cases", out / "state"):
        sub.mkdir(exist_ok=True)


def _tasks(request: BatchRequest, specs: Sequence[CaseSpec]) -> list[Task]:
    """Each case with its reference case (``--reference``; a case the reference lacks is an error)."""
    if request.reference is None:
        return [(s, None) for s in specs]
    ref_specs = {s.case_id: s for s in discover(request.reference, request.layout,
                                                 scheme_dir=request.out / "schemes")}
    tasks: list[Task] = []
    for s in specs:
        ref = ref_specs.get(s.case_id)
        if ref is None and s.error is None:
            s = CaseSpec(s.case_id, s.labels, s.ct, s.plan, s.patient, s.weight_kg, s.height_cm,
                         error=f"{request.reference}: no reference case {s.case_id!r}",
                         error_input=str(request.reference))
        tasks.append((s, ref))
    return tasks


def run_batch(request: BatchRequest, echo: Any = click.echo) -> tuple[int, int, int]:
    """Run a batch; returns (cases ok, cases failed, cases skipped because unchanged)."""
    if request.plan is not None:
        from pipelines.assess import cli_plan

        cli_plan(request.plan)  # an unknown plan is refused before any case runs
    _prepare_out(request.out)
    specs = discover(request.dataset, request.layout, scheme_dir=request.out / "schemes")
    if not specs:
        raise InputFileError(f"{request.dataset}: no cases found in the {request.layout} layout")
    options = BatchOptions(plan=request.plan, tolerance_mm=request.tolerance_mm,
                           anatomical_vessel_seeds=request.anatomical_vessel_seeds)
    with_metrics = request.reference is not None
    tasks = _tasks(request, specs)
    todo = [t for t in tasks if request.force or not is_current(request.out, t[0], options,
                                                                     with_metrics=with_metrics)]
    skipped = len(tasks) - len(todo)
    echo(f"{len(tasks)} cases ({skipped} unchanged, skipped); {len(todo)} to run", err=True)
    progress = Progress(len(tasks), skipped)
    try:
        outcomes = (run_dask(todo, options, request.scheduler) if request.scheduler
                    else run_local(todo, options, request.jobs))
        for outcome in outcomes:
            record(request.out, outcome)
            progress.update(outcome)
    finally:
        progress.close()
    with_plan = request.plan is not None or any(s.plan for s in specs)
    ok, failed = write_tables(request.out, specs, with_plan=with_plan, with_metrics=with_metrics)
    return ok, failed, skipped


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@click.command("batch")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--layout", required=True, type=click.Choice(LAYOUTS),
              help="How DATASET is organised (a folder, or for manifest a CSV file); see the README's Datasets.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="OUT",
              help="Output folder: cases/, results.csv, results.parquet, errors.csv, summary.html.")
@click.option("--plan", "plan_name", default=None, metavar="NAME",
              help="Assess this resection for every case (a manifest's plan column wins for its row).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: the cores).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run the cases on this Dask distributed scheduler instead of local processes.")
@click.option("--force", is_flag=True, help="Recompute every case, even those whose inputs are unchanged.")
@click.option("--reference", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Reference segmentations in the same layout: per case and structure metrics (metrics.csv).")
@click.option("--tolerance-mm", type=float, default=1.0, show_default=True,
              help="Tolerance of the surface Dice against --reference.")
@click.option("--anatomical-vessel-seeds", is_flag=True,
              help="With --plan: separate mixed vessel masks that have no trunk (MSD Task08) from Couinaud "
                   "landmarks (low confidence), as flr assess --anatomical-vessel-seeds.")
def batch_command(dataset: Path, layout: str, out_dir: Path, plan_name: str | None, jobs: int | None,
                  scheduler: str | None, force: bool, reference: Path | None, tolerance_mm: float,
                  anatomical_vessel_seeds: bool) -> None:
    """Volumetry (or with --plan an assessment) of every case of a dataset: resumable, parallel, one table."""
    request = BatchRequest(dataset=dataset, layout=layout, out=out_dir, plan=plan_name,
                           jobs=jobs or default_jobs(), scheduler=scheduler, force=force, reference=reference,
                           tolerance_mm=tolerance_mm, anatomical_vessel_seeds=anatomical_vessel_seeds)
    ok, failed, _ = run_batch(request)
    click.echo(f"{ok} cases ok, {failed} failed; results: {out_dir / 'results.csv'}")
    if failed:
        raise BatchError(f"{failed} of {ok + failed} cases failed; see {out_dir / 'errors.csv'}")
