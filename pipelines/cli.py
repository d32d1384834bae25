"""The ``flr`` command line. Heavy imports happen inside commands so ``flr --help`` is instant.

Errors a user can cause (:class:`flr.errors.FlrError`) are printed as one line, ``flr: error: ...``, with
exit code 2; anything else prints one line and exit code 1 (set ``FLR_DEBUG=1`` for the traceback). SIGINT,
SIGTERM and SIGHUP end a command with one line and exit code 128 + the signal (130, 143, 129) after its
temporary files are removed (:mod:`pipelines.outputs`). Every line is capped by :func:`flr.errors.one_line`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

EXIT_INPUT_ERROR = 2
EXIT_INTERNAL_ERROR = 1


#: The signals a command ends on cleanly (temporaries removed), with their exit code 128 + number.
_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


class _Signalled(BaseException):
    """Raised by the CLI's signal handler so every ``with`` block (the output set's temporaries) unwinds."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _one_line(text: str, limit: int | None = None) -> str:
    from flr.errors import MAX_MESSAGE_CHARS, one_line

    return one_line(text, limit or MAX_MESSAGE_CHARS)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flr", prog_name="flr")
def cli() -> None:
    """flr: CT liver volumetry and future-liver-remnant analysis (decision support, not a decision)."""


@cli.command()
@click.option("--labels", "labels", multiple=True, required=True, metavar="PATH[:SCHEME]",
              help="Label map (NIfTI, NRRD, .seg.nrrd), optionally with a scheme: a built-in name "
                   "(see `flr schemes`) or a JSON/YAML file {id: name}. Repeatable.")
@click.option("--ct", type=click.Path(path_type=Path), default=None,
              help="CT (NIfTI, NRRD, DICOM file or folder); every label map must lie on its grid.")
@click.option("--series", "series_uid", default=None, metavar="UID",
              help="SeriesInstanceUID to use when a DICOM folder holds several image series.")
@click.option("--resample", is_flag=False, flag_value="nearest", default=None, type=click.Choice(["nearest"]),
              help="Resample what is not on the reference grid instead of refusing it: label maps with "
                   "nearest-neighbour interpolation (reported), a tilted or irregular DICOM CT onto a regular grid.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Write the result as JSON (schema in the README); - writes it to standard output.")
@click.option("--strict", is_flag=True,
              help="Inconsistent inputs (liver mask off soft tissue, outline and segments disagreeing, tumour "
                   "outside the outline, missing segments) are errors instead of warnings.")
@click.option("--quiet", "-q", is_flag=True, help="No table on the terminal.")
def volumetry(labels: tuple[str, ...], ct: Path | None, series_uid: str | None, resample: str | None,
              json_out: Path | None, strict: bool, quiet: bool) -> None:
    """Voxel volumes, truncation flags and segment contacts of every labelled structure."""
    from pipelines.volumetry import run_volumetry

    if quiet:
        _no_notice()

    result = run_volumetry(list(labels), ct=ct, series_uid=series_uid, resample=resample, strict=strict,
                           json_out=json_out)
    from pipelines.volumetry import format_table

    _summary(result, json_out, quiet, format_table)


def _to_stdout(json_out: Path | None) -> bool:
    return json_out is not None and str(json_out) == "-"


def _no_notice() -> None:
    """``-q``: no compile notice either."""
    from flr.kernels import set_notice

    set_notice(None)


def _summary(result: Any, json_out: Path | None, quiet: bool, formatter: Any) -> None:
    """Print the human summary (to standard error when the JSON went to standard output) and where the JSON is."""
    if not quiet:
        click.echo(formatter(result), err=_to_stdout(json_out))
        if json_out is not None and not _to_stdout(json_out):
            click.echo(f"JSON written to {json_out}")


@cli.command()
@click.option("--labels", "labels", multiple=True, required=True, metavar="PATH[:SCHEME]",
              help="Label map(s): Couinaud segments, tumours, vessels, liver outline. Repeatable.")
@click.option("--ct", type=click.Path(path_type=Path), default=None, help="CT (NIfTI, NRRD, DICOM file or folder).")
@click.option("--plan", "plan_name", default=None, metavar="NAME",
              help="Brisbane 2000 resection, e.g. right-hemihepatectomy, left-lateral-sectionectomy.")
