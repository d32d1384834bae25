"""Outputs as one set (pipelines.outputs): permissions, standard output, all-or-nothing writes, leftovers of
killed runs, signals, no identifier from a folder name, and SIGKILL at random points of ``flr assess``.

The cases are tiny hand-made label maps (eight Couinaud blocks on a 20 x 16 x 12 grid), so a full
``flr assess --report --export --json`` takes about a second.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flr.image import Geometry, Image, LabelMap
from flr.io import write_nifti
from flr.io.dicom import write_dicom_series
from pipelines.outputs import remove_stale_temporaries
from tests.helpers import run_cli, run_cli_bad

REPO = Path(__file__).resolve().parents[1]
G = Geometry((12, 16, 20), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
SCHEME = {**{str(i): f"liver_segment_{i}" for i in range(1, 9)}, "9": "tumor"}
#: Distinct plans, one per run of a sequence: the plan's name tells which run wrote an output.
PLANS = ("right-hemihepatectomy", "left-lateral-sectionectomy", "left-hemihepatectomy",
         "right-posterior-sectionectomy", "right-anterior-sectionectomy", "left-medial-sectionectomy",
         "central-hepatectomy", "segmentectomy-4", "bisegmentectomy-2-3", "right-trisectionectomy")
#: A hidden temporary of pipelines.outputs / flr.io._common beside an output.
HIDDEN = re.compile(r"\.(?P<name>.+)\.flr(?P<pid>\d+)-[0-9a-f]{16}\.(tmp|old)")


def write_tiny_case(folder: Path, *, tumours: bool = False, ct_dicom: bool = False, **dicom: Any) -> Path:
    """Eight segment blocks (labels.nii.gz + sidecar scheme), their outline (liver.nii.gz), a CT (ct.nii.gz,
    optionally ct_dicom/), and with ``tumours`` two small tumours (label 9) in segments V and III."""
    folder.mkdir(parents=True, exist_ok=True)
    ct = np.full(G.shape_zyx, -100, np.int16)
    ct[1:11, 1:15, 1:19] = 60
    seg = np.zeros(G.shape_zyx, np.uint8)
    k = 1
    for z in (slice(2, 6), slice(6, 10)):
        for x in (slice(2, 6), slice(6, 10), slice(10, 14), slice(14, 18)):
            seg[z, 3:13, x] = k
            k += 1
    liver = (seg > 0).astype(np.uint8)
    if tumours:
        seg[7:9, 6:8, 3:5] = 9   # in segment 5 (z 6-10, x 2-6)
        seg[3:5, 6:8, 11:13] = 9  # in segment 3 (z 2-6, x 10-14)
    write_nifti(Image(ct, G), folder / "ct.nii.gz")
    if ct_dicom:
        write_dicom_series(Image(ct, G), folder / "ct_dicom", **dicom)
    write_nifti(LabelMap(seg, G, "labels", names={}), folder / "labels.nii.gz")
    (folder / "labels.scheme.json").write_text(json.dumps(SCHEME))
    write_nifti(LabelMap(liver, G, "liver", names={}), folder / "liver.nii.gz")
    return folder


def assess_args(case: Path, out: Path, plan: str, *extra: Any) -> list[str]:
    """``flr assess`` of the tiny case with all three outputs in ``out`` (E/, R/, J.json)."""
    return [str(a) for a in ["assess", "--ct", case / "ct.nii.gz", "--labels", case / "labels.nii.gz", "--labels",
                             case / "liver.nii.gz", "--plan", plan, "--export", out / "E", "--report", out / "R",
                             "--json", out / "J.json", "-q", *extra]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_case(tmp_path_factory.mktemp("tiny") / "case")


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- permissions and standard output ---------------------------------------------------------------------------

@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_outputs_get_the_users_umask(tiny, tmp_path, capsys, umask, file_mode, folder_mode):
    old = os.umask(umask)
    try:
        code, _, err = run_cli(assess_args(tiny, tmp_path, PLANS[0]), capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    assert modes == {"J.json": file_mode, "R": folder_mode, "R/report.html": file_mode, "R/result.json": file_mode,
                     "E": folder_mode, "E/plan.nii.gz": file_mode, "E/plan.scheme.json": file_mode}


def test_json_to_standard_output_and_the_summary_to_standard_error(tiny, tmp_path, capsys):
    args = assess_args(tiny, tmp_path, PLANS[0])
    args[args.index("--json") + 1] = "-"
    args.remove("-q")
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    doc = json.loads(out)  # nothing else on standard output
    assert doc["kind"] == "assessment" and doc["plan"]["name"] == PLANS[0]
    assert doc == json.loads((tmp_path / "R" / "result.json").read_text())
    assert "plan: right-hemihepatectomy" in err and f"report: {tmp_path / 'R' / 'report.html'}" in err
    code, out, err = run_cli(["volumetry", "--labels", tiny / "labels.nii.gz", "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out)["kind"] == "volumetry" and "structure" in err


# --- all or nothing ---------------------------------------------------------------------------------------------

@pytest.fixture
def previous(tiny, tmp_path, capsys) -> dict[str, bytes]:
    """A complete set from an earlier run (plan 0) in tmp_path: its files, byte for byte."""
    code, _, err = run_cli(assess_args(tiny, tmp_path, PLANS[0]), capsys)
    assert code == 0, err
    return _files(tmp_path)


def test_a_run_that_fails_after_staging_leaves_the_previous_set(tiny, tmp_path, capsys, previous):
    (tmp_path.parent / "bad-patient.yaml").write_text("weight_kg: [")
    err = run_cli_bad([*assess_args(tiny, tmp_path, PLANS[1]), "--patient", tmp_path.parent / "bad-patient.yaml"],
                      capsys)
    assert "bad-patient.yaml" in err
    assert _files(tmp_path) == previous and _hidden(tmp_path) == []


def test_a_failure_while_writing_the_report_leaves_the_previous_set(tiny, tmp_path, capsys, previous, monkeypatch):
    """The export is complete and the report half-written when the disk fills: nothing of the run appears."""
    import errno

    import pipelines.report

    real = pipelines.report.write_report

    def half_then_full(assessment, out_dir, **kwargs):
        real(assessment, out_dir, **kwargs)
        (Path(out_dir) / "report.html").write_text("<html>half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipelines.report, "write_report", half_then_full)
    err = run_cli_bad(assess_args(tiny, tmp_path, PLANS[1]), capsys)
    assert err == f"flr: error: {tmp_path / 'R'}: cannot write (No space left on device)\n"
    assert _files(tmp_path) == previous and _hidden(tmp_path) == []


def test_a_rename_refused_mid_commit_puts_the_previous_set_back(tiny, tmp_path, capsys, previous, monkeypatch):
    import errno

    import pipelines.outputs

    real = os.rename
    renames: list[str] = []

    def refuse_the_report(src, dst):
        renames.append(f"{Path(src).name} -> {Path(dst).name}")
        if Path(dst).name == "R" and Path(src).name.endswith(".tmp"):  # the new report, after the new export
            raise OSError(errno.EACCES, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(pipelines.outputs.os, "rename", refuse_the_report)
    err = run_cli_bad(assess_args(tiny, tmp_path, PLANS[1]), capsys)
    assert err == f"flr: error: {tmp_path / 'R'}: cannot write (Permission denied)\n"
    # three previous outputs aside, the new export in, the new report refused; then the export out, the olds back
    assert [r.split(" -> ")[1] for r in renames[3:5]] == ["E", "R"] and len(renames) == 5 + 1 + 3, renames
    assert _files(tmp_path) == previous and _hidden(tmp_path) == []


@pytest.mark.usefixtures("previous")
def test_leftovers_of_a_killed_run_are_removed_those_of_a_running_one_kept(tiny, tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid, live_pid = int(dead.stdout), os.getppid()
    stale = [tmp_path / f".J.json.flr{dead_pid}-{'a' * 16}.tmp", tmp_path / f".R.flr{dead_pid}-{'b' * 16}.old"]
    stale[0].write_text("{half")
    stale[1].mkdir()
    (stale[1] / "report.html").write_text("old")
    live = tmp_path / f".R.flr{live_pid}-{'c' * 16}.tmp"
    live.mkdir()
    code, _, err = run_cli(assess_args(tiny, tmp_path, PLANS[1]), capsys)
    assert code == 0, err
    assert _hidden(tmp_path) == [live.name]
    assert remove_stale_temporaries(tmp_path / "R") == [] and live.is_dir()
    assert json.loads((tmp_path / "J.json").read_text())["plan"]["name"] == PLANS[1]  # the new set


# --- no identifier from a folder name ----------------------------------------------------------------------------

NAME, PID = "DOE^JANE", "PAT12345"


def _leaks(text: str, secrets: tuple[str, ...] = ("DOE", "JANE", PID)) -> list[str]:
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # embedded PNGs can hold anything
    return [s for s in secrets if s in text]


def test_no_identifier_from_a_pacs_folder_name_reaches_any_output(tmp_path, capsys, monkeypatch):
    """A PACS export names the folder after the patient; run inside it with relative paths (as given on the
    command line), nothing written or printed names the patient, unless --include-identifiers asks for the
    DICOM's own name and ID in the report."""
    folder = tmp_path / f"{NAME}_{PID}"
    write_tiny_case(folder, tumours=True, ct_dicom=True, patient_name=NAME, patient_id=PID,
                    series_description="portal venous", study_instance_uid="1.2.826.0.1.3680043.10.1",
                    series_instance_uid="1.2.826.0.1.3680043.10.2")
    monkeypatch.chdir(folder)
    args = ["assess", "--ct", "ct_dicom", "--labels", "labels.nii.gz", "--labels", "liver.nii.gz", "--plan",
            PLANS[0], "--report", "report", "--export", "export", "--json", "a.json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "plan: right-hemihepatectomy" in out
    written = {p: p.read_text() for p in [Path("a.json"), *Path("report").iterdir(), Path("export/plan.scheme.json")]}
    assert len(written) == 4
    for where, text in [*written.items(), ("stdout", out), ("stderr", err)]:
        assert _leaks(text) == [], f"{where} names the patient"
        assert str(tmp_path) not in text, f"{where} holds an absolute path"
    doc = json.loads(written[Path("a.json")])
    assert [i["path"] for i in doc["inputs"]] == ["ct_dicom", "labels.nii.gz", "liver.nii.gz"]  # as given
    html = written[Path("report/report.html")]
    assert "DICOM folder" in html and "labels.nii.gz" in html

    code, out, err = run_cli([*args[:-6], "--report", "report-ids", "--include-identifiers"], capsys)
    assert code == 0, err
    html = Path("report-ids/report.html").read_text()
    assert NAME in html and PID in html  # the DICOM's own identifiers, asked for
    assert f"{NAME}_{PID}" not in html  # never the folder's name
    assert _leaks(out + err) == []


def test_the_demo_records_paths_relative_to_the_current_folder(tmp_path, capsys, monkeypatch):
    import pipelines.sample

    case = write_tiny_case(tmp_path / "sample" / "phantom-001", tumours=True)
    names = {f"liver_segment_{i}": 160 for i in range(1, 9)}
    names["liver_segment_5"] -= 8
    names["liver_segment_3"] -= 8
    truth = {"structures": {**{k: {"voxels": v} for k, v in names.items()}, "tumor": {"voxels": 16},
                            "liver": {"voxels": 1280}}}
    (case / "truth.json").write_text(json.dumps(truth))
    monkeypatch.setattr(pipelines.sample, "SAMPLE_CASE", case)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["demo", "--out", "demo-out"], capsys)
    assert code == 0, err
    assert "10/10 structures have exactly the true voxel count" in out
    for name in ("volumetry.json", "assessment.json", "report/result.json"):
        doc = json.loads((tmp_path / "demo-out" / name).read_text())
        assert [i["path"] for i in doc["inputs"]] == ["sample/phantom-001/ct.nii.gz",
                                                       "sample/phantom-001/labels.nii.gz",
                                                       "sample/phantom-001/liver.nii.gz"], name
    assert str(tmp_path) not in out + (tmp_path / "demo-out" / "report" / "report.html").read_text()
    assert "report: demo-out/report/report.html" in out


