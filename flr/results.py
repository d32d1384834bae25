"""The typed results of flr: volumetry and assessment, as frozen models whose ``to_dict()`` is the JSON contract.

Every key of the round-1 JSON is kept (public contract: keys are added, never renamed); the volumetry and
the assessment documents carry their own ``schema_version``. ``flr schema volumetry|assessment`` prints
the JSON Schema (draft 2020-12) generated from these types.

Units are in the names: ``_ml`` millilitres, ``_mm`` millimetres (LPS patient coordinates for points),
``_percent`` 0-100, ``_mm2`` square millimetres.

>>> import numpy as np, flr
>>> arr = np.zeros((4, 5, 6), np.uint8); arr[1:3, 1:4, 1:5] = 1
>>> r = flr.volumetry(flr.LabelMap(arr, flr.Geometry(arr.shape, (2.0, 2.0, 5.0)), names={1: "liver"}))
>>> VolumetryResult.from_dict(r.to_dict()) == r
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

import numpy as np
from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    computed_field,
    model_validator,
)

from flr import __version__
from flr.errors import GeometryError
from flr.facts import Facts
from flr.image import Geometry
from flr.model import DISCLAIMER, CheckStatus, FrozenModel, Status
from flr.patient import Patient
from flr.plan import Plan
from flr.rules import Verdict

#: Version of the volumetry document (``flr volumetry --json``).
VOLUMETRY_SCHEMA_VERSION: Literal["1.0"] = "1.0"
#: Version of the assessment document (``flr assess --json``); it has its own history from round 2 on.
#: 1.1 (vascular territories) adds, all optional: ``remnant.congested_ml``, ``undrained_ml``, ``at_risk_ml``,
#: ``functional_segments_ml``; per check ``at_risk_ml``, the volume lost and ``system``; per segment
#: ``volume_ml``, ``at_risk_ml``, ``at_risk_fraction``, ``own_branch``. A 1.0 document still reads.
ASSESSMENT_SCHEMA_VERSION: Literal["1.1"] = "1.1"

Point_mm = tuple[float, float, float]
#: A volume (mL) or a share (percent): finite and never negative.
Ml = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _absent(value: Any) -> bool:
    return value is None


Fate = Literal["resected", "ablated", "left"]


class GeometryRecord(FrozenModel):
    """The JSON form of a :class:`flr.image.Geometry` (sizes (z, y, x); spacing/origin (x, y, z) LPS mm)."""

    shape_zyx: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, float, float, float, float, float, float, float, float]
    voxel_volume_ml: float
    coordinate_system: Literal["LPS"]


def _geometry_in(value: Any) -> Geometry:
    if isinstance(value, Geometry):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("a geometry must be an object with shape_zyx, spacing_mm, origin_mm and direction")
    try:
        return Geometry(tuple(value["shape_zyx"]), tuple(value["spacing_mm"]), tuple(value["origin_mm"]),
                        tuple(value["direction"]))
    except KeyError as exc:
        raise ValueError(f"geometry lacks {exc.args[0]}") from None
    except (TypeError, GeometryError) as exc:
        raise ValueError(str(exc)) from None


#: A :class:`Geometry` field: validated from and serialised to :class:`GeometryRecord`.
GeometryField = Annotated[
    Geometry,
    PlainValidator(_geometry_in),
    PlainSerializer(lambda g: g.to_dict(), return_type=dict),
    WithJsonSchema(GeometryRecord.model_json_schema(mode="serialization")),
]


# --- volumetry ----------------------------------------------------------------------------------------


class InputRecord(FrozenModel):
    """One input file: its role, the path as given, content hash, format and grid (never an identifier)."""

    role: Literal["ct", "labels"]
    path: str | None
    sha256: str | None
    format: str | None
    geometry: GeometryField
    scheme: str | None = None
    series_instance_uid: str | None = None
    series_description: str | None = None
    study_date: str | None = None
    modality: str | None = None
    resampled: str | bool | None = None


class StructureVolume(FrozenModel):
    """Volume of one structure; ``truncated_sides`` names the scan edges it touches (patient terms)."""

    name: str = Field(default="", exclude=True, description="the key of the structure (not in its JSON object)")
    label: int | None
    labels: tuple[int, ...]
    source: str
    voxels: int = Field(ge=0)
    volume_ml: Ml
    touches_border: bool
    truncated_sides: tuple[str, ...] = ()
    derived_from: tuple[str, ...] = ()


class SegmentContact(FrozenModel):
    """Two Couinaud segments sharing voxel faces; the area is the summed physical face area."""

    a: str
    b: str
    faces: int = Field(ge=0)
    contact_area_mm2: float = Field(ge=0)
    textbook: bool


class Finding(FrozenModel):
    """One inconsistency between a case's inputs (:mod:`flr.sanity`): a short code and the message with figures."""

    code: str
    message: str


