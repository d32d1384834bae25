"""Images and label maps on a physical grid.

Axis order and coordinates (used everywhere in flr):

* arrays are indexed ``(z, y, x)`` (slowest to fastest), as SimpleITK returns them;
* ``spacing_mm``, ``origin_mm`` are given as ``(x, y, z)`` in LPS patient coordinates (DICOM);
* ``direction`` is the 3x3 matrix whose *columns* are the LPS unit vectors of the x, y and z index
  axes, stored row-major as nine floats (the SimpleITK/ITK convention).

A voxel with index ``(i, j, k)`` = ``(x, y, z)`` lies at
``origin_mm + direction @ (spacing_mm * (i, j, k))``.

Images are immutable: an :class:`Image` owns a read-only array, so changing the caller's array after
construction never changes the image, and methods derive new images. Construction copies the array
unless nothing could change it (see :class:`Image`); a reader that decodes a fresh array hands it over
without a copy by marking it read-only first (``array.flags.writeable = False``).

>>> import numpy as np
>>> g = Geometry(shape_zyx=(2, 3, 4), spacing_mm=(0.5, 0.5, 2.0))
>>> g.voxel_volume_ml
0.0005
>>> g.index_to_lps_mm((1, 0, 0)).tolist()    # z index 1 -> 2 mm along +z (superior)
[0.0, 0.0, 2.0]
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from flr.errors import GeometryError, GeometryMismatchError

IDENTITY_DIRECTION: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

#: Default tolerances for "same grid": readers of one CT can disagree in the 6th decimal (DICOM
#: decimal strings) and in the 14th (float arithmetic), never by a tenth of a micrometre.
SPACING_TOL_MM = 1e-4
ORIGIN_TOL_MM = 1e-3
DIRECTION_TOL = 1e-5
#: Tolerances between DICOM objects of one grid (slices of a series, SEG frames, RTSTRUCT planes): positions
#: written as decimal strings with two decimals are off by up to 0.005 mm; orientation cosines by 1e-5
#: and more when written with few digits; pixel spacings agree with :data:`SPACING_TOL_MM`.
POSITION_TOL_MM = 0.01
ORIENTATION_TOL = 1e-4


def mm3_to_ml(volume_mm3: float) -> float:
    """Convert cubic millimetres to millilitres (1 mL = 1000 mm^3). The only such conversion in flr."""
    return volume_mm3 / 1000.0


def grid_mask(mask: Any, what: str, shape: tuple[int, int, int]) -> np.ndarray:
    """``mask`` as a bool array (nonzero = inside) after checking it has the grid's ``shape`` (z, y, x).

    Raises :class:`GeometryMismatchError` naming ``what`` when the shapes differ.
    """
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise GeometryMismatchError(f"{what} has shape (z,y,x) {arr.shape}, the grid has {tuple(shape)}; "
                                    "resample it onto the label map's grid first")
    return arr if arr.dtype == np.bool_ else arr != 0


def _as_float_tuple(values: Sequence[float] | np.ndarray, n: int, what: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise GeometryError(f"{what} must be {n} numbers, got {str(values)[:80]}") from None
    if len(out) != n:
        raise GeometryError(f"{what} needs {n} values, got {len(out)}: {str(out)[:80]}")
    if not all(math.isfinite(v) for v in out):
        raise GeometryError(f"{what} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class Geometry:
    """Voxel grid in LPS patient space: shape (z, y, x), spacing/origin (x, y, z), direction."""

    shape_zyx: tuple[int, int, int]
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = IDENTITY_DIRECTION

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape_zyx)
        if len(shape) != 3 or any(s < 1 for s in shape):
            raise GeometryError(f"shape_zyx must be three positive sizes, got {self.shape_zyx}")
        spacing = _as_float_tuple(self.spacing_mm, 3, "spacing_mm")
        if any(s <= 0 for s in spacing):
            raise GeometryError(f"spacing_mm must be positive, got {spacing}")
        origin = _as_float_tuple(self.origin_mm, 3, "origin_mm")
        direction = _as_float_tuple(np.asarray(self.direction, dtype=float).ravel(), 9, "direction")
        d = np.asarray(direction).reshape(3, 3)
        if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
            raise GeometryError(f"direction must be orthonormal, got {direction}")
        object.__setattr__(self, "shape_zyx", shape)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_mm", origin)
        object.__setattr__(self, "direction", direction)

    # --- derived quantities -------------------------------------------------------------------
    @property
    def direction_matrix(self) -> np.ndarray:
        """3x3 array; column c is the LPS direction of index axis c (0=x, 1=y, 2=z)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        """Spacing in array-axis order (z, y, x), as scipy/skimage ``sampling=``/``spacing=`` want it."""
        sx, sy, sz = self.spacing_mm
        return (sz, sy, sx)

    @property
    def voxel_volume_mm3(self) -> float:
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz

    @property
    def voxel_volume_ml(self) -> float:
        return mm3_to_ml(self.voxel_volume_mm3)

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping (x, y, z, 1) indices to LPS millimetres."""
        a = np.eye(4)
        a[:3, :3] = self.direction_matrix * np.asarray(self.spacing_mm)[None, :]
        a[:3, 3] = self.origin_mm
        return a

    def index_to_lps_mm(self, index_zyx: Sequence[float]) -> np.ndarray:
        """LPS position (x, y, z) in mm of a (z, y, x) voxel index (fractional allowed)."""
        z, y, x = (float(v) for v in index_zyx)
        return self.affine_lps[:3, :3] @ np.array([x, y, z]) + np.asarray(self.origin_mm)

    def cropped(self, box: Sequence[slice]) -> Geometry:
        """The grid of the sub-volume ``box`` ((z, y, x) slices with steps of 1): same spacing and direction,
        the origin moved to the box's first voxel, so every voxel keeps its LPS position."""
        lo = [int(b.start or 0) for b in box]
        z, y, x = (int(b.stop) - a for b, a in zip(box, lo, strict=True))
        origin = self.index_to_lps_mm(lo)
        return Geometry((z, y, x), self.spacing_mm, (float(origin[0]), float(origin[1]), float(origin[2])),
                        self.direction)

    def is_oblique(self, tol: float = DIRECTION_TOL) -> bool:
        """True when the index axes are not aligned with the patient axes (up to permutation/sign)."""
        d = np.abs(self.direction_matrix)
        return bool(np.any((d > tol) & (d < 1 - tol)))

    # --- comparison ---------------------------------------------------------------------------
    def mismatch(
        self,
        other: Geometry,
        *,
        spacing_tol_mm: float = SPACING_TOL_MM,
        origin_tol_mm: float = ORIGIN_TOL_MM,
        direction_tol: float = DIRECTION_TOL,
    ) -> str | None:
        """Describe how ``other`` differs from this grid beyond the tolerances, or None if it does not."""
        if self.shape_zyx != other.shape_zyx:
            return f"shape (z,y,x) {self.shape_zyx} vs {other.shape_zyx}"
        ds = np.max(np.abs(np.subtract(self.spacing_mm, other.spacing_mm)))
        if ds > spacing_tol_mm:
            return f"spacing differs by {ds:.3g} mm (tolerance {spacing_tol_mm} mm)"
        do = np.max(np.abs(np.subtract(self.origin_mm, other.origin_mm)))
        if do > origin_tol_mm:
            return f"origin differs by {do:.3g} mm (tolerance {origin_tol_mm} mm)"
        dd = np.max(np.abs(np.subtract(self.direction, other.direction)))
        if dd > direction_tol:
            return f"direction differs by {dd:.3g} (tolerance {direction_tol})"
        return None

    def same_grid(self, other: Geometry, **tolerances: float) -> bool:
        return self.mismatch(other, **tolerances) is None

    def require_same_grid(self, other: Geometry, *, this: str, that: str, **tolerances: float) -> None:
        """Raise :class:`GeometryMismatchError` naming both grids when they differ."""
        why = self.mismatch(other, **tolerances)
        if why is not None:
            raise GeometryMismatchError(
                f"{that} is not on the grid of {this}: {why}; {this}: {self.describe()}; "
                f"{that}: {other.describe()} (resample it onto the reference grid first)"
            )

    def describe(self) -> str:
        """One-line human description."""
        sp = ", ".join(f"{v:g}" for v in self.spacing_mm)
        og = ", ".join(f"{v:.3f}" for v in self.origin_mm)
        di = ", ".join(f"{v:.4g}" for v in self.direction)
        return f"shape (z,y,x)={self.shape_zyx} spacing (x,y,z)=({sp}) mm origin=({og}) mm direction=({di})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape_zyx": list(self.shape_zyx),
            "spacing_mm": list(self.spacing_mm),
            "origin_mm": list(self.origin_mm),
            "direction": list(self.direction),
            "voxel_volume_ml": self.voxel_volume_ml,
            "coordinate_system": "LPS",
        }


