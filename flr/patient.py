"""Patient input: clinical facts flr needs beside the images, validated once, every field at once.

A patient file (YAML or JSON, read by :func:`flr.io.config.read_config`) holds body size, liver condition,
laboratory values, the primary tumour, extrahepatic disease and portal vein embolization (PVE). Every
field is optional: a missing value is ``None`` and the rulebook reports what it could not assess. A value
that is present is checked:

* impossible numbers (negative weight, INR 40, albumin 90 g/dL, bilirubin 0.8 umol/L) are refused with the
  expected range and, when the number fits another unit, the field to use instead (``albumin_g_l``,
  ``bilirubin_mg_dl``; the bounds are :data:`flr.scores.LAB_RANGES`);
* unknown choices are listed with the valid ones; unknown keys get the closest valid key suggested;
* a laboratory value given in two units must agree within 5% (then accepted, with a warning);
* identifiers (name, patient ID, birth date...) are refused: flr never stores who the patient is, and
  ``age`` is all it needs.

The file is validated by a pydantic model of what a user writes (:func:`patient_json_schema` is its JSON
Schema), so every problem of a file is reported at once, in one :class:`~flr.errors.PatientValueError`
line that names the file and each field, the problems separated by ``; ``, e.g. ``patient.yaml:
labs.albumin_g_dl = 90 is impossible (expected 1-7 g/dL; did you mean g/L? use albumin_g_l); weigth_kg is
not a patient field (did you mean weight_kg?)``.

Values are stored in canonical units (bilirubin mg/dL, albumin g/dL, creatinine mg/dL, sodium mmol/L,
CEA ng/mL); conversions (1 mg/dL bilirubin = 17.1 umol/L, 1 g/dL albumin = 10 g/L, 1 mg/dL creatinine =
88.4 umol/L) happen once, here, rounded to 1e-6 so that 34.2 umol/L is exactly 2 mg/dL at a Child-Pugh
band edge.

>>> p = Patient.from_dict({"weight_kg": 70, "labs": {"bilirubin_umol_l": 34.2, "albumin_g_l": 35}})
>>> p.labs.bilirubin_mg_dl, p.labs.albumin_g_dl
(2.0, 3.5)
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from flr import scores
from flr.errors import PatientValueError, join_problems, quote
from flr.io.config import read_config
from flr.model import FrozenModel, json_schema
from flr.scores import BODY_RANGES

__all__ = [
    "IDENTIFIER_KEYS",
    "ExtrahepaticDisease",
    "Labs",
    "Patient",
    "PatientValueError",
    "Primary",
    "Pve",
    "load_patient",
    "patient_json_schema",
]

SEXES = ("female", "male", "other")
LIVER_CONDITIONS = ("normal", "steatosis", "chemotherapy", "cirrhosis")
ASCITES_GRADES = scores.ASCITES_GRADES
ENCEPHALOPATHY_GRADES = scores.ENCEPHALOPATHY_GRADES
PRIMARY_SITES = ("colorectal", "gist", "neuroendocrine", "sarcoma", "breast", "other")
TKI_RESPONSES = ("responsive", "stable", "progressive")
GIST_PROGRESSION = ("unifocal", "multifocal")
NET_ORIGINS = ("midgut", "pancreas_head", "pancreas_body_tail", "other")
EXTRAHEPATIC_SITES = ("lung", "peritoneum", "periportal_nodes", "paraaortic_nodes", "bone", "brain", "other")
EXTRAHEPATIC_EXTENTS = ("limited", "extensive")
#: What imaging of the bile ducts (MRCP or cholangiography) showed: ``standard`` (imaged, standard anatomy),
#: ``variant`` (imaged, a variant, e.g. the right posterior duct draining into the left hepatic duct),
#: ``not_imaged``.
BILIARY_ANATOMIES = ("standard", "variant", "not_imaged")

#: What the recurrence fields of a sarcoma primary mean (soft-tissue sarcoma: the source text lists "no tumor
#: recurrence before liver resection" and "repeat resection for recurrent liver metastases" as favourable).
PRIOR_RECURRENCE_DOC = ("soft-tissue sarcoma: tumour recurrence (of the primary, local or distant, outside the "
                        "liver) before this liver resection")
PRIOR_LIVER_RECURRENCE_DOC = ("soft-tissue sarcoma: this liver resection is a repeat resection for recurrent liver "
                              "metastases")
BILIARY_ANATOMY_DOC = ("imaging of the biliary anatomy (MRCP or cholangiography): standard (imaged, standard), "
                       "variant (imaged, a variant, e.g. the right posterior duct draining into the left hepatic "
                       "duct) or not_imaged")

#: Keys that would identify a patient. flr refuses them (privacy): results must never carry them.
IDENTIFIER_KEYS = frozenset({
    "name", "patient_name", "first_name", "last_name", "given_name", "family_name", "surname", "full_name",
    "initials", "id", "patient_id", "patientid", "mrn", "medical_record_number", "hospital_number",
    "nhs_number", "ssn", "social_security_number", "insurance_number", "accession_number",
    "birth_date", "birthdate", "date_of_birth", "dob", "birthday", "address", "phone", "email",
})

#: Plausible ranges of the body and history fields: ``name: (low, high, unit)``.
NUMBER_RANGES: dict[str, tuple[float, float, str]] = {
    **BODY_RANGES,
    "age": (0.0, 120.0, "years"),
    "chemotherapy_weeks": (0.0, 520.0, "weeks"),
    "disease_free_interval_months": (0.0, 600.0, "months"),
    "sflr_before_percent": (0.0, 100.0, "%"),
}

#: Laboratory values accepted in another unit: ``key: (canonical key, other units per canonical unit, unit)``.
LAB_ALTERNATIVES: dict[str, tuple[str, float, str]] = {
    "bilirubin_umol_l": ("bilirubin_mg_dl", scores.BILIRUBIN_UMOL_L_PER_MG_DL, "umol/L"),
    "albumin_g_l": ("albumin_g_dl", scores.ALBUMIN_G_L_PER_G_DL, "g/L"),
    "creatinine_umol_l": ("creatinine_mg_dl", scores.CREATININE_UMOL_L_PER_MG_DL, "umol/L"),
    "sodium_meq_l": ("sodium_mmol_l", 1.0, "mEq/L"),
    "cea_ug_l": ("cea_ng_ml", 1.0, "ug/L"),
}
#: Two values of one laboratory test (in two units) may differ by this fraction before they contradict.
LAB_AGREEMENT_FRACTION = 0.05

#: Primary-tumour fields that apply to some sites only (others are accepted with a warning).
_SITE_FIELDS = {
    "synchronous": ("colorectal",), "node_positive_primary": ("colorectal",),
    "disease_free_interval_months": ("colorectal", "sarcoma"), "tki_response": ("gist",),
    "progression": ("gist",), "origin": ("neuroendocrine",), "prior_recurrence": ("sarcoma",),
    "prior_liver_recurrence": ("sarcoma",),
}

#: At most this many problems of one file are listed (then "... and N more"); fewer when they would make the
#: message longer than :data:`flr.errors.MAX_PROBLEMS_CHARS`.
MAX_LISTED_ERRORS = 20
_EARLIEST_DATE = dt.date(1980, 1, 1)
_LATEST_DATE = dt.date(2200, 1, 1)


# --- the validated patient (what flr computes with) ------------------------------------------------------

class Labs(FrozenModel):
    """Laboratory values in canonical units (``None``: not given)."""

    bilirubin_mg_dl: float | None = None
    albumin_g_dl: float | None = None
    inr: float | None = None
    creatinine_mg_dl: float | None = None
    sodium_mmol_l: float | None = None
    cea_ng_ml: float | None = None
    dialysis: bool | None = None

    @property
    def bilirubin_umol_l(self) -> float | None:
        """Bilirubin in umol/L (x 17.1), for ALBI."""
        return _convert(self.bilirubin_mg_dl, scores.BILIRUBIN_UMOL_L_PER_MG_DL)

    @property
    def albumin_g_l(self) -> float | None:
        """Albumin in g/L (x 10), for ALBI."""
        return _convert(self.albumin_g_dl, scores.ALBUMIN_G_L_PER_G_DL)

    @property
    def creatinine_umol_l(self) -> float | None:
        """Creatinine in umol/L (x 88.4)."""
        return _convert(self.creatinine_mg_dl, scores.CREATININE_UMOL_L_PER_MG_DL)


class Primary(FrozenModel):
    """The primary tumour; site-specific fields are ``None`` when not given or not applicable."""

    site: str | None = None
    synchronous: bool | None = None
    node_positive_primary: bool | None = None
    disease_free_interval_months: float | None = None
    tki_response: str | None = None
    progression: str | None = None
    origin: str | None = None
    #: sarcoma: this liver resection is a repeat resection for recurrent liver metastases
    prior_liver_recurrence: bool | None = Field(default=None, description=PRIOR_LIVER_RECURRENCE_DOC)
    #: sarcoma: tumour recurrence outside the liver before this liver resection; left out of :meth:`to_dict`
    #: when not given, so the round-1 patient contract is unchanged
    prior_recurrence: bool | None = Field(default=None, exclude_if=lambda v: v is None,
                                          description=PRIOR_RECURRENCE_DOC)


class ExtrahepaticDisease(FrozenModel):
    """One site of disease outside the liver; ``extent`` ``None`` when not stated."""

    site: str
    extent: str | None = None


class Pve(FrozenModel):
    """Portal vein embolization before this scan: its date and the sFLR (%) measured before it."""

    date: dt.date | None = None
    sflr_before_percent: float | None = None


class Patient(FrozenModel):
    """Validated, immutable patient input. Build it with :meth:`from_dict` or :func:`load_patient`.

    ``labs`` and ``primary`` are always present (their fields ``None`` when not given);
    ``extrahepatic_disease`` is ``None`` when not assessed and ``()`` when ruled out; ``pve`` is ``None``
    without embolization; ``biliary_anatomy`` (:data:`BILIARY_ANATOMIES`) is ``None`` when not given.
    ``warnings`` (accepted oddities) and ``source`` (where the input came from, which may be a path naming the
    patient) are not part of :meth:`to_dict` nor of equality.
    """

    weight_kg: float | None = None
    height_cm: float | None = None
    sex: str | None = None
    age: float | None = None
    liver_condition: str | None = None
    chemotherapy_weeks: float | None = None
    fit_for_major_surgery: bool | None = None
    labs: Labs = Field(default_factory=Labs)
    ascites: str | None = None
    encephalopathy: str | None = None
    primary: Primary = Field(default_factory=Primary)
    extrahepatic_disease: tuple[ExtrahepaticDisease, ...] | None = None
    pve: Pve | None = None
    #: date of this CT when it carries no DICOM StudyDate (the kinetic growth rate's end point); left out of
    #: :meth:`to_dict` when not given, so the round-1 patient contract is unchanged
    scan_date: dt.date | None = Field(default=None, exclude_if=lambda v: v is None)
    #: one of :data:`BILIARY_ANATOMIES`; left out of :meth:`to_dict` when not given (round-1 contract unchanged)
    biliary_anatomy: str | None = Field(default=None, exclude_if=lambda v: v is None, description=BILIARY_ANATOMY_DOC)
    _source: str = PrivateAttr(default="patient")
    _warnings: tuple[str, ...] = PrivateAttr(default=())

    @property
    def source(self) -> str:
        """Where the input came from (a path, or ``patient``); never written to results."""
        return self._source

    @property
    def warnings(self) -> tuple[str, ...]:
        """Oddities accepted while validating (both units of a lab value given, a field for another site)."""
        return self._warnings

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (``source`` and ``warnings`` aside)."""
        return isinstance(other, Patient) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "patient") -> Patient:
        """Validate a mapping (parsed YAML/JSON) into a :class:`Patient`; every error names ``source`` and the field.

        Parameters
        ----------
        data : the patient file's content (or :meth:`to_dict` output: it reads back).
        source : what names the input in messages (the file's path).

        Raises
        ------
        PatientValueError
            One line listing every problem of ``data`` (as many as fit in
            :data:`~flr.errors.MAX_PROBLEMS_CHARS` characters, at most :data:`MAX_LISTED_ERRORS`; then how many
            more there are). Values are quoted shortened (:func:`~flr.errors.quote`), identifiers never shown.

        >>> try:
        ...     Patient.from_dict({"weigth_kg": 70, "labs": {"inr": 40}}, source="p.yaml")
        ... except PatientValueError as exc:
        ...     print(*str(exc).split("; "), sep="\\n")
        p.yaml: labs.inr = 40 is impossible (expected 0.5-20)
        weigth_kg is not a patient field (did you mean weight_kg?)
        """
        if data is None:  # an empty YAML file, or one with comments only
            raise PatientValueError(f"{source}: the patient file is empty (write {{}} for a patient with no known "
                                    "facts)")
        raw = dict(data) if isinstance(data, Mapping) else data
        try:
            parsed = PatientFile.model_validate(raw)
        except ValidationError as exc:
            messages, total = _messages(exc)
            raise PatientValueError(join_problems(f"{source}: ", messages, total=total)) from None
        return _patient_from_file(parsed, source)

    def pve_weeks(self, scan_date: dt.date | dt.datetime | str) -> float | None:
        """Weeks from the PVE to ``scan_date`` (a date or ISO ``YYYY-MM-DD``); ``None`` without a PVE date.

        >>> Patient(pve=Pve(date=dt.date(2026, 10, 1))).pve_weeks("2026-10-29")
        4.0
        """
        if self.pve is None or self.pve.date is None:
            return None
        try:
            scan = _as_date(scan_date, "scan_date")
        except ValueError as exc:
            raise PatientValueError(f"{self.source}: {exc}") from None
        days = (scan - self.pve.date).days
        if days <= 0:
            raise PatientValueError(f"{self.source}: scan_date {scan.isoformat()} is not after pve.date "
                                    f"{self.pve.date.isoformat()}; the post-PVE scan must follow the embolization")
        return days / 7.0

    def liver_function_scores(self) -> dict[str, dict[str, Any]]:
        """Child-Pugh, ALBI, MELD and MELD-Na from the labs, each with the inputs it lacks.

        A score whose inputs are incomplete is ``None`` with ``missing`` listing them (the rulebook reports
        it as not assessed). MELD without ``labs.dialysis`` assumes no dialysis and says so in ``assumed``.
        Formulas and citations: :mod:`flr.scores`.
        """
        lab = self.labs
        out: dict[str, dict[str, Any]] = {}
        bili, alb, inr, cr, na = lab.bilirubin_mg_dl, lab.albumin_g_dl, lab.inr, lab.creatinine_mg_dl, lab.sodium_mmol_l

        missing = _missing(bilirubin_mg_dl=bili, albumin_g_dl=alb, inr=inr, ascites=self.ascites,
                           encephalopathy=self.encephalopathy)
        cp = None
        if not missing:
            cp = scores.child_pugh(bili, alb, inr, self.ascites, self.encephalopathy)  # type: ignore[arg-type]
        out["child_pugh"] = {"points": cp and cp.points, "class": cp and cp.class_, "missing": missing}

        missing = _missing(bilirubin_mg_dl=bili, albumin_g_dl=alb)
        ab = None if missing else scores.albi(lab.bilirubin_umol_l, lab.albumin_g_l)  # type: ignore[arg-type]
        out["albi"] = {"score": ab and ab.score, "grade": ab and ab.grade, "missing": missing}

        dialysis = bool(lab.dialysis)
        missing = _missing(creatinine_mg_dl=0.0 if dialysis else cr, bilirubin_mg_dl=bili, inr=inr)
        m = None if missing else scores.meld(cr, bili, inr, dialysis=dialysis)  # type: ignore[arg-type]
        assumed = ["no dialysis (labs.dialysis not given)"] if lab.dialysis is None and m is not None else []
        out["meld"] = {"score": m, "missing": missing, "assumed": assumed}

        missing = [*missing, *_missing(sodium_mmol_l=na)]
        out["meld_na"] = {"score": None if m is None or na is None else scores.meld_na(m, na), "missing": missing,
                          "assumed": assumed}
        return out


