"""Analytic shapes on voxel grids, and a seeded CT phantom of a liver with Couinaud segments.

Pure computation: nothing here reads or writes files (``flr.io`` does that).

Rasterisers
    :func:`ellipsoid_mask`, :func:`sphere_mask` and :func:`cylinder_mask` mark the voxels whose
    *centres* lie inside an analytic shape given in LPS millimetres, on any :class:`~flr.image.Geometry`
    (anisotropic spacing, oblique direction, any origin). Each shape is evaluated only on its bounding
    box in index space, one z slab at a time, so memory stays proportional to one slab of that box.
    :func:`ellipsoid_volume_ml`, :func:`sphere_volume_ml` and :func:`cylinder_volume_ml` give the
    analytic volumes the voxel counts converge to.

Phantom
    :func:`make_liver_phantom` builds a small contrast-enhanced (portal venous phase) abdominal CT with
    a label map of the eight Couinaud segments, seeded spherical tumours, the portal vein tree, three
    hepatic veins and the inferior vena cava, plus a JSON-serialisable ``truth`` record (analytic
    volumes, independent voxel counts, tumour positions, face adjacency). The anatomy is fixed in
    patient (LPS) space; only the tumours and the image noise depend on the seed, and the grid can be
    rotated (``oblique_deg``) without moving the anatomy. As in real livers, the hilar vessels lie outside
    the parenchyma (``hilum=True``, the default): the portal trunk, its bifurcation and the right and left
    portal veins in a hilar plate and umbilical fissure carved out of the liver, the hepatic veins' first
    centimetres in a confluence at the IVC, so a Brisbane resection keeps its remnant's inflow and outflow
    on vessel that no plane transects. ``hilum=False`` gives the round-1 phantom bit for bit.

Coordinates follow :mod:`flr.image`: arrays ``(z, y, x)``; millimetres ``(x, y, z)`` in LPS
(+x patient left, +y posterior, +z superior).

>>> g = Geometry(shape_zyx=(30, 30, 30), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(-14.5, -14.5, -14.5))
>>> mask = sphere_mask(g, (0.0, 0.0, 0.0), 10.0)        # 10 mm radius, 1 mm voxels
>>> round(float(mask.sum()) * g.voxel_volume_ml, 3), round(sphere_volume_ml(10.0), 3)   # mL
(4.224, 4.189)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from flr.image import Geometry, Image, LabelMap, mm3_to_ml

__all__ = [
    "PHANTOM_HU",
    "PHANTOM_LABELS",
    "PHANTOM_SCHEME",
    "VESSEL_CONVENTION",
    "Phantom",
    "couinaud_segment",
    "cylinder_mask",
    "cylinder_volume_ml",
    "ellipsoid_mask",
    "ellipsoid_volume_ml",
    "make_liver_phantom",
    "sphere_mask",
    "sphere_volume_ml",
]

# ------------------------------------------------------------------------------------------------
# Analytic volumes
# ------------------------------------------------------------------------------------------------


def _positive_radii(radii_mm: Sequence[float], n: int, what: str) -> np.ndarray:
    r = np.asarray(radii_mm, dtype=float).ravel()
    if r.size != n or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"{what} needs {n} finite positive values in mm, got {list(np.atleast_1d(radii_mm))}")
    return r


def ellipsoid_volume_ml(radii_mm: Sequence[float]) -> float:
    """Volume of an ellipsoid, 4/3 pi a b c, in mL (semi-axes ``radii_mm`` in mm)."""
    a, b, c = (float(v) for v in _positive_radii(radii_mm, 3, "radii_mm"))
    return mm3_to_ml(4.0 / 3.0 * math.pi * a * b * c)


def sphere_volume_ml(radius_mm: float) -> float:
    """Volume of a sphere, 4/3 pi r^3, in mL (``radius_mm`` in mm)."""
    r = float(_positive_radii([radius_mm], 1, "radius_mm")[0])
    return mm3_to_ml(4.0 / 3.0 * math.pi * r**3)


def cylinder_volume_ml(radius_mm: float, length_mm: float, caps: str = "flat") -> float:
    """Volume in mL of a tube of ``radius_mm`` around a segment of ``length_mm``.

    ``caps="flat"``: pi r^2 L (a right circular cylinder); ``caps="round"``: pi r^2 L + 4/3 pi r^3
    (a capsule, the set of points within ``radius_mm`` of the segment).
    """
    r = float(_positive_radii([radius_mm], 1, "radius_mm")[0])
    if not math.isfinite(length_mm) or length_mm < 0:
        raise ValueError(f"length_mm must be finite and >= 0, got {length_mm}")
    _check_caps(caps)
    v = math.pi * r * r * length_mm
    if caps == "round":
        v += 4.0 / 3.0 * math.pi * r**3
    return mm3_to_ml(v)


def _check_caps(caps: str) -> None:
    if caps not in ("flat", "round"):
        raise ValueError(f"caps must be 'flat' or 'round', got {caps!r}")


# ------------------------------------------------------------------------------------------------
# Rasterisation on a grid: bounding box in index space, then one z slab at a time
# ------------------------------------------------------------------------------------------------

_Box = tuple[slice, slice, slice]
#: A per-voxel function of LPS coordinates (x, y, z arrays of one slab), e.g. a shape's membership test.
_Predicate = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _point3(values: Sequence[float], what: str) -> np.ndarray:
    p = np.asarray(values, dtype=float).ravel()
    if p.size != 3 or not np.all(np.isfinite(p)):
        raise ValueError(f"{what} must be three finite LPS coordinates (x, y, z) in mm, got {values}")
    return p


def _rotation(axes: Any | None) -> np.ndarray:
    if axes is None:
        return np.eye(3)
    r = np.asarray(axes, dtype=float)
    if r.shape != (3, 3) or not np.all(np.isfinite(r)) or not np.allclose(r.T @ r, np.eye(3), atol=1e-6):
        raise ValueError(f"axes must be an orthonormal 3x3 matrix (columns = ellipsoid axes in LPS), got {r}")
    return r


def _index_box(geometry: Geometry, center_index_xyz: np.ndarray, half_xyz: np.ndarray) -> _Box | None:
    """Index-space box (z, y, x slices) holding ``center +/- half`` (x, y, z index units), clipped."""
    lo = np.floor(center_index_xyz - half_xyz - 1e-9).astype(np.int64)
    hi = np.ceil(center_index_xyz + half_xyz + 1e-9).astype(np.int64)
    size_xyz = np.asarray(geometry.shape_zyx[::-1])
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, size_xyz - 1)
    if np.any(lo > hi):
        return None
    return (slice(int(lo[2]), int(hi[2]) + 1), slice(int(lo[1]), int(hi[1]) + 1), slice(int(lo[0]), int(hi[0]) + 1))


def _evaluate(geometry: Geometry, box: _Box, func: _Predicate, dtype: Any = bool) -> np.ndarray:
    """Evaluate ``func`` at the LPS centres of the voxels of ``box``, one z slab at a time.

    Only one slab's coordinates (three 2-D float arrays) exist at a time; returns the box's array.
    """
    zs, ys, xs = box
    a = geometry.affine_lps
    jj, ii = np.meshgrid(np.arange(ys.start, ys.stop, dtype=float), np.arange(xs.start, xs.stop, dtype=float),
                         indexing="ij")
    plane = [a[c, 3] + a[c, 0] * ii + a[c, 1] * jj for c in range(3)]
    out = np.empty((zs.stop - zs.start, ys.stop - ys.start, xs.stop - xs.start), dtype=dtype)
    for n, k in enumerate(range(zs.start, zs.stop)):
        out[n] = func(plane[0] + a[0, 2] * k, plane[1] + a[1, 2] * k, plane[2] + a[2, 2] * k)
    return out


def _index_half_extent(geometry: Geometry, lps_matrix: np.ndarray) -> np.ndarray:
    """Half extents, along the x, y, z index axes, of the image of the unit ball under ``lps_matrix``."""
    m = np.linalg.inv(geometry.affine_lps[:3, :3]) @ lps_matrix
    return np.sqrt(np.sum(m * m, axis=1))


def _lps_to_index(geometry: Geometry, p_mm: np.ndarray) -> np.ndarray:
    return np.linalg.solve(geometry.affine_lps[:3, :3], p_mm - np.asarray(geometry.origin_mm))


def _ellipsoid_predicate(center: np.ndarray, radii: np.ndarray, rot: np.ndarray) -> _Predicate:
    # q_j = (axis_j . (p - c)) / r_j ; inside when sum q_j^2 <= 1
    w = rot / radii[None, :]

    def inside(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        dx, dy, dz = x - center[0], y - center[1], z - center[2]
        s = np.zeros_like(dx)
        for j in range(3):
            q = w[0, j] * dx + w[1, j] * dy + w[2, j] * dz
            s += q * q
        return s <= 1.0

    return inside


def _ellipsoid_crop(geometry: Geometry, center_mm: Sequence[float], radii_mm: Sequence[float],
                    axes: Any | None = None) -> tuple[_Box, np.ndarray] | None:
    c = _point3(center_mm, "center_mm")
    r = _positive_radii(radii_mm, 3, "radii_mm")
    rot = _rotation(axes)
    box = _index_box(geometry, _lps_to_index(geometry, c), _index_half_extent(geometry, rot * r[None, :]))
    if box is None:
        return None
    return box, _evaluate(geometry, box, _ellipsoid_predicate(c, r, rot))


def _capsule_predicate(p0: np.ndarray, p1: np.ndarray, radius: float, caps: str) -> _Predicate:
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    u = axis / length if length > 0 else np.array([0.0, 0.0, 1.0])
    r2 = radius * radius

    def inside(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
        t = dx * u[0] + dy * u[1] + dz * u[2]
        if caps == "flat":
            radial2 = dx * dx + dy * dy + dz * dz - t * t
            return (t >= 0.0) & (t <= length) & (radial2 <= r2)
        tc = np.clip(t, 0.0, length)
        ex, ey, ez = dx - tc * u[0], dy - tc * u[1], dz - tc * u[2]
        return ex * ex + ey * ey + ez * ez <= r2

    return inside


def _cylinder_crop(geometry: Geometry, p0_mm: Sequence[float], p1_mm: Sequence[float], radius_mm: float,
                   caps: str = "flat") -> tuple[_Box, np.ndarray] | None:
    p0 = _point3(p0_mm, "p0_mm")
    p1 = _point3(p1_mm, "p1_mm")
    (r,) = _positive_radii([radius_mm], 1, "radius_mm")
    _check_caps(caps)
    if caps == "flat" and np.linalg.norm(p1 - p0) == 0:
        raise ValueError(f"a flat-capped cylinder needs p0_mm != p1_mm, got {list(p0)} twice")
    i0, i1 = _lps_to_index(geometry, p0), _lps_to_index(geometry, p1)
    half = np.abs(i1 - i0) / 2.0 + _index_half_extent(geometry, np.eye(3) * r)
    box = _index_box(geometry, (i0 + i1) / 2.0, half)
    if box is None:
        return None
    return box, _evaluate(geometry, box, _capsule_predicate(p0, p1, float(r), caps))


def _full(geometry: Geometry, crop: tuple[_Box, np.ndarray] | None) -> np.ndarray:
    mask = np.zeros(geometry.shape_zyx, dtype=bool)
    if crop is not None:
        box, values = crop
        mask[box] = values
    return mask


def ellipsoid_mask(geometry: Geometry, center_mm: Sequence[float], radii_mm: Sequence[float],
                   axes: Any | None = None) -> np.ndarray:
    """Voxels (z, y, x) whose centres lie inside an ellipsoid.

    Parameters
    ----------
    geometry : Geometry
        The grid (any spacing, origin, orthonormal direction).
    center_mm : (x, y, z)
        Centre in LPS mm.
    radii_mm : (a, b, c)
        Semi-axes in mm, along the columns of ``axes``.
    axes : 3x3 array, optional
        Orthonormal matrix whose *columns* are the ellipsoid's axes in LPS; identity when omitted.

    Returns
    -------
    numpy.ndarray
        bool array of ``geometry.shape_zyx``; a voxel is in when
        ``sum_j ((axes[:, j] . (p - center)) / r_j)^2 <= 1`` at its centre ``p``.
    """
    return _full(geometry, _ellipsoid_crop(geometry, center_mm, radii_mm, axes))


def sphere_mask(geometry: Geometry, center_mm: Sequence[float], radius_mm: float) -> np.ndarray:
    """Voxels (z, y, x) whose centres lie within ``radius_mm`` of ``center_mm`` (LPS mm)."""
    (r,) = _positive_radii([radius_mm], 1, "radius_mm")
    return ellipsoid_mask(geometry, center_mm, (r, r, r))


def cylinder_mask(geometry: Geometry, p0_mm: Sequence[float], p1_mm: Sequence[float], radius_mm: float,
                  *, caps: str = "flat") -> np.ndarray:
    """Voxels (z, y, x) whose centres lie in a tube of ``radius_mm`` around the segment p0-p1 (LPS mm).

    ``caps="flat"`` (default) is a right circular cylinder cut by the planes through ``p0_mm`` and
    ``p1_mm`` normal to its axis; ``caps="round"`` is a capsule (every point within ``radius_mm`` of the
    segment), the shape used for vessel trees because branches joined at a shared end point overlap
    smoothly. Volumes: :func:`cylinder_volume_ml`.
    """
    return _full(geometry, _cylinder_crop(geometry, p0_mm, p1_mm, radius_mm, caps))


# ------------------------------------------------------------------------------------------------
# The phantom's anatomy, fixed in LPS patient space (mm). +x = patient left, +y = posterior, +z = superior.
# ------------------------------------------------------------------------------------------------

PHANTOM_SCHEME = "flr-phantom"
#: Label ids of the phantom's label map -> canonical structure names (no hepatic artery, no bile duct).
PHANTOM_LABELS: dict[int, str] = {
    **{k: f"liver_segment_{k}" for k in range(1, 9)},
    9: "tumor",
    10: "portal_vein",
    11: "hepatic_vein",
    12: "inferior_vena_cava",
}
TUMOR, PORTAL_VEIN, HEPATIC_VEIN, IVC = 9, 10, 11, 12


def _rot_x(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


@dataclass(frozen=True)
class _Vessel:
    """One straight piece of a vessel tree: a capsule (round caps) of ``radius_mm`` from p0 to p1."""

    name: str
    label: int
    p0_mm: tuple[float, float, float]
    p1_mm: tuple[float, float, float]
    radius_mm: float


@dataclass(frozen=True)
class _Anatomy:
    # body: elliptic cylinder along z, capped in z; subcutaneous fat ring inside its outline
    body_semi_axes_mm: tuple[float, float] = (148.0, 108.0)
    body_z_mm: tuple[float, float] = (-133.0, 102.0)
    fat_mm: float = 12.0
    spine_center_mm: tuple[float, float] = (0.0, 78.0)
    spine_radius_mm: float = 17.0
    aorta_center_mm: tuple[float, float] = (18.0, 50.0)
    aorta_radius_mm: float = 11.0
    # liver: one ellipsoid, long axis turned towards the patient's left-anterior and tilted up on the left
    liver_center_mm: tuple[float, float, float] = (-38.0, -15.0, 0.0)
    liver_radii_mm: tuple[float, float, float] = (98.0, 70.0, 62.0)
    liver_rot_z_deg: float = -20.0
    liver_rot_y_deg: float = -8.0
    # IVC: vertical cylinder in the posterior groove of the liver; its axis is the hub of the
    # hepatic-vein planes. Never part of the liver: its voxels are cut out of the liver outline.
    ivc_xy_mm: tuple[float, float] = (-15.0, 42.0)
    ivc_radius_mm: float = 12.0
    ivc_z_mm: tuple[float, float] = (-123.0, 92.0)
    # vertical planes through the IVC axis, given by their horizontal direction from the IVC (x, y)
    rhv_dir: tuple[float, float] = (-1.0, -0.8)     # right hepatic vein: V/VIII | VI/VII
    mhv_dir: tuple[float, float] = (-0.15, -1.0)    # middle hepatic vein (Cantlie line): right | left
    umb_dir: tuple[float, float] = (0.25, -1.0)     # umbilical fissure: IV | II/III
    hv_confluence_z_mm: float = 38.0
    # transverse plane of the portal bifurcation; the other transverse planes (caudate, IVC ends) lie
    # multiples of 2.5 mm from it, so with 2.5 mm slices they too fall midway between slice centres
    portal_z_mm: float = -8.0
    # II | III: II lies on the posterior-superior side of this plane (normal in the y-z plane)
    s23_point_mm: tuple[float, float, float] = (25.0, -15.0, -5.0)
    s23_normal: tuple[float, float, float] = (0.0, 1.0, 1.0)
    # caudate (I): vertical elliptic cylinder in front of and beside the IVC, between hilum and confluence
    caudate_center_mm: tuple[float, float] = (-12.0, 28.0)
    caudate_semi_axes_mm: tuple[float, float] = (32.0, 21.0)
    caudate_z_mm: tuple[float, float] = (2.0, 32.0)
    # hilum (make_liver_phantom(hilum=True)): the hilar vessels lie outside the parenchyma, as in real
    # livers. Around each hilar piece (:attr:`hilar_carve`) the liver is carved out to the vessel's radius
    # plus this clearance (mm; above the coarsest default spacing, 2.5 mm, so at least one voxel of
    # non-liver lies between such a vessel and the parenchyma).
    hilar_clearance_mm: float = 3.5
    # horizontal distance (mm) from the IVC axis out to which each hepatic vein's first piece is
    # extrahepatic: the hepatic-vein confluence, beyond the IVC's 12 mm radius
    hv_stub_mm: float = 25.0
    # three more hepatic-vein tributaries (make_liver_phantom(hilum=True)): in real livers segment IV and
    # the anterior part of VIII drain into the middle hepatic vein and the medial part of II/III into the
    # left hepatic vein, so each side of a Brisbane plane keeps its outflow when the other is resected
    fissure_veins: bool = True

    @property
    def liver_axes(self) -> np.ndarray:
        """Columns: the liver ellipsoid's axes in LPS."""
        return _rot_z(self.liver_rot_z_deg) @ _rot_y(self.liver_rot_y_deg)

    def hv_point(self, direction: tuple[float, float], distance_mm: float, z_mm: float) -> tuple[float, float, float]:
        """Point of a vertical hepatic-vein plane: ``distance_mm`` from the IVC axis, at height ``z_mm``."""
        d = _unit(*direction)
        x, y = np.asarray(self.ivc_xy_mm) + distance_mm * d
        return (float(x), float(y), float(z_mm))

    @property
    def vessels(self) -> tuple[_Vessel, ...]:
        """Portal and hepatic vein trees as capsules (the IVC is separate: a flat-capped cylinder)."""
        pv: dict[str, tuple[float, float, float]] = {
            "trunk_start": (12.0, 14.0, -118.0),   # behind the pancreas, outside the liver
            "hilum": (-14.0, -4.0, -10.0),         # bifurcation, in front of the caudate
            "right": (-44.0, -6.0, -9.0),
            "right_anterior": (-54.0, -20.0, -8.0),
            "seg5": (-62.0, -32.0, -34.0),
            "seg8": (-62.0, -34.0, 24.0),
            "right_posterior": (-70.0, 8.0, -8.0),
            "seg6": (-92.0, 18.0, -30.0),
            "seg7": (-90.0, 20.0, 18.0),
            "left": (-2.4, -8.4, -8.0),            # end of the transverse portion, at the umbilical fissure
            "umbilical": (3.2, -30.8, -6.0),       # umbilical portion, in the umbilical fissure plane
            "seg2": (30.0, -10.0, 20.0),
            "seg3": (30.0, -46.0, -16.0),
            "seg4_sup": (-6.0, -46.0, 18.0),
            "seg4_inf": (-8.0, -50.0, -22.0),
            "seg1": (-10.0, 20.0, 16.0),
        }
        pv_pieces = [
            ("portal trunk", "trunk_start", "hilum", 7.0),
            ("right portal vein", "hilum", "right", 6.0),
            ("right anterior portal vein", "right", "right_anterior", 5.0),
            ("segment 5 portal branch", "right_anterior", "seg5", 3.5),
            ("segment 8 portal branch", "right_anterior", "seg8", 3.5),
            ("right posterior portal vein", "right", "right_posterior", 5.0),
            ("segment 6 portal branch", "right_posterior", "seg6", 3.5),
            ("segment 7 portal branch", "right_posterior", "seg7", 3.5),
            ("left portal vein", "hilum", "left", 5.0),
            ("umbilical portion", "left", "umbilical", 4.5),
            ("segment 2 portal branch", "umbilical", "seg2", 3.5),
            ("segment 3 portal branch", "umbilical", "seg3", 3.5),
            ("segment 4 superior portal branch", "umbilical", "seg4_sup", 3.0),
            ("segment 4 inferior portal branch", "umbilical", "seg4_inf", 3.0),
            ("caudate portal branch", "hilum", "seg1", 3.0),
        ]
        zc = self.hv_confluence_z_mm
        hv: dict[str, tuple[float, float, float]] = {
            "confluence": (*self.ivc_xy_mm, zc),
            "rhv_1": self.hv_point(self.rhv_dir, 60.0, zc - 28.0),
            "rhv_2": self.hv_point(self.rhv_dir, 100.0, zc - 70.0),
            "mhv_1": self.hv_point(self.mhv_dir, 50.0, zc - 25.0),
            "mhv_2": self.hv_point(self.mhv_dir, 95.0, zc - 65.0),
            "lhv_1": (6.0, 18.0, zc - 6.0),
            "lhv_2": (40.0, -5.0, -10.0),
            "lhv_3": (34.0, -36.0, -30.0),  # segment III tributary: III drains through the left hepatic vein
            # with fissure_veins: a vein each side of the umbilical fissure, 8 mm from its plane and mirror
            # images of each other (so their territories meet on the plane), out to ~7 mm under the
            # anterior surface: medial II/III drains through the left hepatic vein, the lateral part of IV
            # through the middle hepatic vein
            "lhv_f0": (12.8, 13.4, zc - 14.4),   # a fifth along the distal left hepatic vein
            "lhv_f1": (7.3, -14.3, 30.0),
            "lhv_f2": (20.9, -68.6, 22.0),
            "mhv_f1": (-8.2, -18.1, 30.0),
            "mhv_f2": (5.4, -72.5, 22.0),
            "mhv_81": (-39.1, -13.5, 30.0),      # their mirror images across the middle hepatic vein plane:
            "mhv_82": (-68.1, -61.5, 22.0),      # the anterior part of VIII drains into that vein too
        }
        hv_pieces = [
            ("right hepatic vein", "confluence", "rhv_1", 5.5),
            ("right hepatic vein, distal", "rhv_1", "rhv_2", 3.5),
            ("middle hepatic vein", "confluence", "mhv_1", 5.0),
            ("middle hepatic vein, distal", "mhv_1", "mhv_2", 3.5),
            ("left hepatic vein", "confluence", "lhv_1", 4.5),
            ("left hepatic vein, distal", "lhv_1", "lhv_2", 3.5),
            ("left hepatic vein, segment 3 tributary", "lhv_2", "lhv_3", 3.0),
        ]
        if self.fissure_veins:
            hv_pieces += [("left hepatic vein, fissure tributary", "lhv_f0", "lhv_f1", 3.0),
                          ("left hepatic vein, fissure tributary, distal", "lhv_f1", "lhv_f2", 3.0),
                          ("middle hepatic vein, segment 4 tributary", "mhv_1", "mhv_f1", 3.0),
                          ("middle hepatic vein, segment 4 tributary, distal", "mhv_f1", "mhv_f2", 3.0),
                          ("middle hepatic vein, segment 8 tributary", "mhv_1", "mhv_81", 3.0),
                          ("middle hepatic vein, segment 8 tributary, distal", "mhv_81", "mhv_82", 3.0)]
        return tuple(_Vessel(n, PORTAL_VEIN, pv[a], pv[b], r) for n, a, b, r in pv_pieces) + tuple(
            _Vessel(n, HEPATIC_VEIN, hv[a], hv[b], r) for n, a, b, r in hv_pieces)


    @property
    def hilar_carve(self) -> tuple[_HilarPiece, ...]:
        """The hilar plate, umbilical fissure and hepatic-vein confluence, as capsules (LPS mm).

        Each piece is the axis of a vessel piece, or of its first part, with the vessel's radius plus
        :attr:`hilar_clearance_mm`. Portal vein: the whole trunk, the right portal vein, the transverse
        (left portal vein) and umbilical portions of the left portal vein (hilar plate and umbilical
        fissure); the right posterior portal vein until its axis leaves the carve on the right hepatic vein
        plane (it leaves the right portal vein on the anterior side of that plane, so inside the liver it
        would run through V/VIII: Rouviere's sulcus) and the caudate branch up to the caudate's floor (it
        would otherwise run through IV). Hepatic veins: each vein's first piece from the IVC axis out to
        :attr:`hv_stub_mm`. Every other vessel piece stays intrahepatic and starts at the carved surface,
        so a Brisbane resection that keeps a segment keeps its inflow and outflow on vessel outside the
        liver outline or inside that segment (or on a plane between two segments).
        """
        by_name = {v.name: v for v in self.vessels}
        pieces: list[_HilarPiece] = []

        def carve(vessel: str, t1: float = 1.0) -> None:
            v = by_name[vessel]
            if t1 == 1.0:
                name, end = vessel, v.p1_mm
            else:
                q = np.asarray(v.p0_mm) + t1 * (np.asarray(v.p1_mm) - np.asarray(v.p0_mm))
                name, end = f"{vessel}, first part", (float(q[0]), float(q[1]), float(q[2]))
            pieces.append(_HilarPiece(name, vessel, v.label, v.p0_mm, end, v.radius_mm,
                                      v.radius_mm + self.hilar_clearance_mm))

        for vessel in ("portal trunk", "right portal vein", "left portal vein", "umbilical portion"):
            carve(vessel)
        rp = by_name["right posterior portal vein"]
        n_r = _plane_normal(self.rhv_dir, (0.0, 1.0))
        f0, f1 = ((np.asarray(q[:2]) - np.asarray(self.ivc_xy_mm)) @ n_r for q in (rp.p0_mm, rp.p1_mm))
        rp_mm = float(np.linalg.norm(np.subtract(rp.p1_mm, rp.p0_mm)))
        # its axis leaves the carve (the end's round cap) where it crosses the right hepatic vein plane
        carve(rp.name, float(-f0 / (f1 - f0)) - (rp.radius_mm + self.hilar_clearance_mm) / rp_mm)
        cb = by_name["caudate portal branch"]
        carve(cb.name, (self.caudate_z_mm[0] - cb.p0_mm[2]) / (cb.p1_mm[2] - cb.p0_mm[2]))  # caudate floor
        for vessel in ("right hepatic vein", "middle hepatic vein", "left hepatic vein"):
            v = by_name[vessel]
            horizontal_mm = float(np.hypot(v.p1_mm[0] - v.p0_mm[0], v.p1_mm[1] - v.p0_mm[1]))
            carve(vessel, self.hv_stub_mm / horizontal_mm)           # p0 is the confluence, on the IVC axis
        return tuple(pieces)