@click.option("--resect", default=None, metavar="SEGMENTS|NAME", help="Segments to resect, e.g. 5,6,7,8 (or a name).")
@click.option("--include-caudate", is_flag=True, help="Add segment 1 to the named resection.")
@click.option("--take-plane-veins", is_flag=True,
              help="Take the vessels on the transection plane with the specimen (e.g. the middle hepatic vein in a "
                   "right hemihepatectomy); by default they are kept with the remnant.")
@click.option("--wedge", "wedges", multiple=True, metavar="TUMOUR_ID[:MARGIN_MM]",
              help="Non-anatomical wedge around a tumour (default margin 10 mm). Repeatable.")
@click.option("--ablate", "ablations", multiple=True, metavar="TUMOUR_ID[:MARGIN_MM]",
              help="Ablation of a tumour with a margin (default 10 mm). Repeatable.")
@click.option("--weight-kg", type=float, default=None, help="Body weight (kg) for FLR/BW and sFLR.")
@click.option("--height-cm", type=float, default=None, help="Height (cm) for BSA and sFLR.")
@click.option("--bsa-formula", type=click.Choice(["mosteller", "dubois"]), default="mosteller", show_default=True)
@click.option("--telv-formula", type=click.Choice(["vauthey", "urata", "chinese", "korean"]), default="vauthey",
              show_default=True, help="Formula for the total estimated liver volume (sFLR denominator).")
@click.option("--series", "series_uid", default=None, metavar="UID", help="DICOM series to use.")
@click.option("--resample", is_flag=False, flag_value="nearest", default=None, type=click.Choice(["nearest"]),
              help="Resample what is not on the reference grid instead of refusing it: label maps with "
                   "nearest-neighbour interpolation (reported), a tilted or irregular DICOM CT onto a regular grid.")
@click.option("--patient", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Patient file (YAML/JSON): weight, height, labs, primary, extrahepatic disease; "
                   "evaluates the resectability rulebook.")
@click.option("--rules", default=None, metavar="NAME|FILE",
              help="Rulebook: default (the source text), literature, or your own YAML file.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Write report.html (self-contained, printable) and result.json into DIR.")
@click.option("--include-identifiers", is_flag=True,
              help="Show the patient's name, ID and birth date (from the DICOM CT) in the report; off by default.")
@click.option("--export", "export_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Write the plan as plan.nii.gz + plan.scheme.json, and as plan.seg.dcm (DICOM-SEG) for a DICOM CT.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Write the assessment as JSON; - writes it to standard output (the summary then goes to "
                   "standard error).")
@click.option("--strict", is_flag=True,
              help="Inconsistent inputs (liver mask off soft tissue, outline and segments disagreeing, tumour "
                   "outside the outline, missing segments) are errors instead of warnings.")
@click.option("--scan-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, metavar="YYYY-MM-DD",
              help="The CT's date, for the kinetic growth rate after PVE, when the CT has no DICOM StudyDate and "
                   "the patient file no scan_date.")
@click.option("--anatomical-vessel-seeds", is_flag=True,
              help="Separate a mixed vessel mask that has no trunk (strictly intrahepatic, as MSD Task08) from "
                   "Couinaud landmarks, with low confidence; by default its inflow and outflow are not assessed.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on the terminal.")
def assess(labels: tuple[str, ...], ct: Path | None, plan_name: str | None, resect: str | None,
           include_caudate: bool, take_plane_veins: bool, wedges: tuple[str, ...], ablations: tuple[str, ...],
           weight_kg: float | None, height_cm: float | None, bsa_formula: str, telv_formula: str,
           series_uid: str | None, resample: str | None,
           patient: Path | None, rules: str | None, report_dir: Path | None, include_identifiers: bool,
           export_dir: Path | None, json_out: Path | None, strict: bool, scan_date: dt.datetime | None,
           anatomical_vessel_seeds: bool, quiet: bool) -> None:
    """Apply a resection plan and judge the remnant: FLR, contiguity, inflow/outflow, margins."""
    from pipelines.assess import AssessRequest, cli_plan, format_summary, run_assess

    if quiet:
        _no_notice()
    prepare_assessment()

    plan = cli_plan(plan_name, resect, include_caudate=include_caudate, wedges=wedges, ablations=ablations,
                    take_plane_veins=take_plane_veins)
    request = AssessRequest(
        labels=labels, plan=plan, ct=ct, series_uid=series_uid, resample=resample, weight_kg=weight_kg,
        height_cm=height_cm, bsa_formula=bsa_formula, telv_formula=telv_formula, patient=patient, rules=rules,
        report_dir=report_dir, include_identifiers=include_identifiers, export_dir=export_dir, json_out=json_out,
        strict=strict, anatomical_vessel_seeds=anatomical_vessel_seeds,
        scan_date=scan_date.date() if scan_date is not None else None)
    result = run_assess(request)
    _summary(result, json_out, quiet, format_summary)
    if report_dir is not None:
        click.echo(f"report: {report_dir / 'report.html'}", err=_to_stdout(json_out))