def load_patient(path: str | os.PathLike[str]) -> Patient:
    """Read and validate a patient file (``.yaml``, ``.yml`` or ``.json``).

    Parameters
    ----------
    path : the patient file; its name is the ``source`` of every message (never written to results).

    File problems (missing, wrong suffix, syntax, a key given twice, size) raise
    :class:`~flr.errors.ConfigFileError` (an :class:`~flr.errors.InputFileError`; a wrong suffix is also an
    :class:`~flr.errors.UnsupportedFormatError`); content problems :class:`~flr.errors.PatientValueError`.
    """
    src = str(path)
    return Patient.from_dict(read_config(path, what="patient file"), source=src)


def patient_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the patient FILE: the fields a user writes, their units, ranges and choices.

    Returns
    -------
    The schema as a plain ``dict`` (``$schema``, ``properties``, ``$defs`` of the sections).

    Notes
    -----
    The schema checks each value on its own; what involves two fields (a lab value given in two units that
    disagree, a synchronous primary with a disease-free interval) is :meth:`Patient.from_dict`'s. flr also
    accepts choices in another case or with ``-``/spaces (``Female``, ``moderate-severe``); the schema
    lists the canonical spellings. YAML dates (``2026-10-01``) are strings in JSON terms.
    """
    return json_schema(PatientFile, title="flr patient file")


# --- the patient file (what a user writes) ---------------------------------------------------------------

#: Marks where the field path goes in a value error's message (a control character no value repr contains).
_FIELD = "\x1f"


def _quote(value: Any) -> str:
    """:func:`flr.errors.quote`, also for an integer too long for ``repr`` (over 4300 digits, from Python)."""
    try:
        return quote(value)
    except ValueError:
        if isinstance(value, int):
            return f"an integer of about {value.bit_length() * math.log10(2):.0f} digits"
        return f"a {type(value).__name__} holding an integer too long to show"


def _problem(message: str) -> PydanticCustomError:
    """A value error; ``_FIELD`` in ``message`` is replaced by the field path when it is reported."""
    return PydanticCustomError("patient_value", message)


class _Check:
    """A field's check and JSON Schema (pydantic metadata for ``Annotated``); ``None`` always passes."""

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _validate(self, value: Any) -> Any:
        return None if value is None else self.check(value)

    def __get_pydantic_core_schema__(self, source_type: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return self.schema()


#: A text that starts with a number (``"70 kg"``, ``"1.2 mg/dL"``).
_NUMBER_WITH_UNIT = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _text_hint(text: str) -> str:
    """What to do about a text where a number goes: ``'70 kg'`` -> drop the unit; ``'70'``, ``1e2`` -> unquote."""
    try:
        float(text)
    except ValueError:
        return ": write the number alone, the unit is in the field's name" if _NUMBER_WITH_UNIT.match(text) else ""
    return ": write it as a plain number (70.5), not as text"


class _Number(_Check):
    """A finite number in ``[lo, hi]`` (never a bool or text); ``lab`` keys get a unit hint when out of range."""

    def __init__(self, lo: float, hi: float, unit: str, lab: str | None = None) -> None:
        self.lo, self.hi, self.unit, self.lab = lo, hi, unit, lab

    def check(self, value: Any) -> float:
        u = f" {self.unit}" if self.unit else ""
        expected = f"{self.lo:g}-{self.hi:g}{u}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = _text_hint(value) if isinstance(value, str) else ""
            raise _problem(f"{_FIELD} = {_quote(value)} is not a number (expected {expected}){hint}")
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v) or not self.lo <= v <= self.hi:
            shown = f"{value:g}" if isinstance(value, float) or math.isfinite(v) else _quote(value)
            hint = _unit_hint(self.lab, v) if self.lab else ""  # v: an integer too large for a float is inf
            raise _problem(f"{_FIELD} = {shown} is impossible (expected {expected}{hint})")
        return v

    def schema(self) -> dict[str, Any]:
        return {"type": ["number", "null"], "minimum": self.lo, "maximum": self.hi,
                "description": self.unit or "no unit"}