@dataclass(frozen=True)
class _HilarPiece:
    """A capsule carved out of the liver around the hilar part of one vessel piece (LPS mm).

    ``p0_mm``-``p1_mm`` is the vessel piece ``vessel``'s axis or its first part; ``radius_mm`` is the
    vessel's ``vessel_radius_mm`` plus the hilar clearance.
    """

    name: str
    vessel: str
    label: int
    p0_mm: tuple[float, float, float]
    p1_mm: tuple[float, float, float]
    vessel_radius_mm: float
    radius_mm: float


_ANATOMY = _Anatomy()


def _plane_normal(direction: tuple[float, float], towards: tuple[float, float]) -> np.ndarray:
    """Horizontal unit normal of the vertical plane along ``direction``, on the side of ``towards``."""
    d = _unit(*direction)
    n = np.array([-d[1], d[0]])
    return n if float(n @ np.asarray(towards)) > 0 else -n


def couinaud_segment(x: np.ndarray, y: np.ndarray, z: np.ndarray, anatomy: _Anatomy = _ANATOMY) -> np.ndarray:
    """Couinaud segment (1..8, uint8) of LPS points (mm) by the phantom's planes (liver membership not tested).

    Right (V-VIII) vs left (II-IV) by the middle hepatic vein plane; right anterior (V, VIII) vs right
    posterior (VI, VII) by the right hepatic vein plane; IV vs II/III by the umbilical fissure plane; all
    three are vertical planes through the IVC axis. Superior (VII, VIII) vs inferior (V, VI) by the
    transverse portal plane; II (posterior-superior) vs III (anterior-inferior) by an oblique plane;
    segment I is a vertical elliptic cylinder in front of and beside the IVC, above the hilum.
    """
    a = anatomy
    x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float))
    dx, dy = x - a.ivc_xy_mm[0], y - a.ivc_xy_mm[1]
    n_m = _plane_normal(a.mhv_dir, (-1.0, 0.0))       # towards the patient's right
    n_r = _plane_normal(a.rhv_dir, (0.0, 1.0))        # towards posterior
    n_u = _plane_normal(a.umb_dir, (1.0, 0.0))        # towards the patient's left
    right = dx * n_m[0] + dy * n_m[1] > 0
    posterior = dx * n_r[0] + dy * n_r[1] > 0
    lateral = dx * n_u[0] + dy * n_u[1] > 0
    superior = z > a.portal_z_mm
    p23, n23 = np.asarray(a.s23_point_mm), _unit(*a.s23_normal)
    seg2 = (x - p23[0]) * n23[0] + (y - p23[1]) * n23[1] + (z - p23[2]) * n23[2] > 0
    seg = np.where(right, np.where(posterior, np.where(superior, 7, 6), np.where(superior, 8, 5)),
                   np.where(lateral, np.where(seg2, 2, 3), 4)).astype(np.uint8)
    cx, cy = a.caudate_center_mm
    ax, ay = a.caudate_semi_axes_mm
    caudate = (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0) & (z >= a.caudate_z_mm[0]) & (
        z <= a.caudate_z_mm[1])
    seg[caudate] = 1
    return seg