@cli.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--labels", "labels", multiple=True, required=True, metavar="PATH[:SCHEME]",
              help="The label maps the result was computed from.")
@click.option("--ct", type=click.Path(path_type=Path), default=None, help="The CT, for the images.")
@click.option("--series", "series_uid", default=None, metavar="UID", help="DICOM series to use.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True, metavar="DIR")
@click.option("--include-identifiers", is_flag=True, help="Show patient name, ID and birth date (off by default).")
def report(result: Path, labels: tuple[str, ...], ct: Path | None, series_uid: str | None, out_dir: Path,
           include_identifiers: bool) -> None:
    """Draw the HTML report of a saved assessment (RESULT.json) with images from its CT and labels."""
    from pipelines.report import report_from_result

    paths = report_from_result(result, list(labels), out_dir, ct=ct, series_uid=series_uid,
                               include_identifiers=include_identifiers)
    click.echo(f"report: {paths['report']}")


@cli.command()
@click.option("--rules", default="default", show_default=True, metavar="NAME|FILE",
              help="Rulebook: default, literature, or a YAML file.")
@click.option("--source-text", is_flag=True,
              help="Print the clinical source text the rules quote (Liver Metastases (Liver Secondary)), shipped "
                   "with flr.")
def rules(rules: str, source_text: bool) -> None:
    """List the active resectability rules with their sources (each says whether it judges the patient or the plan)."""
    from flr.model import DISCLAIMER
    from flr.rules import list_rules, load_rulebook
    from flr.rules import source_text as read_source_text

    if source_text:
        click.echo(read_source_text(), nl=False)
        return
    book = load_rulebook(rules)
    click.echo(DISCLAIMER)
    for r in list_rules(book):
        click.echo(f"{r['id']}  [{r.get('on_fail', '')}, {r['scope']}]\n  {r['statement']}\n  source: {r['source']}")


@cli.command()
@click.argument("before", type=click.Path(path_type=Path))
@click.argument("after", type=click.Path(path_type=Path))
@click.option("--weeks", type=float, default=None,
              help="Weeks between portal vein embolization and AFTER's scan (else from --pve-date).")
@click.option("--pve-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, metavar="YYYY-MM-DD",
              help="Date of the embolization; the weeks run to AFTER's DICOM StudyDate, else --scan-date.")
@click.option("--scan-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, metavar="YYYY-MM-DD",
              help="Date of AFTER's scan when its CT has no DICOM StudyDate.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Write the comparison as JSON; - writes it to standard output.")
def compare(before: Path, after: Path, weeks: float | None, pve_date: dt.datetime | None,
            scan_date: dt.datetime | None, json_out: Path | None) -> None:
    """Hypertrophy after portal vein embolization: degree of hypertrophy and kinetic growth rate.

    Without the weeks (``--weeks``, or ``--pve-date`` and a scan date) the kinetic growth rate is missing.
    """
    from pipelines.assess import run_compare

    result = run_compare(before, after, weeks, json_out=json_out,
                         pve_date=pve_date.date() if pve_date is not None else None,
                         scan_date=scan_date.date() if scan_date is not None else None)
    kgr = result["kinetic_growth_rate_pp_per_week"]
    favourable = {True: "favourable", False: "not favourable", None: "not decided without the kinetic growth rate"}
    click.echo(f"sFLR {result['sflr_before_percent']:.1f} % -> {result['sflr_after_percent']:.1f} %: degree of "
               f"hypertrophy {result['degree_of_hypertrophy_pp']:.1f} points, kinetic growth rate "
               + (f"{kgr:.2f} points/week" if kgr is not None else
                  "not measured (no scan date: give --weeks, or --pve-date and --scan-date)")
               + f" -> {favourable[result['favourable']]}", err=_to_stdout(json_out))


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Random seed (tumour positions, noise).")
@click.option("--oblique-deg", default=0.0, show_default=True, help="Tilt the scan grid by this angle.")
@click.option("--no-dicom", is_flag=True, help="Write NIfTI only (no DICOM series).")
@click.option("--dicom-syntax", type=click.Choice(["explicit-little", "jpeg2000-lossless", "jpeg-lossless"]),
              default="explicit-little", show_default=True, help="Transfer syntax of the DICOM series.")
def phantom(out: Path, seed: int, oblique_deg: float, no_dicom: bool, dicom_syntax: str) -> None:
    """Write a seeded synthetic liver phantom: CT (DICOM + NIfTI), labels, liver outline, truth JSON."""
    from typing import get_args

    from flr.io.dicom import TransferSyntaxName
    from pipelines.sample import write_phantom_case

    syntax: TransferSyntaxName = next(s for s in get_args(TransferSyntaxName) if s == dicom_syntax)
    paths = write_phantom_case(out, seed=seed, oblique_deg=oblique_deg, dicom=not no_dicom,
                               dicom_transfer_syntax=syntax)
    for what, p in paths.items():
        click.echo(f"{what:>8}: {p}")


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("flr-demo"), show_default=True,
              help="Folder for the demo's outputs.")
