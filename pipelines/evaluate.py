"""``flr evaluate`` (segmentation metrics of a prediction against a reference) and ``flr verify`` (a results CSV
against an expected one, for CI).

Only click and the standard library are imported at module level: :mod:`pipelines.cli` registers these commands
when it is imported, and ``flr --help`` stays instant.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flr.image import LabelMap
    from flr.metrics import MaskMetrics

#: The key column ``flr verify`` matches rows by.
CASE_ID = "case_id"


# ----------------------------------------------------------------------------------------------
# flr evaluate
# ----------------------------------------------------------------------------------------------
def _describe_inputs(arg: str, maps: Sequence[LabelMap]) -> dict[str, Any]:
    """Provenance of one side: the argument as given, its schemes and the files' SHA-256."""
    return {"argument": arg, "schemes": sorted({m.scheme for m in maps}),
            "sha256": sorted({str(m.metadata.get("sha256", "")) for m in maps} - {""})}


def run_evaluate(pred: str, ref: str, *, tolerance_mm: float = 1.0, structures: Sequence[str] = (),
                 csv_out: Path | None = None, json_out: Path | None = None) -> dict[str, MaskMetrics]:
    """Read ``PATH[:SCHEME]`` prediction and reference, compare them per structure, write ``--csv``/``--json``.

    The outputs are checked before the inputs are read and written together, atomically (temporaries renamed into
    place, :mod:`pipelines.outputs`); ``-`` for ``json_out`` is standard output (``csv_out == "-"`` is printed
    by the command, not here).
    """
    from flr import __version__
    from flr.metrics import compare_label_map_sets
    from pipelines.inputs import input_paths, load_case
    from pipelines.outputs import Output, OutputSet

    wanted = [Output("--json", json_out) if json_out is not None else None,
              Output("--csv", csv_out) if csv_out is not None and str(csv_out) != "-" else None]
    outputs = OutputSet(wanted, inputs=input_paths([pred, ref]))
    with outputs.staged() as staged:
        _, pred_maps = load_case([pred])
        _, ref_maps = load_case([ref])
        result = compare_label_map_sets(pred_maps, ref_maps, tolerance_mm=tolerance_mm,
                                        structures=list(structures) or None)
        if json_out is not None:
            staged.write_json("--json", {
                "kind": "evaluation", "flr_version": __version__, "tolerance_mm": tolerance_mm,
                "prediction": _describe_inputs(pred, pred_maps), "reference": _describe_inputs(ref, ref_maps),
                "structures": {name: m.to_dict() for name, m in result.items()}})
        if csv_out is not None and str(csv_out) != "-":
            with staged.writing("--csv") as tmp:
                tmp.write_text(metrics_csv(result), encoding="utf-8", newline="")
    return result


def _cell(value: float | None) -> str:
    """A CSV cell: the shortest text that reads back as the same float; empty for ``None``."""
    return "" if value is None else repr(float(value))


def metrics_csv(result: dict[str, MaskMetrics]) -> str:
    """One row per structure: ``structure``, then the :class:`~flr.metrics.MaskMetrics` keys in field order."""
    from flr.metrics import MaskMetrics

    keys = list(MaskMetrics.__dataclass_fields__)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["structure", *keys])
    for name, m in result.items():
        values = m.to_dict()
        writer.writerow([name, *(_cell(values[k]) for k in keys)])
    return buf.getvalue()


def _fmt(value: float | None, spec: str, missing: str) -> str:
    return missing if value is None else format(value, spec)


