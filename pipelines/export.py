"""``flr assess --export DIR``: the plan as a label map (NIfTI + scheme) and, for a DICOM CT, a DICOM-SEG."""

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
#: The files ``--export DIR`` writes (an existing DIR may hold only these: it is replaced whole).
EXPORT_FILES = ("plan.nii.gz", "plan.scheme.json", "plan.seg.dcm")


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
    if ct is not None and ct.metadata.get("sop_instance_uids") and ct.metadata.get("format") in ("dicom",
                                                                                                 "dicom-folder"):
        from flr.io.dicomseg import write_dicom_seg

        present = {k: v for k, v in PLAN_LABELS.items() if np.any(plan.array == k)}
        description = f"flr plan: {assessment.plan.name}"[:64]
        paths["dicom_seg"] = write_dicom_seg(plan, out_dir / "plan.seg.dcm", reference=ct, segment_names=present,
                                             series_description=description)
    return paths
