"""A case, validated once: label maps on one common grid, the CT, and the anatomy they name.

:class:`Case` checks the grid rule (the CT's grid wins when a CT is given, else the first label map's)
once; :func:`gather_anatomy` turns the named labels into the masks an assessment works on.

>>> import numpy as np
>>> from flr.image import Geometry, LabelMap
>>> arr = np.zeros((3, 4, 5), np.uint8); arr[1, 1:3, 1:4] = 1; arr[1, 1:3, 4] = 2
>>> case = Case.build([LabelMap(arr, Geometry(arr.shape), names={1: "liver_segment_2", 2: "tumor"})])
>>> a = gather_anatomy(case)
>>> a.present_segments, int(a.liver.sum()), int(a.tumor.sum())
(('liver_segment_2',), 8, 2)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from flr.anatomy import SEGMENT_BY_CODE, SEGMENT_BY_NAME, SEGMENT_NAMES
from flr.errors import EmptyStructureError
from flr.image import Geometry, Image, LabelMap
from flr.schemes import VESSEL_NAMES

__all__ = ["Case", "CaseAnatomy", "anatomy_box", "anatomy_on_box", "gather_anatomy"]


@dataclass(frozen=True, repr=False)
class Case:
    """Label maps on one grid (``geometry``) and, optionally, the CT that grid belongs to.

    The CT may be a :class:`~flr.image.LazyImage` (:func:`flr.io.open_image`): a case needs its grid and
    metadata alone, and what reads its intensities asks for a box (:meth:`~flr.image.Image.region`)."""

    label_maps: tuple[LabelMap, ...]
    ct: Image | None = None

    @classmethod
    def build(cls, label_maps: Sequence[LabelMap], ct: Image | None = None) -> Case:
        """Validate the grid rule once.

        Raises
        ------
        ValueError
            No label map.
        GeometryMismatchError
            A label map is not on the reference grid (the message names both grids).
        """
        maps = tuple(label_maps)
        if not maps:
            raise ValueError("a case needs at least one label map")
        reference: Image = ct if ct is not None else maps[0]
        ref_name = f"CT {ct.source}" if ct is not None else f"label map {maps[0].source}"
        for lm in maps:
            if lm is not reference:
                reference.geometry.require_same_grid(lm.geometry, this=ref_name, that=f"label map {lm.source}")
        return cls(maps, ct)

    @property
    def geometry(self) -> Geometry:
        """The common grid."""
        return self.ct.geometry if self.ct is not None else self.label_maps[0].geometry

    @property
    def sources(self) -> str:
        """The label maps' sources, for messages."""
        return ", ".join(str(lm.source) for lm in self.label_maps)

    def __repr__(self) -> str:
        ct = f", ct={self.ct.source!r}" if self.ct is not None else ""
        return f"Case({len(self.label_maps)} label maps{ct}, shape_zyx={self.geometry.shape_zyx})"


@dataclass(frozen=True, repr=False)
class CaseAnatomy:
    """The masks (z, y, x) of a case's named structures on its grid.

    ``segment_map`` holds segment codes (:data:`flr.anatomy.SEGMENT_CODES`) on segment parenchyma, 0
    elsewhere; ``liver`` is the union of outline, segments and tumours; ``tumor_instances`` the instance
    ids of a map whose tumours carry them (else None); ``vessels`` one bool mask per vessel name.
    """

    geometry: Geometry
    segment_map: np.ndarray
    liver: np.ndarray
    tumor: np.ndarray
    tumor_instances: np.ndarray | None
    vessels: Mapping[str, np.ndarray] = field(default_factory=dict)
    has_outline: bool = False
    #: the union of the ``liver`` labels alone (None without one), for checks against the segments
    outline: np.ndarray | None = None
    #: the label maps the tumours and the outline come from (their sources)
    tumor_sources: frozenset[str] = frozenset()
    outline_sources: frozenset[str] = frozenset()
    #: the label maps whose names declare a ``tumor`` label, with or without voxels (a tumour mask given)
    tumor_labelled_sources: frozenset[str] = frozenset()
    #: the sub-volume of the case grid these masks cover (:func:`anatomy_box`); None: the whole grid
    box: tuple[slice, slice, slice] | None = None

    @functools.cached_property
    def present_segments(self) -> tuple[str, ...]:
        """Canonical names of the segments with voxels, in code order."""
        from flr.kernels import value_counts  # one pass, no int64 copy of the map (issue 14)

        codes, _ = value_counts(self.segment_map)
        return tuple(SEGMENT_BY_CODE[int(c)].name for c in codes if c > 0)

    def __repr__(self) -> str:
        return (f"CaseAnatomy(shape_zyx={self.geometry.shape_zyx}, segments={list(self.present_segments)}, "
                f"vessels={sorted(self.vessels)}, has_outline={self.has_outline})")