def demo(out: Path) -> None:
    """Run flr on the bundled sample case and check it against the case's truth."""
    from pipelines.sample import run_demo

    prepare_assessment()
    run_demo(out, echo=click.echo)


@cli.command()
def schemes() -> None:
    """List the built-in label schemes and what they name."""
    from flr.schemes import BUILTIN_SCHEMES, builtin_scheme

    for name in BUILTIN_SCHEMES:
        s = builtin_scheme(name)
        named = ", ".join(f"{k}={v}" for k, v in s.labels.items())
        click.echo(f"{name}\n  {s.description}\n  labels: {named}\n  source: {s.source}")


@cli.command()
@click.argument("document", type=click.Choice(["volumetry", "assessment", "patient", "rulebook"]))
def schema(document: str) -> None:
    """Print the JSON Schema (draft 2020-12) of a JSON result, the patient file or a rulebook."""
    import json

    from flr.schemas import DOCUMENTS, json_schema_of

    click.echo(json.dumps(json_schema_of(next(d for d in DOCUMENTS if d == document)), indent=2))


@contextlib.contextmanager
def _signal_handlers() -> Iterator[None]:
    """While a command runs, SIGINT/SIGTERM/SIGHUP raise :class:`_Signalled` (so temporaries are removed); a
    signal the parent ignores stays ignored. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        outputs = sys.modules.get("pipelines.outputs")  # not loaded: no output set is being committed
        if outputs is not None and outputs.defer_signal(signum):
            return  # raised again once the commit (or the clean-up) is complete
        raise _Signalled(signum)

    previous = {}
    for s in _SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:
            previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


#: glibc's ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -3, -4, -8
#: The largest ``M_MMAP_THRESHOLD`` glibc accepts on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)
_MMAP_THRESHOLD_MAX = 32 << 20


#: The modules an assessment imports as it goes (vessel systems, territories, tumours): imported before the
#: objects are frozen (:func:`freeze_objects`).
ASSESSMENT_MODULES = ("flr.supply", "flr.tumors", "flr.zones")


def prepare_assessment() -> None:
    """What ``flr assess`` and ``flr demo`` do first: on a first run, compile the kernels an assessment needs
    last in a helper process while this one reads the files and compiles the rest
    (:func:`flr.kernels._warmup.compile_in_background`; a helper that cannot start only costs time), then
    import the assessment's modules and freeze their objects (:func:`freeze_objects`)."""
    from flr.kernels._warmup import compile_in_background

    with contextlib.suppress(Exception):  # never fails the command
        compile_in_background()
    freeze_objects(*ASSESSMENT_MODULES)


