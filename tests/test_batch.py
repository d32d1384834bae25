"""``flr batch``: every layout's rows equal per-case ``flr volumetry``; resumable after SIGKILL; errors as rows;
Dask equals local; ``--force`` and unchanged inputs (by hash)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flr.image import Geometry, LabelMap
from flr.io import write_nifti
from flr.phantom import make_liver_phantom
from pipelines.batch import BASE_COLUMNS, BatchRequest, run_batch
from pipelines.layouts import discover, ircadb_structure, safe_case_id
from tests.helpers import run_cli

SPACING_MM = (3.0, 3.0, 5.0)
SEEDS = (0, 1, 2)


def _mask(geometry: Geometry, array: np.ndarray, name: str = "x") -> LabelMap:
    return LabelMap(np.ascontiguousarray(array, dtype=np.uint8), geometry, name, names={1: name})


@pytest.fixture(scope="module")
def phantoms():
    """Three small seeded phantoms (coarse grid): (geometry, ct, segments, liver, vessels, tumour) arrays."""
    out = {}
    for seed in SEEDS:
        ph = make_liver_phantom(seed, spacing_mm=SPACING_MM)
        lab = np.asarray(ph.labels.array)
        out[seed] = {"ph": ph, "g": ph.labels.geometry, "segments": np.where(lab <= 8, lab, 0),
                     "liver": np.asarray(ph.liver.array) > 0, "vessel": np.isin(lab, (10, 11)), "tumor": lab == 9}
    return out


def _write(folder: Path, name: str, geometry: Geometry, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_nifti(_mask(geometry, array), folder / name)


def make_couinaud(root: Path, phantoms: dict, seeds=SEEDS) -> Path:
    for s in seeds:
        p = phantoms[s]
        _write(root / "label", f"case-{s}.nii.gz", p["g"], p["segments"])
        _write(root / "liver", f"case-{s}.nii.gz", p["g"], p["liver"])
        _write(root / "vessel", f"case-{s}.nii.gz", p["g"], p["vessel"])
    return root


def make_lits(root: Path, phantoms: dict) -> Path:
    for s in SEEDS:
        p = phantoms[s]
        seg = np.where(p["tumor"], 2, np.where(p["liver"] | (p["segments"] > 0), 1, 0))
        _write(root / "batch1", f"segmentation-{s}.nii", p["g"], seg)
        write_nifti(p["ph"].ct, root / "batch1" / f"volume-{s}.nii")
    return root


def make_msd(root: Path, phantoms: dict) -> Path:
    (root / "imagesTr").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"name": "Liver", "labels": {"0": "background", "1": "liver",
                                                                                "2": "cancer"}}))
    for s in SEEDS:
        p = phantoms[s]
        seg = np.where(p["tumor"], 2, np.where(p["liver"], 1, 0))
        _write(root / "labelsTr", f"liver_{s}.nii.gz", p["g"], seg)
        write_nifti(p["ph"].ct, root / "imagesTr" / f"liver_{s}.nii.gz")
    (root / "labelsTr" / "._liver_0.nii.gz").write_bytes(b"macOS resource fork")  # ignored, as in the tarballs
    return root


def make_totalseg(root: Path, phantoms: dict) -> Path:
    for s in SEEDS:
        p, case = phantoms[s], root / f"s{s:04d}"
        _write(case / "total", "liver.nii.gz", p["g"], p["liver"])
        for k in range(1, 9):
            _write(case / "liver_segments", f"liver_segment_{k}.nii.gz", p["g"], p["segments"] == k)
        _write(case / "liver_vessels", "liver_vessels.nii.gz", p["g"], p["vessel"])
        _write(case / "liver_vessels", "liver_tumor.nii.gz", p["g"], p["tumor"])
        if s != 0:  # with or without the CT
            write_nifti(p["ph"].ct, case / "ct.nii.gz")
    return root


def make_manifest(root: Path, phantoms: dict, *, plan: bool = False) -> Path:
    couinaud = make_couinaud(root / "data", phantoms)
    lines = ["case_id,ct,labels,plan,weight_kg,height_cm"]
    for s in SEEDS:
        labels = f"data/label/case-{s}.nii.gz:totalseg-liver-segments;data/liver/case-{s}.nii.gz:lits"
        write_nifti(phantoms[s]["ph"].ct, couinaud / f"ct-{s}.nii.gz")
        row_plan = "right-hemihepatectomy" if plan else ""
        lines.append(f"m{s},data/ct-{s}.nii.gz,{labels},{row_plan},{70 + s},{170 + s}")
    (root / "cases.csv").write_text("\n".join(lines) + "\n")
    return root / "cases.csv"


MAKERS = {"couinaud": make_couinaud, "lits": make_lits, "msd": make_msd, "totalseg": make_totalseg,
          "manifest": make_manifest}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _batch(capsys, dataset: Path, layout: str, out: Path, *extra: str) -> tuple[int, str]:
    code, stdout, stderr = run_cli(["batch", dataset, "--layout", layout, "--out", out, "-j", "1", *extra], capsys)
    return code, stdout + stderr


def _volumetry_json(capsys, tmp: Path, labels: tuple[str, ...], ct: str | None) -> dict:
    """The JSON of ``flr volumetry --labels ... [--ct ...] --json`` for the same strings the batch used."""
    out = tmp / "single.json"
    args = ["volumetry", *[x for a in labels for x in ("--labels", a)], *(["--ct", ct] if ct else []),
            "--json", out, "-q"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    return json.loads(out.read_text())


def assert_rows_equal_volumetry(capsys, dataset: Path, layout: str, out: Path, tmp: Path) -> list[dict]:
    """Every case's JSON equals per-case ``flr volumetry`` exactly, and its row holds the same numbers."""
    code, text = _batch(capsys, dataset, layout, out)
    assert code == 0, text
    rows = {r["case_id"]: r for r in _rows(out / "results.csv")}
    specs = discover(dataset, layout, scheme_dir=out / "schemes")
    assert set(rows) == {s.case_id for s in specs} and len(rows) == len(specs)
    for spec in specs:
        single = _volumetry_json(capsys, tmp, spec.labels, spec.ct)
        assert json.loads((out / "cases" / f"{spec.case_id}.json").read_text()) == single, spec.case_id
        row, structures = rows[spec.case_id], single["structures"]
        assert row["status"] == "ok"
        for column in ("liver_ml", *(f"liver_segment_{i}_ml" for i in range(1, 9)), "tumor_ml"):
            name = column[:-3]
            expected = structures[name]["volume_ml"] if name in structures else None
            assert (float(row[column]) if row[column] else None) == expected, (spec.case_id, column)
        assert row["warnings"] == " | ".join(single["warnings"])
        assert row["liver_truncated"] == str(structures["liver"]["touches_border"])
    assert (out / "errors.csv").read_text() == "case_id,input,error\n"
    return list(rows.values())