def _is_frozen_memory(array: np.ndarray) -> bool:
    """True when nothing can write to ``array``'s memory through numpy: ``array`` and every array it is a
    view of are read-only, and the memory is not a memory-mapped file (which another process may change)."""
    base: object = array
    while isinstance(base, np.ndarray):
        if base.flags.writeable or isinstance(base, np.memmap):
            return False
        base = base.base
    return not isinstance(base, mmap.mmap)


def _copy(array: Any) -> np.ndarray:
    """A fresh array owning its data, in the memory layout of ``array`` (a plain ndarray, never a subclass)."""
    return np.array(array, order="K", subok=False)


def _owned_read_only(array: Any) -> np.ndarray:
    """``array`` as an ndarray nobody else can change: kept if its memory is frozen, else a read-only copy.

    Either way the result is a view, so its ``writeable`` flag cannot be set back to True through it.
    """
    if not (isinstance(array, np.ndarray) and _is_frozen_memory(array)):
        array = _copy(array)
        array.flags.writeable = False
    return array.view(np.ndarray)


@dataclass(frozen=True, repr=False)
class Image:
    """An array (z, y, x) on a :class:`Geometry`. Read-only; derive new images, never mutate.

    The image owns its array: a writeable array, a view of writeable memory or of a memory-mapped file, and
    anything that is not an ndarray are copied (keeping the memory layout) and the copy made read-only, so
    the caller's array stays writeable and changing it later does not change the image. An array that
    is read-only all the way down (it owns its data, or it and every array it is a view of are read-only,
    down to the buffer holding the data, e.g. the bytes a decoder filled) is kept without a copy: whoever
    made it read-only handed it over; one who sets an owner's ``writeable`` flag back to True, or writes
    to the raw buffer, breaks that contract on purpose. ``metadata`` is copied (shallowly).

    >>> a = np.zeros((1, 2, 2), np.int16)
    >>> img = Image(a, Geometry((1, 2, 2)))
    >>> a[0, 0, 0] = 7                      # the caller's array, not the image's
    >>> int(img.array[0, 0, 0]), img.array.flags.writeable
    (0, False)
    >>> np.shares_memory(Image(img.array, img.geometry).array, img.array)   # read-only already: no copy
    True
    """

    array: np.ndarray
    geometry: Geometry
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = np.shape(self.array)
        if len(shape) != 3:
            raise GeometryError(f"image array must be 3-D (z, y, x), got shape {shape}")
        if tuple(shape) != self.geometry.shape_zyx:
            raise GeometryError(f"array shape {shape} != geometry shape {self.geometry.shape_zyx}")
        object.__setattr__(self, "array", _owned_read_only(self.array))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.geometry.spacing_mm

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        return self.geometry.origin_mm

    @property
    def direction(self) -> tuple[float, ...]:
        return self.geometry.direction

    @property
    def voxel_volume_ml(self) -> float:
        return self.geometry.voxel_volume_ml

    def __repr__(self) -> str:
        sp = ", ".join(f"{v:g}" for v in self.spacing_mm)
        return (f"{type(self).__name__}(shape_zyx={self.geometry.shape_zyx}, dtype={self.array.dtype}, "
                f"spacing_mm=({sp}), source={self.source!r}{self._repr_extra()})")

    def _repr_extra(self) -> str:
        return ""

    def with_array(self, array: np.ndarray) -> Image:
        """A new :class:`Image` of ``array`` on this grid, with this source and metadata (copied as on construction)."""
        return Image(array, self.geometry, self.source, self.metadata)

    def region(self, box: Sequence[slice]) -> np.ndarray:
        """The voxels of the sub-volume ``box`` ((z, y, x) slices with steps of 1, on this grid), read-only.

        Here a view of :attr:`array`; a :class:`LazyImage` decodes only what the box needs. Either way the
        values are those of ``array[box]``.

        >>> img = Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), Geometry((2, 3, 4)))
        >>> img.region((slice(1, 2), slice(0, 3), slice(2, 4))).tolist()
        [[[14, 15], [18, 19], [22, 23]]]
        """
        return self.array[checked_box(box, self.geometry.shape_zyx)]


