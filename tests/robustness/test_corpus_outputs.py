"""Robustness corpus, outputs: every place a command cannot write, and every saved result it cannot read back.

Each entry builds its situation in a fresh folder, runs the command line in-process and states its exact
outcome: ``refused`` (exit 2, one line ``flr: error: <words>``, the words matched whole) or ``written`` (exit 0,
the words on standard output). A refused run leaves the case folder and the output folder exactly as they were
(no temporary, no half-written file); every printed line stays within the CLI's cap. The other corpora
(readers, case, configuration files) live beside this file.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flr.errors import MAX_MESSAGE_CHARS
from flr.image import Geometry, Image
from flr.io import write_nifti
from flr.io.dicom import write_dicom_series
from pipelines.cli import main
from tests.helpers import run_cli, run_cli_bad

G = Geometry((10, 12, 14), (0.8, 0.8, 2.0), (1.0, 2.0, 3.0))
SYSFS = Path("/sys/kernel").is_dir()


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    """Two segments (II, III) on a small grid, their CT as NIfTI and as a DICOM folder, a label map with a
    sidecar scheme, and a saved assessment and volumetry of them."""
    d = tmp_path_factory.mktemp("corpus-outputs")
    ct = np.full(G.shape_zyx, -100, np.int16)
    ct[1:9, 1:11, 1:13] = 60
    seg = np.zeros(G.shape_zyx, np.uint8)
    seg[2:8, 3:9, 2:7] = 1
    seg[2:8, 3:9, 7:12] = 2
    write_nifti(Image(ct, G), d / "ct.nii.gz")
    write_dicom_series(Image(ct, G), d / "ct_dicom")
    write_nifti(Image(seg, G), d / "seg.nii.gz")
    (d / "segments.json").write_text(json.dumps({"1": "liver_segment_2", "2": "liver_segment_3"}))
    write_nifti(Image(seg, G), d / "seg2.nii.gz")
    (d / "seg2.scheme.json").write_text(json.dumps({"1": "liver_segment_2", "2": "liver_segment_3"}))
    assert main([str(a) for a in [*assess_args(d), "--json", d / "assessment.json"]]) == 0
    assert main([str(a) for a in [*volumetry_args(d), "--json", d / "volumetry.json"]]) == 0
    return d


def volumetry_args(case: Path) -> list[Any]:
    return ["volumetry", "--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "-q"]


def assess_args(case: Path) -> list[Any]:
    return ["assess", "--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "--ct", case / "ct_dicom",
            "--resect", "3", "-q"]


def report_args(case: Path, result: Path | str) -> list[Any]:
    return ["report", result, "--labels", f"{case / 'seg.nii.gz'}:{case / 'segments.json'}", "--ct",
            case / "ct_dicom", "-o"]


def _saved(case: Path, tmp: Path, change: Callable[[dict[str, Any]], Any], name: str = "a.json") -> Path:
    """A copy of the saved assessment with ``change`` applied (it returns the document to write)."""
    doc = change(copy.deepcopy(json.loads((case / "assessment.json").read_text())))
    (tmp / name).write_text(json.dumps(doc))
    return tmp / name


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *head, last = dotted.split(".")
    target = doc
    for key in head:
        target = target[key]
    target[last] = value
    return doc


def _raw(tmp: Path, data: bytes, name: str = "a.json") -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _refuse_open_under(tmp: Path, monkeypatch, code: int, text: str) -> None:
    """``os.open`` fails with ``code`` for every path under ``tmp`` (a read-only file system, simulated)."""
    real_open = os.open

    def fake(path, *args, **kwargs):
        if str(path).startswith(str(tmp)):
            raise OSError(code, text, str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def _fill_disk_under(tmp: Path, monkeypatch) -> None:
    """The disk fills up while the JSON is written under ``tmp`` (half the text lands first)."""
    real = Path.write_text

    def fake(self, data, *args, **kwargs):
        if not str(self).startswith(str(tmp)):
            return real(self, data, *args, **kwargs)
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", fake)


def _dir(p: Path) -> Path:
    p.mkdir()
    return p


def _file(p: Path, text: str = "keep me\n") -> Path:
    p.write_text(text)
    return p


def _report_with_foreign_file(tmp: Path) -> Path:
    d = _dir(tmp / "r")
    _file(d / "report.html")
    _file(d / "notes.txt")
    return d


def _current_folder(tmp: Path, monkeypatch) -> str:
    monkeypatch.chdir(_dir(tmp / "here"))
    return "."


def _sparse(tmp: Path, n_bytes: int) -> Path:
    with (tmp / "a.json").open("wb") as fh:
        fh.truncate(n_bytes)
    return tmp / "a.json"


def _symlink(tmp: Path, target: Path, name: str) -> Path:
    (tmp / name).symlink_to(target)
    return tmp / name


def _hardlink(tmp: Path, target: Path, name: str) -> Path:
    os.link(target, tmp / name)
    return tmp / name


@dataclass(frozen=True)
class Where:
    """Where an entry builds its situation: the case folder, a fresh folder, pytest's monkeypatch."""

    c: Path
    t: Path
    m: Any