@pytest.mark.shared_data
def test_msd8_couinaud_rows_equal_volumetry(shared_data, tmp_path, capsys):
    d = shared_data / "couinaud-msd8"
    if not (d / "label").is_dir():
        pytest.skip(f"{d} not found")
    rows = assert_rows_equal_volumetry(capsys, d, "couinaud", tmp_path / "out", tmp_path)
    assert [r["case_id"] for r in rows] == ["MSD-011", "MSD-037", "MSD-207", "MSD-255"]
    html = (tmp_path / "out" / "summary.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html


def test_real_totalsegmentator_outputs_per_class_and_multilabel(shared_data, tmp_path, capsys):
    """TotalSegmentator's own example: its per-class folder (liver = its statistics.json volume exactly) and its
    multilabel ``total`` output beside the CT; rows equal flr volumetry of the same inputs."""
    d = shared_data / "totalsegmentator"
    if not (d / "example_seg_fast").is_dir():
        pytest.skip(f"{d} not found")
    data = tmp_path / "ts"
    shutil.copytree(d / "example_seg_fast", data / "fast")
    (data / "ml").mkdir()
    shutil.copy(d / "example_seg.nii.gz", data / "ml" / "total.nii.gz")
    shutil.copy(d / "example_ct_sm.nii.gz", data / "ml" / "ct.nii.gz")
    rows = {r["case_id"]: r for r in assert_rows_equal_volumetry(capsys, data, "totalseg", tmp_path / "out", tmp_path)}
    stats = json.loads((d / "example_seg_fast" / "statistics.json").read_text())
    assert float(rows["fast"]["liver_ml"]) == pytest.approx(stats["liver"]["volume"] / 1000.0, abs=1e-6)
    assert float(rows["ml"]["liver_ml"]) > 1000.0 and rows["ml"]["liver_truncated"] not in ("", "False")


@pytest.mark.parametrize("layout", sorted(MAKERS))
def test_layout_rows_equal_volumetry(layout, phantoms, tmp_path, capsys):
    dataset = MAKERS[layout](tmp_path / "data", phantoms)
    rows = assert_rows_equal_volumetry(capsys, dataset, layout, tmp_path / "out", tmp_path)
    assert len(rows) == len(SEEDS)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert [t["case_id"] for t in table] == [r["case_id"] for r in rows]
    assert [t["liver_ml"] for t in table] == [float(r["liver_ml"]) for r in rows]
    assert list(table[0]) == list(BASE_COLUMNS)


def test_layouts_find_cases_and_never_use_patient_identifiers(phantoms, tmp_path):
    lits = discover(make_lits(tmp_path / "lits", phantoms), "lits", scheme_dir=tmp_path)
    assert [c.case_id for c in lits] == ["segmentation-0", "segmentation-1", "segmentation-2"]
    assert all(c.ct and c.ct.endswith(f"volume-{c.case_id[-1]}.nii") for c in lits)
    ts = discover(make_totalseg(tmp_path / "ts", phantoms), "totalseg", scheme_dir=tmp_path)
    assert [c.ct is None for c in ts] == [True, False, False] and all(len(c.labels) == 3 for c in ts)
    assert safe_case_id("../../etc/passwd") == "etc_passwd"
    assert [ircadb_structure(n) for n in ("liver", "portalvein", "venacava", "livertumor01", "venoussystem",
                                          "artery", "bone")] == [
        "liver", "portal_vein", "inferior_vena_cava", "tumor", "hepatic_vein", "hepatic_artery", None]


def test_ircadb_dicom_masks(phantoms, tmp_path, capsys):
    from flr.image import Image
    from flr.io.dicom import write_dicom_series

    p = phantoms[0]
    case = tmp_path / "ircadb" / "3Dircadb1.1"
    write_dicom_series(p["ph"].ct, case / "PATIENT_DICOM", patient_name="DOE^JANE", patient_id="SECRET-42")
    for folder, mask in (("liver", p["liver"]), ("portalvein", p["vessel"]), ("livertumor01", p["tumor"])):
        img = Image(np.where(mask, 255, 0).astype(np.int16), p["g"], folder)
        write_dicom_series(img, case / "MASKS_DICOM" / folder, rescale_intercept=0.0, patient_id="SECRET-42")
    out = tmp_path / "out"
    code, text = _batch(capsys, tmp_path / "ircadb", "ircadb", out)
    assert code == 0, text
    row = _rows(out / "results.csv")[0]
    assert row["case_id"] == "3Dircadb1.1"
    assert float(row["liver_ml"]) == pytest.approx(np.count_nonzero(p["liver"] | p["tumor"]) * 0.045)
    assert "SECRET-42" not in "".join(f.read_text() for f in out.rglob("*.csv"))


def test_plan_columns_equal_flr_assess(phantoms, tmp_path, capsys):
    manifest = make_manifest(tmp_path, phantoms, plan=True)
    out = tmp_path / "out"
    code, text = _batch(capsys, manifest, "manifest", out)
    assert code == 0, text
    rows = _rows(out / "results.csv")
    spec = discover(manifest, "manifest", scheme_dir=out)[1]
    single = tmp_path / "assess.json"
    args = ["assess", *[x for a in spec.labels for x in ("--labels", a)], "--ct", spec.ct, "--plan",
            "right-hemihepatectomy", "--weight-kg", "71", "--height-cm", "171", "--json", single, "-q"]
    assert run_cli(args, capsys)[0] == 0
    expected = json.loads(single.read_text())
    assert json.loads((out / "cases" / "m1.json").read_text()) == expected
    row = rows[1]
    assert float(row["flr_percent"]) == expected["remnant"]["percent_of_functional_liver"]
    assert float(row["sflr_percent"]) == expected["remnant"]["sflr_percent"]
    assert float(row["remnant_ml"]) == expected["remnant"]["volume_ml"]
    assert row["check_two_contiguous_segments"] == expected["checks"]["two_contiguous_segments"]["status"]
    assert row["plan"] == "right-hemihepatectomy"


def test_broken_cases_are_error_rows_and_the_others_go_on(phantoms, tmp_path, capsys):
    data = make_couinaud(tmp_path / "data", phantoms)
    (data / "label" / "case-1.nii.gz").write_bytes(b"not a nifti file at all")
    other = Geometry(phantoms[2]["g"].shape_zyx, (2.0, 2.0, 4.0), phantoms[2]["g"].origin_mm)
    _write(data / "liver", "case-2.nii.gz", other, phantoms[2]["liver"])  # another grid
    out = tmp_path / "out"
    code, text = _batch(capsys, data, "couinaud", out)
    assert code == 2 and "flr: error: 2 of 3 cases failed" in text and "Traceback" not in text
    rows = {r["case_id"]: r for r in _rows(out / "results.csv")}
    assert [r["status"] for r in rows.values()] == ["ok", "error", "error"]
    errors = {r["case_id"]: r for r in _rows(out / "errors.csv")}
    assert set(errors) == {"case-1", "case-2"}
    assert errors["case-1"]["input"] == str(data / "label" / "case-1.nii.gz")
    assert "\n" not in errors["case-1"]["error"] and errors["case-1"]["error"]
    assert "grid" in errors["case-2"]["error"].lower() or "geometry" in errors["case-2"]["error"].lower()
    assert not (out / "cases" / "case-1.json").exists()


def _quiet(*_args: object, **_kwargs: object) -> None:
    pass


def test_unchanged_inputs_are_skipped_changed_and_force_recomputed(phantoms, tmp_path):
    data = make_couinaud(tmp_path / "data", phantoms)
    request = BatchRequest(dataset=data, layout="couinaud", out=tmp_path / "out", jobs=1)
    assert run_batch(request, echo=_quiet) == (3, 0, 0)
    assert run_batch(request, echo=_quiet) == (3, 0, 3)
    stamp = (tmp_path / "out" / "cases" / "case-0.json").stat().st_mtime_ns
    p = phantoms[1]
    _write(data / "vessel", "case-1.nii.gz", p["g"], p["vessel"] & (np.arange(p["g"].shape_zyx[0]) > 20)[:, None, None])
    assert run_batch(request, echo=_quiet) == (3, 0, 2)  # only case-1 (its vessel file's hash changed)
    assert (tmp_path / "out" / "cases" / "case-0.json").stat().st_mtime_ns == stamp
    forced = BatchRequest(dataset=data, layout="couinaud", out=tmp_path / "out", jobs=1, force=True)
    assert run_batch(forced, echo=_quiet) == (3, 0, 0)
    (tmp_path / "out" / "cases" / "case-2.json").write_text("{}")  # a tampered result is recomputed
    assert run_batch(request, echo=_quiet) == (3, 0, 2)


def test_sigkill_mid_run_then_resume_gives_every_case_once(phantoms, tmp_path, capsys):
    data = tmp_path / "data"
    for k in range(8):  # eight cases from the three phantoms
        src = make_couinaud(tmp_path / f"src{k % 3}", phantoms, seeds=(k % 3,)) if k < 3 else tmp_path / f"src{k % 3}"
        for sub in ("label", "liver", "vessel"):
            (data / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / sub / f"case-{k % 3}.nii.gz", data / sub / f"c{k}.nii.gz")
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())", "batch", str(data),
           "--layout", "couinaud", "--out", str(out), "-j", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while not list((out / "cases").glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in (out / "cases").glob("*.json"))
    assert 1 <= len(done_before) < 8
    for f in (out / "cases").glob("*.json"):
        json.loads(f.read_text())  # never half-written
    assert not (out / "results.csv").exists()
    code, text = _batch(capsys, data, "couinaud", out)
    assert code == 0, text
    skipped = int(re.search(r"8 cases \((\d+) unchanged", text).group(1))
    assert skipped in (len(done_before) - 1, len(done_before))  # a result whose state the kill cut is redone
    rows = _rows(out / "results.csv")
    assert sorted(r["case_id"] for r in rows) == [f"c{k}" for k in range(8)]
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning")
def test_dask_local_cluster_equals_local_processes(phantoms, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    data = make_couinaud(tmp_path / "data", phantoms)
    code, text = _batch(capsys, data, "couinaud", tmp_path / "local", "-j", "2")
    assert code == 0, text
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        code, text = _batch(capsys, data, "couinaud", tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    assert code == 0, text
    assert (tmp_path / "dask" / "results.csv").read_text() == (tmp_path / "local" / "results.csv").read_text()
    for f in (tmp_path / "local" / "cases").glob("*.json"):
        assert (tmp_path / "dask" / "cases" / f.name).read_text() == f.read_text()


def test_reference_metrics(phantoms, tmp_path, capsys):
    pytest.importorskip("flr.metrics")
    data = make_couinaud(tmp_path / "pred", phantoms)
    ref = make_couinaud(tmp_path / "ref", phantoms)
    p = phantoms[0]
    _write(ref / "liver", "case-0.nii.gz", p["g"], np.roll(p["liver"], 1, axis=2))  # one voxel off
    out = tmp_path / "out"
    code, text = _batch(capsys, data, "couinaud", out, "--reference", ref)
    assert code == 0, text
    metrics = _rows(out / "metrics.csv")
    liver = {m["case_id"]: m for m in metrics if m["structure"] == "liver"}
    assert set(liver) == {"case-0", "case-1", "case-2"}
    assert float(liver["case-1"]["dice"]) == 1.0 and float(liver["case-0"]["dice"]) < 1.0
    assert {"jaccard", "hd95_mm", "assd_mm", "surface_dice", "volume_diff_ml"} <= set(metrics[0])
    assert "Bland-Altman" in (out / "summary.html").read_text()


def test_anatomical_vessel_seeds_pass_through_to_every_case(phantoms, tmp_path, capsys):
    """A strictly intrahepatic mixed vessel mask (as MSD8): inflow not assessed by default; with
    --anatomical-vessel-seeds the batch assesses it as flr assess would, and the option is part of the resume
    state (switching it recomputes)."""
    p = phantoms[SEEDS[0]]
    root = tmp_path / "data"
    _write(root / "label", "case.nii.gz", p["g"], p["segments"])
    _write(root / "liver", "case.nii.gz", p["g"], p["liver"])
    _write(root / "vessel", "case.nii.gz", p["g"], p["vessel"] & p["liver"])
    out = tmp_path / "out"
    code, _ = _batch(capsys, root, "couinaud", out, "--plan", "left-lateral-sectionectomy")
    assert code == 0 and _rows(out / "results.csv")[0]["check_inflow"] == "not_assessed"
    code, text = _batch(capsys, root, "couinaud", out, "--plan", "left-lateral-sectionectomy",
                        "--anatomical-vessel-seeds")
    assert code == 0 and "0 unchanged" in text
    assert _rows(out / "results.csv")[0]["check_inflow"] in ("pass", "fail")
    case = json.loads((out / "cases" / "case.json").read_text())
    assert case["checks"]["inflow"]["system"]["separation"]["seeds"] == "anatomical"


def test_usage_errors_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(["batch", tmp_path / "nothing", "--layout", "couinaud", "--out", tmp_path / "o"], capsys)
    assert code == 2 and err.startswith("flr: error: ") and err.count("\n") == 1
    code, _, err = run_cli(["batch", tmp_path, "--layout", "couinaud", "--out", tmp_path / "o", "--plan", "nope"],
                           capsys)
    assert code == 2 and err.startswith("flr: error: ")


def test_reference_metrics_decode_no_ct_voxel(phantoms, tmp_path, monkeypatch):
    """The CTs of a case and of its reference give the grid alone: the metrics read their headers, never a voxel."""
    pytest.importorskip("flr.metrics")
    import flr.io.dicom as dicom
    import flr.io.nifti as nifti
    from pipelines.batch import _metrics
    from pipelines.layouts import CaseSpec

    p = phantoms[0]
    write_nifti(p["ph"].ct, tmp_path / "ct.nii.gz")
    liver = _write(tmp_path, "liver.nii.gz", p["g"], p["liver"])
    shifted = _write(tmp_path / "ref", "liver.nii.gz", p["g"], np.roll(p["liver"], 1, axis=2))

    def refuse(*_args, **_kwargs):
        raise AssertionError("a CT voxel was decoded")

    for owner, name in ((nifti, "_box_zyx"), (nifti.NiftiVoxels, "read"), (dicom.DicomVoxels, "read")):
        monkeypatch.setattr(owner, name, refuse)  # the label maps are read in full, as ever
    ct = str(tmp_path / "ct.nii.gz")
    metrics = _metrics(CaseSpec("c", (str(liver),), ct), CaseSpec("c", (str(shifted),), ct), 1.0)
    assert [m["structure"] for m in metrics] == ["liver"] and metrics[0]["dice"] < 1.0
