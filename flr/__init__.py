"""flr: CT liver volumetry and future-liver-remnant analysis.

The functions a notebook needs are one import away (heavy modules load on first use):

>>> import flr
>>> flr.Geometry((10, 10, 10), (0.5, 0.5, 4.0)).voxel_volume_ml
0.001
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Union, cast

__version__ = "0.1.0"

from flr.errors import (
    EmptyStructureError,
    FlrError,
    GeometryMismatchError,
    InputFileError,
    SchemeError,
)
from flr.image import Geometry, Image, LabelMap, mm3_to_ml

if TYPE_CHECKING:
    from flr.assessment import Body
    from flr.patient import Patient
    from flr.plan import Plan
    from flr.results import Assessment, VolumetryResult
    from flr.rules import Rulebook
    from flr.schemes import LabelScheme

__all__ = [
    "EmptyStructureError",
    "FlrError",
    "Geometry",
    "GeometryMismatchError",
    "Image",
    "InputFileError",
    "LabelMap",
    "SchemeError",
    "__version__",
    "assess",
    "load",
    "load_all",
    "load_image",
    "mm3_to_ml",
    "open_image",
    "volumetry",
]

PathLike = Union[str, "os.PathLike[str]"]
SchemeLike = Union[str, "os.PathLike[str]", "LabelScheme", Mapping[int, str], None]
_OneLabels = Union[LabelMap, PathLike, tuple[PathLike, SchemeLike]]  # noqa: UP007
#: What the functions below accept as label maps: a map, a path, a ``(path, scheme)`` pair, or a list of them.
LabelsLike = Union[_OneLabels, Sequence[_OneLabels]]  # noqa: UP007


def load_all(path: PathLike, scheme: SchemeLike = None, ct: Image | PathLike | None = None) -> list[LabelMap]:
    """Every label map a path holds, exactly as ``--labels PATH[:SCHEME]`` reads it.

    NIfTI, NRRD, 3D Slicer ``.seg.nrrd`` (one map per layer), DICOM-SEG and RTSTRUCT (placed on ``ct``,
    overlapping segments in separate maps), a TotalSegmentator output folder (``scheme="totalseg"``).
    ``ct`` is an :class:`Image` or a path to one.
    """
    from flr.io import read_label_maps

    reference = open_image(ct) if ct is not None and not isinstance(ct, Image) else ct
    return read_label_maps(os.fspath(path), os.fspath(scheme) if isinstance(scheme, os.PathLike) else scheme,
                           reference=reference)


def load(path: PathLike, scheme: SchemeLike = None, ct: Image | PathLike | None = None) -> LabelMap:
    """Read one label map (see :func:`load_all` for the formats) and name its labels through ``scheme``.

    Raises :class:`InputFileError` when the file holds several maps (overlapping segments or layers):
    use :func:`load_all` for those.
    """
    maps = load_all(path, scheme, ct)
    if len(maps) != 1:
        raise InputFileError(f"{path}: holds {len(maps)} label maps (overlapping segments or layers); "
                             "read them with flr.load_all")
    return maps[0]


def load_image(path: PathLike, *, series_uid: str | None = None, resample: bool = False) -> Image:
    """Read a CT from NIfTI, NRRD, a DICOM file or a DICOM folder (see :func:`flr.io.read_image`)."""
    from flr.io import read_image

    return read_image(os.fspath(path), series_uid=series_uid, resample=resample)


def open_image(path: PathLike, *, series_uid: str | None = None, resample: bool = False) -> Image:
    """Open a CT as :func:`load_image` reads it, its voxels decoded only when asked for (see
    :func:`flr.io.open_image`): what :func:`volumetry`, :func:`assess` and :func:`load_all` do with a CT path."""
    from flr.io import open_image as _open_image

    return _open_image(os.fspath(path), series_uid=series_uid, resample=resample)


def volumetry(labels: LabelsLike, ct: Image | PathLike | None = None, *, n_threads: int | None = None
              ) -> VolumetryResult:
    """Volumetry of one label map or several; paths are read first (``(path, scheme)`` pairs allowed).

    >>> import numpy as np, flr
    >>> arr = np.zeros((4, 5, 6), np.uint8); arr[1:3, 1:4, 1:5] = 1
    >>> lm = flr.LabelMap(arr, flr.Geometry(arr.shape, (2.0, 2.0, 5.0)), names={1: "liver"})
    >>> flr.volumetry(lm).volumes_ml["liver"]    # 24 voxels x 20 mm^3
    0.48
    """
    from flr.volumes import volumetry as _volumetry

    ct_image = open_image(ct) if ct is not None and not isinstance(ct, Image) else ct
    return _volumetry(_label_maps(labels, ct_image), ct=ct_image, n_threads=n_threads)


def assess(labels: LabelsLike, ct: Image | PathLike | None = None, *, plan: Plan | str | None = None,
           wedges: Sequence[str | tuple[int, float]] = (), ablations: Sequence[str | tuple[int, float]] = (),
           include_caudate: bool = False, patient: Patient | PathLike | None = None,
           rules: Rulebook | PathLike | None = None, body: Body | None = None,
           anatomical_vessel_seeds: bool = False) -> Assessment:
    """Assess a resection plan on a case and, with a patient or rules, judge it with the rulebook.

    ``plan`` is a :class:`flr.plan.Plan`, a Brisbane 2000 name (``"right-hemihepatectomy"``) or a segment
    list (``"5,6,7,8"``); ``wedges``/``ablations`` are ``"ID[:MARGIN_MM]"`` strings or ``(id, margin_mm)``
    pairs. The patient's weight and height give the body size unless ``body`` is given.
    ``anatomical_vessel_seeds``: see :func:`flr.assessment.assess`.

    >>> import flr
    >>> from flr.phantom import make_liver_phantom
    >>> p = make_liver_phantom(0, spacing_mm=(3.0, 3.0, 5.0))
    >>> a = flr.assess(p.labels, plan="left-lateral-sectionectomy")
    >>> a.remnant.segments[:3], a.checks.two_contiguous_segments.status
    (('liver_segment_1', 'liver_segment_4', 'liver_segment_5'), 'pass')
    """
    from flr.assessment import Body as _Body
    from flr.assessment import assess as _assess
    from flr.assessment import judge

    ct_image = open_image(ct) if ct is not None and not isinstance(ct, Image) else ct
    the_plan = _plan(plan, include_caudate, wedges, ablations)
    person = _patient(patient)
    result = _assess(_label_maps(labels, ct_image), the_plan, ct=ct_image,
                     body=body if body is not None else _Body.from_patient(person),
                     anatomical_vessel_seeds=anatomical_vessel_seeds)
    if person is None and rules is None:
        return result
    from flr.rules import load_rulebook

    return judge(result, person, load_rulebook(rules if rules is not None else "default"))


def _plan(plan: Plan | str | None, include_caudate: bool, wedges: Sequence[str | tuple[int, float]],
          ablations: Sequence[str | tuple[int, float]]) -> Plan:
    from flr.plan import Plan as _Plan
    from flr.plan import resection_plan

    def spec(zone: str | tuple[int, float]) -> str:
        return zone if isinstance(zone, str) else f"{zone[0]}:{zone[1]}"

    if not isinstance(plan, _Plan):
        return resection_plan(plan, include_caudate=include_caudate, wedges=[spec(w) for w in wedges],
                              ablations=[spec(a) for a in ablations])
    if not wedges and not ablations:
        return plan
    zones = resection_plan(None, wedges=[spec(w) for w in wedges], ablations=[spec(a) for a in ablations])
    return _plan_union(plan, zones)


def _plan_union(plan: Plan, zones: Plan) -> Plan:
    """``plan`` plus the wedges and ablations of ``zones`` (a tumour named twice is a :class:`PlanError`)."""
    from flr.errors import PlanError

    ids = [z.tumor_id for z in (*plan.zones, *zones.zones)]
    if len(ids) != len(set(ids)):
        raise PlanError(f"a tumour is both wedged and ablated, or named twice: {sorted(ids)}")
    return plan.model_copy(update={"name": f"{plan.name} + {zones.name}", "wedges": (*plan.wedges, *zones.wedges),
                                   "ablations": (*plan.ablations, *zones.ablations)})


def _patient(patient: Patient | PathLike | None) -> Patient | None:
    if patient is None or not isinstance(patient, (str, os.PathLike)):
        return patient
    from flr.patient import load_patient

    return load_patient(os.fspath(patient))


def _label_maps(labels: LabelsLike, ct: Image | None) -> list[LabelMap]:
    items: list[_OneLabels]
    if isinstance(labels, (LabelMap, str, os.PathLike)) or _is_pair(labels):
        items = [cast(_OneLabels, labels)]
    else:
        items = list(cast(Sequence[_OneLabels], labels))
    out: list[LabelMap] = []
    for x in items:
        if isinstance(x, LabelMap):
            out.append(x)
        elif isinstance(x, tuple):
            out.extend(load_all(x[0], x[1], ct))
        else:
            out.extend(load_all(x, None, ct))
    return out


def _is_pair(x: object) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], (str, os.PathLike)) and not isinstance(
        x[1], (LabelMap, tuple))