# --- SIGKILL, SIGTERM and SIGINT at points of a run ------------------------------------------------------------

#: A fork server: imports flr once, warms it (the runs of "warm"), then for each lane (side by side) runs each step's
#: ``flr assess`` in a forked child, stops it as the step says (SIGKILL after a time, SIGKILL or another signal at
#: the n-th or a named file operation of the output set, a signal once the set is staged), and snapshots the
#: output folder.
FORK_SERVER = r"""
import json, os, re, shutil, signal, sys, time, traceback
spec = json.load(open(sys.argv[1]))
from pipelines.cli import main
t0 = time.monotonic()
for args in spec["warm"]:
    assert main(args) == 0, args
warm_s = time.monotonic() - t0
ref_s = warm_s / 2  # that first run also loaded numba's kernels from its cache: a step's run takes about half

def hit(kill, index, event):
    if "event_index" in kill:
        return index == kill["event_index"]
    op, *patterns = kill["event"]
    return event[0] == op and all(re.fullmatch(p, n) for p, n in zip(patterns, event[1:]))

def instrument(folder, kill, log):
    state = {"n": 0, "done": False}
    def wrap(op, real):
        def call(*args, **kwargs):
            paths = [os.fspath(a) for a in args[:2] if isinstance(a, (str, os.PathLike))]
            if not state["done"] and any(os.path.abspath(p).startswith(folder + os.sep) for p in paths):
                state["n"] += 1
                event = [op, *(os.path.basename(p) for p in paths)]
                if hit(kill, state["n"], event):
                    state["done"] = True
                    with open(log, "w") as fh:
                        json.dump({"index": state["n"], "event": event}, fh)
                    os.kill(os.getpid(), getattr(signal, kill.get("signal", "SIGKILL")))
            return real(*args, **kwargs)
        return call
    for op in ("rename", "replace", "mkdir", "open", "unlink"):
        setattr(os, op, wrap(op, getattr(os, op)))
    shutil.rmtree = wrap("rmtree", shutil.rmtree)

def run_lane(steps, results_path):
    results = []
    for step in steps:
        folder, kill, log = step["folder"], step.get("kill") or {}, step["log"]
        if step.get("copy_from"):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(step["copy_from"], folder, symlinks=True)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            rc = 99
            try:
                for fd, name in ((1, ".out"), (2, ".err")):
                    os.dup2(os.open(log + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
                if "event" in kill or "event_index" in kill:
                    instrument(folder, kill, log)
                rc = main(step["args"])
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(rc)
        if "after_fraction" in kill:
            time.sleep(kill["after_fraction"] * ref_s)
            os.kill(pid, signal.SIGKILL)
        if "when_staged" in kill:
            mine = re.compile(r"\..+\.flr%d-[0-9a-f]{16}\.tmp" % pid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(mine.fullmatch(n) for n in os.listdir(folder)):
                time.sleep(0.002)
            os.kill(pid, getattr(signal, kill["when_staged"]))
        _, status = os.waitpid(pid, 0)
        results.append({"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                        "rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, "ref_s": ref_s,
                        "took_s": round(time.monotonic() - started, 2)})
        shutil.copytree(folder, step["snapshot"], symlinks=True)
    json.dump(results, open(results_path, "w"))

runners = []
for lane in spec["lanes"]:  # one runner per lane, forked from this warm process, running side by side
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            run_lane(lane["steps"], lane["results"])
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    runners.append(pid)
sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in runners))
"""

