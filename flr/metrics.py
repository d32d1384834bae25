"""Segmentation metrics between two binary masks on one voxel grid, in physical units (mm, mL).

Arrays are indexed ``(z, y, x)``; a voxel is inside when nonzero; ``spacing_zyx_mm`` is the spacing in array
order (:attr:`flr.image.Geometry.spacing_zyx_mm`), and anisotropic spacing is honoured everywhere.

Overlap (P the prediction, R the reference, |.| a voxel count):

* Dice = 2 |P n R| / (|P| + |R|) (Dice 1945); Jaccard = |P n R| / |P u R| (Jaccard 1912).
* volume_pred_ml, volume_ref_ml = voxels x voxel volume; volume_diff_ml = pred - ref;
  volume_diff_percent = 100 x volume_diff_ml / volume_ref_ml.

Surface metrics follow Nikolov et al. 2021, "Clinically applicable segmentation of head and neck anatomy for
radiotherapy" (J Med Internet Res 23(7):e26151), the definitions DeepMind's ``surface-distance`` package
implements:

* the surface of a mask is made of *surfels*: every corner point of the voxel grid whose 2x2x2 neighbourhood
  of voxels is neither all inside nor all outside carries the marching-cubes surface of that neighbourhood
  (Lorensen & Cline 1987: the classic triangulation of the corners in the minority, as
  ``skimage.measure.marching_cubes(method="lorensen")`` draws it, so an ambiguous face separates the minority
  corners), whose area ``a`` (mm^2) under the spacing is the surfel's weight;
* ``d`` is the Euclidean distance (mm) from a surfel's corner point to the nearest surfel corner of the other
  surface (``scipy.ndimage.distance_transform_edt`` on the corner grid, with ``sampling=`` the spacing);
* HD95 (mm) = max over both directions of the area-weighted 95th percentile of ``d`` (the smallest ``d`` such
  that the surfels at that distance or closer hold at least 95 % of their surface's area);
* ASSD (mm) = (sum a d over both surfaces) / (sum a over both surfaces): the average symmetric surface
  distance of Heimann et al. 2009 (IEEE TMI 28(8):1251, the liver segmentation challenge), area-weighted;
* surface Dice at tolerance T mm = (area of both surfaces within T of the other) / (area of both surfaces),
  a surfel counting when ``d <= T``.

Empty masks (chosen so that every number is defined, and no sentinel stands for "could not measure"):

* both empty: Dice 1, Jaccard 1, HD95 0, ASSD 0, surface Dice 1 (two empty segmentations agree perfectly;
  this keeps a per-case mean over structures absent from both from being dragged down);
* one empty: Dice 0, Jaccard 0, surface Dice 0; the distance to an empty surface is infinite
  (``surface-distance`` returns ``inf``), which :class:`MaskMetrics` holds as ``None`` (``null`` in JSON, an
  empty cell in CSV) rather than ``inf``, which JSON cannot carry;
* volume_diff_percent is ``None`` whenever the reference is empty (a percentage of nothing).

>>> import numpy as np
>>> ref = np.zeros((8, 8, 8), bool); ref[2:6, 2:6, 2:6] = True
>>> m = compare_masks(np.roll(ref, 1, axis=0), ref, (2.0, 1.0, 1.0))   # shifted one 2 mm slice
>>> round(m.dice, 3), m.hd95_mm, round(m.volume_diff_ml, 6)
(0.75, 2.0, 0.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from flr.errors import FlrError, GeometryError, GeometryMismatchError, SchemeError
from flr.image import LabelMap, mm3_to_ml
from flr.schemes import LIVER_PARTS

__all__ = ["MaskMetrics", "MetricsInputError", "compare_label_map_sets", "compare_label_maps", "compare_masks"]

#: The percentile of the robust Hausdorff distance.
HAUSDORFF_PERCENT = 95.0


class MetricsInputError(FlrError, ValueError):
    """A metric's parameter is impossible (a negative or non-finite tolerance)."""


