"""``flr evaluate`` on NIfTI label maps written by flr's writer, and ``flr verify`` of results CSVs (exit codes,
the out-of-tolerance table, one-line errors)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from flr.image import Geometry, LabelMap
from flr.io import write_nifti
from flr.metrics import MaskMetrics, compare_label_maps
from tests.helpers import run_cli, run_cli_bad

GEOMETRY = Geometry((16, 20, 24), spacing_mm=(0.8, 0.7, 2.5), origin_mm=(-10.0, 5.0, 30.0))
KEYS = list(MaskMetrics.__dataclass_fields__)


def _ball(centre_zyx: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    spacing = GEOMETRY.spacing_zyx_mm
    grids = np.meshgrid(*(np.arange(n) * s for n, s in zip(GEOMETRY.shape_zyx, spacing, strict=True)), indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre_zyx, strict=True)) <= radius_mm ** 2


@pytest.fixture
def case(tmp_path):
    """ref.nii.gz (lits: 1 liver, 2 tumour) and pred.nii.gz with its own ids (3 liver, 4 tumour) in a JSON scheme;
    the prediction's liver is moved by 1.4 mm and it misses the second tumour."""
    ref = np.zeros(GEOMETRY.shape_zyx, np.uint8)
    ref[_ball((20.0, 7.0, 8.0), 6.0)] = 1
    ref[_ball((20.0, 7.0, 8.0), 2.0)] = 2
    ref[_ball((20.0, 10.0, 14.0), 1.5)] = 2
    pred = np.zeros_like(ref)
    pred[_ball((20.0, 8.4, 8.0), 6.0)] = 3
    pred[_ball((20.0, 7.0, 8.0), 2.2)] = 4
    names_ref, names_pred = {1: "liver", 2: "tumor"}, {3: "liver", 4: "tumor"}
    write_nifti(LabelMap(ref, GEOMETRY, names=names_ref), tmp_path / "ref.nii.gz")
    write_nifti(LabelMap(pred, GEOMETRY, names=names_pred), tmp_path / "pred.nii.gz")
    (tmp_path / "pred-scheme.json").write_text(json.dumps({"3": "liver", "4": "tumor"}))
    expected = compare_label_maps(LabelMap(pred, GEOMETRY, names=names_pred), LabelMap(ref, GEOMETRY, names=names_ref),
                                  tolerance_mm=1.5)
    return tmp_path, expected


def _args(folder) -> list[str]:
    return ["evaluate", "--pred", f"{folder / 'pred.nii.gz'}:{folder / 'pred-scheme.json'}",
            "--ref", f"{folder / 'ref.nii.gz'}:lits", "--tolerance-mm", "1.5"]