OUTPUTS = ("E", "J.json", "R")


def _state(folder: Path) -> tuple[dict[str, str], list[str]]:
    """The outputs under their final names, each with the plan of the run that wrote it (every one checked
    complete), and the hidden leftovers beside them. Anything else is an error."""
    import nibabel as nib

    tags: dict[str, str] = {}
    hidden = []
    for p in sorted(folder.iterdir()):
        if p.name == "J.json":
            tags["J.json"] = json.loads(p.read_text())["plan"]["name"]
        elif p.name == "R":
            assert sorted(x.name for x in p.iterdir()) == ["report.html", "result.json"], p
            html = (p / "report.html").read_text()
            assert html.rstrip().endswith("</html>"), p
            tags["R"] = json.loads((p / "result.json").read_text())["plan"]["name"]
            assert f"<title>flr report: {tags['R']}</title>" in html, p
        elif p.name == "E":
            assert sorted(x.name for x in p.iterdir()) == ["plan.nii.gz", "plan.scheme.json"], p
            assert nib.load(p / "plan.nii.gz").get_fdata().shape == (20, 16, 12), p
            tags["E"] = json.loads((p / "plan.scheme.json").read_text())["description"].removeprefix("flr plan: ")
        else:
            m = HIDDEN.fullmatch(p.name)
            assert m and m["name"] in OUTPUTS, f"{p.name} is visible under the outputs' folder"
            hidden.append(p.name)
    return tags, hidden