# ------------------------------------------------------------------------------------------------
# Building the phantom on a grid
# ------------------------------------------------------------------------------------------------

#: Attenuation (HU) of the phantom's tissues, portal venous phase.
PHANTOM_HU: dict[str, int] = {
    "air": -1000,
    "fat": -100,
    "soft_tissue": 40,
    "bone": 400,
    "aorta": 160,
    "liver": 60,
    "tumor": 30,
    "vessel": 150,
}
NOISE_SD_HU = 10.0
#: Clearance (mm) around every tumour from the liver surface, the IVC, the other tumours and the segment
#: boundaries it does not cross (see :func:`_place_tumors`). Above the default grids' largest spacing
#: (2.5 mm), so a tumour's 6-neighbours lie in the segments it occupies (or in a vessel).
TUMOR_CLEARANCE_MM = 3.0
TUMOR_RADIUS_RANGE_MM = (8.0, 25.0)

VESSEL_CONVENTION = (
    "Vessels have their own labels (10 portal_vein, 11 hepatic_vein, 12 inferior_vena_cava) and override "
    "the parenchyma (painted in that order, so the IVC wins); tumours (9) are painted last but keep 1.5 mm "
    "clear of every vessel. The liver outline is the ellipsoid minus the IVC cylinder minus the hilar "
    "carve (with hilum=True; anatomy.hilum): the IVC is never liver, nor are the hilar plate and umbilical "
    "fissure around the portal trunk, its bifurcation and the right and left portal veins, nor the "
    "hepatic-vein confluence around each hepatic vein's first 25 mm from the IVC axis; carved voxels are "
    "label 0 except where a vessel is painted. liver_total = segments 1-8 + tumour + the portal and "
    "hepatic vein voxels inside the liver outline (intrahepatic vessels count as liver volume, as planning "
    "tools do); the extrahepatic parts (the portal trunk below the liver and every hilar vessel voxel, the "
    "hepatic-vein stubs at the IVC) are not liver."
)


