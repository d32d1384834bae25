"""Consistency checks (flr.sanity): inputs that contradict each other are warned (or refused), with figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flr
from flr.assessment import assess
from flr.case import Case
from flr.errors import InconsistentCaseError, PlanError
from flr.image import Image, LabelMap
from flr.io import write_nifti
from flr.plan import resection_plan
from flr.sanity import MIN_OUTLINE_DICE, MIN_SOFT_TISSUE_SHARE, check_case, soft_tissue_share
from tests.helpers import run_cli, run_cli_bad

SEGMENTS = {i: f"liver_segment_{i}" for i in range(1, 9)}


def _codes(findings):
    return [f.code for f in findings]


@pytest.fixture(scope="module")
def ts(shared_data):
    ct = flr.load_image(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")
    liver = flr.load(shared_data / "totalsegmentator" / "example_seg_fast" / "liver.nii.gz")
    return ct, liver


def test_real_liver_mask_lies_on_soft_tissue(ts):
    ct, liver = ts
    assert soft_tissue_share(ct.array, liver.array > 0) > 0.999  # TotalSegmentator's own example: 99.99 %
    assert check_case(Case.build([liver], ct)) == ()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_flipped_liver_mask_is_flagged_and_strict_refuses_it(ts, axis, tmp_path, capsys):
    ct, liver = ts
    flipped = LabelMap(np.flip(liver.array, axis=axis), liver.geometry, "flipped.nii.gz", names=liver.names)
    share = soft_tissue_share(ct.array, flipped.array > 0)
    assert share < MIN_SOFT_TISSUE_SHARE  # measured 84-91 %
    findings = check_case(Case.build([flipped], ct))
    assert _codes(findings) == ["liver_not_soft_tissue"]
    assert f"{share:.1%}" in findings[0].message and "flipped" in findings[0].message
    with pytest.raises(InconsistentCaseError, match="--strict"):
        check_case(Case.build([flipped], ct), strict=True)
    write_nifti(flipped, tmp_path / "liver.nii.gz")
    ct_path = tmp_path / "ct.nii.gz"
    write_nifti(ct, ct_path)
    code, out, _ = run_cli(["volumetry", "--labels", tmp_path / "liver.nii.gz", "--ct", ct_path], capsys)
    assert code == 0 and "lies on soft tissue" in out  # a warning by default
    err = run_cli_bad(["volumetry", "--labels", tmp_path / "liver.nii.gz", "--ct", ct_path, "--strict"], capsys)
    assert "is the mask flipped" in err


def _outline_and_segments(phantom):
    arr = phantom.labels.array
    segments = LabelMap(np.where(arr <= 8, arr, 0).astype(np.uint8), phantom.labels.geometry, "segments.nii.gz",
                        names=SEGMENTS)
    return phantom.liver, segments


def test_outline_and_segments_of_one_liver_agree(phantom_1):
    outline, segments = _outline_and_segments(phantom_1)
    assert check_case(Case.build([segments, outline])) == ()


@pytest.mark.parametrize("change", ["flip_x", "shift_15mm"])
def test_outline_disagreeing_with_its_segments_is_warned(phantom_1, change):
    outline, segments = _outline_and_segments(phantom_1)
    # mirrored along x, or moved 15 mm along x (10 voxels of 1.5 mm)
    arr = segments.array[:, :, ::-1] if change == "flip_x" else np.roll(segments.array, 10, axis=2)
    moved = LabelMap(np.ascontiguousarray(arr), segments.geometry, "moved.nii.gz", names=SEGMENTS)
    findings = check_case(Case.build([moved, outline]))
    assert "segments_outside_outline" in _codes(findings)
    if change == "flip_x":
        assert "outline_disagrees" in _codes(findings)
        dice = float(next(f for f in findings if f.code == "outline_disagrees").message.split("Dice ")[1].split()[0])
        assert dice < MIN_OUTLINE_DICE
    result = flr.volumetry([moved, outline])
    assert any("outside the whole-liver outline" in w for w in result.warnings)
    assert {f.code for f in result.findings} == set(_codes(findings))


def test_real_couinaud_maps_have_no_finding(shared_data):
    d = shared_data / "couinaud-msd8"
    for case in sorted((d / "label").glob("*.nii.gz")):
        segments = flr.load(case, SEGMENTS)
        outline = flr.load(d / "liver" / case.name, {1: "liver"})
        assert check_case(Case.build([segments, outline])) == (), case.name


def test_a_tumour_outside_the_liver_is_refused(phantom_1, tmp_path, capsys):
    outline, segments = _outline_and_segments(phantom_1)
    g = segments.geometry
    tumour = np.zeros(g.shape_zyx, np.uint8)
    outside = np.argwhere(~(phantom_1.liver.array > 0))
    far = outside[np.argmax(np.abs(outside - np.array(g.shape_zyx) / 2).sum(axis=1))]  # a corner, far from the liver
    lo = np.clip(far - 2, 0, None)
    tumour[lo[0]:lo[0] + 4, lo[1]:lo[1] + 4, lo[2]:lo[2] + 4] = 1
    tumours = LabelMap(tumour, g, "tumour.nii.gz", names={1: "tumor"})
    with pytest.raises(InconsistentCaseError, match=r"1 tumour piece\(s\) .* touch no liver parenchyma"):
        check_case(Case.build([segments, outline, tumours]))
    with pytest.raises(InconsistentCaseError):
        assess([segments, outline, tumours], resection_plan("right-hemihepatectomy"))
    for lm, name in ((segments, "s"), (outline, "liver"), (tumours, "t")):
        write_nifti(lm, tmp_path / f"{name}.nii.gz")
    args = ["assess", "--labels", f"{tmp_path / 's.nii.gz'}:{_scheme(tmp_path)}", "--labels",
            tmp_path / "liver.nii.gz", "--labels", f"{tmp_path / 't.nii.gz'}:{_tumour_scheme(tmp_path)}", "--plan",
            "right-hemihepatectomy"]
    assert "touch no liver parenchyma" in run_cli_bad(args, capsys)


def _scheme(folder: Path) -> Path:
    import json

    path = folder / "segments.json"
    path.write_text(json.dumps({str(k): v for k, v in SEGMENTS.items()}))
    return path


def _tumour_scheme(folder: Path) -> Path:
    path = folder / "tumour.json"
    path.write_text('{"1": "tumor"}')
    return path


def test_tumour_partly_outside_an_outline_from_another_file_is_warned(phantom_1):
    outline, segments = _outline_and_segments(phantom_1)
    arr = phantom_1.labels.array
    tumour = (arr == 9).astype(np.uint8)
    # grow tumour 1 outward: add a slab of voxels just outside the outline next to it
    out = phantom_1.liver.array == 0
    near = np.zeros_like(out)
    z, y, x = np.nonzero(tumour)
    zc, yc, _xc = (int(np.median(v)) for v in (z, y, x))
    near[zc - 2:zc + 3, yc - 40:yc + 40, :] = True
    grown = tumour | (near & out & _touching(tumour | (phantom_1.liver.array > 0), near & out)).astype(np.uint8)
    assert (grown & out).any()
    tumours = LabelMap(grown.astype(np.uint8), segments.geometry, "tumour.nii.gz", names={1: "tumor"})
    findings = check_case(Case.build([segments, outline, tumours]))
    assert "tumor_outside_outline" in _codes(findings)
    ml = int(np.count_nonzero(grown & out)) * segments.geometry.voxel_volume_ml
    assert f"{ml:.1f} mL of tumour" in next(f.message for f in findings if f.code == "tumor_outside_outline")


def _touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Voxels of ``b`` face-adjacent to ``a`` (one layer)."""
    from flr.sanity import _grown

    return _grown(a) & b