def format_metrics_table(result: dict[str, MaskMetrics]) -> str:
    """A terminal table, one line per structure (``inf``: exactly one mask is empty; ``n/a``: no reference)."""
    tol = next(iter(result.values())).tolerance_mm if result else 0.0
    header = ("structure", "dice", "jaccard", "vol_ref_ml", "vol_diff_ml", "vol_diff_%", "hd95_mm", "assd_mm",
              f"surf_dice@{tol:g}mm")
    rows = [header]
    for name, m in result.items():
        rows.append((name, f"{m.dice:.4f}", f"{m.jaccard:.4f}", f"{m.volume_ref_ml:.2f}", f"{m.volume_diff_ml:+.2f}",
                     _fmt(m.volume_diff_percent, "+.2f", "n/a"), _fmt(m.hd95_mm, ".2f", "inf"),
                     _fmt(m.assd_mm, ".2f", "inf"), f"{m.surface_dice:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@click.command("evaluate")
@click.option("--pred", required=True, metavar="PATH[:SCHEME]",
              help="Predicted label map (NIfTI, NRRD, .seg.nrrd, a TotalSegmentator folder with :totalseg), "
                   "optionally with a scheme (see `flr schemes`).")
@click.option("--ref", required=True, metavar="PATH[:SCHEME]",
              help="Reference label map on the same grid; structures are matched by name, not label id.")
@click.option("--tolerance-mm", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="T",
              help="Surface Dice tolerance (mm): a surface element counts when within T of the other surface.")
@click.option("--structure", "structures", multiple=True, metavar="NAME",
              help="Only this structure (canonical name, e.g. liver). Repeatable; default: every structure "
                   "with voxels in either map.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Write one row per structure (structure, then the metrics); - writes it to standard output.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Write the metrics with their inputs' provenance as JSON; - writes it to standard output.")
@click.option("--quiet", "-q", is_flag=True, help="No table on the terminal.")
def evaluate_command(pred: str, ref: str, tolerance_mm: float, structures: tuple[str, ...], csv_out: Path | None,
                     json_out: Path | None, quiet: bool) -> None:
    """Dice, Jaccard, volume difference, HD95, ASSD and surface Dice per structure of --pred against --ref.

    Distances are in mm on the voxel grid's physical spacing (surface elements as in Nikolov et al. 2021, DeepMind's
    surface-distance). Structures are matched by name; liver is the whole liver (liver, tumour and segment labels
    together), as flr volumetry counts it. Two empty masks agree (Dice 1, distances 0); a structure in one map
    only has Dice 0 and infinite distances (inf in the table, empty in the CSV, null in the JSON).
    """
    streamed = [o for o in (csv_out, json_out) if o is not None and str(o) == "-"]
    if len(streamed) > 1:
        raise click.UsageError("--csv - and --json - cannot both go to standard output")
    result = run_evaluate(pred, ref, tolerance_mm=tolerance_mm, structures=structures, csv_out=csv_out,
                          json_out=json_out)
    if csv_out is not None and str(csv_out) == "-":
        click.echo(metrics_csv(result), nl=False)
    if not quiet:
        click.echo(format_metrics_table(result), err=bool(streamed))
        for option, path in (("CSV", csv_out), ("JSON", json_out)):
            if path is not None and str(path) != "-":
                click.echo(f"{option} written to {path}")


# ----------------------------------------------------------------------------------------------
# flr verify
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Discrepancy:
    """One value of a case out of tolerance (``difference``: got - expected, for numbers; ``allowed``: the limit)."""

    case_id: str
    column: str
    expected: str
    got: str
    difference: float | None = None
    allowed: float | None = None


def read_csv_rows(path: Path, key: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(columns, rows by ``key``) of a CSV file; a missing file, no ``key`` column or a repeated key is an
    :class:`~flr.errors.InputFileError` naming the file."""
    from flr.errors import InputFileError, short_path

    where = short_path(path)
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            records = list(reader)
    except FileNotFoundError:
        raise InputFileError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{where}: is a folder; give a CSV file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{where}: not a readable UTF-8 CSV file ({exc})") from None
    if key not in columns:
        raise InputFileError(f"{where}: no {key!r} column (columns: {', '.join(columns[:12]) or 'none'})")
    rows: dict[str, dict[str, str]] = {}
    for line, record in enumerate(records, start=2):
        case = (record.get(key) or "").strip()
        if case in rows:
            raise InputFileError(f"{where}: {key} {case!r} appears twice (again on line {line}); keys must be unique")
        rows[case] = {k: (v or "").strip() for k, v in record.items() if isinstance(k, str)}
    return columns, rows


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def compare_value(case_id: str, column: str, want: str, got: str, *, tolerance_percent: float,
                  tolerance_abs: float) -> Discrepancy | None:
    """None when ``got`` agrees with ``want``: numbers within max(P % of |want|, M) (equal infinities and two
    NaN agree), anything else (text, an empty cell) equal as text; else the :class:`Discrepancy`."""
    w, g = _number(want), _number(got)
    if w is None or g is None:
        return None if want == got else Discrepancy(case_id, column, want, got)
    allowed = max(tolerance_percent / 100.0 * abs(w), tolerance_abs) if math.isfinite(w) else 0.0
    if (math.isnan(w) and math.isnan(g)) or w == g:
        return None
    difference = g - w
    if math.isfinite(difference) and abs(difference) <= allowed:
        return None
    return Discrepancy(case_id, column, want, got, difference, allowed)


def verify_rows(expected: dict[str, dict[str, str]], results: dict[str, dict[str, str]], columns: Sequence[str], *,
                tolerance_percent: float, tolerance_abs: float) -> list[Discrepancy]:
    """Every value of ``columns`` of every expected case against the results; a case missing from the results is
    one :class:`Discrepancy` (column ``(case)``)."""
    out: list[Discrepancy] = []
    for case_id, want in expected.items():
        got = results.get(case_id)
        if got is None:
            out.append(Discrepancy(case_id, "(case)", "present", "missing"))
            continue
        for column in columns:
            d = compare_value(case_id, column, want.get(column, ""), got.get(column, ""),
                              tolerance_percent=tolerance_percent, tolerance_abs=tolerance_abs)
            if d is not None:
                out.append(d)
    return out


def format_discrepancies(found: Sequence[Discrepancy], key: str = CASE_ID) -> str:
    """The table of values out of tolerance: key, column, expected, got, difference, allowed."""
    rows = [(key, "column", "expected", "got", "difference", "allowed")]
    rows += [(d.case_id, d.column, d.expected or '""', d.got or '""', _fmt(d.difference, ".6g", "-"),
              _fmt(d.allowed, ".6g", "-")) for d in found]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@click.command("verify")
@click.argument("results", type=click.Path(path_type=Path), metavar="RESULTS.csv")
@click.option("--expect", "expected", type=click.Path(path_type=Path), required=True, metavar="EXPECTED.csv",
              help="The expected values (e.g. a reviewed earlier run of `flr batch`).")
@click.option("--tolerance-percent", type=click.FloatRange(min=0), required=True, metavar="P",
              help="Relative tolerance: a number agrees within P % of the expected value's magnitude.")
@click.option("--tolerance-ml", "tolerance_ml", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="M", help="Absolute tolerance floor, in each column's own unit (mL for volumes): a number "
                                "agrees when within M, however small the expected value.")
@click.option("--key", default=CASE_ID, show_default=True, metavar="COLUMN",
              help="The column that identifies a row in both files (unique in each).")
def verify_command(results: Path, expected: Path, tolerance_percent: float, tolerance_ml: float, key: str) -> None:
    """Check RESULTS.csv against EXPECTED.csv (for CI): exit 0 when every value agrees, 1 when one does not.

    Rows are matched by case_id (--key). For every case of EXPECTED, every column present in both files is
    compared: numbers agree when |got - expected| <= max(P % of |expected|, M) (equal infinities agree, and two
    NaN); any other value (status, verdict, an empty cell) must be equal as text. A case of EXPECTED missing
    from RESULTS fails; cases only in RESULTS and columns only in one file are listed, not compared. On failure
    the values out of tolerance are printed (case_id, column, expected, got, difference, allowed). Unreadable
    input: exit 2.
    """
    expected_columns, want = read_csv_rows(expected, key)
    result_columns, got = read_csv_rows(results, key)
    shared = [c for c in expected_columns if c in result_columns and c != key]
    found = verify_rows(want, got, shared, tolerance_percent=tolerance_percent, tolerance_abs=tolerance_ml)
    extra_cases = [c for c in got if c not in want]
    unshared = sorted((set(expected_columns) ^ set(result_columns)) - {key})
    if extra_cases:
        click.echo(f"not compared: {len(extra_cases)} case(s) only in {results.name}: {', '.join(extra_cases[:10])}"
                   + (", ..." if len(extra_cases) > 10 else ""))
    if unshared:
        click.echo(f"not compared: column(s) in one file only: {', '.join(unshared)}")
    checked = sum(1 for c in want if c in got) * len(shared)
    if found:
        click.echo(format_discrepancies(found, key))
        cases = len({d.case_id for d in found})
        raise click.ClickException(f"verify: {len(found)} value(s) in {cases} of {len(want)} case(s) out of "
                                   f"tolerance ({tolerance_percent:g} %, {tolerance_ml:g}); table above")
    click.echo(f"verify: {len(want)} case(s), {checked} value(s) within tolerance "
               f"({tolerance_percent:g} %, {tolerance_ml:g}) of {expected.name}")