@dataclass(frozen=True)
class MaskMetrics:
    """Agreement of a predicted mask with a reference mask (module docstring: formulas and empty masks).

    Distances are ``None`` when exactly one mask is empty (infinite); ``volume_diff_percent`` is ``None``
    when the reference is empty.
    """

    dice: float
    jaccard: float
    volume_pred_ml: float
    volume_ref_ml: float
    volume_diff_ml: float
    volume_diff_percent: float | None
    hd95_mm: float | None
    assd_mm: float | None
    surface_dice: float
    tolerance_mm: float

    def to_dict(self) -> dict[str, float | None]:
        """The fields by name, in declaration order (plain floats or ``None``: ready for JSON and CSV)."""
        return {k: (None if v is None else float(v)) for k, v in asdict(self).items()}


def _spacing(spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in spacing_zyx_mm)
    except (TypeError, ValueError):
        raise GeometryError(f"spacing_zyx_mm must be three numbers, got {str(spacing_zyx_mm)[:80]}") from None
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise GeometryError(f"spacing_zyx_mm must be three finite positive numbers (mm), got {values}")
    return (values[0], values[1], values[2])


def _tolerance(tolerance_mm: float) -> float:
    t = float(tolerance_mm)
    if not (math.isfinite(t) and t >= 0):
        raise MetricsInputError(f"tolerance_mm must be a finite distance >= 0 mm, got {tolerance_mm!r}")
    return t


@functools.lru_cache(maxsize=1)
def _unit_triangles() -> tuple[np.ndarray, ...]:
    """For each of the 256 corner codes, its marching-cubes triangles at unit spacing, shape (n, 3, 3) (z, y, x).

    Bit ``4a + 2b + c`` of a code is voxel ``(a, b, c)`` of the 2x2x2 neighbourhood. A code with more than four
    corners inside is drawn as its complement (the same surface, the minority corners separated).
    """
    from skimage.measure import marching_cubes

    out = []
    for code in range(256):
        drawn = code if bin(code).count("1") <= 4 else 255 - code
        cube = np.array([(drawn >> (4 * a + 2 * b + c)) & 1 for a in (0, 1) for b in (0, 1) for c in (0, 1)],
                        dtype=np.float64).reshape(2, 2, 2)
        if drawn == 0:
            out.append(np.zeros((0, 3, 3)))
            continue
        verts, faces, _, _ = marching_cubes(cube, 0.5, method="lorensen", allow_degenerate=False)
        out.append(np.asarray(verts, dtype=np.float64)[faces])
    return tuple(out)


@functools.lru_cache(maxsize=32)
def surfel_area_table(spacing_zyx_mm: tuple[float, float, float]) -> np.ndarray:
    """Surface area (mm^2) of each of the 256 corner codes on a grid of spacing ``spacing_zyx_mm`` (read-only).

    >>> t = surfel_area_table((1.0, 1.0, 1.0))
    >>> float(t[0]), float(t[255]), round(float(t[1]), 4), round(float(t[0b00001111]), 4)   # none, all, one, a face
    (0.0, 0.0, 0.2165, 1.0)
    """
    scale = np.asarray(spacing_zyx_mm, dtype=np.float64)
    table = np.zeros(256)
    for code, tri in enumerate(_unit_triangles()):
        if len(tri):
            t = tri * scale
            table[code] = 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum()
    table.flags.writeable = False
    return table


def _corner_codes(mask: np.ndarray) -> np.ndarray:
    """The 2x2x2 neighbourhood code (uint8) of every corner point of a bool mask padded by one voxel of outside."""
    m = np.pad(mask, 1).astype(np.uint8)
    nz, ny, nx = (s - 1 for s in m.shape)
    code = np.zeros((nz, ny, nx), np.uint8)
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                code |= m[a:a + nz, b:b + ny, c:c + nx] << np.uint8(4 * a + 2 * b + c)
    return code


