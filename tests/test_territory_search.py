"""Glissonean territories: the liver-wide nearest-point search answers only the voxels of segments without a
seed point of their own (issue 14: the others are all re-assigned inside their segment); the territories equal
those of a liver-wide search followed by the re-assignment, voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest

import flr.territories as territories
from flr.distance import nearest_label
from flr.phantom import PORTAL_VEIN


def _liver_and_segments(p):
    """The liver outline and its segment codes at every liver voxel (vessel and tumour voxels given their
    nearest segment's, as the assessment's territory map does)."""
    arr = p.labels.array
    segments = np.where((arr >= 1) & (arr <= 8), arr, 0).astype(np.uint8)  # phantom labels 1-8 = codes 1-8
    liver = p.liver.array > 0
    territory = nearest_label(segments, liver & (segments == 0), p.labels.geometry)
    territory[~liver] = 0
    return liver, territory


def _reference_nearest(t, liver: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """The territories as computed before: every liver voxel searched, then each seeded segment re-assigned."""
    nearest = territories._nearest_point(t.points[t.seed], np.flatnonzero(t.seed).astype(np.int32), liver, t.box,
                                         t.geometry)
    code_of = segments[tuple(t.points.T)].astype(np.int64)
    territories._within_segments(nearest, t.points, t.seed, segments, liver, t.box, t.geometry,
                                 territories._downstream_codes(t.points, t.edges, t.n_vertices, t.root, code_of))
    return nearest


@pytest.mark.parametrize("unseeded", [(), (3,), (2, 6, 7)])
@pytest.mark.parametrize("grid", ["straight", "oblique"])
def test_portal_territories_equal_a_liver_wide_search_then_reassignment(phantom_0, phantom_0_oblique, grid,
                                                                        unseeded):
    p = phantom_0 if grid == "straight" else phantom_0_oblique
    liver, segments = _liver_and_segments(p)
    vessel = p.labels.array == PORTAL_VEIN
    for code in unseeded:  # no portal branch inside these segments: their voxels need the liver-wide search
        vessel &= segments != code
    assert vessel.any()
    t = territories.prepare_system(vessel, p.labels.geometry, liver, vessel="portal_vein", segment_map=segments)
    seeded = set(territories._seeded_codes(t.points, t.seed, segments).tolist())
    assert seeded and not seeded & set(unseeded)
    want = _reference_nearest(t, liver, segments)
    np.testing.assert_array_equal(t.nearest, want)
    assert (t.nearest[liver[t.box]] >= 0).all() and (t.nearest[~liver[t.box]] == -1).all()