def _ranged(name: str) -> _Number:
    lo, hi, unit = NUMBER_RANGES[name]
    return _Number(lo, hi, unit)


def _lab(key: str) -> _Number:
    """The check of a laboratory key, canonical or in another unit (its range converted)."""
    canonical, factor, unit = LAB_ALTERNATIVES.get(key, (key, 1.0, ""))
    lo, hi, canonical_unit = scores.LAB_RANGES[canonical]
    return _Number(round(lo * factor, 6), round(hi * factor, 6), unit or canonical_unit, lab=key)


def _unit_hint(key: str, raw: float) -> str:
    """``; did you mean g/L? use albumin_g_l`` when the number is too large for the small unit (or too small
    for the large one) of a test that flr also takes in another unit."""
    if not math.isfinite(raw):
        return ""
    for alt, (canonical, factor, unit) in LAB_ALTERNATIVES.items():
        if factor == 1.0:
            continue
        lo, hi, canonical_unit = scores.LAB_RANGES[canonical]
        if key == canonical and raw > hi:
            return f"; did you mean {unit}? use {alt}"
        if key == alt and lo <= raw < lo * factor:
            return f"; did you mean {canonical_unit}? use {canonical}"
    return ""


class _Bool(_Check):
    """``true`` or ``false`` (never ``"yes"``, ``1``)."""

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _problem(f"{_FIELD} = {_quote(value)} must be true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": ["boolean", "null"]}


