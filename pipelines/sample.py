"""The bundled sample case: writing phantom cases and running the demo on ``sample_data/``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flr.errors import FlrError, InputFileError

if TYPE_CHECKING:
    from flr.io.dicom import TransferSyntaxName

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CASE = REPO_ROOT / "sample_data" / "phantom-001"
SAMPLE_SEED = 1
#: The demo's plan for the sample case: its tumour 1 lies in segments V/VIII, tumour 2 in III/IV, so a
#: right hemihepatectomy takes tumour 1 and a parenchyma-sparing ablation treats tumour 2.
DEMO_PLAN = "right-hemihepatectomy"
DEMO_ABLATIONS = ("2:5",)
DEMO_PLAN_ARGS = ("--plan", DEMO_PLAN, "--ablate", "2:5")


def write_phantom_case(out: Path, *, seed: int = SAMPLE_SEED, oblique_deg: float = 0.0, dicom: bool = True,
                       dicom_transfer_syntax: TransferSyntaxName = "explicit-little", hilum: bool = True
                       ) -> dict[str, Path]:
    """Write a phantom case: ``ct.nii.gz``, ``ct_dicom/``, ``labels.nii.gz`` (+ scheme), ``liver.nii.gz``,
    ``truth.json``. ``hilum=False`` writes round 1's phantom (hilar vessels inside the parenchyma).

    ``labels.nii.gz`` holds segments, tumours and vessels (vessels override parenchyma); ``liver.nii.gz`` is
    the whole-liver outline including intrahepatic vessels, as planning tools count liver volume.

    The folder is built beside ``out`` and renamed into place, so an interrupted run leaves nothing
    half-written; an existing non-empty ``out`` is refused.
    """
    from flr.io import write_json_atomic, write_nifti
    from flr.io._common import create_temp_folder
    from flr.phantom import make_liver_phantom

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputFileError(f"{out}: folder exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    ph = make_liver_phantom(seed, oblique_deg=oblique_deg, hilum=hilum)
    work = create_temp_folder(out)  # hidden, beside out, with the user's umask (not mkdtemp's 0700)
    try:
        paths = {"ct": write_nifti(ph.ct, work / "ct.nii.gz"),
                 "labels": write_nifti(ph.labels, work / "labels.nii.gz"),
                 "liver": write_nifti(ph.liver, work / "liver.nii.gz")}
        scheme = {"name": ph.labels.scheme, "description": "flr synthetic liver phantom",
                  "source": "flr.phantom.make_liver_phantom", "labels": {str(k): v for k, v in ph.labels.names.items()}}
        paths["scheme"] = write_json_atomic(scheme, work / "labels.scheme.json")
        paths["truth"] = write_json_atomic(ph.truth, work / "truth.json")
        if dicom:
            from flr.io.dicom import write_dicom_series

            write_dicom_series(ph.ct, work / "ct_dicom", series_description=f"flr phantom seed {seed}",
                               transfer_syntax=dicom_transfer_syntax)
            paths["dicom"] = work / "ct_dicom"
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {k: out / v.relative_to(work) for k, v in paths.items()}


def compare_with_truth(result: Any, truth: dict[str, Any]) -> list[str]:
    """Differences between measured voxel counts and the phantom's independent truth (empty = exact)."""
    problems = []
    for name, expected in truth["structures"].items():
        got = result.structures.get(name)
        if got is None:
            problems.append(f"{name}: missing")
        elif got.voxels != expected["voxels"]:
            problems.append(f"{name}: {got.voxels} voxels, truth {expected['voxels']}")
    return problems


def _as_given(path: Path) -> Path:
    """``path`` relative to the current folder when it can be (so results record no folder above it), else as is."""
    try:
        return Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows)
        return Path(path)


def run_demo(out: Path, echo: Callable[[str], None] = print) -> Path:
    """Volumetry of the sample case (CT read from its DICOM series), checked against its truth; then the
    demo assessment with its report.

    The case's paths are given relative to the current folder, so the results record no folder above it (a
    home folder or a PACS export's patient folder); the output paths are printed as given.
    """
    from pipelines.volumetry import format_table, run_volumetry

    out = Path(out)
    case = SAMPLE_CASE
    if not (case / "truth.json").is_file():
        case = out / "sample-case"
        if not (case / "truth.json").is_file():
            echo(f"sample case not found in {_as_given(SAMPLE_CASE)}; writing one to {case}")
            write_phantom_case(case)
    case = _as_given(case)
    out.mkdir(parents=True, exist_ok=True)
    ct = case / "ct_dicom" if (case / "ct_dicom").is_dir() else case / "ct.nii.gz"
    labels = [str(case / "labels.nii.gz"), str(case / "liver.nii.gz")]
    echo(f"sample case: {case}")
    result = run_volumetry(labels, ct=ct, json_out=out / "volumetry.json")
    echo(format_table(result))
    truth = json.loads((case / "truth.json").read_text())
    problems = compare_with_truth(result, truth)
    n = len(truth["structures"])
    echo(f"check against truth: {n - len(problems)}/{n} structures have exactly the true voxel count"
         + ("" if not problems else "; " + "; ".join(problems)))
    echo(f"volumetry: {out / 'volumetry.json'}")
    if problems:
        raise FlrError(f"{case}: demo result differs from the case's truth: {'; '.join(problems)}")

    from pipelines.assess import AssessRequest, cli_plan, format_summary, run_assess

    patient = case / "patient.yaml"
    echo("")
    echo(f"assessment: {' '.join(DEMO_PLAN_ARGS)}"
         + (f" --patient {patient.name} (an invented sample patient)" if patient.is_file() else ""))
    request = AssessRequest(
        labels=tuple(labels), plan=cli_plan(DEMO_PLAN, ablations=DEMO_ABLATIONS), ct=ct,
        patient=patient if patient.is_file() else None, rules="default", report_dir=out / "report",
        json_out=out / "assessment.json")
    assessment = run_assess(request)
    echo(format_summary(assessment))
    echo(f"assessment: {out / 'assessment.json'}")
    report = out / "report" / "report.html"
    echo(f"report: {report}")
    return report
