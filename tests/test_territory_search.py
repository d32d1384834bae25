"""Glissonean territories: the liver-wide nearest-point search answers only the voxels of segments without a
seed point of their own (issue 14: the others are all re-assigned inside their segment); the territories equal
those of a liver-wide search followed by the re-assignment, voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest

import flr.territories as territories
from flr.distance import nearest_feature_index, nearest_label
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
    """The territories as computed before (issue 14): every liver voxel searched, then each seeded segment's
    voxels re-assigned to the nearest of its own seed points, the segment found by a mask of its voxels."""
    nearest = territories._nearest_point(t.points[t.seed], np.flatnonzero(t.seed).astype(np.int32), liver, t.box,
                                         t.geometry)
    code_of = segments[tuple(t.points.T)].astype(np.int64)
    downstream = territories._downstream_codes(t.points, t.edges, t.n_vertices, t.root, code_of)
    lo = np.array([s.start for s in t.box])
    ids = np.flatnonzero(t.seed)
    seg_of = segments[tuple(t.points[ids].T)]
    for code in np.unique(seg_of[seg_of > 0]):  # each seeded segment, from its own voxel mask
        own = ids[seg_of == code]
        ending = own[(downstream[own] & (1 << int(code))) != 0]
        own = ending if len(ending) else own
        region = (segments[t.box] == code) & liver[t.box]
        if not region.any():
            continue
        where = np.argwhere(region)
        rlo = np.minimum(where.min(axis=0), t.points[own].min(axis=0) - lo)
        rhi = np.maximum(where.max(axis=0), t.points[own].max(axis=0) - lo) + 1
        sl = tuple(slice(int(a), int(b)) for a, b in zip(rlo, rhi, strict=True))
        seeds = np.full(tuple(int(v) for v in rhi - rlo), -1, np.int32)
        seeds[tuple((t.points[own] - lo - rlo).T)] = own
        r = region[sl]
        index = nearest_feature_index(seeds >= 0, t.geometry.spacing_zyx_mm, within=r)
        nearest[sl][r] = seeds.ravel()[index[r]]
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