def _check_step(before: dict[str, str], after: dict[str, str], new_plan: str) -> str:
    """Every output present comes from one run: the previous one (then no output appeared) or this one.
    Returns what was found: "nothing", "previous", "previous, part", "new" or "new, part"."""
    plans = set(after.values())
    assert len(plans) <= 1, f"outputs of two runs side by side: {after}"
    if not after:
        return "nothing"
    (plan,) = plans
    if plan == new_plan:
        return "new" if set(after) == set(OUTPUTS) else "new, part"
    assert set(before.values()) == {plan} and set(after) <= set(before), (before, after)
    return "previous" if after == before else "previous, part"


def _step(tmp: Path, folder: Path, name: str, plan: str, case: Path, kill: dict[str, Any] | None = None,
          copy_from: Path | None = None) -> dict[str, Any]:
    """One run of the fork server: ``flr assess`` with ``plan`` into ``folder``, stopped as ``kill`` says."""
    return {"folder": str(folder), "args": assess_args(case, folder, plan), "kill": kill, "plan": plan, "name": name,
            "copy_from": str(copy_from) if copy_from else None, "log": str(tmp / "logs" / name),
            "snapshot": str(tmp / "snapshots" / name)}


#: The commit's file operations (module docstring of pipelines.outputs, step 4) and what a SIGKILL just before
#: each leaves under the final names, the previous set being complete.
COMMIT_KILLS = [
    ("aside-E", ["rename", "E", r"\.E\..*\.old"], "previous", set(OUTPUTS)),
    ("aside-R", ["rename", "R", r"\.R\..*\.old"], "previous, part", {"R", "J.json"}),
    ("aside-J", ["rename", "J.json", r"\.J\.json\..*\.old"], "previous, part", {"J.json"}),
    ("in-E", ["rename", r"\.E\..*\.tmp", "E"], "nothing", set()),
    ("in-R", ["rename", r"\.R\..*\.tmp", "R"], "new, part", {"E"}),
    ("in-J", ["rename", r"\.J\.json\..*\.tmp", "J.json"], "new, part", {"E", "R"}),
    ("remove-old", ["rmtree", r"\.E\..*\.old"], "new", set(OUTPUTS)),
]