@dataclass(frozen=True)
class Phantom:
    """A seeded liver CT phantom: image, label map, liver outline and an analytic/counted truth record.

    Attributes
    ----------
    ct : Image
        int16 HU, (z, y, x).
    labels : LabelMap
        uint8, scheme ``"flr-phantom"``, ids :data:`PHANTOM_LABELS` (1-8 Couinaud segments, 9 tumour,
        10 portal vein, 11 hepatic vein, 12 IVC).
    liver : LabelMap
        uint8, 1 = liver outline (ellipsoid minus IVC minus the hilar carve; segments, tumours and
        intrahepatic portal and hepatic vein voxels), scheme ``"flr-phantom-liver"``.
    truth : dict
        JSON-serialisable: seed, geometry, analytic volumes, voxel counts (plain numpy), tumours,
        face adjacency, anatomy and conventions; see :func:`make_liver_phantom`.
    """

    ct: Image
    labels: LabelMap
    liver: LabelMap
    truth: dict[str, Any]


def _validated_spacing(spacing_mm: Sequence[float]) -> np.ndarray:
    s = np.asarray(spacing_mm, dtype=float).ravel()
    if s.size != 3 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing_mm must be three finite positive values (x, y, z) in mm, got {spacing_mm}")
    return s


def _grid_direction(oblique_deg: float) -> np.ndarray:
    """Direction of the phantom grid: rotation by ``oblique_deg`` about z, then by half of it about x."""
    if not math.isfinite(oblique_deg):
        raise ValueError(f"oblique_deg must be finite, got {oblique_deg}")
    return _rot_z(oblique_deg) @ _rot_x(oblique_deg / 2.0)


