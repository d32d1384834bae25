"""flr.metrics against DeepMind's surface-distance (the reference implementation of Nikolov et al.'s surface
metrics) on seeded anisotropic shapes, against analytic shapes, and on the empty-mask conventions."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from flr.errors import GeometryError, GeometryMismatchError, SchemeError
from flr.image import Geometry, LabelMap
from flr.metrics import (
    MaskMetrics,
    MetricsInputError,
    compare_label_maps,
    compare_masks,
    surfel_area_table,
)

sd = pytest.importorskip("surface_distance", reason="surface-distance is not installed (pip install -e '.[test]')")

SPACINGS_ZYX_MM = [(2.5, 0.7, 0.9), (1.0, 1.0, 1.0), (0.8, 1.6, 3.0)]
SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


def _reference(mask_gt: np.ndarray, mask_pred: np.ndarray, spacing_zyx_mm: tuple[float, ...], tolerance_mm: float
               ) -> dict[str, float]:
    """surface-distance's numbers (it takes the ground truth first). It reaches scipy through namespaces SciPy
    deprecates (scipy.ndimage.filters/morphology), a warning that is not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        d = sd.compute_surface_distances(mask_gt, mask_pred, spacing_zyx_mm)
        a_gt, a_pred = d["surfel_areas_gt"], d["surfel_areas_pred"]
        # ASSD pools both surfaces (area-weighted), from surface-distance's own distances and areas
        assd = ((a_gt * d["distances_gt_to_pred"]).sum() + (a_pred * d["distances_pred_to_gt"]).sum()) / (
            a_gt.sum() + a_pred.sum())
        return {"dice": sd.compute_dice_coefficient(mask_gt, mask_pred),
                "hd95_mm": sd.compute_robust_hausdorff(d, 95),
                "assd_mm": float(assd),
                "surface_dice": sd.compute_surface_dice_at_tolerance(d, tolerance_mm)}


