"""The ``flr`` command: volumetry end to end, and every bad input as one line + non-zero exit."""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flr.image import Geometry, Image
from flr.io import write_nifti
from pipelines.cli import main
from pipelines.sample import SAMPLE_CASE
from tests.helpers import run_cli_bad

SAMPLE_LABELS = SAMPLE_CASE / "labels.nii.gz"

G = Geometry((10, 12, 14), (0.8, 0.8, 2.0), (1.0, 2.0, 3.0))


@pytest.fixture
def case(tmp_path):
    ct = np.full(G.shape_zyx, -100, np.int16)
    seg = np.zeros(G.shape_zyx, np.uint8)
    seg[2:8, 3:9, 2:7] = 1
    seg[2:8, 3:9, 7:12] = 2
    write_nifti(Image(ct, G), tmp_path / "ct.nii.gz")
    write_nifti(Image(seg, G), tmp_path / "seg.nii.gz")
    (tmp_path / "segments.json").write_text(json.dumps({"1": "liver_segment_2", "2": "liver_segment_3"}))
    return tmp_path


def test_volumetry_table_and_json(case, capsys):
    out = case / "out.json"
    code = main(["volumetry", "--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}",
                 "--ct", str(case / "ct.nii.gz"), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "liver_segment_2" in text and "segment contacts: 2-3" in text
    data = json.loads(out.read_text())
    vox_ml = 0.8 * 0.8 * 2.0 / 1000
    assert data["structures"]["liver_segment_2"]["voxels"] == 6 * 6 * 5
    assert data["volumes_ml"]["liver"] == pytest.approx(2 * 6 * 6 * 5 * vox_ml)
    assert data["segment_adjacency"] == [["liver_segment_2", "liver_segment_3"]]
    assert [i["role"] for i in data["inputs"]] == ["ct", "labels"]


def _temp_files(out):
    """The temporary files flr's atomic writer (flr.io._common.atomic_path) would leave beside ``out``:
    ``.<name>.<random>.tmp`` in the output's folder (hidden; ``--json`` uses the default ``.tmp`` suffix)."""
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


# Each bad input: (how to make it in the case folder -> the volumetry arguments, the message expected).
def _missing_labels(case):
    return ["--labels", str(case / "nope.nii.gz")]


def _text_as_labels(case):
    (case / "notes.txt").write_text("not an image")
    return ["--labels", str(case / "notes.txt")]


def _truncated_labels(case):
    blob = (case / "seg.nii.gz").read_bytes()
    (case / "cut.nii.gz").write_bytes(blob[: len(blob) // 3])
    return ["--labels", f"{case / 'cut.nii.gz'}:lits"]


def _empty_ct_folder(case):
    (case / "empty").mkdir()
    return ["--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "--ct", str(case / "empty")]


def _ct_on_other_grid(case):
    other = Geometry(G.shape_zyx, (0.8, 0.8, 2.0), (1.0, 2.0, 13.0))
    write_nifti(Image(np.zeros(G.shape_zyx, np.int16), other), case / "ct_other.nii.gz")
    return ["--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "--ct", str(case / "ct_other.nii.gz")]


def _empty_label_map(case):
    write_nifti(Image(np.zeros(G.shape_zyx, np.uint8), G), case / "liver.nii.gz")
    return ["--labels", str(case / "liver.nii.gz")]


def _scheme_names_nothing_present(case):
    return ["--labels", f"{case / 'seg.nii.gz'}:totalseg-total"]


def _malformed_scheme(case):
    (case / "broken.json").write_text("{1: liver")
    return ["--labels", f"{case / 'seg.nii.gz'}:{case / 'broken.json'}"]


BAD_INPUTS = [
    pytest.param(_missing_labels, r"nope\.nii\.gz: no such file", id="labels-missing"),
    pytest.param(_text_as_labels, r"notes\.txt: not a NIfTI", id="labels-not-an-image"),
    pytest.param(_truncated_labels, r"cut\.nii\.gz: not a readable NIfTI file", id="labels-truncated"),
    pytest.param(_empty_ct_folder, r"empty: no DICOM image series", id="ct-empty-folder"),
    pytest.param(_ct_on_other_grid, r"seg\.nii\.gz is not on the grid of CT.*ct_other\.nii\.gz", id="ct-other-grid"),
    pytest.param(_empty_label_map, r"liver\.nii\.gz: label map has no labelled voxels", id="labels-empty"),
    pytest.param(_scheme_names_nothing_present, r"scheme totalseg-total names none of the labels present \[1, 2\]",
                 id="scheme-names-none"),
    pytest.param(_malformed_scheme, r"broken\.json: malformed label scheme", id="scheme-malformed"),
]
PREVIOUS = '{"previous": true}\n'


@pytest.mark.parametrize("existing", [False, True], ids=["no-output-yet", "output-exists"])
@pytest.mark.parametrize(("make_args", "match"), BAD_INPUTS)
def test_bad_input_is_one_line_and_leaves_the_output_folder_as_it_was(case, capsys, make_args, match, existing):
    out_dir = case / "out"
    out_dir.mkdir()
    out = out_dir / "result.json"
    if existing:
        out.write_text(PREVIOUS)
    err = run_cli_bad(["volumetry", *make_args(case), "--json", str(out)], capsys)
    assert re.search(match, err), err
    assert _temp_files(out) == []
    if existing:
        assert out.read_text() == PREVIOUS
    assert sorted(p.name for p in out_dir.iterdir()) == (["result.json"] if existing else [])


@pytest.mark.parametrize("existing", [False, True], ids=["no-output-yet", "output-exists"])
def test_json_not_half_written_when_the_write_fails(case, capsys, monkeypatch, existing):
    """The disk fills up half-way through writing the JSON: one line naming the output (exit 2, an OutputError);
    the temp file existed where `_temp_files` looks (so that check can fail), and afterwards neither it nor a
    partial output remains."""
    out_dir = case / "out"
    out_dir.mkdir()
    out = out_dir / "result.json"
    if existing:
        out.write_text(PREVIOUS)
    real_write_text = Path.write_text
    seen = []

    def write_text_then_fill_disk(self, data, *args, **kwargs):
        if self.parent != out_dir:
            return real_write_text(self, data, *args, **kwargs)
        seen.append((self, _temp_files(out)))
        real_write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", write_text_then_fill_disk)
    monkeypatch.delenv("FLR_DEBUG", raising=False)
    err = run_cli_bad(["volumetry", "--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "--json", str(out)],
                      capsys)
    assert err == f"flr: error: {out}: cannot write (No space left on device)\n"
    assert len(seen) == 1
    tmp, found_during = seen[0]
    assert found_during == [tmp] and tmp != out     # the writer wrote a temp file, and _temp_files saw it
    assert _temp_files(out) == [] and not tmp.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == (["result.json"] if existing else [])
    if existing:
        assert out.read_text() == PREVIOUS


def test_console_script_runs_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "volumetry", "--labels",
                           str(tmp_path / "missing.nii.gz")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("flr: error:") and "Traceback" not in proc.stderr
    help_proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True,
                               text=True, check=True)
    assert "volumetry" in help_proc.stdout and "demo" in help_proc.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["volumetry", "--bogus"], "No such option '--bogus'. (see flr --help)"),
    (["volumetry"], "Missing option '--labels'. (see flr --help)"),
    (["nonsense"], "No such command 'nonsense'. (see flr --help)"),
], ids=["unknown-option", "missing-option", "unknown-command"])
def test_usage_errors_are_one_line(capsys, args, words):
    err = run_cli_bad(args, capsys)
    assert err == f"flr: error: {words}\n"


def test_an_internal_error_is_one_capped_line(case, capsys, monkeypatch):
    """A bug's message, however long, is one line within the cap, and still says how to see the traceback."""
    import pipelines.volumetry

    def broken(*_args, **_kwargs):
        raise RuntimeError("x\n" * 2000)

    monkeypatch.setattr(pipelines.volumetry, "run_volumetry", broken)
    monkeypatch.delenv("FLR_DEBUG", raising=False)
    err = run_cli_bad(["volumetry", "--labels", case / "seg.nii.gz"], capsys, code=1)
    assert err.startswith("flr: internal error: RuntimeError: x x x") and len(err) < 700
    assert err.rstrip().endswith("(FLR_DEBUG=1 shows the traceback; please report it)")


@pytest.mark.parametrize("where", ["--labels", "--rules"])
def test_a_path_the_system_refuses_is_one_line(tmp_path, capsys, where):
    """An OSError the user's path causes (here ENAMETOOLONG) is the user's error, not an internal one."""
    long = str(tmp_path / ("x" * 300) / "seg.nii.gz") if where == "--labels" else "y" * 300
    args = ["volumetry", "--labels", long] if where == "--labels" else [
        "assess", "--labels", str(SAMPLE_LABELS), "--plan", "right-hemihepatectomy", "--rules", long]
    err = run_cli_bad(args, capsys)
    assert "File name too long" in err or "no such" in err, err


def test_plan_and_resect_together_are_refused(capsys):
    err = run_cli_bad(["assess", "--labels", str(SAMPLE_LABELS), "--plan", "right-hemihepatectomy", "--resect", "5,6"],
                      capsys)
    assert "give either --plan 'right-hemihepatectomy' or --resect '5,6', not both" in err