def _phantom_geometry(spacing_mm: Sequence[float], oblique_deg: float,
                      shape_zyx: Sequence[int] | None, anatomy: _Anatomy) -> Geometry:
    spacing = _validated_spacing(spacing_mm)
    rot = _grid_direction(oblique_deg)
    bx, by = anatomy.body_semi_axes_mm
    z0, z1 = anatomy.body_z_mm
    margin = np.maximum(6.0, 2.0 * spacing)  # along the grid axes; keeps the body off the border
    corners = np.array([[x, y, z] for x in (-bx, bx) for y in (-by, by) for z in (z0, z1)])
    local = corners @ rot                      # coordinates along the grid's x, y, z axes
    lo, hi = local.min(axis=0) - margin, local.max(axis=0) + margin
    if shape_zyx is None:
        n_xyz = np.ceil((hi - lo) / spacing).astype(int) + 2
        start = lo - spacing / 2.0
    else:
        shape = tuple(int(v) for v in shape_zyx)
        if len(shape) != 3 or any(v < 2 for v in shape):
            raise ValueError(f"shape_zyx must be three sizes >= 2, got {shape_zyx}")
        n_xyz = np.asarray(shape[::-1])
        start = (lo + hi) / 2.0 - (n_xyz - 1) * spacing / 2.0
    # Phase the slices (shift by < 1 voxel) so that, on an axis-aligned grid, the transverse portal plane
    # falls midway between slice centres instead of near one: a plane through voxel centres biases the
    # volumes on either side by up to half a slice times its area.
    phase = (anatomy.portal_z_mm + spacing[2] / 2.0 - start[2]) % spacing[2]
    start = start + np.array([0.0, 0.0, phase - spacing[2] if phase > spacing[2] / 2.0 else phase])
    origin = rot @ start
    ox, oy, oz = (float(v) for v in origin)
    sx, sy, sz = (float(v) for v in spacing)
    return Geometry(shape_zyx=(int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])), spacing_mm=(sx, sy, sz),
                    origin_mm=(ox, oy, oz), direction=tuple(rot.ravel()))


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (golden-angle spiral), shape (n, 3)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _distance_to_segments(points: np.ndarray, vessels: Sequence[_Vessel | _HilarPiece]) -> np.ndarray:
    """(n_points, n_capsules) distance from each point to each capsule's surface (mm; negative inside)."""
    out = np.empty((len(points), len(vessels)))
    for j, v in enumerate(vessels):
        p0, p1 = np.asarray(v.p0_mm), np.asarray(v.p1_mm)
        d = p1 - p0
        t = np.clip(((points - p0) @ d) / float(d @ d), 0.0, 1.0)
        out[:, j] = np.linalg.norm(points - (p0 + t[:, None] * d), axis=1) - v.radius_mm
    return out


def _liver_q(points: np.ndarray, anatomy: _Anatomy) -> np.ndarray:
    """Ellipsoid level sum((axes^T (p - c) / r)^2) of LPS points (n, 3): <= 1 inside the liver ellipsoid."""
    q = (points - np.asarray(anatomy.liver_center_mm)) @ anatomy.liver_axes / np.asarray(anatomy.liver_radii_mm)
    return np.sum(q * q, axis=1)


def _ball_points(center: np.ndarray, radius_mm: float, directions: np.ndarray) -> np.ndarray:
    """The centre plus spherical shells at 1/4, 1/2, 3/4 and 1 of ``radius_mm`` (LPS mm), shape (n, 3)."""
    shells = [center + f * radius_mm * directions for f in (0.25, 0.5, 0.75, 1.0)]
    return np.concatenate([center[None, :], *shells])


def _place_tumors(rng: np.random.Generator, anatomy: _Anatomy,
                  carve: Sequence[_HilarPiece] = ()) -> list[dict[str, Any]]:
    """2-4 tumour spheres; positions and radii depend on ``rng`` and ``carve`` only (never on a grid).

    The first tumour is centred in VII or VIII, the second in the left lateral section (II or III), the
    others in IV-VIII. Radii are drawn from 8-25 mm and shrunk by 15% steps (not below 8 mm) while no
    position fits. A tumour fits when, with :data:`TUMOR_CLEARANCE_MM` = c: the ball of radius r + c lies
    inside the liver ellipsoid and clear of the IVC, of the other tumours and of the ``carve`` capsules
    (the hilar carve, a liver surface like the others), the ball of radius r + 1.5 mm clears every
    vessel tube, and every segment boundary is either crossed by at least c or missed
    by at least c (the segments met by the ball of radius r - c equal those met by radius r + c). The
    last rule makes "the segments a tumour occupies" the same set on any grid with voxels finer than c.
    """
    n = int(rng.integers(2, 5))
    targets = [int(rng.choice([7, 8])), int(rng.choice([2, 3]))]
    targets += [int(rng.choice([4, 5, 6, 7, 8])) for _ in range(n - 2)]
    directions = _fibonacci_sphere(150)
    vessels = anatomy.vessels
    c, radii = np.asarray(anatomy.liver_center_mm), np.asarray(anatomy.liver_radii_mm)
    half = np.sqrt(np.sum((anatomy.liver_axes * radii[None, :]) ** 2, axis=1))
    ivc = np.asarray(anatomy.ivc_xy_mm)
    clear = TUMOR_CLEARANCE_MM
    tumors: list[dict[str, Any]] = []
    for target in targets:
        radius = float(rng.uniform(*TUMOR_RADIUS_RANGE_MM))
        placed = None
        while placed is None:
            cand = c + rng.uniform(-1.0, 1.0, size=(4000, 3)) * half
            ok = couinaud_segment(cand[:, 0], cand[:, 1], cand[:, 2], anatomy) == target
            ok &= _liver_q(cand, anatomy) < 1.0
            ok &= np.linalg.norm(cand[:, :2] - ivc, axis=1) >= radius + anatomy.ivc_radius_mm + clear
            ok &= np.min(_distance_to_segments(cand, vessels), axis=1) >= radius + 1.5
            if carve:
                ok &= np.min(_distance_to_segments(cand, carve), axis=1) >= radius + clear
            for t in tumors:
                ok &= np.linalg.norm(cand - np.asarray(t["center_mm"]), axis=1) >= radius + t["radius_mm"] + clear
            for centre in cand[ok]:
                outer = _ball_points(centre, radius + clear, directions)
                if np.max(_liver_q(outer, anatomy)) > 1.0:
                    continue
                inner = _ball_points(centre, radius - clear, directions)
                segs_out = set(couinaud_segment(outer[:, 0], outer[:, 1], outer[:, 2], anatomy).tolist())
                segs_in = set(couinaud_segment(inner[:, 0], inner[:, 1], inner[:, 2], anatomy).tolist())
                if segs_in == segs_out:
                    placed = {"center_mm": [float(v) for v in centre], "radius_mm": radius,
                              "segment": target, "segments": sorted(segs_in)}
                    break
            else:
                if radius == TUMOR_RADIUS_RANGE_MM[0]:  # pragma: no cover - every segment has room
                    raise RuntimeError(f"could not place a tumour centred in segment {target}")
                radius = max(TUMOR_RADIUS_RANGE_MM[0], 0.85 * radius)
        tumors.append(placed)
    return tumors


def _drop_crumbs(mask: np.ndarray) -> int:
    """Keep only the largest 6-connected piece of ``mask`` (in place); returns the voxels dropped.

    Where the IVC (or the hilar carve) cuts the liver's surface, a row of voxel centres can fall inside
    the ellipsoid yet touch only the IVC, the carve and the outside: such crumbs are not liver.
    """
    comp, n = ndimage.label(mask)
    if n <= 1:
        return 0
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    drop = mask & (comp != int(np.argmax(sizes)))
    mask[drop] = False
    return int(drop.sum())


