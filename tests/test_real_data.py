"""Real public files (../shared/data, see its SOURCES.md): flr against the numbers their authors publish."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import flr
from flr.io import read_image, read_label_map
from flr.volumes import volumetry


def test_totalsegmentator_liver_equals_its_statistics_json(shared_data):
    # TotalSegmentator (Apache-2.0), tests/reference_files: statistics.json is its own volume report (mm^3)
    ts = shared_data / "totalsegmentator"
    stats = json.loads((ts / "example_seg_fast" / "statistics.json").read_text())
    multi = volumetry([read_label_map(ts / "example_seg_fast.nii.gz", "totalseg-total")])
    single = volumetry([read_label_map(ts / "example_seg_fast" / "liver.nii.gz")])
    expected_ml = stats["liver"]["volume"] / 1000.0
    assert multi.volumes_ml["liver"] == pytest.approx(expected_ml, rel=1e-9)
    assert single.volumes_ml["liver"] == pytest.approx(expected_ml, rel=1e-9)
    assert multi.structures["liver"].voxels == single.structures["liver"].voxels
    assert multi.volumes_ml["inferior_vena_cava"] == pytest.approx(stats["inferior_vena_cava"]["volume"] / 1000)
    assert multi.volumes_ml["portal_vein"] == pytest.approx(stats["portal_vein_and_splenic_vein"]["volume"] / 1000)
    # the trap: the liver reaches the edge of this small scan; flr flags it instead of reporting 0
    assert multi.structures["liver"].touches_border
    assert not [w for w in multi.warnings if "not in scheme" in w]  # other TotalSegmentator classes are known


def test_totalsegmentator_sform_only_geometry(shared_data):
    ct = read_image(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")
    assert ct.metadata["geometry_from"] == "sform"  # qform_code 0, sform_code 2
    assert ct.geometry.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
    assert ct.geometry.origin_mm == pytest.approx((177.95632935, -11.31900024, 94.30175781))
    labels = read_label_map(shared_data / "totalsegmentator" / "example_seg.nii.gz", "totalseg-total")
    res = flr.volumetry(labels, ct=ct)
    assert res.volumes_ml["liver"] > 500  # an adult liver, partly in the field of view


@pytest.mark.parametrize("case", ["brain1", "lung1", "lung2"])
def test_pyradiomics_voxel_volume(shared_data, case):
    # pyradiomics (BSD-3-Clause) data/baseline_shape.csv: original_shape_VoxelVolume (mm^3) for label 1
    with (shared_data / "pyradiomics" / "baseline_shape.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    row = next(r for r in rows if r[0] == "original_shape_VoxelVolume")
    published_mm3 = float(row[header.index(case)])
    lm = read_label_map(shared_data / "pyradiomics" / f"{case}_label.nrrd", {1: "tumor"})
    res = volumetry([lm])
    assert res.volumes_ml["tumor"] == pytest.approx(published_mm3 / 1000, rel=1e-9)


def test_pyradiomics_nrrd_geometry_is_lps(shared_data):
    img = read_image(shared_data / "pyradiomics" / "brain1_label.nrrd")
    # header: space left-posterior-superior, space directions (0.78125,0,0) (0,-0.78125,0) (0,0,6.5)
    np.testing.assert_allclose(img.geometry.direction_matrix, np.diag([1.0, -1.0, 1.0]))
    assert img.geometry.origin_mm == pytest.approx((-99.609375, 99.609375, -78.0))