class _Choice(_Check):
    """One of ``values``; case, ``-`` and spaces normalised (``Moderate-Severe`` -> ``moderate_severe``)."""

    def __init__(self, values: tuple[str, ...], required: bool = False) -> None:
        self.values, self.required = values, required

    def _validate(self, value: Any) -> Any:
        if value is None and self.required:
            raise _problem(f"{_FIELD} is missing (one of {', '.join(self.values)})")
        return super()._validate(value)

    def check(self, value: Any) -> str:
        norm = value.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else value
        if norm not in self.values:
            raise _problem(f"{_FIELD} = {_quote(value)} is not one of {', '.join(self.values)}")
        return str(norm)

    def schema(self) -> dict[str, Any]:
        return {"enum": [*self.values, *([] if self.required else [None])]}


class _Date(_Check):
    """A date (YAML ``2026-10-01``, or an ISO ``YYYY-MM-DD`` text) after 1980."""

    def check(self, value: Any) -> dt.date:
        try:
            return _as_date(value, _FIELD)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    def schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"], "format": "date", "description": "YYYY-MM-DD"}


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabsFile(_FileModel):
    """``labs`` as written: each test in its canonical unit or in the other one (not both, unless they agree)."""

    bilirubin_mg_dl: Annotated[float | None, _lab("bilirubin_mg_dl")] = None
    albumin_g_dl: Annotated[float | None, _lab("albumin_g_dl")] = None
    inr: Annotated[float | None, _lab("inr")] = None
    creatinine_mg_dl: Annotated[float | None, _lab("creatinine_mg_dl")] = None
    sodium_mmol_l: Annotated[float | None, _lab("sodium_mmol_l")] = None
    cea_ng_ml: Annotated[float | None, _lab("cea_ng_ml")] = None
    bilirubin_umol_l: Annotated[float | None, _lab("bilirubin_umol_l")] = None
    albumin_g_l: Annotated[float | None, _lab("albumin_g_l")] = None
    creatinine_umol_l: Annotated[float | None, _lab("creatinine_umol_l")] = None
    sodium_meq_l: Annotated[float | None, _lab("sodium_meq_l")] = None
    cea_ug_l: Annotated[float | None, _lab("cea_ug_l")] = None
    dialysis: Annotated[bool | None, _Bool()] = None

    @model_validator(mode="after")
    def _units_agree(self) -> LabsFile:
        problems: list[str] = []
        for canonical, values in _lab_values(self).items():
            key0, _, c0 = values[0]
            unit = scores.LAB_RANGES[canonical][2]
            problems.extend(
                f"{_FIELD}.{key0} = {c0:g} {unit} and {_FIELD}.{key} = {v:g} (= {c:g} {unit}) disagree by more than "
                f"{LAB_AGREEMENT_FRACTION:.0%} (give one of them)"
                for key, v, c in values[1:] if abs(c - c0) > LAB_AGREEMENT_FRACTION * max(abs(c), abs(c0)))
        if problems:
            raise _problem("; ".join(problems))
        return self