_VOLUMETRY_KEYS = ("schema_version", "flr_version", "kind", "inputs", "geometry", "voxel_volume_ml", "structures",
                   "volumes_ml", "segment_adjacency", "segment_contacts", "warnings")


class _CaseMeasures(FrozenModel):
    """What every result of a case holds: the inputs, the common grid, the structures and their contacts."""

    flr_version: str = __version__
    inputs: tuple[InputRecord, ...]
    geometry: GeometryField
    structures: dict[str, StructureVolume]
    segment_contacts: tuple[SegmentContact, ...] = ()
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = Field(default=(), description="inconsistencies between the inputs (also in "
                                                                  "warnings); --strict makes them errors")

    @model_validator(mode="before")
    @classmethod
    def _from_json(cls, data: Any) -> Any:
        """Drop the derived keys of the JSON form and give each structure its key as name."""
        if not isinstance(data, Mapping):
            return data
        out = {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        structures = out.get("structures")
        if isinstance(structures, Mapping):
            out["structures"] = {k: ({**v, "name": k} if isinstance(v, Mapping) else v)
                                 for k, v in structures.items()}
        return out

    @computed_field  # type: ignore[prop-decorator]
    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel of the common grid (mL)."""
        return self.geometry.voxel_volume_ml

    @computed_field  # type: ignore[prop-decorator]
    @property
    def volumes_ml(self) -> dict[str, float]:
        """``{structure: volume in mL}``."""
        return {name: s.volume_ml for name, s in self.structures.items()}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def segment_adjacency(self) -> list[list[str]]:
        """Pairs of segments sharing at least one voxel face."""
        return [[c.a, c.b] for c in self.segment_contacts]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract, keys in the documented order."""
        raw = super().to_dict()
        return {**{k: raw[k] for k in _VOLUMETRY_KEYS if k in raw}, **raw}

    def to_json(self, indent: int = 2) -> str:
        """:meth:`to_dict` as JSON text (NaN and infinity refused)."""
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


class VolumetryResult(_CaseMeasures):
    """Typed result of :func:`flr.volumetry`."""

    schema_version: Literal["1.0"] = VOLUMETRY_SCHEMA_VERSION
    kind: Literal["volumetry"] = "volumetry"


# --- assessment ---------------------------------------------------------------------------------------


class LiverVolumes(FrozenModel):
    """The whole liver before the plan (mL); ``segments_ml`` by territory (every liver voxel in one)."""

    total_volume_ml: Ml
    tumor_volume_ml: Ml
    functional_volume_ml: Ml
    resected_volume_ml: Ml
    includes_intrahepatic_vessels: bool
    segments_ml: dict[str, Ml]
    segments_resected_ml: dict[str, Ml] = Field(
        default_factory=dict, description="the part of each segment's territory the plan removes (resection, wedges)")


class Remnant(FrozenModel):
    """What the plan leaves (mL, percent 0-100): the remnant and its functional part."""

    volume_ml: Ml
    functional_volume_ml: Ml
    segments: tuple[str, ...]
    percent_of_functional_liver: Percent | None
    sflr_percent: Percent | None
    flr_body_weight_percent: Percent | None
    islands_ml: tuple[Ml, ...]
    islands_count: int
    islands_total_ml: Ml
    tumor_left_ml: Ml
    ablation_zones_ml: Ml
    devascularized_ml: Ml | None = Field(description="remnant (outside tumours and ablation zones) whose portal or "
                                                     "arterial branch the plan cuts off; null when neither inflow "
                                                     "check was assessed (schema 1.1; 1.0 wrote 0.0)")
    congested_ml: Ml | None = Field(default=None, exclude_if=_absent,
                                    description="remnant whose hepatic-venous branch the plan cuts off")
    undrained_ml: Ml | None = Field(default=None, exclude_if=_absent,
                                    description="remnant whose bile duct branch the plan cuts off")
    at_risk_ml: Ml | None = Field(default=None, exclude_if=_absent,
                                  description="union of every system's territory at risk in the remnant")
    functional_segments_ml: dict[str, Ml] | None = Field(
        default=None, exclude_if=_absent,
        description="what remains functional of each remnant segment (mL)")


class ContiguitySegment(FrozenModel):
    """One remnant segment in the contiguity check: its functional volume and why it is out, if it is."""

    functional_volume_ml: Ml
    excluded_because: tuple[str, ...]


class ContiguityCheck(FrozenModel):
    """``two_contiguous_segments``: the largest face-connected group of supplied remnant segments."""

    status: Status
    detail: str
    group: tuple[str, ...]
    group_volume_ml: Ml
    outside_group: dict[str, tuple[str, ...]]
    segments: dict[str, ContiguitySegment]


class SegmentSupply(FrozenModel):
    """Supply of one remnant segment by one vessel system (volumes in mL, within the segment's territory).

    ``status`` ``inferred``: biliary drainage inferred from the segment's portal inflow (no bile-duct mask)."""

    status: CheckStatus
    detail: str
    connected_vessel_ml: Ml
    total_vessel_ml: Ml
    orphaned_vessel_ml: Ml
    cut_vessel_ml: Ml
    volume_ml: Ml | None = Field(default=None, description="the segment's remnant volume (mL)")
    at_risk_ml: Ml | None = Field(default=None, description="its volume whose supplying branch is cut off (mL)")
    at_risk_fraction: Fraction | None = None
    own_branch: bool | None = Field(default=None, description="a branch of this system runs inside the segment")


class VesselSystemSummary(FrozenModel):
    """The vessel system a check used: where it came from, its centerline graph and what the plan cut."""

    source: str
    branches: int
    total_length_mm: Ml
    root_points: int
    bridges: int
    bridged_gaps_mm: tuple[Ml, ...]
    debris_count: int
    debris_ml: Ml
    disconnected_ml: Ml
    #: lengths (mm, between the centerline points joined) of the joins flr assumed between the pieces of an
    #: incompletely segmented mask and its tree (:data:`flr.territories.MAX_INTERRUPTIONS`); empty if none
    assumed_joins_mm: tuple[Ml, ...] = ()
    cut_points: int
    lost_points: int
    kept_on_plane_points: int
    separation: dict[str, Any] | None = Field(default=None, exclude_if=_absent)


class SupplyCheck(FrozenModel):
    """``inflow``, ``outflow``, ``biliary_drainage`` or ``arterial_inflow`` over the remnant segments.

    ``status`` ``inferred`` (biliary drainage only): not measured, inferred from portal inflow (see
    :func:`flr.assessment.infer_biliary_drainage`); never a pass."""

    status: CheckStatus
    detail: str
    vessel: str
    segments: dict[str, SegmentSupply]
    at_risk_ml: Ml | None = Field(default=None, exclude_if=_absent,
                                  description="remnant whose branch of this system the plan cuts off")
    devascularized_ml: Ml | None = Field(default=None, exclude_if=_absent)
    congested_ml: Ml | None = Field(default=None, exclude_if=_absent)
    undrained_ml: Ml | None = Field(default=None, exclude_if=_absent)
    system: VesselSystemSummary | None = Field(default=None, exclude_if=_absent)

    def failing(self) -> list[str]:
        """Segments that fail this check."""
        return [name for name, s in self.segments.items() if s.status == "fail"]


class TumorFate(FrozenModel):
    """A tumour's fate and margin, as the clearance check lists it."""

    fate: Fate
    margin_mm: float | None
    margin_class: str | None


class ClearanceCheck(FrozenModel):
    """``tumor_clearance``: every tumour resected or ablated."""

    status: Status
    detail: str
    tumors: dict[str, TumorFate]


class Checks(FrozenModel):
    """Every check of an assessment, in the order the report lists them."""

    two_contiguous_segments: ContiguityCheck
    inflow: SupplyCheck
    outflow: SupplyCheck
    biliary_drainage: SupplyCheck
    arterial_inflow: SupplyCheck | None = Field(default=None, exclude_if=_absent)
    tumor_clearance: ClearanceCheck

    def items(self) -> Iterator[tuple[str, ContiguityCheck | SupplyCheck | ClearanceCheck]]:
        """``(name, check)`` for every check made (``arterial_inflow`` only with an artery mask)."""
        for name in type(self).model_fields:
            check = getattr(self, name)
            if check is not None:
                yield name, check

    def supply_checks(self) -> list[SupplyCheck]:
        """The vessel checks made."""
        return [c for _, c in self.items() if isinstance(c, SupplyCheck)]


class TumorOutcome(FrozenModel):
    """One tumour: where it is, what the plan does to it, and for a resected one its margin."""

    id: int = Field(ge=1)
    voxels: int = Field(ge=1)
    volume_ml: Ml
    #: largest 3D extent of the tumour's voxels (mm, schema 1.1; :func:`flr.tumors.max_diameter_mm`)
    max_diameter_mm: Ml | None = Field(default=None, exclude_if=_absent)
    centroid_mm: Point_mm
    segments: tuple[str, ...]
    segment_fractions: dict[str, float]
    fate: Fate
    margin_mm: float | None = None
    margin_class: str | None = None
    tumor_point_mm: Point_mm | None = None
    remnant_point_mm: Point_mm | None = None
    note: str | None = None


class BodyMeasures(FrozenModel):
    """The patient's size as used (kg, cm, m^2, mL); ``None`` where not given or not computable."""

    weight_kg: float | None = None
    height_cm: float | None = None
    bsa_m2: float | None = None
    bsa_formula: str | None = None
    telv_ml: Ml | None = None
    telv_formula: str | None = None


class _Uncropped(Mapping[str, np.ndarray]):
    """A mapping of cropped arrays that gives each one on the whole grid, padded when first asked for."""

    def __init__(self, crops: Mapping[str, np.ndarray], pad: Any) -> None:
        self._crops, self._pad = crops, pad
        self._full: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._full:
            self._full[key] = self._pad(self._crops[key])
        return self._full[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._crops)

    def __len__(self) -> int:
        return len(self._crops)


class LazyArrays(Mapping[str, np.ndarray]):
    """A mapping whose arrays are made when first asked for, then kept: ``LazyArrays({"inflow": make})``.

    For arrays only some outputs need (the vessel territories: export), so that ``flr assess --json`` does
    not build them.
    """

    def __init__(self, makers: Mapping[str, Any]) -> None:
        self._makers = dict(makers)
        self._made: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._made:
            self._made[key] = self._makers[key]()
        return self._made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


@dataclass(frozen=True, repr=False)
class AssessmentArrays:
    """Arrays (z, y, x) of an assessment for figures and export; never in the JSON.

    ``territory`` segment codes (:data:`flr.anatomy.SEGMENT_CODES`), ``removed``, ``ablation``,
    ``functional`` and ``liver`` bool, ``tumors`` tumour ids; per check (``inflow``, ``outflow``, ...):
    ``at_risk`` the remnant whose branch is cut off (bool), ``vessels`` the vessel system used (bool) and
    ``vessel_territories`` the supplying branch of every liver voxel (0 outside, else 1 + branch id).

    The assessment works on the box of the liver and its vessels (``box`` of the case grid, ``shape_zyx``):
    the fields hold the arrays on that box (``crop_*`` names in :meth:`crop`); the attributes without the
    prefix (``territory``, ``at_risk[...]``...) are the same arrays on the whole grid, padded with 0 / False
    when first asked for (export and figures); ``box`` None: the arrays are on the whole grid already.
    """

    crop_territory: np.ndarray
    crop_removed: np.ndarray
    crop_ablation: np.ndarray
    crop_functional: np.ndarray
    crop_tumors: np.ndarray
    crop_liver: np.ndarray
    crop_at_risk: Mapping[str, np.ndarray] = field(default_factory=dict)
    crop_vessels: Mapping[str, np.ndarray] = field(default_factory=dict)
    crop_vessel_territories: Mapping[str, np.ndarray] = field(default_factory=dict)
    box: tuple[slice, slice, slice] | None = None
    shape_zyx: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"AssessmentArrays(shape_zyx={self.full_shape}, box={self.box})"

    @property
    def full_shape(self) -> tuple[int, int, int]:
        """The whole grid's shape (z, y, x)."""
        return self.shape_zyx or cast(tuple[int, int, int], self.crop_liver.shape)

    def uncrop(self, array: np.ndarray) -> np.ndarray:
        """``array`` (on :attr:`box`) on the whole grid, 0 / False outside the box."""
        if self.box is None:
            return array
        out = np.zeros(self.full_shape, array.dtype)
        out[self.box] = array
        return out

    def _full(self, name: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_full_cache", {})
        if name not in cache:
            cache[name] = self.uncrop(getattr(self, f"crop_{name}"))
        return cast(np.ndarray, cache[name])

    territory = property(lambda self: self._full("territory"), doc="segment codes on the whole grid")
    removed = property(lambda self: self._full("removed"), doc="resected and wedged parenchyma (bool)")
    ablation = property(lambda self: self._full("ablation"), doc="ablation zones (bool)")
    functional = property(lambda self: self._full("functional"), doc="the functional remnant (bool)")
    tumors = property(lambda self: self._full("tumors"), doc="tumour ids")
    liver = property(lambda self: self._full("liver"), doc="the liver (bool)")

    @property
    def at_risk(self) -> Mapping[str, np.ndarray]:
        """Per check, the remnant whose branch is cut off (bool, whole grid)."""
        return self._mapping("at_risk")

    @property
    def vessels(self) -> Mapping[str, np.ndarray]:
        """Per check, the vessel system used (bool, whole grid)."""
        return self._mapping("vessels")

    @property
    def vessel_territories(self) -> Mapping[str, np.ndarray]:
        """Per check, the supplying branch of every liver voxel (whole grid)."""
        return self._mapping("vessel_territories")

    def _mapping(self, name: str) -> Mapping[str, np.ndarray]:
        cache = self.__dict__.setdefault("_full_cache", {})
        if name not in cache:
            cache[name] = _Uncropped(getattr(self, f"crop_{name}"), self.uncrop)
        return cast(Mapping[str, np.ndarray], cache[name])


class Assessment(_CaseMeasures):
    """Typed result of :func:`flr.assess`: the volumetry plus plan, remnant, checks, tumours and verdict."""

    schema_version: Literal["1.0", "1.1"] = ASSESSMENT_SCHEMA_VERSION
    kind: Literal["assessment"] = "assessment"
    plan: Plan
    liver: LiverVolumes
    remnant: Remnant
    checks: Checks
    tumors: tuple[TumorOutcome, ...]
    body: BodyMeasures = BodyMeasures()
    patient: Patient | None = Field(default=None, exclude_if=_absent,
                                    description="the patient file as used (no identifiers); {} when judged without one")
    facts: Facts | None = Field(default=None, exclude_if=_absent)
    verdict: Verdict | None = Field(default=None, exclude_if=_absent)
    disclaimer: str = DISCLAIMER
    _arrays: AssessmentArrays | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _empty_patient(cls, data: Any) -> Any:
        """``"patient": {}`` (judged without a patient file) reads back as no patient."""
        if isinstance(data, Mapping) and data.get("patient") == {}:
            return {k: v for k, v in data.items() if k != "patient"}
        return data

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract; a verdict reached without a patient file carries ``"patient": {}`` (as in round 1)."""
        out = super().to_dict()
        if self.verdict is not None and self.patient is None:
            keys = list(out)
            out["patient"] = {}
            out = {k: out[k] for k in [*keys[:keys.index("facts")], "patient", *keys[keys.index("facts"):]]} \
                if "facts" in keys else out
        return out

    @property
    def arrays(self) -> AssessmentArrays | None:
        """The masks behind the numbers (None for an assessment read back from JSON)."""
        return self._arrays

    def with_arrays(self, arrays: AssessmentArrays | None) -> Assessment:
        """A copy of this assessment that carries ``arrays``."""
        out = self.model_copy()
        out._arrays = arrays
        return out

    def evolve(self, **changes: Any) -> Assessment:
        """A validated copy with ``changes`` (the arrays are kept)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return type(self).model_validate(data).with_arrays(self._arrays)

    @property
    def volumetry(self) -> VolumetryResult:
        """The volumetry part of this assessment (inputs, grid, structures, contacts, warnings)."""
        return VolumetryResult(flr_version=self.flr_version, inputs=self.inputs, geometry=self.geometry,
                               structures=self.structures, segment_contacts=self.segment_contacts,
                               warnings=self.warnings, findings=self.findings)