def test_a_segment_map_lacking_segments_is_warned_and_plans_needing_them_refused(phantom_1):
    _outline, segments = _outline_and_segments(phantom_1)
    arr = np.where(np.isin(segments.array, (6, 7)), 0, segments.array).astype(np.uint8)
    partial = LabelMap(arr, segments.geometry, "partial.nii.gz", names=SEGMENTS)
    findings = check_case(Case.build([partial]))
    assert _codes(findings) == ["segments_missing"] and "VI, VII" in findings[0].message
    with pytest.raises(PlanError, match="removes liver_segment_6, which is not in the label maps"):
        assess([partial], resection_plan("right-posterior-sectionectomy"))
    a = assess([partial], resection_plan("left-lateral-sectionectomy"))
    assert "segments_missing" in [f.code for f in a.findings]


def test_the_sample_case_has_no_finding(phantom_1):
    ct = Image(phantom_1.ct.array, phantom_1.ct.geometry)
    assert check_case(Case.build([phantom_1.labels, phantom_1.liver], ct)) == ()


@pytest.mark.parametrize("change", ["none", "flip_x", "shift_15mm", "tumour_outside_outline", "segments_missing"])
def test_findings_from_the_liver_box_equal_those_from_whole_grid_masks(phantom_1, change):
    """check_case builds its masks on the box of the liver structures (issue 14, memory): the same findings,
    word for word, as on masks of the whole grid (gather_anatomy without a box)."""
    from flr.case import gather_anatomy

    outline, segments = _outline_and_segments(phantom_1)
    arr = segments.array
    maps = [segments, outline]
    if change == "flip_x":
        arr = arr[:, :, ::-1]
    elif change == "shift_15mm":
        arr = np.roll(arr, 10, axis=2)
    elif change == "segments_missing":
        arr = np.where(np.isin(arr, (6, 7)), 0, arr)
    elif change == "tumour_outside_outline":
        tumour = (phantom_1.labels.array == 9) | (_touching(phantom_1.liver.array > 0, phantom_1.liver.array == 0))
        maps.append(LabelMap(tumour.astype(np.uint8), segments.geometry, "tumour.nii.gz", names={1: "tumor"}))
    maps[0] = LabelMap(np.ascontiguousarray(arr).astype(np.uint8), segments.geometry, "s.nii.gz", names=SEGMENTS)
    case = Case.build(maps)
    on_box = check_case(case)
    whole = gather_anatomy(case)
    assert whole.box is None
    assert on_box == check_case(case, anatomy=whole)
    assert (on_box == ()) == (change == "none")
    assert [f.code for f in flr.volumetry(maps).findings] == [f.code for f in on_box]