def _merge_fragments(labels: np.ndarray) -> int:
    """Give each segment (1-8) one 6-connected piece: smaller pieces join their commonest neighbour.

    Vessel tubes and tumours can cut slivers off a segment. Each sliver is relabelled to the segment it
    shares most faces with (else the commonest other non-IVC neighbour). Returns the voxels moved.
    """
    moved = 0
    for _ in range(8):
        changed = False
        for s in range(1, 9):
            comp, n = ndimage.label(labels == s)
            if n <= 1:
                continue
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            keep = int(np.argmax(sizes))
            for c, sl in enumerate(ndimage.find_objects(comp), start=1):
                if c == keep or sl is None:
                    continue
                grown = tuple(slice(max(q.start - 1, 0), q.stop + 1) for q in sl)
                frag = comp[grown] == c
                shell = ndimage.binary_dilation(frag) & ~frag
                around = labels[grown][shell]
                around = around[(around != s) & (around != 0) & (around != IVC)]
                if around.size == 0:
                    continue
                counts = np.bincount(around, minlength=13)
                seg_counts = counts[1:9]
                new = int(np.argmax(seg_counts)) + 1 if seg_counts.any() else int(np.argmax(counts))
                labels[grown][frag] = new
                moved += int(frag.sum())
                changed = True
        if not changed:
            break
    return moved


def _face_adjacency(labels: np.ndarray) -> list[list[int]]:
    """``[a, b, faces]`` for every pair of different non-zero labels sharing voxel faces (plain numpy)."""
    faces: dict[tuple[int, int], int] = {}
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        u, v = a[:-1], a[1:]
        m = (u != v) & (u != 0) & (v != 0)
        lo = np.minimum(u[m], v[m]).astype(np.int64)
        hi = np.maximum(u[m], v[m]).astype(np.int64)
        pair, count = np.unique(lo * 256 + hi, return_counts=True)
        for p, c in zip(pair.tolist(), count.tolist(), strict=True):
            key = (p // 256, p % 256)
            faces[key] = faces.get(key, 0) + c
    return [[a, b, n] for (a, b), n in sorted(faces.items())]


def _ivc_overlap_mm3(anatomy: _Anatomy, n_r: int = 300, n_theta: int = 720) -> float:
    """Volume (mm^3) shared by the IVC cylinder and the liver ellipsoid, by midpoint quadrature.

    Over the IVC's disc (polar midpoint rule), the ellipsoid's z interval at each (x, y) is solved exactly
    from its quadratic and clipped to the IVC's z range; quadrature error is far below 0.01 mL.
    """
    r_ivc = anatomy.ivc_radius_mm
    rr = (np.arange(n_r) + 0.5) * r_ivc / n_r
    tt = (np.arange(n_theta) + 0.5) * 2.0 * math.pi / n_theta
    R, T = np.meshgrid(rr, tt, indexing="ij")
    c = np.asarray(anatomy.liver_center_mm)
    dx = anatomy.ivc_xy_mm[0] + R * np.cos(T) - c[0]
    dy = anatomy.ivc_xy_mm[1] + R * np.sin(T) - c[1]
    rot = anatomy.liver_axes
    M = rot @ np.diag(1.0 / np.asarray(anatomy.liver_radii_mm) ** 2) @ rot.T
    # (d)^T M (d) <= 1 with d = (dx, dy, dz): a dz^2 + 2 b dz + c0 <= 0
    qa = M[2, 2]
    qb = M[0, 2] * dx + M[1, 2] * dy
    qc = M[0, 0] * dx * dx + 2 * M[0, 1] * dx * dy + M[1, 1] * dy * dy - 1.0
    disc = qb * qb - qa * qc
    root = np.sqrt(np.maximum(disc, 0.0))
    zlo = c[2] + (-qb - root) / qa
    zhi = c[2] + (-qb + root) / qa
    length = np.clip(np.minimum(zhi, anatomy.ivc_z_mm[1]) - np.maximum(zlo, anatomy.ivc_z_mm[0]), 0.0, None)
    length[disc <= 0] = 0.0
    dr, dt = r_ivc / n_r, 2.0 * math.pi / n_theta
    return float(np.sum(length * R) * dr * dt)


@lru_cache(maxsize=4)
def _hilar_carve_mm3(anatomy: _Anatomy, step_mm: float = 0.5) -> float:
    """Volume (mm^3) the hilar carve takes out of the liver: (union of capsules) & ellipsoid & ~IVC.

    Midpoint rule on a ``step_mm`` lattice over the carve's bounding box (clipped to the ellipsoid's):
    each lattice point counts ``step_mm**3``. The union of overlapping capsules has no closed form; on
    this ~49 mL shape, 0.5 mm and 0.25 mm lattices agree within 0.02 mL.
    """
    pieces = anatomy.hilar_carve
    ends = np.array([q for h in pieces for q in (h.p0_mm, h.p1_mm)])
    pad = np.repeat([h.radius_mm for h in pieces], 2)[:, None]
    radii = np.asarray(anatomy.liver_radii_mm)
    half = np.sqrt(np.sum((anatomy.liver_axes * radii[None, :]) ** 2, axis=1))
    c = np.asarray(anatomy.liver_center_mm)
    lo = np.maximum(np.min(ends - pad, axis=0), c - half)
    hi = np.minimum(np.max(ends + pad, axis=0), c + half)
    n_xyz = np.ceil((hi - lo) / step_mm).astype(int)
    ox, oy, oz = (float(v) for v in lo + step_mm / 2.0)
    g = Geometry(shape_zyx=(int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])), spacing_mm=(step_mm, step_mm, step_mm),
                 origin_mm=(ox, oy, oz))
    carve = np.zeros(g.shape_zyx, dtype=bool)
    for h in pieces:
        crop = _cylinder_crop(g, h.p0_mm, h.p1_mm, h.radius_mm, "round")
        if crop is not None:
            carve[crop[0]] |= crop[1]
    carve &= ellipsoid_mask(g, anatomy.liver_center_mm, anatomy.liver_radii_mm, anatomy.liver_axes)
    ivc_p0, ivc_p1 = (*anatomy.ivc_xy_mm, anatomy.ivc_z_mm[0]), (*anatomy.ivc_xy_mm, anatomy.ivc_z_mm[1])
    carve &= ~cylinder_mask(g, ivc_p0, ivc_p1, anatomy.ivc_radius_mm)
    return float(np.count_nonzero(carve)) * step_mm**3


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
                or mask[:, :, 0].any() or mask[:, :, -1].any())


def _paint(target: np.ndarray, crop: tuple[_Box, np.ndarray] | None, value: int) -> None:
    if crop is not None:
        box, m = crop
        target[box][m] = value


