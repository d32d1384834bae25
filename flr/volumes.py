"""Whole-case volumetry: voxel counts, volumes, truncation flags and segment contacts.

One pass of the core kernel per label map gives every structure's voxel count, bounding box (hence
whether it touches the edge of the scan) and the face contacts between labels. Volumes are
``voxels x voxel volume`` exactly: no interpolation, no smoothing.

The liver is the union of its parts (``liver``, ``liver_segment_*``, ``tumor``): in a LiTS map the
tumour label is carved out of the liver label, and a segment map has no liver label at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flr.anatomy import SEGMENT_NAMES, textbook_adjacent
from flr.case import Case, CaseAnatomy, anatomy_on_box
from flr.errors import EmptyStructureError
from flr.image import Geometry, Image, LabelMap, mm3_to_ml, patient_side
from flr.results import VOLUMETRY_SCHEMA_VERSION, InputRecord, SegmentContact, StructureVolume, VolumetryResult
from flr.schemes import LIVER_PARTS

SCHEMA_VERSION = VOLUMETRY_SCHEMA_VERSION
__all__ = ["SCHEMA_VERSION", "SegmentContact", "StructureVolume", "VolumetryResult", "measure_case", "volumetry"]


def _truncated_sides(bbox_zyx: np.ndarray, geometry: Geometry) -> tuple[str, ...]:
    """Patient-side names of the scan edges a bounding box (zmin, ymin, xmin, zmax, ymax, xmax) touches."""
    shape = geometry.shape_zyx
    d = geometry.direction_matrix
    sides = []
    for axis_zyx in range(3):
        col = d[:, 2 - axis_zyx]  # direction column of the index axis (x=0, y=1, z=2)
        positive, negative = patient_side(col), patient_side(-col)
        if bbox_zyx[axis_zyx] == 0:
            sides.append(negative)
        if bbox_zyx[3 + axis_zyx] == shape[axis_zyx] - 1:
            sides.append(positive)
    return tuple(dict.fromkeys(sides))


def _union_bbox(boxes: list[np.ndarray]) -> np.ndarray:
    arr = np.asarray(boxes)
    return np.concatenate([arr[:, :3].min(axis=0), arr[:, 3:].max(axis=0)])


def _input_record(image: Image, role: str) -> InputRecord:
    """The provenance of one input: ``path`` is ``image.source``, the path as given on the command line (the
    readers keep it as given: a relative path stays relative, so no folder above it, such as a PACS export's
    patient folder, enters the result), with the content hash, format, grid and series facts; no identifier."""
    meta = image.metadata
    record: dict[str, Any] = {"role": role, "path": image.source, "sha256": meta.get("sha256"),
                              "format": meta.get("format"), "geometry": image.geometry}
    if isinstance(image, LabelMap):
        record["scheme"] = image.scheme
    for key in ("series_instance_uid", "series_description", "study_date", "modality", "resampled"):
        if meta.get(key):
            record[key] = meta[key]
    return InputRecord(**record)


def volumetry(
    label_maps: Sequence[LabelMap],
    *,
    ct: Image | None = None,
    n_threads: int | None = None,
    strict: bool = False,
) -> VolumetryResult:
    """Measure every named structure of one or more label maps on one grid.

    Parameters
    ----------
    label_maps : label maps (z, y, x) with their schemes' names; all on one grid.
    ct : optional CT; when given every label map must lie on its grid.
    n_threads : threads for the counting kernel (default: all cores).
    strict : inconsistent inputs (:mod:`flr.sanity`) are errors instead of warnings.

    Raises
    ------
    GeometryMismatchError : a label map is not on the reference grid (names both grids).
    EmptyStructureError : no label map holds a named structure.
    InconsistentCaseError : a tumour outside the liver; with ``strict``, any inconsistency.
    """
    if not label_maps:
        raise ValueError("volumetry needs at least one label map")
    return measure_case(Case.build(label_maps, ct), n_threads=n_threads, strict=strict)


def measure_case(case: Case, *, n_threads: int | None = None, strict: bool = False,
                 anatomy: CaseAnatomy | None = None) -> VolumetryResult:
    """:func:`volumetry` of a validated :class:`~flr.case.Case`, with its consistency findings (``anatomy``:
    the case's masks when the caller has built them already)."""
    from flr.sanity import check_case

    ct, label_maps, geometry = case.ct, case.label_maps, case.geometry
    sx, sy, sz = geometry.spacing_mm
    face_area_mm2 = np.array([sy * sz, sx * sz, sx * sy])  # faces between x-, y-, z-neighbours

    warnings: list[str] = []
    inputs: list[InputRecord] = []
    if ct is not None:
        inputs.append(_input_record(ct, "ct"))
        warnings.extend(ct.metadata.get("warnings", []))
    structures: dict[str, StructureVolume] = {}
    liver_sources: list[tuple[LabelMap, list[int], list[str]]] = []
    contacts: list[SegmentContact] = []
    boxes_by_name: dict[str, np.ndarray] = {}

    for lm in label_maps:
        inputs.append(_input_record(lm, "labels"))
        warnings.extend(lm.metadata.get("warnings", []))
        stats = lm.label_stats(n_threads=n_threads)
        by_name: dict[str, list[int]] = {}
        for label in stats.labels.tolist():
            name = lm.names.get(int(label))
            if name is not None:
                by_name.setdefault(name, []).append(int(label))
        for name, ids in by_name.items():
            if name in structures:
                warnings.append(f"{name} is labelled in both {structures[name].source} and {lm.source}; "
                                f"using {structures[name].source}")
                continue
            voxels = int(sum(stats.count(i) for i in ids))
            bbox = _union_bbox([stats.bbox_zyx[int(np.searchsorted(stats.labels, i))] for i in ids])
            sides = _truncated_sides(bbox, geometry)
            structures[name] = StructureVolume(name=name, label=ids[0], labels=tuple(ids), source=str(lm.source),
                                               voxels=voxels, volume_ml=mm3_to_ml(voxels * geometry.voxel_volume_mm3),
                                               touches_border=bool(sides), truncated_sides=sides)
            boxes_by_name[name] = bbox
        parts = sorted(n for n in by_name if n in LIVER_PARTS)
        if parts:
            liver_sources.append((lm, [i for n in parts for i in by_name[n]], parts))
        segs = [n for n in SEGMENT_NAMES if n in by_name]
        if segs and not contacts:
            contacts = _segment_contacts(stats, by_name, segs, face_area_mm2)

    if not structures:
        raise EmptyStructureError("no named structure has voxels in "
                                  + ", ".join(str(lm.source) for lm in label_maps))
    if anatomy is None:
        anatomy = anatomy_on_box(case)
    if liver_sources:
        structures = _with_liver(structures, liver_sources, geometry, boxes_by_name, anatomy)
    warnings.extend(f"{s.name} touches the {'/'.join(s.truncated_sides)} edge of the scanned volume: "
                    f"possibly truncated, {s.volume_ml:.1f} mL is a lower bound"
                    for s in structures.values() if s.touches_border)
    warnings.extend(f"{c.a} and {c.b} share {c.contact_area_mm2:.0f} mm^2 of surface, which the textbook "
                    "Couinaud anatomy does not expect: check the segment labels"
                    for c in contacts if not c.textbook)
    findings = check_case(case, anatomy=anatomy, strict=strict)
    warnings.extend(f.message for f in findings)
    return VolumetryResult(inputs=tuple(inputs), geometry=geometry, structures=structures,
                           segment_contacts=tuple(contacts), warnings=tuple(warnings), findings=findings)


def _segment_contacts(stats: Any, by_name: dict[str, list[int]], segs: list[str],
                      face_area_mm2: np.ndarray) -> list[SegmentContact]:
    out = []
    for i, a in enumerate(segs):
        for b in segs[i + 1:]:
            faces = np.zeros(3, dtype=np.int64)
            for la in by_name[a]:
                for lb in by_name[b]:
                    faces += stats.contact_faces(la, lb)
            total = int(faces.sum())
            if total:
                out.append(SegmentContact(a=a, b=b, faces=total, contact_area_mm2=float(faces @ face_area_mm2),
                                          textbook=textbook_adjacent(a, b)))
    return out


def _with_liver(
    structures: dict[str, StructureVolume],
    liver_sources: list[tuple[LabelMap, list[int], list[str]]],
    geometry: Geometry,
    boxes_by_name: dict[str, np.ndarray],
    anatomy: CaseAnatomy | None = None,
) -> dict[str, StructureVolume]:
    """Add (or replace) ``liver`` as the union of the liver parts of every map (``anatomy.liver``, that very
    union on its box, when the caller has built it: no pass over the whole grid)."""
    parts = sorted({p for _, _, ps in liver_sources for p in ps})
    if len(liver_sources) == 1:
        lm, ids, _ = liver_sources[0]
        voxels = sum(structures[p].voxels for p in parts if structures[p].source == str(lm.source))
        bbox = _union_bbox([boxes_by_name[p] for p in parts])
        source = str(lm.source)
    else:  # parts in several maps may overlap: count the union voxel by voxel
        if anatomy is not None:
            mask, offset = anatomy.liver, np.array([0 if b is None else b.start for b in (anatomy.box or (None,) * 3)])
        else:
            mask, offset = np.zeros(geometry.shape_zyx, dtype=bool), np.zeros(3, np.int64)
            for lm, ids, _ in liver_sources:
                mask |= np.isin(lm.array, ids)
        voxels = int(np.count_nonzero(mask))
        nz = [np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
        bbox = np.array([v[0] for v in nz] + [v[-1] for v in nz]) + np.concatenate([offset, offset])
        source = " | ".join(str(lm.source) for lm, _, _ in liver_sources)
    sides = _truncated_sides(bbox, geometry)
    old = structures.get("liver")
    liver = StructureVolume(
        name="liver",
        label=old.label if old else None,
        labels=tuple(i for _, ids, _ in liver_sources for i in ids),
        source=source,
        voxels=int(voxels),
        volume_ml=mm3_to_ml(voxels * geometry.voxel_volume_mm3),
        touches_border=bool(sides),
        truncated_sides=sides,
        derived_from=tuple(parts),
    )
    out = {"liver": liver}
    out.update((k, v) for k, v in structures.items() if k != "liver")
    if old is not None and liver.voxels != old.voxels:
        out["liver_parenchyma_label"] = old.model_copy(update={"name": "liver_parenchyma_label"})
    return out
