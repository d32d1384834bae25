"""The ``flr`` command: volumetry end to end, and every bad input as one line + non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from flr.image import Geometry, Image
from flr.io import write_nifti
from pipelines.cli import main

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


def _run_bad(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("flr: error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_bad_inputs(case, tmp_path, capsys):
    seg = str(case / "seg.nii.gz")
    scheme = f"{seg}:{case / 'segments.json'}"
    err = _run_bad(["volumetry", "--labels", str(tmp_path / "nope.nii.gz")], capsys)
    assert "nope.nii.gz: no such file" in err
    (tmp_path / "notes.txt").write_text("not an image")
    assert "notes.txt: not a NIfTI" in _run_bad(["volumetry", "--labels", str(tmp_path / "notes.txt")], capsys)
    blob = (case / "seg.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(blob[: len(blob) // 3])
    assert "cut.nii.gz" in _run_bad(["volumetry", "--labels", f"{tmp_path / 'cut.nii.gz'}:lits"], capsys)
    (tmp_path / "empty").mkdir()
    assert "empty" in _run_bad(["volumetry", "--labels", scheme, "--ct", str(tmp_path / "empty")], capsys)
    other = Geometry(G.shape_zyx, (0.8, 0.8, 2.0), (1.0, 2.0, 13.0))
    write_nifti(Image(np.zeros(G.shape_zyx, np.int16), other), tmp_path / "ct_other.nii.gz")
    err = _run_bad(["volumetry", "--labels", scheme, "--ct", str(tmp_path / "ct_other.nii.gz")], capsys)
    assert "seg.nii.gz is not on the grid of CT" in err and "ct_other.nii.gz" in err
    write_nifti(Image(np.zeros(G.shape_zyx, np.uint8), G), tmp_path / "liver.nii.gz")
    assert "liver.nii.gz: label map has no labelled voxels" in _run_bad(
        ["volumetry", "--labels", str(tmp_path / "liver.nii.gz")], capsys)
    assert "names none of the labels" in _run_bad(["volumetry", "--labels", f"{seg}:totalseg-total"], capsys)
    (tmp_path / "broken.json").write_text("{1: liver")
    assert "broken.json: malformed label scheme" in _run_bad(
        ["volumetry", "--labels", f"{seg}:{tmp_path / 'broken.json'}"], capsys)
    assert not list(tmp_path.glob("*.json.tmp"))


def test_json_not_half_written_on_error(case, capsys):
    out = case / "result.json"
    out.write_text('{"previous": true}')
    code = main(["volumetry", "--labels", str(case / "missing.nii.gz"), "--json", str(out)])
    assert code == 2
    assert json.loads(out.read_text()) == {"previous": True}
    capsys.readouterr()


def test_console_script_runs_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "volumetry", "--labels",
                           str(tmp_path / "missing.nii.gz")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("flr: error:") and "Traceback" not in proc.stderr
    help_proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True,
                               text=True, check=True)
    assert "volumetry" in help_proc.stdout and "demo" in help_proc.stdout