def _surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, float, float]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(d_pred, a_pred, d_ref, a_ref): for the surfels of each mask, the distance (mm) to the other's surface and
    the area (mm^2). Both masks are non-empty; they are cropped to their joint bounding box first."""
    from scipy.ndimage import distance_transform_edt

    both = pred | ref
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(both))
    table = surfel_area_table(spacing)
    codes = [_corner_codes(m[box]) for m in (pred, ref)]
    borders = [(c != 0) & (c != 255) for c in codes]
    dist_to = [distance_transform_edt(~b, sampling=spacing) for b in borders]
    d_pred, d_ref = dist_to[1][borders[0]], dist_to[0][borders[1]]
    a_pred, a_ref = table[codes[0][borders[0]]], table[codes[1][borders[1]]]
    return d_pred, a_pred, d_ref, a_ref


def _weighted_percentile(distances_mm: np.ndarray, areas_mm2: np.ndarray, percent: float) -> float:
    """The smallest distance such that the surfels at it or closer hold ``percent`` % of the area."""
    order = np.argsort(distances_mm, kind="stable")
    cumulative = np.cumsum(areas_mm2[order]) / areas_mm2.sum()
    k = min(int(np.searchsorted(cumulative, percent / 100.0)), len(order) - 1)
    return float(distances_mm[order][k])


def compare_masks(pred: np.ndarray, ref: np.ndarray, spacing_zyx_mm: Sequence[float], *,
                  tolerance_mm: float = 1.0) -> MaskMetrics:
    """Dice, Jaccard, volumes, HD95, ASSD and surface Dice of ``pred`` against ``ref`` (module docstring).

    Parameters
    ----------
    pred, ref : arrays (z, y, x) of one shape; nonzero is inside.
    spacing_zyx_mm : voxel spacing in array order (z, y, x), mm.
    tolerance_mm : surface Dice tolerance T (mm), >= 0.

    Raises
    ------
    GeometryMismatchError
        The shapes differ.
    GeometryError
        The arrays are not 3-D or the spacing is not three finite positive numbers.
    MetricsInputError
        ``tolerance_mm`` is negative or not finite.
    """
    p, r = np.asarray(pred), np.asarray(ref)
    if p.shape != r.shape:
        raise GeometryMismatchError(f"prediction has shape (z,y,x) {p.shape}, reference {r.shape}; "
                                    "resample the prediction onto the reference grid first")
    if p.ndim != 3:
        raise GeometryError(f"masks must be 3-D (z, y, x), got shape {p.shape}")
    spacing, tol = _spacing(spacing_zyx_mm), _tolerance(tolerance_mm)
    p, r = (p if p.dtype == np.bool_ else p != 0), (r if r.dtype == np.bool_ else r != 0)
    n_pred, n_ref = int(np.count_nonzero(p)), int(np.count_nonzero(r))
    voxel_mm3 = spacing[0] * spacing[1] * spacing[2]
    vol_pred, vol_ref = mm3_to_ml(n_pred * voxel_mm3), mm3_to_ml(n_ref * voxel_mm3)
    diff_ml = vol_pred - vol_ref
    dice, jaccard, hd95, assd, surface_dice = _agreement(p, r, n_pred, n_ref, spacing, tol)
    return MaskMetrics(dice=dice, jaccard=jaccard, volume_pred_ml=vol_pred, volume_ref_ml=vol_ref,
                       volume_diff_ml=diff_ml, volume_diff_percent=100.0 * diff_ml / vol_ref if n_ref else None,
                       hd95_mm=hd95, assd_mm=assd, surface_dice=surface_dice, tolerance_mm=tol)


def _agreement(p: np.ndarray, r: np.ndarray, n_pred: int, n_ref: int, spacing: tuple[float, float, float],
               tolerance_mm: float) -> tuple[float, float, float | None, float | None, float]:
    """(Dice, Jaccard, HD95, ASSD, surface Dice) of bool masks with ``n_pred`` and ``n_ref`` voxels inside, with
    the empty-mask conventions of the module docstring."""
    if n_pred == 0 and n_ref == 0:
        return 1.0, 1.0, 0.0, 0.0, 1.0
    n_both = int(np.count_nonzero(p & r))
    dice, jaccard = 2.0 * n_both / (n_pred + n_ref), n_both / (n_pred + n_ref - n_both)
    if n_pred == 0 or n_ref == 0:
        return dice, jaccard, None, None, 0.0
    d_pred, a_pred, d_ref, a_ref = _surface_distances(p, r, spacing)
    total_area = a_pred.sum() + a_ref.sum()
    hd95 = max(_weighted_percentile(d_pred, a_pred, HAUSDORFF_PERCENT),
               _weighted_percentile(d_ref, a_ref, HAUSDORFF_PERCENT))
    assd = float(((a_pred * d_pred).sum() + (a_ref * d_ref).sum()) / total_area)
    surface_dice = float((a_pred[d_pred <= tolerance_mm].sum() + a_ref[d_ref <= tolerance_mm].sum()) / total_area)
    return dice, jaccard, hd95, assd, surface_dice


def _structure_names(maps: Sequence[LabelMap], *, present_only: bool) -> list[str]:
    """The structure names of ``maps`` in label-id order (with voxels only, when ``present_only``); ``liver`` first
    when any liver part (:data:`flr.schemes.LIVER_PARTS`) is among them."""
    names: list[str] = []
    for lm in maps:
        present = set(np.unique(lm.array).tolist()) if present_only else None
        for label in sorted(lm.names):
            name = lm.names[label]
            if name not in names and (present is None or label in present):
                names.append(name)
    if any(n in LIVER_PARTS for n in names):
        names = ["liver", *(n for n in names if n != "liver")]
    return names


def _mask_of(maps: Sequence[LabelMap], name: str) -> np.ndarray:
    """The union over ``maps`` of the voxels whose label is named ``name`` (bool, z, y, x); for ``liver``, of every
    liver part (parenchyma, tumours, Couinaud segments), the liver as ``flr volumetry`` measures it."""
    wanted = LIVER_PARTS if name == "liver" else frozenset((name,))
    mask = np.zeros(maps[0].geometry.shape_zyx, bool)
    for lm in maps:
        ids = sorted(i for i, n in lm.names.items() if n in wanted)
        if ids:
            mask |= np.isin(lm.array, ids)
    return mask


def compare_label_map_sets(pred: Sequence[LabelMap], ref: Sequence[LabelMap], *, tolerance_mm: float = 1.0,
                           structures: Sequence[str] | None = None) -> dict[str, MaskMetrics]:
    """:func:`compare_label_maps` for the several maps one input can hold (TotalSegmentator folder, Slicer layers).

    A structure's mask on each side is the union of its voxels over that side's maps. Without ``structures``,
    every structure with voxels in either side, reference first, in label-id order; a name given in
    ``structures`` must be named by a map of either side (:class:`~flr.errors.SchemeError` otherwise).
    Every map must lie on the grid of ``ref[0]`` (:class:`~flr.errors.GeometryMismatchError` naming both).
    """
    if not pred or not ref:
        raise SchemeError("compare_label_map_sets needs at least one prediction and one reference label map")
    grid = ref[0].geometry
    this = f"reference {ref[0].source or 'label map'}"
    for lm in [*ref[1:], *pred]:
        side = "reference" if any(lm is m for m in ref) else "prediction"
        grid.require_same_grid(lm.geometry, this=this, that=f"{side} {lm.source or 'label map'}")
    if structures is None:
        names = _structure_names([*ref, *pred], present_only=True)
    else:
        known = _structure_names([*ref, *pred], present_only=False)
        unknown = [s for s in structures if s not in known]
        if unknown:
            raise SchemeError(f"structures {unknown} are named by neither label map; they name {known}")
        names = list(dict.fromkeys(structures))
    return {name: compare_masks(_mask_of(pred, name), _mask_of(ref, name), grid.spacing_zyx_mm,
                                tolerance_mm=tolerance_mm) for name in names}


def compare_label_maps(pred: LabelMap, ref: LabelMap, *, tolerance_mm: float = 1.0,
                       structures: Sequence[str] | None = None) -> dict[str, MaskMetrics]:
    """Metrics (:func:`compare_masks`) per structure name of two label maps on one grid.

    Structures are matched by name (``LabelMap.names``), not by label id; a structure with voxels in only one map
    is compared against an empty mask. ``liver`` is the whole liver as ``flr volumetry`` measures it: the union of
    every liver part a map names (``liver``, ``tumor``, the Couinaud segments), so a LiTS map (1 liver, 2 tumour)
    and a map of Couinaud segments compare as livers; the other structures are their own labels.

    Without ``structures``: every structure with voxels in either map (``liver`` first, then the reference's, then
    the prediction's, in label-id order); with it: those names, in that order (each must be named by a map).

    Raises
    ------
    GeometryMismatchError
        The maps are not on one grid (:meth:`flr.image.Geometry.require_same_grid`; the message shows both).
    SchemeError
        A name in ``structures`` is named by neither map.
    """
    return compare_label_map_sets([pred], [ref], tolerance_mm=tolerance_mm, structures=structures)