@dataclass(frozen=True, repr=False)
class LabelMap(Image):
    """An integer label image plus the map ``label id -> canonical structure name``.

    ``names`` holds only the ids the label scheme names (a copy of the mapping given); ``scheme`` is the
    scheme's name. The array is owned and read-only as for :class:`Image`.
    """

    names: Mapping[int, str] = field(default_factory=dict)
    scheme: str = "custom"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer):
            raise ValueError(f"label map array must be integer, got {self.array.dtype}")
        object.__setattr__(self, "names", {int(k): str(v) for k, v in self.names.items()})

    def _repr_extra(self) -> str:
        names = ", ".join(f"{k}: {v}" for k, v in list(self.names.items())[:6])
        more = f", ... {len(self.names) - 6} more" if len(self.names) > 6 else ""
        return f", scheme={self.scheme!r}, names={{{names}{more}}}"

    def ids_of(self, name: str) -> list[int]:
        """Label ids carrying ``name`` (several ids may map to one name)."""
        return sorted(i for i, n in self.names.items() if n == name)

    def label_stats(self, *, n_threads: int | None = None) -> Any:
        """:func:`flr.kernels.label_stats` of the array, counted on the first call and remembered (the array is
        read-only): reading, the assessment's box and volumetry share one pass over the map (issue 14).
        ``n_threads`` applies to that first pass; the result does not depend on it.

        >>> lm = LabelMap(np.array([[[0, 2, 2]]], np.uint8), Geometry((1, 1, 3)), names={2: "liver"})
        >>> lm.label_stats().count(2), lm.label_stats() is lm.label_stats()
        (2, True)
        """
        stats = self.__dict__.get("_label_stats")
        if stats is None:
            from flr.kernels import label_stats

            stats = label_stats(self.array, n_threads=n_threads)
            self._remember_label_stats(stats)
        return stats

    def _remember_label_stats(self, stats: Any) -> LabelMap:
        """Keep ``stats`` as :meth:`label_stats` (a reader that counted this map's array before building it)."""
        object.__setattr__(self, "_label_stats", stats)
        return self