def _lab_values(labs: LabsFile) -> dict[str, list[tuple[str, float, float]]]:
    """Given values by canonical test: ``[(key, value as given, value in the canonical unit)]``, canonical key first."""
    given: dict[str, list[tuple[str, float, float]]] = {}
    for key in type(labs).model_fields:
        value = getattr(labs, key)
        if key == "dialysis" or value is None:
            continue
        canonical, factor, _ = LAB_ALTERNATIVES.get(key, (key, 1.0, ""))
        given.setdefault(canonical, []).append((key, value, _convert(value, 1.0 / factor)))  # type: ignore[arg-type]
    for values in given.values():
        values.sort(key=lambda t: t[0] not in scores.LAB_RANGES)  # the canonical key first, if given
    return given


class PrimaryFile(_FileModel):
    """``primary`` as written (site-specific fields for another site are accepted with a warning)."""

    site: Annotated[str | None, _Choice(PRIMARY_SITES)] = None
    synchronous: Annotated[bool | None, _Bool()] = None
    node_positive_primary: Annotated[bool | None, _Bool()] = None
    disease_free_interval_months: Annotated[float | None, _ranged("disease_free_interval_months")] = None
    tki_response: Annotated[str | None, _Choice(TKI_RESPONSES)] = None
    progression: Annotated[str | None, _Choice(GIST_PROGRESSION)] = None
    origin: Annotated[str | None, _Choice(NET_ORIGINS)] = None
    prior_liver_recurrence: Annotated[bool | None, _Bool()] = Field(default=None,
                                                                    description=PRIOR_LIVER_RECURRENCE_DOC)
    prior_recurrence: Annotated[bool | None, _Bool()] = Field(default=None, description=PRIOR_RECURRENCE_DOC)

    @model_validator(mode="after")
    def _consistent(self) -> PrimaryFile:
        dfi = self.disease_free_interval_months
        if self.synchronous and dfi is not None and dfi >= scores.FONG_DFI_MONTHS:
            raise _problem(f"{_FIELD}.synchronous = true contradicts {_FIELD}.disease_free_interval_months = "
                           f"{dfi:g} (synchronous metastases have no disease-free interval: correct one of them)")
        return self