def _perturbed_ellipsoid_pair(seed: int, spacing_zyx_mm: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A reference ellipsoid and a prediction: the ellipsoid moved by ~1.5 mm and its boundary warped by smooth
    noise (a few mm), both on a grid of ``spacing_zyx_mm``."""
    rng = np.random.default_rng(seed)
    extent_mm = np.array([70.0, 60.0, 56.0])
    shape = tuple(int(n) for n in np.ceil(extent_mm / spacing_zyx_mm))
    zz, yy, xx = np.meshgrid(*(np.arange(n) * s for n, s in zip(shape, spacing_zyx_mm, strict=True)), indexing="ij")
    centre = extent_mm / 2 + rng.normal(0, 2, 3)
    radii = np.array([26.0, 20.0, 18.0]) * rng.uniform(0.8, 1.1, 3)

    def level(c: np.ndarray) -> np.ndarray:
        return ((zz - c[0]) / radii[0]) ** 2 + ((yy - c[1]) / radii[1]) ** 2 + ((xx - c[2]) / radii[2]) ** 2

    noise = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    ref = level(centre) <= 1
    pred = level(centre + rng.normal(0, 1.5, 3)) + 3 * noise <= 1
    return pred, ref


@pytest.mark.parametrize("spacing", SPACINGS_ZYX_MM)
@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_surface_distance_on_perturbed_ellipsoids(seed, spacing):
    pred, ref = _perturbed_ellipsoid_pair(seed, spacing)
    tolerance_mm = [0.5, 1.0, 2.0][seed % 3]
    got = compare_masks(pred, ref, spacing, tolerance_mm=tolerance_mm)
    want = _reference(ref, pred, spacing, tolerance_mm)
    assert 0.5 < got.dice < 0.99  # the pair really differs
    assert got.dice == pytest.approx(want["dice"], abs=1e-4)
    assert got.surface_dice == pytest.approx(want["surface_dice"], abs=1e-4)
    # the contract is half a voxel (the largest spacing); the same surfels give agreement to rounding
    half_voxel_mm = max(spacing) / 2
    assert got.hd95_mm == pytest.approx(want["hd95_mm"], abs=half_voxel_mm)
    assert got.assd_mm == pytest.approx(want["assd_mm"], abs=half_voxel_mm)
    assert got.hd95_mm == pytest.approx(want["hd95_mm"], abs=1e-9)
    assert got.assd_mm == pytest.approx(want["assd_mm"], abs=1e-9)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_agrees_with_surface_distance_on_random_blobs(seed):
    """Noisy blobs with holes, islands and ambiguous corner configurations (every surfel code occurs)."""
    rng = np.random.default_rng(seed)
    spacing = (2.5, 0.7, 0.9)
    field = ndimage.gaussian_filter(rng.normal(size=(24, 40, 36)), 1.2)
    ref = field > 0.02
    pred = (field + 0.03 * rng.normal(size=field.shape)) > 0.0
    got = compare_masks(pred, ref, spacing, tolerance_mm=1.0)
    want = _reference(ref, pred, spacing, 1.0)
    for key, value in want.items():
        assert getattr(got, key) == pytest.approx(value, abs=1e-4), key


def test_surfel_areas_are_surface_distances_table_for_all_256_codes():
    """Our table is drawn by skimage's marching cubes; surface-distance's is hand-coded: every code agrees."""
    from surface_distance import lookup_tables

    kernel = lookup_tables.ENCODE_NEIGHBOURHOOD_3D_KERNEL  # its bit for voxel (a, b, c) of the 2x2x2 cube
    for spacing in [(1.0, 1.0, 1.0), (2.5, 0.7, 0.9)]:
        theirs = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
        ours = surfel_area_table(spacing)
        for their_code in range(256):
            corners = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1) if their_code & kernel[a, b, c]]
            our_code = sum(1 << (4 * a + 2 * b + c) for a, b, c in corners)
            assert ours[our_code] == pytest.approx(theirs[their_code], rel=1e-9, abs=1e-12), their_code


def _sphere(shape, spacing, centre_mm, radius_mm):
    zz, yy, xx = np.meshgrid(*(np.arange(n) * s for n, s in zip(shape, spacing, strict=True)), indexing="ij")
    return (zz - centre_mm[0]) ** 2 + (yy - centre_mm[1]) ** 2 + (xx - centre_mm[2]) ** 2 <= radius_mm ** 2


def test_dice_of_two_offset_spheres_matches_the_analytic_lens():
    spacing, radius, offset = (1.25, 0.6, 0.7), 12.0, 6.0
    shape = (40, 84, 72)  # 50 x 50 x 50 mm
    ref = _sphere(shape, spacing, (25.0, 25.0, 25.0), radius)
    pred = _sphere(shape, spacing, (25.0, 25.0, 25.0 + offset), radius)
    lens_mm3 = math.pi * (4 * radius + offset) * (2 * radius - offset) ** 2 / 12
    sphere_mm3 = 4 / 3 * math.pi * radius ** 3
    m = compare_masks(pred, ref, spacing)
    assert m.dice == pytest.approx(lens_mm3 / sphere_mm3, rel=0.02)
    assert m.jaccard == pytest.approx(lens_mm3 / (2 * sphere_mm3 - lens_mm3), rel=0.03)
    assert m.volume_ref_ml == pytest.approx(sphere_mm3 / 1000, rel=0.02)
    assert m.volume_diff_ml == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize(("axis", "k"), [(0, 1), (0, 3), (1, 2), (2, 4)])
def test_a_shift_of_k_voxels_gives_hd95_of_k_spacings(axis, k):
    spacing = (2.5, 0.7, 0.9)
    box = np.zeros((30, 60, 60), bool)
    box[8:20, 15:40, 15:40] = True
    shifted = np.roll(box, k, axis=axis)
    m = compare_masks(shifted, box, spacing)
    # every face moved along the axis is k spacings from the other surface, nothing is farther
    assert m.hd95_mm == pytest.approx(k * spacing[axis], abs=1e-9)
    assert 0 < m.assd_mm < k * spacing[axis]
    length = (12, 25, 25)[axis]  # the box's extent along the axis, in voxels
    assert m.dice == pytest.approx((length - k) / length, abs=1e-12)
    assert compare_masks(shifted, box, spacing, tolerance_mm=k * spacing[axis]).surface_dice == 1.0
    assert compare_masks(shifted, box, spacing, tolerance_mm=k * spacing[axis] * 0.99).surface_dice < 1.0


def test_a_shifted_sphere_has_hd95_near_the_shift():
    spacing = (2.0, 0.8, 0.8)
    shape = (30, 75, 75)
    ref = _sphere(shape, spacing, (30.0, 30.0, 30.0), 18.0)
    pred = np.roll(ref, 2, axis=0)  # 4 mm along z
    m = compare_masks(pred, ref, spacing)
    assert m.hd95_mm == pytest.approx(4.0, abs=max(spacing) / 2)


def test_metrics_are_symmetric_but_volumes_are_signed():
    pred, ref = _perturbed_ellipsoid_pair(3, (2.5, 0.7, 0.9))
    a = compare_masks(pred, ref, (2.5, 0.7, 0.9))
    b = compare_masks(ref, pred, (2.5, 0.7, 0.9))
    for key in ("dice", "jaccard", "hd95_mm", "assd_mm", "surface_dice"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-12), key
    assert a.volume_diff_ml == pytest.approx(-b.volume_diff_ml)
    voxel_ml = 2.5 * 0.7 * 0.9 / 1000
    assert a.volume_pred_ml == pytest.approx(np.count_nonzero(pred) * voxel_ml)
    assert a.volume_diff_percent == pytest.approx(100 * a.volume_diff_ml / a.volume_ref_ml)


def test_identical_masks_agree_perfectly_and_labels_count_as_inside():
    ref = np.zeros((10, 12, 14), np.uint8)
    ref[3:7, 4:9, 2:10] = 5
    m = compare_masks(ref, ref != 0, (3.0, 0.5, 0.5), tolerance_mm=0.0)
    assert (m.dice, m.jaccard, m.hd95_mm, m.assd_mm, m.surface_dice) == (1.0, 1.0, 0.0, 0.0, 1.0)
    assert m.volume_diff_percent == 0.0


# ------------------------------------------------------------------------- empty masks
def _blob() -> np.ndarray:
    m = np.zeros((8, 9, 10), bool)
    m[2:5, 3:6, 4:8] = True
    return m


def test_both_empty_agree_perfectly():
    empty = np.zeros((8, 9, 10), bool)
    m = compare_masks(empty, empty, (2.0, 1.0, 1.0))
    assert (m.dice, m.jaccard, m.hd95_mm, m.assd_mm, m.surface_dice) == (1.0, 1.0, 0.0, 0.0, 1.0)
    assert (m.volume_pred_ml, m.volume_ref_ml, m.volume_diff_ml, m.volume_diff_percent) == (0.0, 0.0, 0.0, None)


@pytest.mark.parametrize("empty_side", ["pred", "ref"])
def test_one_empty_has_dice_zero_and_no_distances(empty_side):
    empty, blob = np.zeros((8, 9, 10), bool), _blob()
    pred, ref = (empty, blob) if empty_side == "pred" else (blob, empty)
    m = compare_masks(pred, ref, (2.0, 1.0, 1.0), tolerance_mm=5.0)
    assert (m.dice, m.jaccard, m.surface_dice) == (0.0, 0.0, 0.0)
    assert m.hd95_mm is None and m.assd_mm is None
    blob_ml = 36 * 2.0 / 1000
    if empty_side == "pred":
        assert (m.volume_diff_ml, m.volume_diff_percent) == (pytest.approx(-blob_ml), pytest.approx(-100.0))
    else:
        assert (m.volume_diff_ml, m.volume_diff_percent) == (pytest.approx(blob_ml), None)
    d = m.to_dict()
    assert list(d) == list(MaskMetrics.__dataclass_fields__)
    assert json.loads(json.dumps(d, allow_nan=False))["hd95_mm"] is None


# ------------------------------------------------------------------------- bad inputs
def test_shape_mismatch_is_a_geometry_mismatch():
    with pytest.raises(GeometryMismatchError, match=r"\(8, 9, 10\).*\(8, 9, 11\)"):
        compare_masks(np.zeros((8, 9, 10)), np.zeros((8, 9, 11)), (1.0, 1.0, 1.0))


@pytest.mark.parametrize(("spacing", "match"), [
    ((1.0, 1.0), "three"), ((1.0, 0.0, 1.0), "positive"), ((1.0, float("nan"), 1.0), "finite"),
    (("a", 1.0, 1.0), "three numbers")])
def test_bad_spacing_is_refused(spacing, match):
    with pytest.raises(GeometryError, match=match):
        compare_masks(_blob(), _blob(), spacing)


@pytest.mark.parametrize("tolerance", [-1.0, float("inf"), float("nan")])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(MetricsInputError, match="tolerance_mm"):
        compare_masks(_blob(), _blob(), (1.0, 1.0, 1.0), tolerance_mm=tolerance)


def test_masks_must_be_3d():
    with pytest.raises(GeometryError, match="3-D"):
        compare_masks(np.ones((4, 4)), np.ones((4, 4)), (1.0, 1.0, 1.0))


# ------------------------------------------------------------------------- label maps
GEOMETRY = Geometry((8, 9, 10), spacing_mm=(1.0, 1.0, 2.0))  # (x, y, z): z spacing 2 mm


def _maps() -> tuple[LabelMap, LabelMap]:
    ref = np.zeros(GEOMETRY.shape_zyx, np.uint8)
    ref[1:7, 1:8, 1:9] = 1
    ref[3:5, 3:5, 3:5] = 2  # tumour
    pred = np.zeros_like(ref)
    pred[1:7, 2:8, 1:9] = 7  # liver, another id
    pred[0, 0, 0] = 9  # a structure only the prediction has
    return (LabelMap(pred, GEOMETRY, "pred.nii.gz", names={7: "liver", 8: "tumor", 9: "spleen"}),
            LabelMap(ref, GEOMETRY, "ref.nii.gz", names={1: "liver", 2: "tumor", 3: "portal_vein"}))


def test_label_maps_are_compared_by_structure_name():
    pred, ref = _maps()
    result = compare_label_maps(pred, ref, tolerance_mm=2.0)
    assert list(result) == ["liver", "tumor", "spleen"]  # portal_vein: named, but empty in both
    ref_liver = np.isin(ref.array, [1, 2])  # the whole liver, tumour included (as flr volumetry counts it)
    assert result["liver"] == compare_masks(pred.array == 7, ref_liver, GEOMETRY.spacing_zyx_mm, tolerance_mm=2.0)
    assert result["liver"].volume_ref_ml == pytest.approx(ref_liver.sum() * GEOMETRY.voxel_volume_ml)
    assert result["tumor"].dice == 0.0 and result["tumor"].hd95_mm is None  # only in the reference
    assert result["spleen"].volume_diff_percent is None  # only in the prediction


def test_couinaud_segments_compare_as_a_liver_with_a_liver_label():
    _, ref = _maps()
    segments = np.where(ref.array > 0, np.where(np.arange(10)[None, None, :] < 5, 3, 6), 0).astype(np.uint8)
    pred = LabelMap(segments, GEOMETRY, names={3: "liver_segment_2", 6: "liver_segment_5"})
    result = compare_label_maps(pred, ref)
    assert list(result) == ["liver", "tumor", "liver_segment_2", "liver_segment_5"]
    assert result["liver"].dice == 1.0 and result["liver"].hd95_mm == 0.0
    assert result["liver_segment_5"].volume_ref_ml == 0.0 and result["tumor"].dice == 0.0


def test_label_maps_structures_selects_and_orders():
    pred, ref = _maps()
    result = compare_label_maps(pred, ref, structures=["tumor", "portal_vein"])
    assert list(result) == ["tumor", "portal_vein"]
    assert result["portal_vein"].dice == 1.0  # empty in both
    with pytest.raises(SchemeError, match="pancreas"):
        compare_label_maps(pred, ref, structures=["pancreas"])


def test_label_maps_on_other_grids_are_refused_naming_both():
    pred, ref = _maps()
    moved = LabelMap(pred.array, Geometry(GEOMETRY.shape_zyx, GEOMETRY.spacing_mm, origin_mm=(0.0, 0.0, 5.0)),
                     "pred.nii.gz", names=pred.names)
    with pytest.raises(GeometryMismatchError, match=r"pred\.nii\.gz.*ref\.nii\.gz.*origin"):
        compare_label_maps(moved, ref)
