"""Consistency checks that turn silently wrong answers into warnings (or, with ``strict``, errors).

A volumetry tool must not give a confident number from inputs that contradict each other. Each check
below compares two independent views of the same liver and reports the figures:

* **Liver on soft tissue** (with a CT): the share of liver voxels between :data:`SOFT_TISSUE_HU`. Liver
  parenchyma is 40-70 HU unenhanced and up to about 150 HU in the portal venous phase; steatosis lowers
  it to about -50 HU; contrast-filled portal and hepatic veins stay below 300 HU. Only partial-volume
  voxels at the dome (lung) and the surface (fat) fall outside, a few percent of a liver mask. A mask that
  is flipped, shifted or from another scan lands partly on air, lung, fat, bowel gas or bone: on
  TotalSegmentator's example CT the true liver mask has 99.99 % of its voxels in range, the same mask
  flipped along any axis 84-91 % (``tests/test_sanity.py``). Below :data:`MIN_SOFT_TISSUE_SHARE` the
  mask is flagged.
* **Outline against segments**: a whole-liver outline and the union of the Couinaud segments describe the
  same organ; the outline may add intrahepatic vessels and tumours that a segment map leaves out (5.3 %
  of the phantom's outline; 0 % in the real MSD8 Couinaud maps), so agreement is judged by Dice
  (:data:`MIN_OUTLINE_DICE`) and by the share of segment voxels outside the outline
  (:data:`MAX_SEGMENTS_OUTSIDE_OUTLINE`), which real maps do not have (0 % in MSD8).
* **Tumours outside the liver**: a tumour that touches no liver parenchyma (no voxel of it within one
  voxel of the outline or a segment) is not a liver tumour: refused. With an outline from another file
  than the tumours, tumour voxels outside the outline are reported.
* **Missing segments**: a Couinaud map without some of segments I-VIII is named (real datasets hold such
  cases); a plan that removes a missing segment is refused by the plan itself.

>>> SOFT_TISSUE_HU, MIN_SOFT_TISSUE_SHARE, MIN_OUTLINE_DICE
((-100.0, 300.0), 0.95, 0.9)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flr.anatomy import SEGMENT_NAMES, roman_numeral
from flr.case import Case, CaseAnatomy, anatomy_on_box
from flr.distance import bbox_zyx
from flr.errors import InconsistentCaseError
from flr.results import Finding

__all__ = [
    "MAX_SEGMENTS_OUTSIDE_OUTLINE",
    "MIN_OUTLINE_DICE",
    "MIN_SOFT_TISSUE_SHARE",
    "SOFT_TISSUE_HU",
    "Finding",
    "check_case",
    "soft_tissue_share",
]

#: HU range of liver parenchyma and its vessels on any CT phase (see the module docstring).
SOFT_TISSUE_HU = (-100.0, 300.0)
#: A liver mask with a smaller share of its voxels in :data:`SOFT_TISSUE_HU` is flagged.
MIN_SOFT_TISSUE_SHARE = 0.95
#: A whole-liver outline and the union of its segments agree at least this well (Dice).
MIN_OUTLINE_DICE = 0.90
#: At most this share of segment voxels may lie outside the whole-liver outline.
MAX_SEGMENTS_OUTSIDE_OUTLINE = 0.02
_MAIN_SEGMENTS = tuple(n for n in SEGMENT_NAMES if n[-1].isdigit())  # I-VIII (IVa/IVb count as IV)


def _finding(code: str, message: str) -> Finding:
    return Finding(code=code, message=message)


def soft_tissue_share(ct_hu: np.ndarray, mask: np.ndarray) -> float:
    """Share (0-1) of the voxels of ``mask`` whose CT value lies in :data:`SOFT_TISSUE_HU` (nan when empty)."""
    values = np.asarray(ct_hu)[mask]
    if values.size == 0:
        return float("nan")
    lo, hi = SOFT_TISSUE_HU
    return float(np.count_nonzero((values >= lo) & (values <= hi)) / values.size)


def _extent(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """The bounding box (z, y, x slices) of a mask's voxels (the mask has some)."""
    out = []
    for axis in range(3):
        hit = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return (out[0], out[1], out[2])


def _soft_tissue(case: Case, liver: np.ndarray, box: tuple[slice, slice, slice] | None = None) -> list[Finding]:
    """The liver-on-soft-tissue finding; ``liver`` lies on ``box`` of the case grid (None: the whole grid).

    Only the CT's voxels in the liver's bounding box are read (:meth:`flr.image.Image.region`: a CT opened by
    :func:`flr.io.open_image` decodes no more), so the share is that of the whole grid, from a fraction of the CT.
    """
    if case.ct is None or not liver.any():
        return []
    extent = _extent(liver)
    start = (0, 0, 0) if box is None else tuple(int(b.start or 0) for b in box)
    on_grid = tuple(slice(s + e.start, s + e.stop) for s, e in zip(start, extent, strict=True))
    share = soft_tissue_share(case.ct.region(on_grid), liver[extent])
    if share >= MIN_SOFT_TISSUE_SHARE:
        return []
    lo, hi = SOFT_TISSUE_HU
    return [_finding("liver_not_soft_tissue",
                    f"only {share:.1%} of the liver mask lies on soft tissue ({lo:g} to {hi:g} HU) of CT "
                    f"{case.ct.source} (a liver mask on its own CT: >= {MIN_SOFT_TISSUE_SHARE:.0%}): "
                    "is the mask flipped, shifted or from another scan?")]