def make_liver_phantom(seed: int = 0, *, spacing_mm: Sequence[float] = (1.5, 1.5, 2.5), oblique_deg: float = 0.0,
                       shape_zyx: Sequence[int] | None = None, hilum: bool = True) -> Phantom:
    """Seeded abdominal CT phantom with a Couinaud-segmented liver, tumours and the hepatic vessels.

    Parameters
    ----------
    seed : int
        Seeds the tumours (number 2-4, radii 8-25 mm, positions) and the image noise. The rest of the
        anatomy is fixed.
    spacing_mm : (x, y, z)
        Voxel spacing in mm.
    oblique_deg : float
        Rotates the grid (not the anatomy): direction = Rz(oblique_deg) @ Rx(oblique_deg / 2).
    shape_zyx : (z, y, x), optional
        Grid size; by default the smallest grid holding the body with a margin of max(6 mm, 2 voxels).
        A given shape is centred on the body; ``ValueError`` if the liver then touches the grid border.
    hilum : bool
        True (default): the hilar vessels lie outside the parenchyma, in a hilar plate, umbilical fissure
        and hepatic-vein confluence carved out of the liver (see Notes). False: the round-1 phantom, in
        which the liver is the whole ellipsoid minus the IVC and every vessel inside it is intrahepatic
        (bit for bit the arrays of earlier versions, tumours included).

    Returns
    -------
    Phantom
        ``ct`` (int16 HU), ``labels`` (uint8, :data:`PHANTOM_LABELS`), ``liver`` (uint8 outline) and
        ``truth``.

    Notes
    -----
    Anatomy (LPS mm; +x left, +y posterior, +z superior): air (exactly -1000 HU, no noise) around a body
    that is an elliptic cylinder capped in z (so no tissue touches the grid border) with a 12 mm
    subcutaneous fat ring, soft tissue, a vertebral body and the aorta. The liver is an ellipsoid in the right
    upper abdomen (radii 98, 70, 62 mm, turned 20 degrees towards the left-anterior, tilted up on the
    left) cut into Couinaud segments by planes: the middle hepatic vein plane (right/left), the right
    hepatic vein plane (right anterior/posterior) and the umbilical fissure plane (IV/II+III), all
    vertical through the IVC axis; the transverse portal plane (superior II, IV, VII, VIII / inferior
    III, IV, V, VI); an oblique plane between II (posterior-superior) and III (anterior-inferior);
    segment I is an elliptic cylinder in front of and beside the IVC between the hilum and the
    hepatic-vein confluence. Segment face adjacency then follows the textbook table (IVa/IVb merged
    into 4). The IVC is a vertical cylinder in the liver's posterior groove running above and below
    it; the portal vein enters from below, bifurcates at the hilum and sends a branch into every
    segment; the three hepatic veins run in their planes to the IVC. Segment slivers cut off by tubes
    are merged into a neighbour so each segment is one 6-connected piece. See
    :data:`VESSEL_CONVENTION` for what counts as liver.

    The hilum (``hilum=True``): in real livers the portal trunk, its bifurcation and the right and left
    portal veins lie in the hilar plate and the umbilical fissure, and the hepatic veins join the IVC
    outside the parenchyma, so a resection along the Brisbane planes never transects the pedicle or the
    vein its remnant depends on. The phantom carves these out of the liver outline as capsules of the
    vessel's radius plus 3.5 mm (``_Anatomy.hilar_carve``, recorded in ``truth["anatomy"]["hilum"]``):
    the intrahepatic trunk, the bifurcation, the right portal vein, the transverse and umbilical portions
    of the left portal vein, the first parts of the right posterior portal vein (its axis leaves the carve
    on the right hepatic vein plane) and of the caudate branch (to the caudate's floor), and each hepatic
    vein out to 25 mm from the IVC axis. Carved voxels are not liver (label 0, fat on the CT) unless a
    vessel is painted there, and then that vessel voxel is extrahepatic; every other branch is
    intrahepatic and starts at the carved surface. Tumours keep their clearance from the carve as from
    the liver surface.
    Three more hepatic-vein tributaries come with the hilum: the segment IV and segment VIII tributaries of
    the middle hepatic vein and the fissure tributary of the left hepatic vein (medial II/III), so that
    a left lateral sectionectomy keeps IV drained, a left hemihepatectomy VIII, and a right
    trisectionectomy, which takes the middle hepatic vein, II/III, as in real livers.

    ``truth`` keys: ``seed``, ``oblique_deg``, ``hilum``, ``geometry``, ``scheme``, ``label_names``, ``hu``,
    ``noise_sd_hu``, ``conventions``, ``labels`` (per id: name, voxels, volume_ml), ``structures``
    (per canonical name, with intra/extrahepatic vessel parts), ``liver`` (analytic ellipsoid, IVC
    overlap and hilar carve volumes, voxel total, carved voxels), ``segments`` (per segment 1-8: voxels,
    volume_ml), ``tumors`` (centre, radius, segment, analytic and voxel volumes), ``face_adjacency``
    (``[a, b, faces]``),
    ``segment_adjacency`` (segment pairs), ``fragments_merged_voxels``, ``liver_crumbs_dropped_voxels``
    (voxels inside the ellipsoid left out of the liver because only the IVC, the carve and the outside
    touch them) and ``anatomy`` (planes, caudate, vessel pieces, hilar carve). Counts are
    ``np.count_nonzero`` of the final arrays, volumes are counts times the voxel volume.

    >>> p = make_liver_phantom(0, spacing_mm=(4.0, 4.0, 5.0))
    >>> p.labels.names[1], p.labels.names[12], p.ct.array.dtype.name
    ('liver_segment_1', 'inferior_vena_cava', 'int16')
    """
    a = _ANATOMY if hilum else replace(_ANATOMY, fissure_veins=False)
    geometry = _phantom_geometry(spacing_mm, oblique_deg, shape_zyx, a)
    tumor_ss, noise_ss = np.random.SeedSequence(int(seed)).spawn(2)
    carve_pieces = a.hilar_carve if hilum else ()
    tumors = _place_tumors(np.random.default_rng(tumor_ss), a, carve_pieces)
    shape = geometry.shape_zyx

    # --- label map -------------------------------------------------------------------------------
    labels = np.zeros(shape, dtype=np.uint8)
    ivc_p0 = (*a.ivc_xy_mm, a.ivc_z_mm[0])
    ivc_p1 = (*a.ivc_xy_mm, a.ivc_z_mm[1])
    ivc = _full(geometry, _cylinder_crop(geometry, ivc_p0, ivc_p1, a.ivc_radius_mm, "flat"))
    ellipsoid = _ellipsoid_crop(geometry, a.liver_center_mm, a.liver_radii_mm, a.liver_axes)
    if ellipsoid is None:
        raise ValueError(f"the phantom's liver lies outside the grid {geometry.describe()}")
    lbox, in_ellipsoid = ellipsoid
    carve = np.zeros(shape, dtype=bool)
    for piece in carve_pieces:
        crop = _cylinder_crop(geometry, piece.p0_mm, piece.p1_mm, piece.radius_mm, "round")
        if crop is not None:
            carve[crop[0]] |= crop[1]
    hilar = np.zeros(shape, dtype=bool)  # the voxels the carve takes out of the liver ellipsoid
    hilar[lbox] = in_ellipsoid & ~ivc[lbox] & carve[lbox]
    liver = np.zeros(shape, dtype=bool)
    liver[lbox] = in_ellipsoid & ~ivc[lbox] & ~hilar[lbox]
    crumbs = _drop_crumbs(liver[lbox])
    if _touches_border(liver):
        raise ValueError(f"the phantom's liver touches the border of the grid {geometry.describe()}; "
                         "use a larger shape_zyx or leave it out")
    segments = _evaluate(geometry, lbox, lambda x, y, z: couinaud_segment(x, y, z, a), np.uint8)
    labels[lbox] = np.where(liver[lbox], segments, 0)
    for v in a.vessels:
        _paint(labels, _cylinder_crop(geometry, v.p0_mm, v.p1_mm, v.radius_mm, "round"), v.label)
    labels[ivc] = IVC
    for t in tumors:
        _paint(labels, _ellipsoid_crop(geometry, t["center_mm"], [t["radius_mm"]] * 3), TUMOR)
    moved = _merge_fragments(labels[lbox])

    # --- CT --------------------------------------------------------------------------------------
    hu = PHANTOM_HU
    bx, by = a.body_semi_axes_mm
    z0, z1 = a.body_z_mm
    f = a.fat_mm
    sx, sy = a.spine_center_mm
    ax_, ay_ = a.aorta_center_mm

    def body_hu(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        in_z = (z >= z0) & (z <= z1)
        outer = ((x / bx) ** 2 + (y / by) ** 2 <= 1.0) & in_z
        inner = ((x / (bx - f)) ** 2 + (y / (by - f)) ** 2 <= 1.0) & in_z
        out = np.full(x.shape, hu["air"], dtype=np.int16)
        out[outer] = hu["fat"]
        out[inner] = hu["soft_tissue"]
        out[inner & ((x - sx) ** 2 + (y - sy) ** 2 <= a.spine_radius_mm**2)] = hu["bone"]
        out[inner & ((x - ax_) ** 2 + (y - ay_) ** 2 <= a.aorta_radius_mm**2)] = hu["aorta"]
        return out

    full_box: _Box = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    ct = _evaluate(geometry, full_box, body_hu, np.int16)
    body = ct != hu["air"]
    if shape_zyx is None and _touches_border(body):  # pragma: no cover - guarded by the margin
        raise AssertionError("phantom body touches the grid border")
    ct[liver] = hu["liver"]
    ct[hilar] = hu["fat"]  # the hilar plate and fissures hold fat around their vessels
    ct[labels == TUMOR] = hu["tumor"]
    ct[(labels == PORTAL_VEIN) | (labels == HEPATIC_VEIN) | (labels == IVC)] = hu["vessel"]
    noise = np.random.default_rng(noise_ss).normal(0.0, NOISE_SD_HU, size=int(np.count_nonzero(body)))
    ct[body] = np.clip(np.rint(ct[body] + noise), -1024, 3071).astype(np.int16)

    truth = _truth(seed, oblique_deg, geometry, labels, liver, tumors, moved, crumbs, a, hilum,
                   int(np.count_nonzero(hilar)))
    meta = {"phantom": PHANTOM_SCHEME, "seed": int(seed), "modality": "CT", "phase": "portal venous"}
    return Phantom(
        ct=Image(ct, geometry, source=f"flr.phantom seed={int(seed)}", metadata={**meta, "units": "HU"}),
        labels=LabelMap(labels, geometry, source=f"flr.phantom seed={int(seed)}", metadata=meta,
                        names=PHANTOM_LABELS, scheme=PHANTOM_SCHEME),
        liver=LabelMap(liver.astype(np.uint8), geometry, source=f"flr.phantom seed={int(seed)}", metadata=meta,
                       names={1: "liver"}, scheme="flr-phantom-liver"),
        truth=truth,
    )


def _truth(seed: int, oblique_deg: float, geometry: Geometry, labels: np.ndarray, liver: np.ndarray,
           tumors: list[dict[str, Any]], moved: int, crumbs: int, a: _Anatomy, hilum: bool,
           hilar_voxels: int) -> dict[str, Any]:
    vv = geometry.voxel_volume_ml
    counts = {k: int(np.count_nonzero(labels == k)) for k in PHANTOM_LABELS}
    label_rows = {str(k): {"name": PHANTOM_LABELS[k], "voxels": n, "volume_ml": n * vv} for k, n in counts.items()}
    pv_in = int(np.count_nonzero((labels == PORTAL_VEIN) & liver))
    hv_in = int(np.count_nonzero((labels == HEPATIC_VEIN) & liver))
    ivc_in_ellipsoid = int(np.count_nonzero(
        (labels == IVC) & ellipsoid_mask(geometry, a.liver_center_mm, a.liver_radii_mm, a.liver_axes)))
    liver_voxels = int(np.count_nonzero(liver))
    seg_voxels = sum(counts[k] for k in range(1, 9))
    # canonical structure names only; "liver" follows VESSEL_CONVENTION (intrahepatic vessels included)
    structures: dict[str, Any] = {
        "liver": {"voxels": liver_voxels, "volume_ml": liver_voxels * vv,
                  "segments_and_tumor_voxels": seg_voxels + counts[TUMOR],
                  "segments_and_tumor_volume_ml": (seg_voxels + counts[TUMOR]) * vv,
                  "intrahepatic_vessel_voxels": pv_in + hv_in},
    }
    for k in range(1, 10):
        structures[PHANTOM_LABELS[k]] = {"voxels": counts[k], "volume_ml": counts[k] * vv}
    for k, n_in in ((PORTAL_VEIN, pv_in), (HEPATIC_VEIN, hv_in), (IVC, 0)):
        structures[PHANTOM_LABELS[k]] = {
            "voxels": counts[k], "volume_ml": counts[k] * vv,
            "intrahepatic_voxels": n_in, "intrahepatic_volume_ml": n_in * vv,
            "extrahepatic_voxels": counts[k] - n_in, "extrahepatic_volume_ml": (counts[k] - n_in) * vv,
        }
    structures["inferior_vena_cava"]["within_liver_ellipsoid_voxels"] = ivc_in_ellipsoid
    ellipsoid_ml = ellipsoid_volume_ml(a.liver_radii_mm)
    overlap_ml = mm3_to_ml(_ivc_overlap_mm3(a))
    carve_ml = mm3_to_ml(_hilar_carve_mm3(a)) if hilum else 0.0
    tumor_rows = []
    for i, t in enumerate(tumors, start=1):
        crop = _ellipsoid_crop(geometry, t["center_mm"], [t["radius_mm"]] * 3)
        n = 0 if crop is None else int(np.count_nonzero(labels[crop[0]][crop[1]] == TUMOR))
        tumor_rows.append({
            "id": i, "center_mm": t["center_mm"], "radius_mm": t["radius_mm"],
            "segment": t["segment"], "segments": t["segments"],
            "analytic_volume_ml": sphere_volume_ml(t["radius_mm"]), "voxels": n, "volume_ml": n * vv,
        })
    adjacency = _face_adjacency(labels)
    return {
        "seed": int(seed),
        "oblique_deg": float(oblique_deg),
        "hilum": bool(hilum),
        "geometry": geometry.to_dict(),
        "scheme": PHANTOM_SCHEME,
        "label_names": {str(k): v for k, v in PHANTOM_LABELS.items()},
        "hu": dict(PHANTOM_HU),
        "noise_sd_hu": NOISE_SD_HU,
        "conventions": {
            "vessels": VESSEL_CONVENTION,
            "tumors": "segment = the segment of the tumour centre; segments = every segment the sphere "
                      f"occupies, each boundary being crossed or missed by at least {TUMOR_CLEARANCE_MM} mm; "
                      f"{TUMOR_CLEARANCE_MM} mm from the liver surface (the hilar carve included), the IVC and other "
                      "tumours, 1.5 mm "
                      "from the vessel tubes",
            "coordinates": "LPS mm (+x patient left, +y posterior, +z superior); arrays (z, y, x)",
            "counts": "np.count_nonzero on the final arrays; volume_ml = voxels * voxel_volume_ml",
        },
        "labels": label_rows,
        "structures": structures,
        "liver": {
            "ellipsoid_center_mm": list(a.liver_center_mm),
            "ellipsoid_radii_mm": list(a.liver_radii_mm),
            "ellipsoid_axes": a.liver_axes.tolist(),
            "ellipsoid_volume_ml": ellipsoid_ml,
            "ivc_overlap_ml": overlap_ml,
            "hilar_carve_ml": carve_ml,
            "analytic_volume_ml": ellipsoid_ml - overlap_ml - carve_ml,
            "voxels": liver_voxels,
            "hilar_carve_voxels": hilar_voxels,
            "volume_ml": liver_voxels * vv,
            "composition_voxels": {"segments": seg_voxels, "tumor": counts[TUMOR], "portal_vein": pv_in,
                                   "hepatic_vein": hv_in},
        },
        "segments": {str(k): {"voxels": counts[k], "volume_ml": counts[k] * vv} for k in range(1, 9)},
        "tumors": tumor_rows,
        "face_adjacency": adjacency,
        "segment_adjacency": [[p, q] for p, q, _ in adjacency if p <= 8 and q <= 8],
        "fragments_merged_voxels": moved,
        "liver_crumbs_dropped_voxels": crumbs,
        "anatomy": _anatomy_record(a, hilum),
    }


def _anatomy_record(a: _Anatomy, hilum: bool) -> dict[str, Any]:
    return {
        "body_semi_axes_mm": list(a.body_semi_axes_mm),
        "body_z_mm": list(a.body_z_mm),
        "ivc_axis_xy_mm": list(a.ivc_xy_mm),
        "ivc_radius_mm": a.ivc_radius_mm,
        "ivc_z_mm": list(a.ivc_z_mm),
        "portal_plane_z_mm": a.portal_z_mm,
        "hepatic_vein_confluence_z_mm": a.hv_confluence_z_mm,
        "plane_directions_xy": {"right_hepatic_vein": _unit(*a.rhv_dir).tolist(),
                                "middle_hepatic_vein": _unit(*a.mhv_dir).tolist(),
                                "umbilical_fissure": _unit(*a.umb_dir).tolist()},
        "segment_2_3_plane": {"point_mm": list(a.s23_point_mm), "normal_towards_2": _unit(*a.s23_normal).tolist()},
        "caudate": {"center_xy_mm": list(a.caudate_center_mm), "semi_axes_mm": list(a.caudate_semi_axes_mm),
                    "z_mm": list(a.caudate_z_mm)},
        "vessels": [{"name": v.name, "structure": PHANTOM_LABELS[v.label], "p0_mm": list(v.p0_mm),
                     "p1_mm": list(v.p1_mm), "radius_mm": v.radius_mm} for v in a.vessels],
        "hilum": {
            "carved": bool(hilum),
            "clearance_mm": a.hilar_clearance_mm,
            "hepatic_vein_stub_mm": a.hv_stub_mm,
            "pieces": [{"name": h.name, "vessel": h.vessel, "structure": PHANTOM_LABELS[h.label],
                        "p0_mm": list(h.p0_mm), "p1_mm": list(h.p1_mm), "vessel_radius_mm": h.vessel_radius_mm,
                        "radius_mm": h.radius_mm} for h in a.hilar_carve],
        },
    }
