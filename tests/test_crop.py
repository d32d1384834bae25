"""The assessment on the box of the liver and its vessels equals the assessment on the whole grid (issue 14).

Independent truth: the same ``assess`` run on the whole grid (the box disabled). Every value of the result
must be equal, LPS positions up to 1e-9 mm (the box's origin is the shifted grid origin: 1e-14 mm of
floating-point rounding), and the arrays given back on the whole grid must be equal voxel for voxel.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import flr.assessment
from flr.assessment import assess
from flr.case import BOX_MARGIN_VOXELS, Case, anatomy_box
from flr.image import LabelMap
from flr.plan import resection_plan


def _same(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict):
        return [d for k in a.keys() | b.keys() for d in _same(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _same(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and where.rsplit(".", 1)[-1].split("[")[0].endswith("_mm"):
        return [] if abs(a - b) <= 1e-9 else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r:.60} != {b!r:.60}"]


def _both(monkeypatch, maps, plan):
    cropped = assess(maps, plan)
    with monkeypatch.context() as m:
        m.setattr(flr.assessment, "anatomy_box", lambda _case: None)
        whole = assess(maps, plan)
    return cropped, whole


@pytest.mark.parametrize(("fixture", "plan"), [
    ("phantom_1", resection_plan("right-hemihepatectomy", ablations=["2:5"])),
    ("phantom_1", resection_plan("left-lateral-sectionectomy", wedges=["1:10"])),
    ("phantom_0_oblique", resection_plan("right-posterior-sectionectomy")),
])
def test_the_box_gives_the_whole_grid_s_result(monkeypatch, request, fixture, plan):
    ph = request.getfixturevalue(fixture)
    maps = [ph.labels, ph.liver]
    box = anatomy_box(Case.build(maps))
    assert box is not None
    cropped, whole = _both(monkeypatch, maps, plan)
    assert whole.arrays.box is None and cropped.arrays.box == box
    box_voxels = np.prod([s.stop - s.start for s in box])
    assert box_voxels < np.prod(ph.labels.geometry.shape_zyx)  # the box is smaller: it is used
    assert _same(json.loads(cropped.to_json()), json.loads(whole.to_json())) == []
    c, w = cropped.arrays, whole.arrays
    for name in ("territory", "removed", "ablation", "functional", "tumors", "liver"):
        assert np.array_equal(getattr(c, name), getattr(w, name)), name
    for name in ("at_risk", "vessels", "vessel_territories"):
        assert set(getattr(c, name)) == set(getattr(w, name))
        for k in getattr(w, name):
            assert np.array_equal(getattr(c, name)[k], getattr(w, name)[k]), (name, k)


def test_the_box_holds_every_structure_and_stops_at_the_grid(phantom_1):
    """The box holds every liver, segment, tumour and vessel voxel, one voxel more each side unless the grid
    ends there; a vessel running to the grid's edge clips it."""
    labels = phantom_1.labels
    arr = np.array(labels.array)
    arr[:, arr.shape[1] // 2, arr.shape[2] // 2] = 12  # an IVC from the first slice to the last
    lm = LabelMap(arr, labels.geometry, "edge.nii.gz", names=labels.names)
    box = anatomy_box(Case.build([lm, phantom_1.liver]))
    assert box is not None
    assert box[0] == slice(0, arr.shape[0])  # clipped at both ends
    inside = np.zeros(arr.shape, bool)
    inside[box] = True
    assert not ((arr > 0) & ~inside).any() and not ((phantom_1.liver.array > 0) & ~inside).any()
    nz = np.argwhere(arr > 0)
    for axis in (1, 2):
        assert box[axis].start == max(int(nz[:, axis].min()) - BOX_MARGIN_VOXELS, 0)
        assert box[axis].stop == min(int(nz[:, axis].max()) + 1 + BOX_MARGIN_VOXELS, arr.shape[axis])