Box = tuple[slice, slice, slice]


def checked_box(box: Sequence[slice], shape_zyx: Sequence[int]) -> Box:
    """``box`` as three slices ``start:stop`` within ``shape_zyx`` (None filled in, negative bounds counted from
    the end as numpy does); a box that is not three slices of step 1, or holds no voxel, is a :class:`GeometryError`.

    >>> checked_box((slice(None), slice(1, -1), slice(0, 9)), (2, 4, 5))
    (slice(0, 2, None), slice(1, 3, None), slice(0, 5, None))
    """
    parts = tuple(box)
    if len(parts) != 3 or not all(isinstance(b, slice) for b in parts):
        raise GeometryError(f"a box is three slices (z, y, x), got {str(box)[:80]}")
    out = []
    for b, n in zip(parts, shape_zyx, strict=True):
        start, stop, step = b.indices(int(n))
        if step != 1 or stop <= start:
            raise GeometryError(f"box {parts} must select at least one voxel per axis with steps of 1 on a grid of "
                                f"shape (z,y,x) {tuple(shape_zyx)}")
        out.append(slice(start, stop))
    return (out[0], out[1], out[2])


class VoxelSource(Protocol):
    """Where a :class:`LazyImage`'s voxels come from: :mod:`flr.io` makes these (the image never touches a file).

    ``read(None)`` decodes the whole volume (z, y, x); ``read(box)`` the voxels of a checked box
    (:func:`checked_box`), equal to ``read(None)[box]``. Each call returns a fresh array that nothing else holds
    (the image takes it over without a copy). ``partial`` is False for a source that can only decode everything
    (the image then decodes once, keeps the volume and slices it).
    """

    @property
    def partial(self) -> bool: ...

    def read(self, box: Box | None) -> np.ndarray: ...


