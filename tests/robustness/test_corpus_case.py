"""Robustness corpus, case level: inputs that are each readable but contradict each other.

Every entry runs the command line in-process and states its exact outcome: ``refused`` (exit 2, one line
``flr: error:`` with the words) or ``warned`` (exit 0, the words among the warnings). The other corpora
(readers, outputs, configuration files) live beside this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flr.image import Geometry, Image, LabelMap
from flr.io import write_nifti
from tests.helpers import run_cli, run_cli_bad

SEGMENTS = {str(i): f"liver_segment_{i}" for i in range(1, 9)}


@pytest.fixture(scope="module")
def case(tmp_path_factory, phantom_1) -> Path:
    """The sample phantom as separate files: segments, outline, tumours, vessels, CT."""
    d = tmp_path_factory.mktemp("corpus-case")
    arr, g = phantom_1.labels.array, phantom_1.labels.geometry
    _write(d / "segments.nii.gz", np.where(arr <= 8, arr, 0), g)
    _write(d / "tumours.nii.gz", (arr == 9).astype(np.uint8), g)
    _write(d / "liver.nii.gz", (phantom_1.liver.array > 0).astype(np.uint8), g)
    _write(d / "portal_vein.nii.gz", (arr == 10).astype(np.uint8), g)
    write_nifti(Image(phantom_1.ct.array, g), d / "ct.nii.gz")
    (d / "segments.json").write_text(json.dumps(SEGMENTS))
    (d / "tumour.json").write_text('{"1": "tumor"}')
    return d


def _write(path: Path, array: np.ndarray, geometry: Geometry) -> Path:
    write_nifti(LabelMap(np.ascontiguousarray(array).astype(np.uint8), geometry, path.name, names={}), path)
    return path


def _variant(case: Path, tmp: Path, name: str, change: Callable[[np.ndarray], np.ndarray],
             geometry: Geometry | None = None) -> Path:
    """A copy of ``case/name`` with its array changed (and optionally another grid)."""
    import nibabel as nib

    img = nib.load(case / name)
    arr = np.asarray(img.dataobj).transpose(2, 1, 0)
    from flr.io import read_image

    g = geometry or read_image(case / name).geometry
    return _write(tmp / name, change(arr), g)


def _segments(p: Path) -> str:
    return f"{p}:{p.parent / 'segments.json'}" if (p.parent / "segments.json").exists() else str(p)


def _args(case: Path, tmp: Path, entry: str) -> list[str]:
    seg, liver, tum = case / "segments.nii.gz", case / "liver.nii.gz", case / "tumours.nii.gz"
    (tmp / "segments.json").write_text(json.dumps(SEGMENTS))
    plan = ["--plan", "left-lateral-sectionectomy"]
    if entry == "tumour_outside_liver":
        t = _variant(case, tmp, "tumours.nii.gz", lambda a: _corner_cube(a.shape))
        return ["assess", "--labels", _segments(seg), "--labels", str(liver), "--labels",
                f"{t}:{case / 'tumour.json'}", *plan]
    if entry in ("segments_flipped", "segments_flipped_strict"):
        s = _variant(case, tmp, "segments.nii.gz", lambda a: a[:, :, ::-1])
        return ["volumetry", "--labels", _segments(s), "--labels", str(liver),
                *(["--strict"] if entry.endswith("strict") else [])]
    if entry == "segments_shifted_15mm":
        s = _variant(case, tmp, "segments.nii.gz", lambda a: np.roll(a, 10, axis=2))  # 10 x 1.5 mm
        return ["volumetry", "--labels", _segments(s), "--labels", str(liver)]
    if entry in ("segments_missing", "plan_needs_missing_segment"):
        s = _variant(case, tmp, "segments.nii.gz", lambda a: np.where(np.isin(a, (6, 7)), 0, a))
        extra = ["--plan", "right-posterior-sectionectomy"] if entry.startswith("plan") else []
        return ["assess" if extra else "volumetry", "--labels", _segments(s), *extra]
    if entry == "vessel_origin_shifted":
        from flr.io import read_image

        g = read_image(case / "portal_vein.nii.gz").geometry
        moved = Geometry(g.shape_zyx, g.spacing_mm, (g.origin_mm[0] + 5.0, *g.origin_mm[1:]), g.direction)
        v = _variant(case, tmp, "portal_vein.nii.gz", lambda a: a, geometry=moved)
        return ["assess", "--labels", _segments(seg), "--labels", str(v), *plan]
    if entry == "liver_on_air_strict":
        return ["volumetry", "--labels", str(_variant(case, tmp, "liver.nii.gz", _to_corner)), "--ct",
                str(case / "ct.nii.gz"), "--strict"]
    if entry == "tumour_mask_empty":
        t = _variant(case, tmp, "tumours.nii.gz", np.zeros_like)
        return ["volumetry", "--labels", _segments(seg), "--labels", f"{t}:{case / 'tumour.json'}"]
    if entry == "wedge_of_missing_tumour":
        return ["assess", "--labels", _segments(seg), "--labels", f"{tum}:{case / 'tumour.json'}", "--wedge", "7"]
    raise AssertionError(entry)


def _corner_cube(shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    out[:4, :4, :4] = 1
    return out


def _to_corner(a: np.ndarray) -> np.ndarray:
    """The liver mask moved into the air around the phantom (same voxel count)."""
    out = np.zeros_like(a)
    n = int(np.count_nonzero(a))
    side = int(np.ceil(n ** (1 / 3)))
    block = np.zeros((side, side, side), a.dtype)
    block.ravel()[:n] = 1
    out[:side, :side, :side] = block
    return out


#: (entry, outcome, words): the outcome every entry must have, exactly.
CORPUS = [
    ("tumour_outside_liver", "refused", "touch no liver parenchyma"),
    ("segments_flipped", "warned", "outside the whole-liver outline"),
    ("segments_flipped_strict", "refused", "--strict"),
    ("segments_shifted_15mm", "warned", "outside the whole-liver outline"),
    ("segments_missing", "warned", "lacks segment(s) VI, VII"),
    ("plan_needs_missing_segment", "refused", "removes liver_segment_6, which is not in the label maps"),
    ("vessel_origin_shifted", "refused", "origin differs by 5 mm"),
    ("liver_on_air_strict", "refused", "is the mask flipped, shifted or from another scan"),
    ("tumour_mask_empty", "refused", "label map has no labelled voxels"),
    ("wedge_of_missing_tumour", "refused", "names tumour 7, but the case has tumours 1-2"),
]


@pytest.mark.parametrize(("entry", "outcome", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_case_corpus(case, tmp_path, capsys, entry, outcome, words):
    args = _args(case, tmp_path, entry)
    if outcome == "refused":
        err = run_cli_bad(args, capsys)
        assert words in err, err
        assert len(err) < 700
    else:
        code, out, err = run_cli(args, capsys)
        assert code == 0, err
        assert words in out, out