def _outline_agreement(m: CaseAnatomy, voxel_ml: float) -> list[Finding]:
    seg = m.segment_map > 0
    if m.outline is None or not seg.any():
        return []
    both = int(np.count_nonzero(m.outline & seg))
    n_out, n_seg = int(np.count_nonzero(m.outline)), int(np.count_nonzero(seg))
    dice = 2.0 * both / (n_out + n_seg)
    outside = (n_seg - both) / n_seg
    out = []
    if dice < MIN_OUTLINE_DICE:
        out.append(_finding("outline_disagrees",
                           f"the whole-liver outline ({n_out * voxel_ml:.1f} mL) and the union of "
                           f"the segments ({n_seg * voxel_ml:.1f} mL) disagree: Dice {dice:.3f} "
                           f"< {MIN_OUTLINE_DICE:g}; are they from the same scan and orientation?"))
    if outside > MAX_SEGMENTS_OUTSIDE_OUTLINE:
        out.append(_finding("segments_outside_outline",
                           f"{outside:.1%} of the segment voxels ({(n_seg - both) * voxel_ml:.1f} mL) lie outside the "
                           f"whole-liver outline (at most {MAX_SEGMENTS_OUTSIDE_OUTLINE:.0%} expected)"))
    return out


def _grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` and its 6-neighbours."""
    out = mask.copy()
    for axis in range(3):
        for shift in (1, -1):
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            src[axis] = slice(None, -1) if shift == 1 else slice(1, None)
            dst[axis] = slice(1, None) if shift == 1 else slice(None, -1)
            out[tuple(dst)] |= mask[tuple(src)]
    return out


def _tumors_outside(m: CaseAnatomy, case: Case) -> list[Finding]:
    """Refuses a tumour touching no parenchyma; reports tumour voxels outside an outline from another file."""
    from flr.kernels import components_of_mask

    box = bbox_zyx(m.tumor)
    if box is None:
        return []
    parenchyma = m.segment_map > 0
    if m.outline is not None:
        parenchyma |= m.outline
    if not parenchyma.any():
        return []
    comp, sizes = components_of_mask(m.tumor)
    # the tumours' box and one voxel around it hold every parenchyma voxel a tumour voxel can touch
    near = tuple(slice(max(0, box[a] - 1), box[3 + a] + 2) for a in range(3))
    touching = np.unique(comp[near][_grown(parenchyma[near]) & m.tumor[near]])
    lonely = sorted(set(range(1, sizes.size + 1)) - {int(t) for t in touching})
    vv_ml = case.geometry.voxel_volume_ml
    if lonely:
        ml = sum(int(sizes[k - 1]) for k in lonely) * vv_ml
        raise InconsistentCaseError(
            f"{len(lonely)} tumour piece(s) ({ml:.1f} mL) in {', '.join(sorted(m.tumor_sources))} touch no liver "
            "parenchyma: not liver tumours (another organ's label, or a mask from another scan?)")
    if m.outline is None or m.tumor_sources <= m.outline_sources:
        return []  # LiTS-style maps carve tumours out of the liver label: no outline to hold them to
    outside = int(np.count_nonzero(m.tumor & ~m.outline & ~(m.segment_map > 0)))
    if not outside:
        return []
    return [_finding("tumor_outside_outline",
                    f"{outside * vv_ml:.1f} mL of tumour ({outside / int(np.count_nonzero(m.tumor)):.1%}) lies outside "
                    "the whole-liver outline: that part is not liver")]


def _missing_segments(m: CaseAnatomy) -> list[Finding]:
    present = set(m.present_segments)  # counted once for the anatomy (one label_stats pass)
    if not present:
        return []
    if present & {"liver_segment_4a", "liver_segment_4b"}:
        present.add("liver_segment_4")
    missing = [n for n in _MAIN_SEGMENTS if n not in present]
    if not missing:
        return []
    return [_finding("segments_missing",
                    f"the segment map lacks segment(s) {', '.join(roman_numeral(n) for n in missing)}: their "
                    "parenchyma is counted in the neighbouring territories, and a plan removing them is refused")]


def check_case(case: Case, *, anatomy: CaseAnatomy | None = None, strict: bool = False) -> tuple[Finding, ...]:
    """Every consistency finding of ``case`` (module docstring); ``strict`` raises on any finding.

    ``anatomy`` is the case's :func:`~flr.case.gather_anatomy` when the caller has it already (built here
    otherwise).

    Raises
    ------
    InconsistentCaseError
        A tumour touches no liver parenchyma (always), or any finding with ``strict``.
    """
    if anatomy is None:
        anatomy = anatomy_on_box(case)  # the same findings as on the whole grid, from the liver's box
        if anatomy is None:
            return ()  # no liver, segment or tumour: nothing to hold against each other
    m = anatomy
    findings = [*_soft_tissue(case, m.liver, m.box), *_outline_agreement(m, case.geometry.voxel_volume_ml),
                *_tumors_outside(m, case), *_missing_segments(m)]
    if strict and findings:
        raise InconsistentCaseError(f"{case.sources}: " + "; ".join(f.message for f in findings)
                                    + " (--strict: inconsistencies are errors)")
    return tuple(findings)


def finding_codes(findings: Sequence[Finding]) -> list[str]:
    """The codes of ``findings``, for tables."""
    return [f.code for f in findings]