def test_evaluate_prints_a_table_and_writes_csv_and_json(case, capsys):
    folder, expected = case
    code, out, err = run_cli([*_args(folder), "--csv", folder / "m.csv", "--json", folder / "m.json"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["structure", "dice", "jaccard"] and "surf_dice@1.5mm" in lines[0]
    liver_line = next(line for line in lines if line.startswith("liver"))
    assert f"{expected['liver'].dice:.4f}" in liver_line and f"{expected['liver'].hd95_mm:.2f}" in liver_line
    with (folder / "m.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["structure", *KEYS]
    assert [r["structure"] for r in rows] == ["liver", "tumor"]
    for row in rows:
        want = expected[row["structure"]].to_dict()
        for key in KEYS:
            # NIfTI stores the spacing as float32 (0.7 -> 0.699999988): agreement to that, not to the last digit
            assert float(row[key]) == pytest.approx(want[key], rel=1e-6, abs=1e-9), (row["structure"], key)
    doc = json.loads((folder / "m.json").read_text())
    assert doc["kind"] == "evaluation" and doc["tolerance_mm"] == 1.5
    assert doc["structures"]["tumor"] == pytest.approx(expected["tumor"].to_dict(), rel=1e-6, abs=1e-9)
    assert doc["structures"]["liver"]["dice"] == float(rows[0]["dice"])  # the CSV holds every digit of the JSON
    assert doc["reference"]["schemes"] == ["lits"] and len(doc["reference"]["sha256"][0]) == 64
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_the_metrics_make_sense_on_the_case(case):
    _, expected = case
    liver = expected["liver"]
    assert 0.7 < liver.dice < 0.95 and liver.hd95_mm == pytest.approx(1.4, abs=0.8)
    assert expected["tumor"].volume_diff_ml < 0  # the second tumour is missed


def test_evaluate_csv_to_stdout_and_empty_cells_for_a_missing_structure(case, capsys):
    folder, _ = case
    only_liver = np.zeros(GEOMETRY.shape_zyx, np.uint8)
    only_liver[4:10, 5:15, 5:18] = 1
    write_nifti(LabelMap(only_liver, GEOMETRY, names={1: "liver"}), folder / "liver_only.nii.gz")
    code, out, err = run_cli(["evaluate", "--pred", f"{folder / 'liver_only.nii.gz'}:lits",
                              "--ref", f"{folder / 'ref.nii.gz'}:lits", "--csv", "-"], capsys)
    assert code == 0, err
    rows = {r["structure"]: r for r in csv.DictReader(out.splitlines())}
    assert rows["tumor"]["dice"] == "0.0" and rows["tumor"]["hd95_mm"] == "" and rows["tumor"]["assd_mm"] == ""
    assert rows["tumor"]["volume_diff_percent"] == "-100.0"
    assert "inf" in next(line for line in err.splitlines() if line.startswith("tumor"))  # the table went to stderr


def test_evaluate_structure_option_selects(case, capsys):
    folder, _ = case
    code, out, _ = run_cli([*_args(folder), "--structure", "tumor", "-q", "--csv", "-"], capsys)
    assert code == 0
    assert [r["structure"] for r in csv.DictReader(out.splitlines())] == ["tumor"]


@pytest.mark.parametrize(("extra", "match"), [
    (["--tolerance-mm", "-1"], "tolerance"),
    (["--csv", "-", "--json", "-"], "standard output"),
    (["--structure", "pancreas"], "pancreas"),
])
def test_evaluate_bad_options_are_one_line_errors(case, capsys, extra, match):
    folder, _ = case
    assert match in run_cli_bad([*_args(folder), *extra], capsys)


def test_evaluate_refuses_a_prediction_on_another_grid(case, capsys):
    folder, _ = case
    other = Geometry(GEOMETRY.shape_zyx, spacing_mm=(0.8, 0.7, 3.0), origin_mm=GEOMETRY.origin_mm)
    write_nifti(LabelMap(np.ones(GEOMETRY.shape_zyx, np.uint8), other, names={1: "liver"}), folder / "thick.nii.gz")
    err = run_cli_bad(["evaluate", "--pred", f"{folder / 'thick.nii.gz'}:lits", "--ref",
                       f"{folder / 'ref.nii.gz'}:lits"], capsys)
    assert "thick.nii.gz" in err and "ref.nii.gz" in err and "spacing" in err


def test_evaluate_missing_input_and_output_over_an_input(case, capsys):
    folder, _ = case
    assert "missing.nii.gz" in run_cli_bad(["evaluate", "--pred", folder / "missing.nii.gz", "--ref",
                                            f"{folder / 'ref.nii.gz'}:lits"], capsys)
    run_cli_bad([*_args(folder), "--csv", folder / "ref.nii.gz"], capsys)
    assert (folder / "ref.nii.gz").stat().st_size > 0


# ------------------------------------------------------------------------- flr verify
def _write_csv(path, rows: list[dict[str, str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


EXPECTED = [{"case_id": "c1", "liver_ml": "1500.0", "flr_percent": "35.0", "status": "ok", "note": ""},
            {"case_id": "c2", "liver_ml": "1200.0", "flr_percent": "0.0", "status": "ok", "note": ""}]


def test_verify_passes_within_tolerance(tmp_path, capsys):
    results = [{"case_id": "c2", "liver_ml": "1211.9", "flr_percent": "0.0", "status": "ok", "extra": "x"},
               {"case_id": "c1", "liver_ml": "1490.0", "flr_percent": "35.3", "status": "ok", "extra": "y"},
               {"case_id": "c3", "liver_ml": "1.0", "flr_percent": "1.0", "status": "ok", "extra": "z"}]
    code, out, err = run_cli(["verify", _write_csv(tmp_path / "r.csv", results), "--expect",
                              _write_csv(tmp_path / "e.csv", EXPECTED), "--tolerance-percent", "1"], capsys)
    assert code == 0, out + err
    assert "2 case(s), 6 value(s) within tolerance" in out
    assert "c3" in out and "extra" in out and "note" in out  # listed as not compared


def test_verify_fails_with_a_table_of_what_is_out_of_tolerance(tmp_path, capsys):
    results = [{"case_id": "c1", "liver_ml": "1520.0", "flr_percent": "35.0", "status": "failed", "note": ""}]
    code, out, err = run_cli(["verify", _write_csv(tmp_path / "r.csv", results), "--expect",
                              _write_csv(tmp_path / "e.csv", EXPECTED), "--tolerance-percent", "1"], capsys)
    assert code == 1
    assert err.startswith("flr: error: verify: 3 value(s) in 2 of 2 case(s) out of tolerance") and err.count("\n") == 1
    table = [line.split() for line in out.splitlines()]
    header = next(i for i, t in enumerate(table) if t[:1] == ["case_id"])
    assert table[header] == ["case_id", "column", "expected", "got", "difference", "allowed"]
    body = table[header + 2:]
    assert ["c1", "liver_ml", "1500.0", "1520.0", "20", "15"] in body  # 20 mL off, 1 % of 1500 allowed
    assert ["c1", "status", "ok", "failed", "-", "-"] in body
    assert ["c2", "(case)", "present", "missing", "-", "-"] in body
    assert len(body) == 3


def test_verify_absolute_floor_and_exact_zero(tmp_path, capsys):
    results = [dict(EXPECTED[0]), {**EXPECTED[1], "flr_percent": "0.4"}]
    args = ["verify", _write_csv(tmp_path / "r.csv", results), "--expect", _write_csv(tmp_path / "e.csv", EXPECTED),
            "--tolerance-percent", "5"]
    code, out, _ = run_cli(args, capsys)
    assert code == 1 and "flr_percent" in out  # 5 % of 0 is 0
    code, _, err = run_cli([*args, "--tolerance-ml", "0.5"], capsys)
    assert code == 0, err


def test_verify_numbers_against_text_and_empty_cells(tmp_path, capsys):
    expected = [{"case_id": "c1", "hd95_mm": "", "dice": "0.9", "volume_diff_percent": "inf"}]
    same = [{"case_id": "c1", "hd95_mm": "", "dice": "0.90", "volume_diff_percent": "inf"}]
    differ = [{"case_id": "c1", "hd95_mm": "3.0", "dice": "n/a", "volume_diff_percent": "1e300"}]
    e = _write_csv(tmp_path / "e.csv", expected)
    assert run_cli(["verify", _write_csv(tmp_path / "s.csv", same), "--expect", e, "--tolerance-percent", "0"],
                   capsys)[0] == 0
    code, out, _ = run_cli(["verify", _write_csv(tmp_path / "d.csv", differ), "--expect", e,
                            "--tolerance-percent", "50"], capsys)
    assert code == 1
    assert {"hd95_mm", "dice", "volume_diff_percent"} <= {line.split()[1] for line in out.splitlines()[2:]}


def test_verify_by_another_key_checks_an_evaluate_csv(case, capsys):
    folder, _ = case
    assert run_cli([*_args(folder), "-q", "--csv", folder / "m.csv"], capsys)[0] == 0
    code, out, err = run_cli(["verify", folder / "m.csv", "--expect", folder / "m.csv", "--key", "structure",
                              "--tolerance-percent", "0"], capsys)
    assert code == 0, out + err
    assert f"2 case(s), {2 * len(KEYS)} value(s)" in out


@pytest.mark.parametrize(("content", "match"), [
    (None, "no such file"),
    ("id,liver_ml\nc1,1\n", "no 'case_id' column"),
    ("case_id,liver_ml\nc1,1\nc1,2\n", "appears twice"),
    (b"case_id,liver\n\xff\xfe,1\n", "UTF-8"),
])
def test_verify_bad_input_is_a_one_line_error(tmp_path, capsys, content, match):
    good = _write_csv(tmp_path / "e.csv", EXPECTED)
    bad = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    assert match in run_cli_bad(["verify", bad, "--expect", good, "--tolerance-percent", "1"], capsys)
    assert match in run_cli_bad(["verify", good, "--expect", bad, "--tolerance-percent", "1"], capsys)


def test_verify_needs_the_tolerance_and_says_what_it_compares(tmp_path, capsys):
    good = _write_csv(tmp_path / "e.csv", EXPECTED)
    assert "--tolerance-percent" in run_cli_bad(["verify", good, "--expect", good], capsys)
    code, out, _ = run_cli(["verify", "--help"], capsys)
    assert code == 0 and "max(P % of |expected|, M)" in " ".join(out.split())