def _fork_server(tmp: Path, lanes: list[list[dict[str, Any]]], warm: list[list[str]]) -> list[list[dict[str, Any]]]:
    """Run the lanes' steps in the fork server; the result of each step (pid, signal or exit code, seconds)."""
    (tmp / "logs").mkdir(exist_ok=True)
    spec = {"warm": warm, "lanes": [{"steps": steps, "results": str(tmp / f"lane{i}.json")}
                                    for i, steps in enumerate(lanes)]}
    (tmp / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    env.pop("FLR_DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", FORK_SERVER, str(tmp / "spec.json")], cwd=tmp, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(Path(lane["results"]).read_text()) for lane in spec["lanes"]]


def test_sigkill_sigterm_sigint_at_points_of_a_run_leave_one_complete_run(tmp_path):
    """``flr assess --export E --report R --json J`` stopped at many points (SIGKILL at each file operation of
    the commit, at seeded random times and random file operations; SIGTERM once staged; SIGINT in the middle of
    the commit): every output left under its final name is complete, all come from one run, a leftover is only
    ever hidden, and the next run that commits removes the leftovers.

    The runs are forked from a server that imported flr once (each is its own process, stopped by a real
    signal), so a run costs about a second instead of the interpreter's start and imports."""
    case = write_tiny_case(tmp_path / "case")
    rng = random.Random(20_260_602)
    base, lane1, lane2 = (tmp_path / n for n in ("base", "lane1", "lane2"))
    base.mkdir()
    # lane 1: a fresh copy of a complete set before each commit kill; the next run after one of them
    steps1 = [_step(tmp_path, lane1 / name, name, PLANS[1], case, {"event": event}, base)
              for name, event, _, _ in COMMIT_KILLS]
    steps1.append(_step(tmp_path, lane1 / "in-R", "in-R-next", PLANS[2], case))
    # lane 2: one folder, one run after another: random kills, SIGTERM once staged, SIGINT inside the commit
    random_kills = [{"after_fraction": round(rng.uniform(0.05, 1.0), 3)} if rng.random() < 0.5 else
                    {"event_index": rng.randint(1, 24)} for _ in range(4)]
    steps2 = [_step(tmp_path, lane2, f"random-{i}", PLANS[1 + i], case, kill, base if i == 0 else None)
              for i, kill in enumerate(random_kills)]
    steps2.append(_step(tmp_path, lane2, "sigterm-staged", PLANS[6], case, {"when_staged": "SIGTERM"}))
    steps2.append(_step(tmp_path, lane2, "sigint-in-commit", PLANS[7], case,
                        {"event": ["rename", r"\.R\..*\.tmp", "R"], "signal": "SIGINT"}))
    lanes = _fork_server(tmp_path, [steps1, steps2], [assess_args(case, base, PLANS[0])])
    results = {s["name"]: r for steps, got in zip([steps1, steps2], lanes, strict=True)
               for s, r in zip(steps, got, strict=True)}
    base_tags = _state(base)[0]
    found = []

    # commit kills: exactly the state the module docstring promises
    for name, _, outcome, present in COMMIT_KILLS:
        assert results[name]["signal"] == signal.SIGKILL, (name, results[name])
        tags, hidden = _state(tmp_path / "snapshots" / name)
        assert _check_step(base_tags, tags, PLANS[1]) == outcome and set(tags) == present, (name, tags)
        assert hidden, name  # the killed run's hidden temporaries or previous outputs
        found.append(f"{name}: {outcome} ({results[name]['took_s']} s, ref {results[name]['ref_s']:.2f} s)")
    tags, hidden = _state(tmp_path / "snapshots" / "in-R-next")  # the killed commit's leftovers are gone
    assert results["in-R-next"]["rc"] == 0 and tags == dict.fromkeys(OUTPUTS, PLANS[2]) and hidden == []

    before = base_tags
    for step in steps2:
        r = results[step["name"]]
        tags, hidden = _state(Path(step["snapshot"]))
        what = _check_step(before, tags, step["plan"])
        err = Path(step["log"] + ".err").read_text()
        if step["name"] == "sigterm-staged":
            assert r["rc"] == 143 and tags == before, (r, tags, before)
            assert err == "flr: terminated (SIGTERM); no output is left half-written\n"
            assert not [h for h in hidden if f".flr{r['pid']}-" in h]  # its own temporaries removed
        elif step["name"] == "sigint-in-commit":  # held until the commit was complete; every leftover removed
            assert r["rc"] == 130 and what == "new" and hidden == [], (r, tags, hidden)
            assert err == "flr: interrupted (SIGINT); no output is left half-written\n"
        else:
            assert r["signal"] == signal.SIGKILL or r["rc"] == 0, r
            assert r["rc"] != 0 or what == "new"
        found.append(f"{step['name']} {step['kill']}: {'killed' if r['signal'] else r['rc']}, {what} ({r['took_s']} s)")
        before = tags
    print("\n".join(found))  # the kill points and what each left (pytest -s shows them)
