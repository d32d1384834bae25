"""``flr assess --export DIR``: the plan as a label map (NIfTI + scheme) and, for a DICOM CT, a DICOM-SEG; the
vessel systems used (``vessels.nii.gz``) and each system's branch territories (``territories_<vessel>.nii.gz``),
each with a ``.scheme.json`` that 3D Slicer and flr read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flr.errors import InputFileError, OutputError
from flr.image import Image, LabelMap
from flr.results import Assessment

#: Label ids of the exported plan map.
PLAN_LABELS: dict[int, str] = {
    1: "remnant",                # functional remnant parenchyma
    2: "resected_parenchyma",    # resected segments and wedges
    3: "ablation_zone",          # ablation zones (tumour excluded)
    4: "tumor",                  # every tumour, whatever its fate
    5: "nonfunctional_remnant",  # remnant without supply or drainage, islands
}
#: Label ids of the exported vessel systems (as flr used them: a mixed mask after its separation).
VESSEL_LABELS: dict[int, str] = {1: "portal_vein", 2: "hepatic_artery", 3: "hepatic_vein", 4: "bile_duct"}
_SYSTEM_VESSEL = {"inflow": "portal_vein", "arterial_inflow": "hepatic_artery", "outflow": "hepatic_vein",
                  "biliary_drainage": "bile_duct"}
#: The files ``--export DIR`` writes (an existing DIR may hold only these: it is replaced whole).
EXPORT_FILES = ("plan.nii.gz", "plan.scheme.json", "plan.seg.dcm", "vessels.nii.gz", "vessels.scheme.json",
                *(f"territories_{v}.{ext}" for v in VESSEL_LABELS.values() for ext in ("nii.gz", "scheme.json")))


def plan_label_map(assessment: Assessment) -> LabelMap:
    """The plan on the case's grid: ids of :data:`PLAN_LABELS` (later ids win where zones overlap)."""
    a = assessment.arrays
    if a is None:
        raise InputFileError("the assessment holds no arrays to export (it was read back from JSON)")
    g = assessment.geometry
    out = np.zeros(g.shape_zyx, np.uint8)
    liver, removed, ablation, functional, tumors = a.liver, a.removed, a.ablation, a.functional, a.tumors
    out[liver & ~removed] = 5
    out[functional] = 1
    out[removed & liver] = 2
    out[ablation] = 3
    out[tumors > 0] = 4
    return LabelMap(out, g, "plan", {}, names=PLAN_LABELS, scheme="flr-plan")


def vessel_label_map(assessment: Assessment) -> LabelMap | None:
    """The vessel systems the checks used, ids of :data:`VESSEL_LABELS` (None when there is none)."""
    a = assessment.arrays
    if a is None or not a.vessels:
        return None
    out = np.zeros(assessment.geometry.shape_zyx, np.uint8)
    ids = {v: k for k, v in VESSEL_LABELS.items()}
    for check, mask in a.vessels.items():
        out[mask] = ids[_SYSTEM_VESSEL[check]]
    return LabelMap(out, assessment.geometry, "vessels", {}, names=VESSEL_LABELS, scheme="flr-vessels")


def _territory_files(assessment: Assessment, out_dir: Path) -> dict[str, Path]:
    """``territories_<vessel>.nii.gz`` + scheme: the supplying branch of every liver voxel, per system."""
    from flr.io import write_json_atomic, write_nifti

    a = assessment.arrays
    paths: dict[str, Path] = {}
    if a is None:
        return paths
    for check, labels in a.vessel_territories.items():
        vessel = _SYSTEM_VESSEL[check]
        n = int(labels.max())
        dtype = np.uint16 if n < 65536 else np.uint32
        at_risk = a.at_risk.get(check)
        lost = set(np.unique(labels[at_risk]).tolist()) - {0} if at_risk is not None else set()
        names = {k: f"{vessel} branch {k - 1}" + (" (cut off: territory at risk)" if k in lost else "")
                 for k in np.unique(labels).tolist() if k}
        lm = LabelMap(labels.astype(dtype), assessment.geometry, f"territories {vessel}", {}, names=names,
                      scheme=f"flr-territories-{vessel}")
        paths[f"territories_{vessel}"] = write_nifti(lm, out_dir / f"territories_{vessel}.nii.gz")
        paths[f"territories_{vessel}_scheme"] = write_json_atomic(
            {"name": f"flr-territories-{vessel}", "source": "flr assess --export",
             "description": f"territory of each {vessel} branch (nearest centerline point); plan: "
                            f"{assessment.plan.name}", "labels": {str(k): v for k, v in names.items()}},
            out_dir / f"territories_{vessel}.scheme.json")
    return paths


def export_plan(assessment: Assessment, out_dir: Path, *, ct: Image | None = None) -> dict[str, Path]:
    """Write ``plan.nii.gz``, ``plan.scheme.json`` and, when the CT is a DICOM series, ``plan.seg.dcm`` into
    ``out_dir`` (created if missing; ``flr assess`` passes the staged temporary folder of :mod:`pipelines.outputs`).
    """
    from flr.io import write_json_atomic, write_nifti

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(exist_ok=True)
    plan = plan_label_map(assessment)
    paths = {"nifti": write_nifti(plan, out_dir / "plan.nii.gz")}
    paths["scheme"] = write_json_atomic(
        {"name": "flr-plan", "description": f"flr plan: {assessment.plan.name}",
         "source": "flr assess --export", "labels": {str(k): v for k, v in PLAN_LABELS.items()}},
        out_dir / "plan.scheme.json")
    vessels = vessel_label_map(assessment)
    if vessels is not None:
        paths["vessels"] = write_nifti(vessels, out_dir / "vessels.nii.gz")
        paths["vessels_scheme"] = write_json_atomic(
            {"name": "flr-vessels", "description": "vessel systems as flr used them (a mixed mask after separation)",
             "source": "flr assess --export", "labels": {str(k): v for k, v in VESSEL_LABELS.items()}},
            out_dir / "vessels.scheme.json")
    paths.update(_territory_files(assessment, out_dir))
    if ct is not None and ct.metadata.get("sop_instance_uids") and ct.metadata.get("format") in ("dicom",
                                                                                                 "dicom-folder"):
        from flr.io.dicomseg import write_dicom_seg

        present = {k: v for k, v in PLAN_LABELS.items() if np.any(plan.array == k)}
        description = f"flr plan: {assessment.plan.name}"[:64]
        paths["dicom_seg"] = write_dicom_seg(plan, out_dir / "plan.seg.dcm", reference=ct, segment_names=present,
                                             series_description=description)
    return paths
