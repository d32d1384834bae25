"""Interchange: TotalSegmentator folders, the grid rule with --resample nearest, the exported plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

import flr
from flr.image import Geometry, Image, LabelMap
from flr.io import read_label_maps, write_nifti
from flr.phantom import make_liver_phantom
from pipelines.cli import main


def test_totalseg_folder_and_multilabel_agree_with_statistics(shared_data, tmp_path):
    ts = shared_data / "totalsegmentator"
    stats = json.loads((ts / "example_seg_fast" / "statistics.json").read_text())
    folder = read_label_maps(ts / "example_seg_fast", "totalseg")
    multi = read_label_maps(ts / "example_seg_fast.nii.gz", "totalseg-total")
    a = flr.volumetry(folder).structures["liver"]
    b = flr.volumetry(multi).structures["liver"]
    assert a.voxels == b.voxels
    assert a.volume_ml == pytest.approx(stats["liver"]["volume"] / 1000, rel=1e-9)
    out = tmp_path / "v.json"
    assert main(["volumetry", "--labels", f"{ts / 'example_seg_fast'}:totalseg", "--json", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["volumes_ml"]["liver"] == pytest.approx(1062.45)


def test_totalseg_needs_a_folder(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("x")
    assert main(["volumetry", "--labels", f"{tmp_path}:totalseg"]) == 2
    assert "no .nii.gz files" in capsys.readouterr().err


def test_grid_rule_and_resample_nearest(tmp_path, capsys):
    ct_g = Geometry((20, 24, 28), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    write_nifti(Image(np.zeros(ct_g.shape_zyx, np.int16), ct_g), tmp_path / "ct.nii.gz")
    mask_g = Geometry((40, 48, 56), (0.5, 0.5, 1.0), (-0.25, -0.25, -0.5))  # finer grid, same field of view
    arr = np.zeros(mask_g.shape_zyx, np.uint8)
    arr[10:30, 12:36, 14:42] = 1
    write_nifti(LabelMap(arr, mask_g, names={1: "liver"}), tmp_path / "liver.nii.gz")
    args = ["volumetry", "--ct", str(tmp_path / "ct.nii.gz"), "--labels", str(tmp_path / "liver.nii.gz")]
    assert main(args) == 2
    assert "is not on the grid of CT" in capsys.readouterr().err
    out = tmp_path / "v.json"
    assert main([*args, "--resample", "nearest", "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    # the block spans x 14 mm (28 x 0.5), y 12 mm (24 x 0.5), z 20 mm (20 x 1.0) = 3.36 mL; the coarse grid's voxel
    # centres fall inside it for exactly 14 x 12 x 10 voxels of 2 mm^3
    assert data["volumes_ml"]["liver"] == pytest.approx(3.36, rel=1e-6)
    assert any("nearest-neighbour" in w for w in data["warnings"])


def test_export_plan_nifti_reads_back(tmp_path):
    ph = make_liver_phantom(1)
    write_nifti(ph.labels, tmp_path / "labels.nii.gz")
    (tmp_path / "labels.scheme.json").write_text(json.dumps({str(k): v for k, v in ph.labels.names.items()}))
    out = tmp_path / "a.json"
    assert main(["assess", "--labels", str(tmp_path / "labels.nii.gz"), "--plan", "right-hemihepatectomy",
                 "--export", str(tmp_path / "export"), "--json", str(out), "-q"]) == 0
    result = json.loads(out.read_text())
    plan = flr.load(tmp_path / "export" / "plan.nii.gz")  # the sidecar plan.scheme.json names the labels
    assert plan.names[1] == "remnant" and plan.names[2] == "resected_parenchyma"
    assert plan.geometry.same_grid(ph.labels.geometry)
    vv = plan.geometry.voxel_volume_ml
    assert np.count_nonzero(plan.array == 1) * vv == pytest.approx(result["remnant"]["functional_volume_ml"], rel=1e-6)
    assert np.count_nonzero(plan.array == 2) * vv == pytest.approx(result["liver"]["resected_volume_ml"]
                                                                   - sum(t["volume_ml"] for t in result["tumors"]
                                                                         if t["fate"] == "resected"), rel=1e-6)
    assert not (tmp_path / "export" / "plan.seg.dcm").exists()  # no DICOM CT, no DICOM-SEG


def test_export_dicom_seg_round_trip(tmp_path):
    from flr.io import read_image
    from flr.io.dicom import write_dicom_series

    ph = make_liver_phantom(2)
    write_dicom_series(ph.ct, tmp_path / "ct", series_description="portal venous")
    write_nifti(ph.labels, tmp_path / "labels.nii.gz")
    (tmp_path / "labels.scheme.json").write_text(json.dumps({str(k): v for k, v in ph.labels.names.items()}))
    assert main(["assess", "--ct", str(tmp_path / "ct"), "--labels", str(tmp_path / "labels.nii.gz"),
                 "--plan", "left-lateral-sectionectomy", "--export", str(tmp_path / "export"), "-q"]) == 0
    ct = read_image(tmp_path / "ct")
    nifti = flr.load(tmp_path / "export" / "plan.nii.gz")
    seg_maps = read_label_maps(tmp_path / "export" / "plan.seg.dcm", reference=ct)
    assert len(seg_maps) == 1  # plan zones do not overlap
    seg = seg_maps[0]
    assert seg.geometry.same_grid(ct.geometry)
    # the SEG numbers its segments 1..N in the order of the plan ids present; map names back to compare
    by_name = {name: seg.array == i for i, name in seg.names.items()}
    for i, name in nifti.names.items():
        expected = nifti.array == i
        if expected.any():
            assert np.array_equal(by_name[name], expected), name
    import pydicom

    ds = pydicom.dcmread(tmp_path / "export" / "plan.seg.dcm", stop_before_pixels=True)
    src = pydicom.dcmread(sorted((tmp_path / "ct").iterdir())[0], stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID


def test_cli_reads_dicom_seg_rtstruct_and_slicer_files(shared_data, tmp_path, capsys):
    import shutil

    out = tmp_path / "seg.json"
    d = shared_data / "dcmqi"
    assert main(["volumetry", "--ct", str(d / "ct-3slice"), "--labels", str(d / "liver.dcm"), "--json", str(out),
                 "-q"]) == 0
    seg = json.loads(out.read_text())
    nrrd = flr.volumetry(flr.load(d / "liver_seg.nrrd", {1: "liver"}))
    assert seg["structures"]["liver"]["voxels"] == nrrd.structures["liver"].voxels > 0
    ct_dir = tmp_path / "rt"
    ct_dir.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm", "rt.dcm"):
        shutil.copy(shared_data / "rt-utils" / name, ct_dir / name)
    assert main(["volumetry", "--labels", str(ct_dir / "rt.dcm"), "--json", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["structures"]["roi_1"]["voxels"] == 1443  # rt-utils ROI-1, two contours
    shutil.copy(shared_data / "rt-utils" / "invalid_reference_rt.dcm", ct_dir / "bad.dcm")
    assert main(["volumetry", "--labels", str(ct_dir / "bad.dcm")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.dcm" in err and "--ct" in err
    assert main(["volumetry", "--labels", str(shared_data / "slicerio" / "SegmentationOverlapping.seg.nrrd"),
                 "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["structures"]["right_lung"]["voxels"] == 34450  # slicerio's own test value
    assert data["structures"]["overlapping_sphere"]["voxels"] == 19139
