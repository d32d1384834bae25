"""flr.volumetry on hand-built label maps whose answers are known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

import flr
import flr.io
from flr.errors import GeometryMismatchError
from flr.image import Geometry, Image, LabelMap
from flr.volumes import volumetry

SPACING = (0.8, 0.9, 2.5)  # x, y, z (mm): anisotropic on purpose
VOXEL_ML = 0.8 * 0.9 * 2.5 / 1000


def blocks_map() -> LabelMap:
    """Three segment blocks in a row along x (5 | 6 | 7) plus a tumour inside segment 6, away from the edges."""
    arr = np.zeros((10, 12, 30), np.uint8)
    arr[2:8, 2:10, 2:10] = 5
    arr[2:8, 2:10, 10:18] = 6
    arr[2:8, 2:10, 18:26] = 7
    arr[4:6, 4:6, 12:14] = 9
    names = {5: "liver_segment_5", 6: "liver_segment_6", 7: "liver_segment_7", 9: "tumor"}
    return LabelMap(arr, Geometry(arr.shape, SPACING, (-10.0, 5.0, 7.0)), "blocks.nii.gz", names=names)


def test_counts_volumes_and_liver_union():
    res = volumetry([blocks_map()])
    s = res.structures
    assert s["liver_segment_5"].voxels == 6 * 8 * 8
    assert s["liver_segment_6"].voxels == 6 * 8 * 8 - 8
    assert s["tumor"].voxels == 8
    assert s["liver"].voxels == 3 * 6 * 8 * 8
    assert s["liver"].derived_from == ("liver_segment_5", "liver_segment_6", "liver_segment_7", "tumor")
    # same count x same voxel volume, only float64 rounding (a few ulp ~ 1e-16) between the two products
    assert res.volumes_ml["liver"] == pytest.approx(3 * 6 * 8 * 8 * VOXEL_ML, rel=1e-12)
    assert res.voxel_volume_ml == pytest.approx(VOXEL_ML)
    assert not any(v.touches_border for v in s.values())


def test_segment_contacts_and_area():
    res = volumetry([blocks_map()])
    assert res.segment_adjacency == [["liver_segment_5", "liver_segment_6"], ["liver_segment_6", "liver_segment_7"]]
    c56 = res.segment_contacts[0]
    assert c56.faces == 6 * 8  # one x-face per (z, y) across the 5|6 boundary
    assert c56.contact_area_mm2 == pytest.approx(6 * 8 * 0.9 * 2.5)  # x-faces have area dy*dz
    assert c56.textbook and res.segment_contacts[1].textbook


def test_atypical_segment_contact_is_warned():
    lm = blocks_map()
    arr = np.array(lm.array)
    arr[arr == 7] = 2  # segment II touching VI is not textbook anatomy
    names = {5: "liver_segment_5", 6: "liver_segment_6", 2: "liver_segment_2", 9: "tumor"}
    res = volumetry([LabelMap(arr, lm.geometry, "x.nii.gz", names=names)])
    assert any("liver_segment_2 and liver_segment_6" in w and "textbook" in w for w in res.warnings)


def test_truncated_structure_flagged_not_zeroed():
    arr = np.zeros((6, 7, 8), np.uint8)
    arr[0:3, 2:4, 2:4] = 1  # touches z index 0: the inferior edge on an identity (LPS) grid
    res = volumetry([LabelMap(arr, Geometry(arr.shape), "t.nii.gz", names={1: "liver"})])
    liver = res.structures["liver"]
    assert liver.voxels == 12
    assert liver.touches_border
    assert liver.truncated_sides == ("inferior",)
    assert any("possibly truncated" in w for w in res.warnings)


def test_truncated_side_follows_direction():
    arr = np.zeros((6, 7, 8), np.uint8)
    arr[2:4, 2:4, 0:2] = 1  # touches x index 0
    flip = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)  # x index runs to patient right (RAS-stored grid)
    res = volumetry([LabelMap(arr, Geometry(arr.shape, direction=flip), "t.nii.gz", names={1: "liver"})])
    assert res.structures["liver"].truncated_sides == ("left",)


def test_lits_style_tumour_carved_out_of_liver():
    arr = np.zeros((8, 8, 8), np.uint8)
    arr[1:7, 1:7, 1:7] = 1
    arr[3:5, 3:5, 3:5] = 2
    res = volumetry([LabelMap(arr, Geometry(arr.shape), "lits.nii", names={1: "liver", 2: "tumor"})])
    assert res.structures["liver"].voxels == 216  # liver = 1 | 2
    assert res.structures["liver_parenchyma_label"].voxels == 216 - 8
    assert res.structures["tumor"].voxels == 8


def test_union_across_maps_counts_overlap_once():
    g = Geometry((8, 8, 8))
    liver = np.zeros(g.shape_zyx, np.uint8)
    liver[1:7, 1:7, 1:7] = 1
    tumour = np.zeros(g.shape_zyx, np.uint8)
    tumour[5:8, 5:7, 5:7] = 2  # half inside the liver mask, reaching the edge
    res = volumetry([LabelMap(liver, g, "a.nii", names={1: "liver"}),
                     LabelMap(tumour, g, "b.nii", names={2: "tumor"})])
    expected = np.count_nonzero((liver > 0) | (tumour > 0))
    assert res.structures["liver"].voxels == expected
    assert res.structures["liver"].touches_border


def test_grid_mismatch_names_both_files():
    lm = blocks_map()
    ct = Image(np.zeros(lm.geometry.shape_zyx, np.int16),
               Geometry(lm.geometry.shape_zyx, SPACING, (-10.0, 5.0, 9.0)), "ct.nii.gz")
    with pytest.raises(GeometryMismatchError, match=r"label map blocks\.nii\.gz is not on the grid of CT ct\.nii\.gz"):
        volumetry([lm], ct=ct)


def test_json_contract_keys():
    res = volumetry([blocks_map()])
    data = json.loads(res.to_json())
    for key in ("schema_version", "flr_version", "inputs", "voxel_volume_ml", "structures", "volumes_ml",
                "segment_adjacency", "warnings"):
        assert key in data
    assert data["flr_version"] == flr.__version__
    s = data["structures"]["liver_segment_5"]
    assert {"label", "voxels", "volume_ml", "touches_border"} <= set(s)
    assert s["label"] == 5
    assert data["inputs"][0]["geometry"]["spacing_mm"] == list(SPACING)


def test_python_api_reads_paths(tmp_path):
    lm = blocks_map()
    path = flr.io.write_nifti(lm, tmp_path / "blocks.nii.gz")
    (tmp_path / "s.json").write_text(json.dumps(dict(lm.names)))
    res = flr.volumetry((path, tmp_path / "s.json"))
    direct = volumetry([lm])
    assert {n: s.voxels for n, s in res.structures.items()} == {n: s.voxels for n, s in direct.structures.items()}
    # NIfTI stores spacing as float32: 0.8 mm becomes 0.800000011920929 mm; each spacing is off by at most
    # 2**-24 = 6e-8 relative, the voxel volume (their product) by at most 2e-7, inside rel=1e-6
    assert res.volumes_ml == pytest.approx(direct.volumes_ml, rel=1e-6)
    assert res.inputs[0].sha256 == flr.io.sha256_of(path)