class ExtrahepaticFile(_FileModel):
    """One ``extrahepatic_disease`` entry as written: ``{site, extent}``."""

    model_config = ConfigDict(json_schema_extra={"required": ["site"]})

    site: Annotated[str, _Choice(EXTRAHEPATIC_SITES, required=True)] = Field(default=None, validate_default=True)
    extent: Annotated[str | None, _Choice(EXTRAHEPATIC_EXTENTS)] = None


class PveFile(_FileModel):
    """``pve`` as written: the embolization's date and the sFLR (%) measured before it."""

    date: Annotated[dt.date | None, _Date()] = None
    sflr_before_percent: Annotated[float | None, _ranged("sflr_before_percent")] = None


class PatientFile(_FileModel):
    """A patient file as written (every field optional; units in the names). Identifiers are refused."""

    weight_kg: Annotated[float | None, _ranged("weight_kg")] = None
    height_cm: Annotated[float | None, _ranged("height_cm")] = None
    sex: Annotated[str | None, _Choice(SEXES)] = None
    age: Annotated[float | None, _ranged("age")] = None
    liver_condition: Annotated[str | None, _Choice(LIVER_CONDITIONS)] = None
    chemotherapy_weeks: Annotated[float | None, _ranged("chemotherapy_weeks")] = None
    fit_for_major_surgery: Annotated[bool | None, _Bool()] = None
    labs: LabsFile | None = None
    ascites: Annotated[str | None, _Choice(ASCITES_GRADES)] = None
    encephalopathy: Annotated[str | None, _Choice(ENCEPHALOPATHY_GRADES)] = None
    primary: PrimaryFile | None = None
    extrahepatic_disease: tuple[ExtrahepaticFile, ...] | None = Field(
        default=None, description="[] when extrahepatic disease was ruled out; absent when not assessed")
    pve: PveFile | None = None
    scan_date: Annotated[dt.date | None, _Date()] = Field(
        default=None, description="date of this CT (for the kinetic growth rate after PVE) when the CT carries "
                                  "no DICOM StudyDate")
    biliary_anatomy: Annotated[str | None, _Choice(BILIARY_ANATOMIES)] = Field(default=None,
                                                                              description=BILIARY_ANATOMY_DOC)

    @field_validator("extrahepatic_disease", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list | tuple):
            raise _problem(f"{_FIELD} = {_quote(value)} must be a list of {{site, extent}} (write [] when "
                           "extrahepatic disease was ruled out)")
        return value