def keep_freed_memory() -> bool:
    """Have glibc keep freed arrays in the process's heap for the next ones, in 4 KiB pages (issue 14).

    By default glibc gives each freed block above its mmap threshold back to the kernel, and each thread's
    heaps of 64 MB back as they empty; the kernel must then zero fresh pages for the next array. An assessment
    allocates and frees hundreds of 1-100 MB masks and index arrays of the liver box on three threads, and
    zeroing pages was 15-18 % of the CPU time of ``flr assess`` on a 512x512x400 case. Here every block comes
    from the one main heap (``M_MMAP_MAX`` 0, ``M_ARENA_MAX`` 1: the threads share it) and freed memory stays
    there up to 1 GiB (``M_TRIM_THRESHOLD``; ``M_MMAP_THRESHOLD`` 32 MB where mmap is used after all), for
    about 60 MB more resident memory at the peak and less at the end. numpy's request for transparent huge
    pages on its arrays of 4 MB and more is turned off too: the kernel zeroes a whole 2 MB page at the first
    touch of any byte of it, and the assessment's arrays, placed anywhere in the reused heap, touched ~150 such
    pages (300 MB) afresh per run (0.25 s of a whole ``flr assess --json``, median of 8 alternating runs).
    Called by the command line only (a library leaves the allocator of its host alone); False, changing
    nothing, on another C library or with ``FLR_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get("FLR_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX), (_M_TRIM_THRESHOLD, 1 << 30), (_M_MMAP_MAX, 0),
                (_M_ARENA_MAX, 1))
    applied = [mallopt(param, value) for param, value in settings]  # every one, even after a refusal
    _no_huge_pages()
    return all(applied)


def _no_huge_pages() -> None:
    """numpy's ``madvise(MADV_HUGEPAGE)`` on large arrays off (its ``NUMPY_MADVISE_HUGEPAGE=0``, read only when
    numpy is imported, which it is by now)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)


#: Set by :func:`main` when it runs as the ``flr`` command itself (no ``argv``): the process is its own to tune.
_OWN_PROCESS = False


def freeze_objects(*modules: str) -> bool:
    """Import ``modules``, collect the garbage, then move every object alive into the garbage collector's
    permanent generation (:func:`gc.freeze`), in the ``flr`` command's own process only; True when done.

    The collector's full passes walk every object a process holds, and the imports of numba, scipy and pydantic
    leave some 60,000 before ``flr assess`` reads its files: freezing them took 0.25-0.35 s
    (median of 8-10 alternating runs) off a whole ``flr assess --json`` of the 512x512x400 phantom (issue 14).
    The objects are those of the imported modules, alive until the process ends; the arrays of a run are made
    later and collected as before. A library leaves its host's collector alone: in-process calls of
    :func:`main` with ``argv`` (tests, scripts) change nothing.
    """
    if not _OWN_PROCESS:
        return False
    import gc
    import importlib

    for name in modules:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, map errors to one line and an exit code.

    Without ``argv`` (the ``flr`` command itself, ``sys.argv``) the process is flr's own: glibc keeps freed
    memory (:func:`keep_freed_memory`) and the objects of the imported modules are frozen out of the garbage
    collector's passes (:func:`freeze_objects`). Called with ``argv`` (in-process, from tests or scripts) it
    leaves the process as it is.
    """
    global _OWN_PROCESS
    from flr.errors import FlrError, short_path
    from flr.kernels import set_notice

    if argv is None:
        _OWN_PROCESS = True
        keep_freed_memory()
        freeze_objects()

    # one line on stderr before the first compile of flr's kernels (never on stdout: --json - stays JSON)
    set_notice(lambda message: click.echo(f"flr: {message}", err=True))

    try:
        with _signal_handlers():
            cli.main(args=argv, prog_name="flr", standalone_mode=False)
    except _Signalled as exc:
        name = signal.Signals(exc.signum).name
        click.echo(f"flr: {'interrupted' if name == 'SIGINT' else 'terminated'} ({name}); no output is left "
                   "half-written", err=True)
        return 128 + exc.signum
    except click.exceptions.Abort:
        click.echo("flr: aborted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        hint = " (see flr --help)" if isinstance(exc, click.UsageError) else ""
        click.echo(_one_line(f"flr: error: {exc.format_message()}{hint}"), err=True)
        return exc.exit_code
    except FlrError as exc:
        click.echo(_one_line(f"flr: error: {exc}"), err=True)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        click.echo("flr: interrupted", err=True)
        return 130
    except OSError as exc:  # the system refused a path the user gave (name too long, loop, permission, ...)
        where = short_path(str(exc.filename)) if exc.filename else "flr"
        click.echo(_one_line(f"flr: error: {where}: {exc.strerror or exc}"), err=True)
        return EXIT_INPUT_ERROR
    except Exception as exc:
        if os.environ.get("FLR_DEBUG"):
            raise
        what = _one_line(f"{type(exc).__name__}: {exc}", 480)
        click.echo(f"flr: internal error: {what} (FLR_DEBUG=1 shows the traceback; please report it)", err=True)
        return EXIT_INTERNAL_ERROR
    return 0


from pipelines.evaluate import evaluate_command, verify_command  # noqa: E402

cli.add_command(evaluate_command, "evaluate")
cli.add_command(verify_command, "verify")

from pipelines.batch import batch_command  # noqa: E402

cli.add_command(batch_command, "batch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