_ANATOMY_NAMES = frozenset(("liver", "tumor", *SEGMENT_NAMES, *VESSEL_NAMES))


def _tumor_instances(lm: LabelMap, arr: np.ndarray) -> np.ndarray | None:
    tumor_ids = lm.ids_of("tumor")
    if len(tumor_ids) <= 1:
        return None
    return np.where(np.isin(arr, tumor_ids), arr, 0).astype(np.int32)


#: Voxels added on each side of :func:`anatomy_box` (clipped at the grid): a face neighbour of every structure
#: voxel stays inside, so adjacency and borders are measured as on the whole grid.
BOX_MARGIN_VOXELS = 1


def anatomy_box(case: Case) -> tuple[slice, slice, slice] | None:
    """The smallest box (z, y, x slices) of the case grid holding every voxel of a liver structure (liver,
    segments, tumours, vessels), grown by :data:`BOX_MARGIN_VOXELS`; None when no such voxel exists.

    The bounding boxes of :meth:`flr.image.LabelMap.label_stats` (one pass per map, shared with reading and
    volumetry). Everything an assessment measures lies in this box (the parenchyma, the vessels and their
    trunks), and every nearest-feature search looks for structure voxels, which all lie in it: results on
    the box equal those on the grid.
    """
    lo = np.array(case.geometry.shape_zyx)
    hi = np.zeros(3, np.int64)
    for lm in case.label_maps:
        wanted = [int(k) for k, n in lm.names.items() if n in _ANATOMY_NAMES]
        if not wanted:
            continue
        stats = lm.label_stats()
        for label in wanted:
            where = np.searchsorted(stats.labels, label)
            if where < len(stats.labels) and stats.labels[where] == label:
                b = np.asarray(stats.bbox_zyx[where])
                lo, hi = np.minimum(lo, b[:3]), np.maximum(hi, b[3:] + 1)
    if np.any(hi <= lo):
        return None
    shape = np.array(case.geometry.shape_zyx)
    lo = np.maximum(lo - BOX_MARGIN_VOXELS, 0)
    hi = np.minimum(hi + BOX_MARGIN_VOXELS, shape)
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))


def anatomy_on_box(case: Case) -> CaseAnatomy | None:
    """:func:`gather_anatomy` on :func:`anatomy_box`, as the assessment builds it, or None when the case has no
    liver, segment or tumour voxel. Every consistency check and the multi-map liver union give on this box what
    they give on the whole grid, without whole-grid masks (issue 14, memory)."""
    box = anatomy_box(case)
    if box is None:
        return None
    try:
        return gather_anatomy(case, box=box)
    except EmptyStructureError:
        return None


def gather_anatomy(case: Case, box: tuple[slice, slice, slice] | None = None) -> CaseAnatomy:
    """The masks of every named liver structure of ``case``, on the whole grid or on ``box`` (its geometry
    then the box's, :meth:`flr.image.Geometry.cropped`).

    Raises
    ------
    EmptyStructureError
        No liver, segment or tumour voxel in any label map.
    """
    geometry = case.geometry if box is None else case.geometry.cropped(box)
    shape = geometry.shape_zyx
    seg = np.zeros(shape, np.uint8)  # segment codes 1-10: one byte a voxel (issue 14, memory)
    liver = np.zeros(shape, bool)
    tumor = np.zeros(shape, bool)
    instances: np.ndarray | None = None
    vessels: dict[str, np.ndarray] = {}
    outline: np.ndarray | None = None
    tumor_src: set[str] = set()
    outline_src: set[str] = set()
    labelled_src: set[str] = set()
    for lm in case.label_maps:
        arr = lm.array if box is None else lm.array[box]
        for label, name in lm.names.items():
            if name not in _ANATOMY_NAMES:
                continue
            if name == "tumor":
                labelled_src.add(str(lm.source))
            m = arr == label
            if not m.any():
                continue
            if name in SEGMENT_BY_NAME:
                seg[m] = SEGMENT_BY_NAME[name].code
                liver |= m
            elif name == "liver":
                liver |= m
                outline = m if outline is None else outline | m
                outline_src.add(str(lm.source))
            elif name == "tumor":
                tumor |= m
                liver |= m
                tumor_src.add(str(lm.source))
            else:
                vessels[name] = vessels[name] | m if name in vessels else m
        inst = _tumor_instances(lm, arr)
        if inst is not None:
            instances = inst if instances is None else np.maximum(instances, inst)
    if not liver.any():
        raise EmptyStructureError(f"no liver, segment or tumour labels in {case.sources}")
    return CaseAnatomy(geometry, seg, liver, tumor, instances, vessels, outline is not None, outline,
                       frozenset(tumor_src), frozenset(outline_src), frozenset(labelled_src), box)
