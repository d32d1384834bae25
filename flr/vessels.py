"""Per-segment inflow, outflow and biliary drainage after a resection.

Clinical rule (source text, section 1): resection is safe when two contiguous segments with intact
vascular inflow, outflow and biliary drainage remain. Planning tools count as remnant only parenchyma
that keeps portal supply and hepatic-venous drainage ("functional FLR", Lang 2005). :func:`check_vessel`
says, for each remnant segment, whether the part of one vessel tree that stays connected to its trunk
reaches the segment without passing through resected or ablated parenchyma.

Method (arrays ``(z, y, x)``, volumes in mL, distances in mm; all work is cropped to the bounding box
of the liver mask and the vessel mask):

1. **Territory.** Every intrahepatic vessel voxel (vessel and liver mask) belongs to the Couinaud
   segment of the nearest segment voxel (Euclidean distance between voxel centres, spacing honoured:
   the transform of :func:`flr.distance.nearest_label`, kept as indices so that one transform serves
   every plan, see :class:`VesselTree`). Extrahepatic vessel voxels have no territory.
2. **Cut.** An intrahepatic vessel voxel is *cut* when it lies in ``lost_mask`` or its nearest segment
   voxel does: its territory is resected, or it runs in a wedge or an ablation zone (whether or not the
   caller's zone includes the vessel voxels themselves). Extrahepatic vessel voxels are never cut.
3. **Trunk.** Portal vein, hepatic artery, bile duct: the extrahepatic vessel voxels (outside the liver
   mask), keeping only pieces of at least :data:`TRUNK_MIN_FRACTION` of the largest extrahepatic piece,
   so that a peripheral branch bulging through the liver outline does not count as a trunk of its own.
   Hepatic veins: the vein voxels within one voxel (3x3x3 neighbourhood) of ``trunk_mask`` (the IVC);
   without an IVC mask, the extrahepatic vein voxels, and the detail says so. No trunk: ``not_assessed``.
4. **Connected.** 6-connected components (:func:`flr.kernels.components_of_mask`) of the uncut vessel;
   those holding a trunk voxel are connected. The other uncut intrahepatic voxels are *orphaned* (cut
   off from the trunk), except components under :data:`DEBRIS_ML` (0.02 mL), taken as segmentation debris.

5. **Inside.** Inflow, arterial inflow, biliary drainage (Glissonean pedicles, which run inside their
   segment): a vessel voxel lies *inside* its territory's segment when no parenchyma of another segment is
   within :data:`REACH_DEPTH_MM` (6 mm) of it along the grid axes (two separable box filters). A vessel
   up to 12 mm wide running along a segment boundary has no voxel inside either segment. Hepatic veins
   run between segments and drain both sides, so outflow does not use this test.

Per remnant segment the territory's vessel splits into connected ``C``, orphaned ``O`` and cut ``X``
volume (``total = C + O + X``, plus debris); ``I`` is the vessel inside the segment, ``I_C`` its
trunk-connected part. The criterion, checked in this order (``m`` = :data:`MIN_VESSEL_ML` = 0.05 mL,
about 9 voxels of 1.5 x 1.5 x 2.5 mm):

1. ``total < m``: "no <vessel> reaches this segment in the mask": ``fail`` (a segmental pedicle is
   several mm wide and a usable segmentation shows it), except for a segment under
   :data:`SMALL_SEGMENT_ML` (50 mL, e.g. the caudate), whose 1-3 mm branches segmentations often miss:
   ``not_assessed`` (absence of evidence rather than evidence of absence).
2. ``I < m`` (not for outflow): the vessel only runs along the segment's boundary: ``fail``, or
   ``not_assessed`` for a small segment, as in 1.
3. ``C + O < m``: all of the segment's vessel lies in resected or ablated parenchyma: ``fail``.
4. ``O >= ORPHAN_FRACTION * (C + O)`` (10%) and ``O >= m``: a substantial part of the segment's remaining
   vessel is cut off from the trunk: ``fail``.
5. ``I_C < m`` (not for outflow): the trunk-connected vessel only grazes the segment (its own branch is
   resected or cut off): ``fail``.
6. otherwise ``pass``.

A vessel merely grazing a segment boundary is therefore not supply: it brings no voxel inside the
segment (rules 2 and 5), and it cannot hide the segment's own branch being cut off (rule 4, whose
fraction is of the *uncut* vessel, so that a wedge taking the distal half of a branch does not fail the
segment while a branch cut off upstream does, however much connected vessel passes through the
territory). On the phantom (1.5 x 1.5 x 2.5 mm, straight and oblique grids) intact trees leave 0%
orphaned; a gap in a segmental branch leaves 44-45% of that segment's vessel cut off, a cut left portal
vein 68-100% in II and III and 15% in IV (the portal trunk also runs through IV's territory, so IV keeps
6.7 mL connected beside 1.2 mL cut off), and a right or middle hepatic vein cut from the IVC 32-100% in
the segments it drains (the left one 14-15% in the caudate, which it crosses). A segment whose own branch
is missing keeps 0.00 mL inside it (intact trees: 0.24-2.4 mL per segment).

Known consequences on the phantom, whose hilar vessels lie inside segment parenchyma: its portal trunk
runs about 45 mm through the territories of IV and III before the bifurcation, and its umbilical portion
lies 20 mm inside III, so a left hemihepatectomy there cuts the inflow of the right liver, and a left
lateral sectionectomy that of IV. Real hilar vessels lie in the hilar plate and the umbilical fissure.

The check's status is ``fail`` when any remnant segment fails, else ``not_assessed`` when any is not
assessed, else ``pass`` (never a pass over a segment that could not be judged).

>>> from flr.phantom import make_liver_phantom
>>> p = make_liver_phantom(0, spacing_mm=(3.0, 3.0, 5.0))
>>> lab = p.labels.array
>>> r = check_vessel("inflow", lab == 10, geometry=p.labels.geometry, segment_map=lab * (lab <= 8),
...                  segment_names=p.labels.names, lost_mask=(lab >= 5) & (lab <= 8),
...                  liver_mask=p.liver.array > 0, remnant_segments=["liver_segment_2", "liver_segment_3"])
>>> r.status, [s.status for s in r.segments]
('pass', ['pass', 'pass'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flr.distance import bbox_zyx, distance_to_mm, nearest_feature_index
from flr.errors import GeometryMismatchError
from flr.image import Geometry, grid_mask

__all__ = [
    "CHECK_VESSELS",
    "DEBRIS_ML",
    "LIVER_CLOSING_MM",
    "MIN_VESSEL_ML",
    "ORPHAN_FRACTION",
    "REACH_DEPTH_MM",
    "SMALL_SEGMENT_ML",
    "TRUNK_MIN_FRACTION",
    "SegmentSupply",
    "VesselCheck",
    "VesselTree",
    "check_vessel",
    "liver_outline_from_parts",
    "prepare_vessel_tree",
]

#: Default vessel of each check (canonical structure names).
CHECK_VESSELS: dict[str, str] = {
    "inflow": "portal_vein",
    "arterial_inflow": "hepatic_artery",
    "outflow": "hepatic_vein",
    "biliary_drainage": "bile_duct",
}
#: Less vessel than this (mL) in a segment's territory counts as none (9 voxels of 1.5 x 1.5 x 2.5 mm).
MIN_VESSEL_ML = 0.05
#: A segment fails when at least this fraction of its uncut vessel is cut off from the trunk.
ORPHAN_FRACTION = 0.10
#: Orphaned components smaller than this (mL) are segmentation debris and are ignored.
DEBRIS_ML = 0.02
#: A segment smaller than this (mL) with no vessel in its territory is not_assessed rather than failed.
SMALL_SEGMENT_ML = 50.0
#: Extrahepatic pieces smaller than this fraction of the largest one are not part of the trunk.
TRUNK_MIN_FRACTION = 0.10
#: Radius (mm) of the closing that decides which vessel voxels the liver encloses when no outline is given.
LIVER_CLOSING_MM = 10.0
#: Inflow, arterial inflow, biliary drainage: a vessel voxel lies *inside* its segment when no other
#: segment's parenchyma is within this distance (mm, along each grid axis) of it.
REACH_DEPTH_MM = 6.0


@dataclass(frozen=True)
class SegmentSupply:
    """Supply of one remnant segment by one vessel tree (volumes in mL, within the segment's territory).

    ``total_vessel_ml`` is all vessel in the territory before the resection; it splits into
    ``connected_vessel_ml`` (trunk-connected, uncut), ``orphaned_vessel_ml`` (uncut, cut off from the
    trunk), ``cut_vessel_ml`` (in resected or ablated parenchyma) and debris.
    """

    segment: str
    status: str
    connected_vessel_ml: float
    total_vessel_ml: float
    detail: str
    orphaned_vessel_ml: float = 0.0
    cut_vessel_ml: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "connected_vessel_ml": self.connected_vessel_ml,
            "total_vessel_ml": self.total_vessel_ml,
            "orphaned_vessel_ml": self.orphaned_vessel_ml,
            "cut_vessel_ml": self.cut_vessel_ml,
        }


@dataclass(frozen=True)
class VesselCheck:
    """One check (inflow, outflow, biliary drainage, arterial inflow) over the remnant segments."""

    check: str
    vessel: str
    status: str
    detail: str
    segments: tuple[SegmentSupply, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"status", "detail", "vessel", "segments": {name: {...}}}``."""
        return {
            "status": self.status,
            "detail": self.detail,
            "vessel": self.vessel,
            "segments": {s.segment: s.to_dict() for s in self.segments},
        }

    def segment(self, name: str) -> SegmentSupply:
        """The result of one remnant segment (``KeyError`` if it was not checked)."""
        for s in self.segments:
            if s.segment == name:
                return s
        raise KeyError(f"{name} was not checked; checked: {[s.segment for s in self.segments]}")


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------



def _union_box(*boxes: tuple[int, ...] | None) -> tuple[int, ...] | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return tuple(min(b[i] for b in real) for i in range(3)) + tuple(max(b[3 + i] for b in real) for i in range(3))


def _slices(box: tuple[int, ...], shape: tuple[int, ...], pad: Sequence[int] = (0, 0, 0)
            ) -> tuple[slice, slice, slice]:
    return tuple(slice(max(0, box[a] - pad[a]), min(shape[a], box[3 + a] + pad[a] + 1))  # type: ignore[return-value]
                 for a in range(3))


def _sub_geometry(geometry: Geometry, shape: tuple[int, ...]) -> Geometry:
    """A grid of ``shape`` with the spacing and direction of ``geometry`` (distances only need those)."""
    z, y, x = (int(s) for s in shape)
    return Geometry((z, y, x), geometry.spacing_mm, geometry.origin_mm, geometry.direction)


def _grow_one_voxel(mask: np.ndarray) -> np.ndarray:
    """Dilation by the 3x3x3 cube (separable: one voxel along each axis in turn)."""
    out = mask
    for axis in range(3):
        grown = out.copy()
        lo: list[slice] = [slice(None)] * 3
        hi: list[slice] = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        grown[tuple(lo)] |= out[tuple(hi)]
        grown[tuple(hi)] |= out[tuple(lo)]
        out = grown
    return out


def _dense_segments(segment_map: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """uint16 map: k (1-based position in ``ids``) where ``segment_map == ids[k-1]``, 0 elsewhere."""
    if segment_map.dtype.kind in "iu" and segment_map.size and min(ids) >= 0 and max(ids) < 1 << 22:
        vmin, vmax = int(segment_map.min()), int(segment_map.max())
        if vmin >= 0 and vmax < 1 << 22:
            lut = np.zeros(max(max(ids), vmax) + 1, np.uint16)
            lut[list(ids)] = np.arange(1, len(ids) + 1, dtype=np.uint16)
            return lut[segment_map]
    out = np.zeros(segment_map.shape, np.uint16)
    for k, i in enumerate(ids, start=1):
        out[segment_map == i] = k
    return out


def _fmt(ml: float) -> str:
    return f"{ml:.2f} mL"


# ------------------------------------------------------------------------------------------------
# Liver outline when none is given
# ------------------------------------------------------------------------------------------------


def liver_outline_from_parts(parts_mask: np.ndarray, vessel_masks: Sequence[np.ndarray | None], geometry: Geometry,
                             *, closing_mm: float = LIVER_CLOSING_MM) -> np.ndarray:
    """Whole-liver mask from its parts, for label maps without a liver outline.

    ``parts_mask`` is the parenchyma (segments and tumours). A vessel voxel belongs to the liver when it
    lies inside the physical closing of the parts by a ball of ``closing_mm`` (Euclidean dilation, then
    erosion, by the same radius; cropped to the parts' bounding box grown by the radius): vessels inside
    the liver or in a groove narrower than ``2 * closing_mm`` are enclosed, while the portal trunk below
    the hilum and the IVC behind the liver mostly are not. The default 10 mm spans the widest
    intrahepatic vessels (the portal bifurcation and the hepatic veins near the confluence, 12-15 mm
    wide). Cost: two distance transforms of that box.

    Returns a bool array ``(z, y, x)``: ``parts | (vessels & closing(parts))``.

    >>> g = Geometry((1, 1, 16), (1.0, 1.0, 1.0))
    >>> parts = np.zeros((1, 1, 16), bool); parts[..., [5, 6, 9, 10]] = True
    >>> vessel = np.zeros((1, 1, 16), bool); vessel[..., [2, 3, 7, 8, 11, 12]] = True
    >>> np.flatnonzero(liver_outline_from_parts(parts, [vessel], g, closing_mm=2.0)).tolist()  # 7, 8 enclosed
    [5, 6, 7, 8, 9, 10]
    """
    if not np.isfinite(closing_mm) or closing_mm <= 0:
        raise ValueError(f"closing_mm must be a positive number of mm, got {closing_mm}")
    parts = grid_mask(parts_mask, "parts_mask", geometry.shape_zyx)
    out = parts.copy()
    vessels = np.zeros(parts.shape, bool)
    for v in vessel_masks:
        if v is not None:
            vessels |= grid_mask(v, "vessel mask", geometry.shape_zyx)
    box = bbox_zyx(parts)
    if box is None or not vessels.any():
        return out
    pad = [int(np.ceil(closing_mm / s)) + 2 for s in geometry.spacing_zyx_mm]
    roi = _slices(box, parts.shape, pad)
    sub_geom = _sub_geometry(geometry, parts[roi].shape)
    dilated = distance_to_mm(parts[roi], sub_geom) <= closing_mm + 1e-9
    closed = distance_to_mm(~dilated, sub_geom) > closing_mm + 1e-9
    out[roi] |= vessels[roi] & closed
    return out


# ------------------------------------------------------------------------------------------------
# The vessel tree, prepared once, evaluated per plan
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VesselTree:
    """One vessel tree with its territories and trunk, ready to be checked against any number of plans.

    Build it with :func:`prepare_vessel_tree` (one distance transform); :meth:`evaluate` then costs one
    connected-components pass per plan. Arrays are cropped to ``roi`` (slices of the full grid).
    """

    check: str
    vessel: str
    geometry: Geometry
    notes: tuple[str, ...]
    #: why the tree cannot be checked (every segment is then not_assessed), or None
    unusable: str | None = None
    roi: tuple[slice, slice, slice] | None = None
    names: tuple[str, ...] = ()
    segment_ml: np.ndarray = field(default_factory=lambda: np.zeros(1))   # by dense index (0 = none)
    vessel_roi: np.ndarray | None = None          # bool, the vessel in roi
    trunk_roi: np.ndarray | None = None           # bool, the trunk voxels in roi
    intra: tuple[np.ndarray, ...] = ()            # roi indices (z, y, x) of the intrahepatic vessel voxels
    nearest: tuple[np.ndarray, ...] = ()          # roi indices of their nearest segment voxels
    territory: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # dense index of each
    inside: np.ndarray | None = None              # bool per voxel: inside its segment (None: not used)

    def evaluate(self, lost_mask: np.ndarray, remnant_segments: Sequence[str]) -> VesselCheck:
        """Check the remnant segments of one plan; ``lost_mask`` (z, y, x) is the parenchyma it removes."""
        remnant = [str(s) for s in remnant_segments]
        lost = grid_mask(lost_mask, "lost_mask", self.geometry.shape_zyx)
        if self.unusable is not None:
            segs = tuple(SegmentSupply(s, "not_assessed", 0.0, 0.0, self.unusable) for s in remnant)
            return VesselCheck(self.check, self.vessel, "not_assessed", self.unusable, segs)
        if not remnant:
            return VesselCheck(self.check, self.vessel, "not_assessed", "no remnant segments to check", ())
        assert self.roi is not None and self.vessel_roi is not None and self.trunk_roi is not None
        from flr.kernels import components_of_mask

        vv = self.geometry.voxel_volume_ml
        lost_c = lost[self.roi]
        cut_v = lost_c[self.intra] | lost_c[self.nearest]
        keep = self.vessel_roi.copy()
        keep[tuple(i[cut_v] for i in self.intra)] = False
        comps, sizes = components_of_mask(keep)
        trunk_ids = np.unique(comps[self.trunk_roi & keep])
        connected = np.zeros(sizes.size + 1, bool)
        connected[trunk_ids[trunk_ids > 0]] = True
        debris = np.zeros(sizes.size + 1, bool)
        debris[1:] = sizes * vv < DEBRIS_ML
        comp_v = comps[self.intra]
        conn_v = connected[comp_v]
        orphan_v = ~cut_v & ~conn_v & ~debris[comp_v]

        n = len(self.names) + 1
        terr = self.territory
        total = np.bincount(terr, minlength=n) * vv
        conn = np.bincount(terr[conn_v], minlength=n) * vv
        orph = np.bincount(terr[orphan_v], minlength=n) * vv
        cutv = np.bincount(terr[cut_v], minlength=n) * vv
        if self.inside is None:
            inside_total = inside_conn = None
        else:
            inside_total = np.bincount(terr[self.inside], minlength=n) * vv
            inside_conn = np.bincount(terr[self.inside & conn_v], minlength=n) * vv

        position = {name: k for k, name in enumerate(self.names, start=1)}
        results = []
        for name in remnant:
            k = position.get(name)
            if k is None or self.segment_ml[k] == 0:
                results.append(SegmentSupply(name, "not_assessed", 0.0, 0.0, f"{name} is not in the segment map"))
                continue
            reach = None if inside_total is None or inside_conn is None else (
                float(inside_total[k]), float(inside_conn[k]))
            results.append(_judge(name, self.vessel, float(self.segment_ml[k]), float(total[k]), float(conn[k]),
                                  float(orph[k]), float(cutv[k]), reach))
        statuses = {s.status for s in results}
        status = "fail" if "fail" in statuses else ("not_assessed" if "not_assessed" in statuses else "pass")
        if status == "fail":
            head = f"{self.vessel} supply lost or not shown for " + ", ".join(
                s.segment for s in results if s.status == "fail")
        elif status == "not_assessed":
            head = f"{self.vessel} supply could not be judged for " + ", ".join(
                s.segment for s in results if s.status == "not_assessed")
        else:
            head = f"every remnant segment keeps a trunk-connected {self.vessel}"
        return VesselCheck(self.check, self.vessel, status, "; ".join([head, *self.notes]), tuple(results))


def _judge(name: str, vessel: str, segment_ml: float, total: float, conn: float, orph: float, cut: float,
           reach: tuple[float, float] | None) -> SegmentSupply:
    """Status of one segment from its territory's vessel volumes (mL); see the module docstring.

    ``reach`` is (vessel inside the segment, trunk-connected vessel inside it) in mL, or None (outflow).
    """
    vols = (f"{_fmt(total)} of {vessel} in its territory: {_fmt(conn)} connected, {_fmt(orph)} cut off, "
            f"{_fmt(cut)} resected or ablated")
    if reach is not None:
        vols += f"; {_fmt(reach[0])} lies inside it, {_fmt(reach[1])} of that connected"

    def out(status: str, why: str) -> SegmentSupply:
        return SegmentSupply(name, status, conn, total, f"{why} ({vols})", orph, cut)

    def nothing(why: str) -> SegmentSupply:
        if segment_ml < SMALL_SEGMENT_ML:
            return out("not_assessed", f"{why}; the segment is small ({segment_ml:.0f} mL < {SMALL_SEGMENT_ML:g} mL) "
                       "and its branches may be too thin to have been segmented")
        return out("fail", why)

    if total < MIN_VESSEL_ML:
        return nothing(f"no {vessel} reaches this segment in the mask")
    if reach is not None and reach[0] < MIN_VESSEL_ML:
        return nothing(f"no {vessel} reaches into this segment in the mask: it only runs along its boundary")
    uncut = conn + orph
    if uncut < MIN_VESSEL_ML:
        return out("fail", f"the {vessel} of this segment lies in resected or ablated parenchyma")
    if orph >= MIN_VESSEL_ML and orph >= ORPHAN_FRACTION * uncut:
        return out("fail", f"{100 * orph / uncut:.0f}% of the remaining {vessel} in this segment is cut off from "
                   f"its trunk (limit {100 * ORPHAN_FRACTION:.0f}%)")
    if reach is not None and reach[1] < MIN_VESSEL_ML:
        return out("fail", f"the trunk-connected {vessel} only runs along this segment's boundary: its branch "
                   "into the segment is resected or cut off")
    return out("pass", f"trunk-connected {vessel} reaches this segment")


def _segment_map(segment_map: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    seg_map = np.asarray(segment_map)
    if seg_map.shape != shape:
        raise GeometryMismatchError(f"segment_map has shape (z,y,x) {seg_map.shape}, the grid has {shape}; "
                                    "resample it onto the label map's grid first")
    if seg_map.dtype.kind not in "iub":
        raise ValueError(f"segment_map must hold integer segment ids, got dtype {seg_map.dtype}")
    return seg_map


def _find_trunk(check: str, vessel: str, V: np.ndarray, Lv: np.ndarray, trunk_mask: np.ndarray | None,
                box: tuple[int, ...], roi: tuple[slice, ...], shape: tuple[int, int, int], notes: list[str]
                ) -> tuple[np.ndarray | None, str]:
    """The trunk voxels of the cropped vessel ``V`` (or None and why); appends how it was found to ``notes``."""
    if trunk_mask is not None:
        wide = _slices(box, shape, (1, 1, 1))        # one voxel more, for trunk voxels just outside roi
        tm = grid_mask(trunk_mask, "trunk_mask", shape)[wide]
        if tm.any():
            back = tuple(slice(r.start - w.start, r.stop - w.start) for r, w in zip(roi, wide, strict=True))
            trunk = V & _grow_one_voxel(tm)[back]
            if not trunk.any():
                return None, (f"no {vessel} voxel lies within one voxel of the trunk mask: the tree cannot be "
                              "connected to its trunk")
            notes.append(f"trunk: the {vessel} voxels within one voxel of the given trunk mask")
            return trunk, ""
    pieces = _main_pieces(V & ~Lv)
    if pieces is None:
        what = "an IVC mask or " if check == "outflow" else ""
        return None, (f"no trunk: the {vessel} mask has no voxel outside the liver (give {what}a mask "
                      "that includes the extrahepatic trunk)")
    note = f"trunk: the extrahepatic {vessel} voxels"
    notes.append(f"no IVC mask given; {note}" if check == "outflow" else note)
    return pieces, ""


def prepare_vessel_tree(check: str, vessel_mask: np.ndarray | None, *, geometry: Geometry,
                        segment_map: np.ndarray, segment_names: Mapping[int, str], liver_mask: np.ndarray | None,
                        trunk_mask: np.ndarray | None = None, vessel_name: str = "") -> VesselTree:
    """Territories and trunk of one vessel tree (the plan-independent part of :func:`check_vessel`).

    Parameters are those of :func:`check_vessel`. Problems that make the tree unusable (no mask, an empty
    mask, no intrahepatic part, no trunk) do not raise: the tree then evaluates to ``not_assessed``.
    """
    if check not in CHECK_VESSELS:
        raise ValueError(f"check must be one of {sorted(CHECK_VESSELS)}, got {check!r}")
    vessel = vessel_name or CHECK_VESSELS[check]
    shape = geometry.shape_zyx
    seg_map = _segment_map(segment_map, shape)

    def unusable(why: str) -> VesselTree:
        return VesselTree(check, vessel, geometry, (), unusable=why)

    if vessel_mask is None:
        return unusable(f"no {vessel} mask given")
    vmask = grid_mask(vessel_mask, f"{vessel} mask", shape)
    vbox = bbox_zyx(vmask)
    if vbox is None:
        return unusable(f"no {vessel} mask given (the mask is empty)")
    ids = sorted(int(k) for k in segment_names)
    names = tuple(str(segment_names[k]) for k in ids)
    if not ids:
        return unusable("no segment names given")

    notes: list[str] = []
    if liver_mask is None:
        liver = liver_outline_from_parts(np.isin(seg_map, ids), [vmask], geometry)
        notes.append(f"no liver outline given: the liver is the segments plus the {vessel} voxels inside their "
                     f"{LIVER_CLOSING_MM:g} mm closing")
    else:
        liver = grid_mask(liver_mask, "liver_mask", shape)

    box = _union_box(vbox, bbox_zyx(liver))
    assert box is not None
    roi = _slices(box, shape)
    V = np.ascontiguousarray(vmask[roi])
    Lv = liver[roi]
    dense = _dense_segments(seg_map[roi], ids)
    vv = geometry.voxel_volume_ml
    segment_ml = _counts(dense, len(ids) + 1) * vv
    if not segment_ml[1:].any():
        return unusable("the segment map holds none of the named segments")
    intra_mask = V & Lv
    n_intra = int(np.count_nonzero(intra_mask))
    if n_intra * vv < MIN_VESSEL_ML:
        return unusable(f"the {vessel} mask has {_fmt(n_intra * vv)} inside the liver: it does not show the "
                        "intrahepatic tree")

    trunk, why = _find_trunk(check, vessel, V, Lv, trunk_mask, box, roi, shape, notes)
    if trunk is None:
        return unusable(why)

    # --- territories: nearest segment voxel of each intrahepatic vessel voxel --------------------------
    intra = np.nonzero(intra_mask)
    nearest = _nearest_segment_voxel(dense != 0, intra, geometry)
    territory = dense[nearest].astype(np.int64)
    inside = None if check == "outflow" else _inside(dense, intra, territory, geometry)
    return VesselTree(check, vessel, geometry, tuple(notes), None, roi, names, segment_ml, V, trunk, intra, nearest,
                      territory, inside)


def _inside(dense: np.ndarray, points: tuple[np.ndarray, ...], territory: np.ndarray, geometry: Geometry
            ) -> np.ndarray:
    """Whether each point lies inside its segment: no other segment within REACH_DEPTH_MM along the grid axes.

    Two separable box filters (maximum, and minimum with non-segment voxels ignored) over the points'
    bounding box grown by the depth.
    """
    from scipy import ndimage

    pad = [int(np.ceil(REACH_DEPTH_MM / s)) for s in geometry.spacing_zyx_mm]
    pbox = tuple(int(p.min()) for p in points) + tuple(int(p.max()) for p in points)
    roi = _slices(pbox, dense.shape, pad)
    sub = dense[roi]
    size = [2 * q + 1 for q in pad]
    local = tuple(p - r.start for p, r in zip(points, roi, strict=True))
    top = ndimage.maximum_filter(sub, size=size, mode="constant", cval=0)[local]
    sub = np.where(sub == 0, np.iinfo(sub.dtype).max, sub)
    bottom = ndimage.minimum_filter(sub, size=size, mode="constant", cval=np.iinfo(sub.dtype).max)[local]
    return (top == bottom) & (top == territory)


def _counts(dense: np.ndarray, n: int) -> np.ndarray:
    """Voxels of each dense index 0..n-1 (the counting kernel: no int64 copy of the map)."""
    from flr.kernels import label_stats

    stats = label_stats(dense)
    out = np.zeros(n, np.int64)
    for lab, c in zip(stats.labels.tolist(), stats.counts.tolist(), strict=True):
        if lab < n:
            out[lab] = c
    return out


def _main_pieces(extra: np.ndarray) -> np.ndarray | None:
    """The extrahepatic pieces of at least TRUNK_MIN_FRACTION of the largest one, or None when there are none."""
    if not extra.any():
        return None
    from flr.kernels import components_of_mask

    comps, sizes = components_of_mask(np.ascontiguousarray(extra))
    keep = np.zeros(sizes.size + 1, bool)
    keep[1:] = sizes >= TRUNK_MIN_FRACTION * sizes.max()
    return keep[comps]


def _nearest_segment_voxel(has: np.ndarray, points: tuple[np.ndarray, ...], geometry: Geometry
                           ) -> tuple[np.ndarray, ...]:
    """Index (z, y, x) of the segment voxel nearest to each of ``points`` (Euclidean, mm).

    The feature transform of :func:`flr.distance.nearest_label` (:func:`flr.distance.nearest_feature_index`,
    answering the points only), on the bounding box of the points and the segment voxels, returning indices
    so that the lost status of the nearest voxel can be read for any plan.
    """
    pbox = tuple(int(p.min()) for p in points) + tuple(int(p.max()) for p in points)
    box = _union_box(pbox, bbox_zyx(has))
    assert box is not None
    roi = _slices(box, has.shape)
    local = tuple(p - r.start for p, r in zip(points, roi, strict=True))
    ask = np.zeros(tuple(r.stop - r.start for r in roi), bool)
    ask[local] = True
    index = nearest_feature_index(has[roi], geometry.spacing_zyx_mm, within=ask)
    near = np.unravel_index(index[local], ask.shape)
    return tuple(near[a] + roi[a].start for a in range(3))


def check_vessel(check: str, vessel_mask: np.ndarray | None, *, geometry: Geometry, segment_map: np.ndarray,
                 segment_names: Mapping[int, str], lost_mask: np.ndarray, liver_mask: np.ndarray | None,
                 remnant_segments: Sequence[str], trunk_mask: np.ndarray | None = None,
                 vessel_name: str = "") -> VesselCheck:
    """Whether each remnant segment keeps a trunk-connected vessel after a resection.

    Parameters
    ----------
    check : {"inflow", "outflow", "biliary_drainage", "arterial_inflow"}
        What is checked; it picks the default vessel (:data:`CHECK_VESSELS`) and how the trunk is found.
    vessel_mask : ndarray (z, y, x) or None
        The vessel tree (nonzero = vessel). None or empty: ``not_assessed`` for every segment.
    geometry : Geometry
        The grid of every array (its spacing, in mm, sets the distances).
    segment_map : ndarray of int (z, y, x)
        Couinaud segment ids on segment parenchyma, 0 elsewhere (vessel and tumour voxels are 0).
    segment_names : mapping id -> canonical segment name
        The ids of ``segment_map`` to use; other values are ignored.
    lost_mask : ndarray (z, y, x)
        Parenchyma the plan removes: resected segments, wedges, ablation zones.
    liver_mask : ndarray (z, y, x) or None
        The whole liver, intrahepatic vessels included. None: the segments plus the vessel voxels they
        enclose (:func:`liver_outline_from_parts`; tumours are then left out, so pass an outline, or build
        one from segments and tumours with that function, when you can).
    remnant_segments : sequence of str
        The segments left; only these are checked and reported, in this order.
    trunk_mask : ndarray (z, y, x), optional
        For outflow, the IVC: vessel voxels within one voxel of it are the trunk. Without it, the
        extrahepatic vessel voxels are the trunk.
    vessel_name : str, optional
        Canonical name of the vessel, for the report; defaults to ``CHECK_VESSELS[check]``.

    Returns
    -------
    VesselCheck
        The overall status and one :class:`SegmentSupply` per remnant segment (module docstring: criterion).
        To check several plans against one tree, use :func:`prepare_vessel_tree` once and
        :meth:`VesselTree.evaluate` per plan.

    Raises
    ------
    ValueError
        For an unknown ``check`` or a non-integer ``segment_map``.
    GeometryMismatchError
        When an array's shape is not ``geometry.shape_zyx``.
    """
    tree = prepare_vessel_tree(check, vessel_mask, geometry=geometry, segment_map=segment_map,
                               segment_names=segment_names, liver_mask=liver_mask, trunk_mask=trunk_mask,
                               vessel_name=vessel_name)
    return tree.evaluate(lost_mask, remnant_segments)