class LazyImage(Image):
    """An :class:`Image` whose voxels are decoded only when asked for (:func:`flr.io.open_image`).

    ``geometry``, ``source`` and ``metadata`` are there at once; :attr:`array` decodes the whole volume on first
    use and keeps it; :meth:`region` decodes only the voxels of a box (when the source can) and keeps nothing, so a
    check that reads the CT inside the liver never holds the whole CT. Values are those of the full read either
    way; so are the errors a decode meets (an :class:`~flr.errors.InputFileError` naming the file), raised when the
    voxels are asked for. Everything else is an :class:`Image`'s (read-only, derive new images). Two lazy images
    are equal only when they are the same object (comparing would decode them).

    >>> class Ramp:
    ...     partial = True
    ...     def read(self, box):
    ...         full = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    ...         return full if box is None else full[box]
    >>> img = LazyImage(Geometry((2, 3, 4)), "ramp", {}, Ramp())
    >>> img.region((slice(0, 1), slice(0, 1), slice(1, 3))).tolist(), img.decoded
    ([[[1, 2]]], False)
    >>> int(img.array[1, 2, 3]), img.decoded
    (23, True)
    """

    _voxels: VoxelSource
    _array: np.ndarray | None

    def __init__(self, geometry: Geometry, source: str | None, metadata: Mapping[str, Any],
                 voxels: VoxelSource) -> None:
        object.__setattr__(self, "geometry", geometry)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "metadata", dict(metadata))
        object.__setattr__(self, "_voxels", voxels)
        object.__setattr__(self, "_array", None)

    @property
    def array(self) -> np.ndarray:
        """The whole volume (z, y, x), decoded on first use and kept (read-only)."""
        cached = self._array
        if cached is None:
            cached = self._owned(self._voxels.read(None), self.geometry.shape_zyx)
            object.__setattr__(self, "_array", cached)
        return cached

    @property
    def decoded(self) -> bool:
        """Whether the whole volume has been decoded (and is held)."""
        return self._array is not None

    def region(self, box: Sequence[slice]) -> np.ndarray:
        """The voxels of ``box`` (see :meth:`Image.region`): decoded for the box alone unless the whole volume is
        held already or the source cannot read less."""
        checked = checked_box(box, self.geometry.shape_zyx)
        if self.decoded or not self._voxels.partial:
            return self.array[checked]
        return self._owned(self._voxels.read(checked), tuple(b.stop - b.start for b in checked))

    @staticmethod
    def _owned(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """A source's fresh array, taken over: read-only all the way down (no copy), checked against ``shape``."""
        if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
            raise GeometryError(f"decoded voxels have shape {np.shape(array)}, expected {tuple(shape)}")
        base: object = array
        while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
            base.flags.writeable = False
            base = base.base
        return _owned_read_only(array)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        sp = ", ".join(f"{v:g}" for v in self.spacing_mm)
        state = f"dtype={self.array.dtype}" if self.decoded else "not decoded"
        return (f"LazyImage(shape_zyx={self.geometry.shape_zyx}, {state}, spacing_mm=({sp}), "
                f"source={self.source!r})")


#: Patient sides at the (negative, positive) end of the LPS x, y and z axes.
PATIENT_SIDES: tuple[tuple[str, str], ...] = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))


def patient_side(vector_lps: Sequence[float] | np.ndarray, *, letter: bool = False) -> str:
    """The patient side a direction points to (its dominant LPS component): ``"left"`` or, with ``letter``, ``"L"``.

    >>> patient_side((0.0, -0.2, 0.9)), patient_side((-1.0, 0.0, 0.0), letter=True)
    ('superior', 'R')
    """
    v = np.asarray(vector_lps, dtype=float)
    k = int(np.argmax(np.abs(v)))
    side = PATIENT_SIDES[k][1 if v[k] > 0 else 0]
    return side[0].upper() if letter else side