#: The model of each section of the file, by its path with list indices left out.
_SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {
    (): PatientFile, ("labs",): LabsFile, ("primary",): PrimaryFile, ("pve",): PveFile,
    ("extrahepatic_disease",): ExtrahepaticFile,
}


# --- messages ------------------------------------------------------------------------------------------------

#: A key shown as written in a field path; any other key is quoted (:func:`~flr.errors.quote`).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _key(part: str) -> str:
    """A key for a field path: as written when it is short and plain, else quoted (shortened)."""
    return part if _PLAIN_KEY.fullmatch(part) else _quote(part)


def _path(loc: tuple[int | str, ...]) -> str:
    """``("extrahepatic_disease", 1, "site")`` -> ``extrahepatic_disease[1].site``; odd keys quoted."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if out else _key(str(part)))
    return out


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key, parent = str(loc[-1]), loc[:-1]
    path = _path(loc)
    if key.strip().lower().replace("-", "_").replace(" ", "_") in IDENTIFIER_KEYS:
        return (f"{path} is refused: flr does not take patient identifiers (name, IDs, birth date) - remove it: "
                "age is all flr needs, and results must not identify the patient")
    section = tuple(p for p in parent if isinstance(p, str))
    valid = list(_SECTIONS[section].model_fields) if section in _SECTIONS else []
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6) if _PLAIN_KEY.fullmatch(key) else []
    hint = f"did you mean {close[0]}?" if close else f"valid fields: {', '.join(valid)}"
    name = section[-1] if section else "patient"
    return f"{path} is not a{'n' if name[0] in 'aeiou' else ''} {name} field ({hint})"


def _message(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "patient_value":
        return str(err["msg"]).replace(_FIELD, path or "the patient file")
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "invalid_key":
        return f"{_path(loc[:-1]) + '.' if len(loc) > 1 else ''}{_quote(loc[-1])}: field names must be text"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path or 'the patient file'} must be a mapping of fields, not {type(err['input']).__name__}"
    if kind == "missing":
        return f"{path} is missing"
    return f"{path or 'the patient file'}: {err['msg']}"


def _messages(exc: ValidationError) -> tuple[list[str], int]:
    """The messages of the first :data:`MAX_LISTED_ERRORS` problems (each naming its field path, never an
    identifier's value) and how many problems there are in all (a file can have thousands)."""
    errors = exc.errors(include_url=False)
    first = list(dict.fromkeys(_message(err) for err in errors[:MAX_LISTED_ERRORS]))
    return first, len(first) + max(len(errors) - MAX_LISTED_ERRORS, 0)


# --- from the file to the patient ----------------------------------------------------------------------------

def _patient_from_file(f: PatientFile, source: str) -> Patient:
    warnings: list[str] = []
    labs = Labs()
    if f.labs is not None:
        canonical: dict[str, Any] = {"dialysis": f.labs.dialysis}
        for name, values in _lab_values(f.labs).items():
            key0, _, c0 = values[0]
            warnings.extend(f"labs.{key0} and labs.{key} both given and agree; using {key0} = {c0:g}"
                            for key, _, _ in values[1:])
            canonical[name] = c0
        labs = Labs(**canonical)
    primary = Primary()
    if f.primary is not None:
        primary = Primary(**f.primary.model_dump())
        for name, sites in _SITE_FIELDS.items():
            if primary.site is not None and getattr(primary, name) is not None and primary.site not in sites:
                warnings.append(f"primary.{name} applies to {' and '.join(sites)} primaries, not {primary.site}; "
                                "the rulebook ignores it")
    if f.age is not None and f.age < 18:
        warnings.append(f"age = {f.age:g}: flr's volume formulas (BSA, TELV) and thresholds were derived in adults")
    top = {name: getattr(f, name) for name in ("weight_kg", "height_cm", "sex", "age", "liver_condition",
                                               "chemotherapy_weeks", "fit_for_major_surgery", "ascites",
                                               "encephalopathy")}
    ehd = None if f.extrahepatic_disease is None else tuple(
        ExtrahepaticDisease(site=d.site, extent=d.extent) for d in f.extrahepatic_disease)
    pve = None if f.pve is None else Pve(date=f.pve.date, sflr_before_percent=f.pve.sflr_before_percent)
    patient = Patient(**top, labs=labs, primary=primary, extrahepatic_disease=ehd, pve=pve, scan_date=f.scan_date,
                      biliary_anatomy=f.biliary_anatomy)
    patient._source = source
    patient._warnings = tuple(warnings)
    return patient


# --- helpers --------------------------------------------------------------------------------------------

def _missing(**inputs: Any) -> list[str]:
    """Field paths (``labs.inr``, ``ascites``) of the inputs that are None."""
    return [name if name in ("ascites", "encephalopathy") else f"labs.{name}"
            for name, value in inputs.items() if value is None]


def _convert(value: float | None, factor: float) -> float | None:
    """``value x factor`` rounded to 1e-6 (removes floating-point noise: 34.2 / 17.1 is exactly 2.0)."""
    return None if value is None else round(value * factor, 6)


def _as_date(value: Any, path: str) -> dt.date:
    """A date from a ``date``, a ``datetime`` (its day) or ISO ``YYYY-MM-DD`` text; ``ValueError`` naming ``path``."""
    if isinstance(value, dt.datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{path} = {_quote(value)} is not a date (write YYYY-MM-DD)") from None
    if not isinstance(value, dt.date):
        raise ValueError(f"{path} = {_quote(value)} is not a date (write YYYY-MM-DD)")
    if not _EARLIEST_DATE <= value <= _LATEST_DATE:
        raise ValueError(f"{path} = {value.isoformat()} is impossible (expected a date after "
                         f"{_EARLIEST_DATE.isoformat()})")
    return value