def _is_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


_NEEDS_SYSFS = pytest.mark.skipif(not SYSFS, reason="needs Linux /sys (unwritable even for root)")
# never written unless they are the devices: a regular file of that name would be replaced like any output
_NEEDS_DEV_FULL = pytest.mark.skipif(not _is_device("/dev/full"), reason="/dev/full is not a character device")
_NEEDS_DEV_NULL = pytest.mark.skipif(not _is_device("/dev/null"), reason="/dev/null is not a character device")
REFUSED, WRITTEN = 2, 0

# Each entry: how to build the situation (from a `Where`: the case folder `c`, a fresh folder `t`, pytest's
# monkeypatch `m`) -> the arguments; the expected words ({case}, {tmp}: those folders); the exit code.
CORPUS = [
    # --- --json: where the one file goes ------------------------------------------------------------------------
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", w.t],
                 "{tmp}: is a folder; --json needs a file name", REFUSED, id="json-is-a-folder"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", w.t / "missing" / "v.json"],
                 "{tmp}/missing/v.json: output folder {tmp}/missing does not exist", REFUSED,
                 id="json-in-a-missing-folder"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", _file(w.t / "f.txt") / "v.json"],
                 "{tmp}/f.txt/v.json: output folder {tmp}/f.txt is not a folder", REFUSED,
                 id="json-under-a-file"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", "/sys/flr-corpus.json"],
                 r"/sys/flr-corpus.json: cannot write \(Permission denied\)", REFUSED, id="json-unwritable-sysfs",
                 marks=_NEEDS_SYSFS),
    pytest.param(lambda w: (_refuse_open_under(w.t, w.m, errno.EROFS, "Read-only file system"),
                                  [*volumetry_args(w.c), "--json", w.t / "v.json"])[1],
                 r"{tmp}/v.json: cannot write \(Read-only file system\)", REFUSED, id="json-read-only-file-system"),
    pytest.param(lambda w: (_refuse_open_under(w.t, w.m, errno.EACCES, "Permission denied"),
                                  [*volumetry_args(w.c), "--json", w.t / "v.json"])[1],
                 r"{tmp}/v.json: cannot write \(Permission denied\)", REFUSED, id="json-folder-not-writable"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", "/dev/full"],
                 r"/dev/full: cannot write \(No space left on device\)", REFUSED, id="json-device-full",
                 marks=_NEEDS_DEV_FULL),
    pytest.param(lambda w: (_fill_disk_under(w.t, w.m), [*volumetry_args(w.c), "--json", w.t / "v.json"])[1],
                 r"{tmp}/v.json: cannot write \(No space left on device\)", REFUSED, id="json-disk-fills-up"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", w.c / "seg.nii.gz"],
                 r"{case}/seg.nii.gz: is an input of this run \({case}/seg.nii.gz\); choose another file for --json",
                 REFUSED, id="json-is-the-label-map"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", _hardlink(w.t, w.c / "seg.nii.gz", "same.nii.gz")],
                 r"{tmp}/same.nii.gz: is an input of this run \({case}/seg.nii.gz\); choose another file for --json",
                 REFUSED, id="json-is-a-hard-link-to-the-label-map"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", _symlink(w.t, w.c / "segments.json", "s.json")],
                 r"{tmp}/s.json: is an input of this run \({case}/segments.json\); choose another file for --json",
                 REFUSED, id="json-is-a-symlink-to-the-scheme"),
    pytest.param(lambda w: ["volumetry", "--labels", w.c / "seg2.nii.gz", "--json", w.c / "seg2.scheme.json"],
                 r"{case}/seg2.scheme.json: is an input of this run \({case}/seg2.scheme.json\); choose another file "
                 "for --json", REFUSED, id="json-is-the-sidecar-scheme"),
    pytest.param(lambda w: [*assess_args(w.c), "--json", w.c / "ct_dicom" / "a.json"],
                 "{case}/ct_dicom/a.json: lies inside the input folder {case}/ct_dicom; choose another place for "
                 "--json", REFUSED, id="json-inside-the-ct-folder"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", w.t / "r", "--json", w.t / "r" / "a.json"],
                 "{tmp}/r/a.json: --json and --report {tmp}/r overlap; give each its own place", REFUSED,
                 id="json-inside-the-report-folder"),
    # --- --report / --export / -o: where a folder goes ---------------------------------------------------------
    pytest.param(lambda w: [*assess_args(w.c), "--report", _file(w.t / "r.txt")],
                 "{tmp}/r.txt: exists and is not a folder; --report needs a folder", REFUSED, id="report-is-a-file"),
    pytest.param(lambda w: [*assess_args(w.c), "--export", _file(w.t / "e.txt")],
                 "{tmp}/e.txt: exists and is not a folder; --export needs a folder", REFUSED, id="export-is-a-file"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", w.t / "missing" / "r"],
                 "{tmp}/missing/r: output folder {tmp}/missing does not exist", REFUSED,
                 id="report-in-a-missing-folder"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", "/sys/flr-corpus-report"],
                 r"/sys/flr-corpus-report: cannot write \((Permission denied|Operation not permitted)\)", REFUSED,
                 id="report-unwritable-sysfs", marks=_NEEDS_SYSFS),
    pytest.param(lambda w: [*assess_args(w.c), "--report", w.c],
                 r"{case}: holds an input of this run \({case}/seg.nii.gz\); choose another folder for --report",
                 REFUSED, id="report-is-the-input-folder"),
    pytest.param(lambda w: [*assess_args(w.c), "--export", w.c / "ct_dicom"],
                 r"{case}/ct_dicom: is an input of this run \({case}/ct_dicom\); choose another folder for --export",
                 REFUSED, id="export-onto-the-ct-folder"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", _report_with_foreign_file(w.t)],
                 r"{tmp}/r: folder holds files flr does not write there \(notes.txt\); choose a new or empty folder",
                 REFUSED, id="report-folder-holds-other-files"),
    pytest.param(lambda w: [*assess_args(w.c), "--export", w.t / "o", "--report", w.t / "o"],
                 "{tmp}/o: --report and --export {tmp}/o overlap; give each its own place", REFUSED,
                 id="report-and-export-one-folder"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", _current_folder(w.t, w.m)],
                 r"\.: is the current folder or holds it; choose a new folder for --report", REFUSED,
                 id="report-is-the-current-folder"),
    pytest.param(lambda w: [*report_args(w.c, _saved(w.c, w.t, lambda d: d)), w.t],
                 r"{tmp}: holds an input of this run \({tmp}/a.json\); choose another folder for --out", REFUSED,
                 id="report-out-holds-the-saved-result"),
    pytest.param(lambda w: ["compare", w.c / "assessment.json", w.c / "assessment.json", "--weeks", "3",
                                  "--json", w.c / "assessment.json"],
                 r"{case}/assessment.json: is an input of this run \({case}/assessment.json\); choose another file "
                 "for --json", REFUSED, id="compare-json-is-an-input"),
    pytest.param(lambda w: ["compare", w.c / "assessment.json", w.c / "assessment.json", "--weeks", "3",
                                  "--json", w.t],
                 "{tmp}: is a folder; --json needs a file name", REFUSED, id="compare-json-is-a-folder"),
    pytest.param(lambda w: [*volumetry_args(w.c), "--json", w.t / ("x" * 250) / ("y" * 250) / ("z" * 250)],
                 r"{tmp}/x+(/y+(/z+)?)?\.\.\.", REFUSED, id="long-path-line-capped"),
    # --- saved results read back (flr report, flr compare) ------------------------------------------------------
    pytest.param(lambda w: [*report_args(w.c, w.c / "volumetry.json"), w.t / "r"],
                 r"{case}/volumetry.json: not an flr assessment JSON \(kind is not 'assessment'\); run flr assess "
                 "--json first", REFUSED, id="result-wrong-kind"),
    pytest.param(lambda w: [*report_args(w.c, _saved(w.c, w.t, lambda d: _set(d, "remnant", None))), w.t / "r"],
                 "{tmp}/a.json: remnant: Input should be a valid dictionary or instance of Remnant", REFUSED,
                 id="result-remnant-null"),
    pytest.param(lambda w: ["compare", _saved(w.c, w.t, lambda d: _set(d, "remnant", None)),
                                  w.c / "assessment.json", "--weeks", "3"],
                 "{tmp}/a.json: remnant: Input should be a valid dictionary or instance of Remnant", REFUSED,
                 id="compare-remnant-null"),
    pytest.param(lambda w: [*report_args(w.c, _saved(w.c, w.t, lambda d: _set(d, "remnant.volume_ml", "a lot"))),
                                  w.t / "r"],
                 "{tmp}/a.json: remnant.volume_ml: Input should be a valid number, unable to parse string as a number",
                 REFUSED, id="result-volume-is-text"),
    pytest.param(lambda w: [*report_args(w.c, _saved(w.c, w.t, lambda d: [d])), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \(kind is not 'assessment'\); run flr assess --json "
                 "first", REFUSED, id="result-is-a-list"),
    pytest.param(lambda w: [*report_args(w.c, _raw(w.t, (w.c / "assessment.json").read_bytes()[:500])), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \((Unterminated string starting at|Expecting [^)]*): "
                 r"line \d+ column \d+ \(char \d+\)\)", REFUSED, id="result-truncated"),
    pytest.param(lambda w: [*report_args(w.c, _raw(w.t, (w.c / "assessment.json").read_bytes().replace(
                     b'"volume_ml": ', b'"volume_ml": NaN, "x": ', 1))), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \(NaN is not a number flr writes\)", REFUSED,
                 id="result-nan"),
    pytest.param(lambda w: ["compare", w.c / "assessment.json", _raw(w.t, (w.c / "assessment.json").read_bytes(
                     ).replace(b'"volume_ml": ', b'"volume_ml": -Infinity, "x": ', 1)), "--weeks", "3"],
                 r"{tmp}/a.json: not an flr assessment JSON \(-Infinity is not a number flr writes\)", REFUSED,
                 id="compare-infinity"),
    pytest.param(lambda w: [*report_args(w.c, _sparse(w.t, 50_000_000)), w.t / "r"],
                 r"{tmp}/a.json: 50.0 MB is over the 20 MB limit of a saved assessment; is this the right file\?",
                 REFUSED, id="result-50-mb"),
    pytest.param(lambda w: [*report_args(w.c, _raw(w.t, b"\xff\xfe{}")), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \('utf-8' codec can't decode byte 0xff in position 0: "
                 r"invalid start byte\)", REFUSED, id="result-not-utf8"),
    pytest.param(lambda w: [*report_args(w.c, _raw(w.t, b"")), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \(Expecting value: line 1 column 1 \(char 0\)\)", REFUSED,
                 id="result-empty-file"),
    pytest.param(lambda w: [*report_args(w.c, _raw(w.t, b"[" * 100_000)), w.t / "r"],
                 r"{tmp}/a.json: not an flr assessment JSON \(maximum recursion depth exceeded[^)]*\)", REFUSED,
                 id="result-nested-too-deep"),
    pytest.param(lambda w: [*report_args(w.c, _dir(w.t / "a.json")), w.t / "r"],
                 "{tmp}/a.json: is a folder, not a saved assessment JSON", REFUSED, id="result-is-a-folder"),
    pytest.param(lambda w: [*report_args(w.c, w.t / "missing.json"), w.t / "r"],
                 "{tmp}/missing.json: no such file", REFUSED, id="result-missing"),
    # --- places that are fine ------------------------------------------------------------------------------------
    pytest.param(lambda w: [*volumetry_args(w.c)[:-1], "--json", "/dev/null"],
                 "JSON written to /dev/null", WRITTEN, id="json-to-dev-null", marks=_NEEDS_DEV_NULL),
    pytest.param(lambda w: [*volumetry_args(w.c)[:-1], "--json",
                            _symlink(w.t, _file(w.t / "old.json", "{}"), "l.json")],
                 "JSON written to {tmp}/l.json", WRITTEN, id="json-through-a-symlink"),
    pytest.param(lambda w: [*assess_args(w.c), "--report", _dir(w.t / "r"), "--json", "-"],
                 '"kind": "assessment"', WRITTEN, id="json-to-stdout-report-into-an-empty-folder"),
]


def _tree(*folders: Path) -> list[tuple[str, int, int]]:
    """Every entry under the folders (hidden ones too): path, size, modification time."""
    out = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                p = Path(root) / name
                st = p.lstat()
                out.append((str(p), st.st_size, st.st_mtime_ns))
    return sorted(out)


@pytest.mark.parametrize(("make", "words", "code"), CORPUS)
def test_output_corpus(case, tmp_path, monkeypatch, capsys, make, words, code):
    monkeypatch.delenv("FLR_DEBUG", raising=False)
    args = make(Where(case, tmp_path, monkeypatch))
    before = _tree(case, tmp_path)
    pattern = words.format(case=re.escape(str(case)), tmp=re.escape(str(tmp_path)))
    if code == REFUSED:
        err = run_cli_bad(args, capsys)
        line = err.rstrip("\n")
        assert re.fullmatch(f"flr: error: {pattern}", line), line
        assert len(line) <= MAX_MESSAGE_CHARS, len(line)
        assert _tree(case, tmp_path) == before  # nothing written, nothing left behind
        return
    got, out, err = run_cli(args, capsys)
    assert got == code, err
    assert re.search(pattern, out), out
    leftovers = [p for p, _, _ in _tree(case, tmp_path) if ".flr" in Path(p).name]
    assert leftovers == []


def test_json_through_a_symlink_replaces_the_file_it_names(case, tmp_path, capsys):
    """Writing through a symlink replaces the file it points at and keeps the link (not a file over the link)."""
    target = _file(tmp_path / "old.json", "{}")
    link = _symlink(tmp_path, target, "link.json")
    code, _, err = run_cli([*volumetry_args(case), "--json", link], capsys)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert json.loads(target.read_text())["kind"] == "volumetry"


def test_the_corpus_is_large_and_varied():
    ids = [p.id for p in CORPUS]
    assert len(ids) == len(set(ids)) >= 15
    refused = sum(p.values[2] == REFUSED for p in CORPUS)
    assert refused >= 15 and len(CORPUS) - refused >= 3
