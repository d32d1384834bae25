"""Patient input: clinical facts flr needs beside the images, validated once, field by field.

A patient file (YAML or JSON) holds body size, liver condition, laboratory values, the primary tumour,
extrahepatic disease and portal vein embolization (PVE). Every field is optional: a missing value is
``None`` and the rulebook reports what it could not assess. A value that is present is checked:

* impossible numbers (negative weight, INR 40, albumin 90 g/dL) are refused with the expected range and,
  when the number fits another unit, the field to use instead (``albumin_g_l``);
* unknown choices are listed with the valid ones; unknown keys get the closest valid key suggested;
* a laboratory value given in two units must agree within 5% (then accepted, with a warning);
* identifiers (name, patient ID, birth date...) are refused: flr never stores who the patient is, and
  ``age`` is all it needs.

Every error is one :class:`~flr.scores.PatientValueError` line naming the file and the field, e.g.
``patient.yaml: labs.albumin_g_dl = 90 is impossible (expected 1-7 g/dL; did you mean g/L? use albumin_g_l)``.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flr import scores
from flr.errors import InputFileError, UnsupportedFormatError
from flr.scores import BODY_RANGES, PatientValueError

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
    "progression": ("gist",), "origin": ("neuroendocrine",), "prior_liver_recurrence": ("sarcoma",),
}


# --- the model ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Labs:
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


@dataclass(frozen=True)
class Primary:
    """The primary tumour; site-specific fields are ``None`` when not given or not applicable."""

    site: str | None = None
    synchronous: bool | None = None
    node_positive_primary: bool | None = None
    disease_free_interval_months: float | None = None
    tki_response: str | None = None
    progression: str | None = None
    origin: str | None = None
    prior_liver_recurrence: bool | None = None


@dataclass(frozen=True)
class ExtrahepaticDisease:
    """One site of disease outside the liver; ``extent`` ``None`` when not stated."""

    site: str
    extent: str | None = None


@dataclass(frozen=True)
class Pve:
    """Portal vein embolization before this scan: its date and the sFLR (%) measured before it."""

    date: dt.date | None = None
    sflr_before_percent: float | None = None


@dataclass(frozen=True)
class Patient:
    """Validated, immutable patient input. Build it with :meth:`from_dict` or :func:`load_patient`.

    ``labs`` and ``primary`` are always present (their fields ``None`` when not given);
    ``extrahepatic_disease`` is ``None`` when not assessed and ``()`` when ruled out; ``pve`` is ``None``
    without embolization. ``warnings`` (accepted oddities) and ``source`` (where the input came from, which
    may be a path naming the patient) are not part of :meth:`to_dict`.
    """

    weight_kg: float | None = None
    height_cm: float | None = None
    sex: str | None = None
    age: float | None = None
    liver_condition: str | None = None
    chemotherapy_weeks: float | None = None
    fit_for_major_surgery: bool | None = None
    labs: Labs = field(default_factory=Labs)
    ascites: str | None = None
    encephalopathy: str | None = None
    primary: Primary = field(default_factory=Primary)
    extrahepatic_disease: tuple[ExtrahepaticDisease, ...] | None = None
    pve: Pve | None = None
    source: str = field(default="patient", compare=False, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "patient") -> Patient:
        """Validate a mapping (parsed YAML/JSON) into a :class:`Patient`; errors name ``source`` and the field.

        >>> Patient.from_dict({"weigth_kg": 70}, source="p.yaml")
        Traceback (most recent call last):
        ...
        flr.errors.PatientValueError: p.yaml: weigth_kg is not a patient field; did you mean weight_kg?
        """
        return _Parser(source).patient(d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready canonical values (dates as ISO strings); never an identifier, the source or warnings."""
        out = _plain(self)
        del out["source"], out["warnings"]
        return out

    def pve_weeks(self, scan_date: dt.date | dt.datetime | str) -> float | None:
        """Weeks from the PVE to ``scan_date`` (a date or ISO ``YYYY-MM-DD``); ``None`` without a PVE date.

        >>> Patient(pve=Pve(dt.date(2026, 10, 1))).pve_weeks("2026-10-29")
        4.0
        """
        if self.pve is None or self.pve.date is None:
            return None
        scan = _as_date(scan_date, "scan_date", self.source)
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


def load_patient(path: str | Path) -> Patient:
    """Read and validate a patient file (``.yaml``, ``.yml`` or ``.json``).

    Duplicate keys are refused (YAML and JSON parsers would silently keep the last one). File problems
    raise :class:`~flr.errors.InputFileError`; content problems :class:`~flr.scores.PatientValueError`.
    """
    p = Path(path)
    src = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise UnsupportedFormatError(f"{src}: a patient file must be .yaml, .yml or .json, not "
                                     f"{suffix or 'a file without suffix'}")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{src}: patient file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(f"{src}: cannot read the patient file ({e})") from None
    data = _parse_json(text, src) if suffix == ".json" else _parse_yaml(text, src)
    if data is None:
        raise PatientValueError(f"{src}: the patient file is empty (write {{}} for a patient with no known facts)")
    return Patient.from_dict(data, source=src)


# --- parsing --------------------------------------------------------------------------------------------

class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int | None) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


def _parse_json(text: str, src: str) -> Any:
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise _DuplicateKeyError(k, None)
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except _DuplicateKeyError as e:
        raise PatientValueError(f"{src}: key {e.key!r} is given twice") from None
    except json.JSONDecodeError as e:
        raise InputFileError(f"{src}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None


def _parse_yaml(text: str, src: str) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
            seen.add(key)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass that only adds a duplicate check
    except _DuplicateKeyError as e:
        raise PatientValueError(f"{src}: line {e.line}: key {e.key!r} is given twice") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputFileError(f"{src}: not valid YAML: {problem}{where}") from None


class _Parser:
    """Validates one patient mapping; every message starts with the source and names the field path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []

    def fail(self, message: str) -> PatientValueError:
        return PatientValueError(f"{self.source}: {message}")

    # -- structure --
    def mapping(self, value: Any, path: str, valid: list[str]) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            what = path or "the patient file"
            raise self.fail(f"{what} must be a mapping of fields, not {type(value).__name__}")
        prefix = f"{path}." if path else ""
        for key in value:
            if not isinstance(key, str):
                raise self.fail(f"{prefix}{key!r}: field names must be text")
            norm = key.strip().lower().replace("-", "_").replace(" ", "_")
            if norm in IDENTIFIER_KEYS:
                raise self.fail(f"{prefix}{key} is refused: flr does not take patient identifiers (name, IDs, birth "
                                "date); remove it - age is all flr needs, and results must not identify the patient")
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else f"valid fields: {', '.join(valid)}"
                raise self.fail(f"{prefix}{key} is not a {path or 'patient'} field; {hint}")
        return dict(value)

    # -- values --
    def number(self, value: Any, path: str, lo: float, hi: float, unit: str, hint: str = "") -> float:
        u = f" {unit}" if unit else ""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{path} = {value!r} is not a number (expected {lo:g}-{hi:g}{u})")
        v = float(value)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise self.fail(f"{path} = {value:g} is impossible (expected {lo:g}-{hi:g}{u}{hint})")
        return v

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{path} = {value!r} must be true or false")
        return value

    def choice(self, value: Any, path: str, valid: tuple[str, ...]) -> str:
        norm = value.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else value
        if norm not in valid:
            raise self.fail(f"{path} = {value!r} is not one of {', '.join(valid)}")
        return norm

    def optional(self, d: Mapping[str, Any], key: str, path: str, check: Callable[[Any, str], Any]) -> Any:
        value = d.get(key)
        return None if value is None else check(value, path + key)

    def ranged(self, name: str) -> Callable[[Any, str], float]:
        lo, hi, unit = NUMBER_RANGES[name]
        return lambda v, p: self.number(v, p, lo, hi, unit)

    def choices(self, valid: tuple[str, ...]) -> Callable[[Any, str], str]:
        return lambda v, p: self.choice(v, p, valid)

    # -- sections --
    def patient(self, d: Any) -> Patient:
        top = [f.name for f in fields(Patient) if f.name not in ("source", "warnings")]
        d = self.mapping(d, "", top)
        kw: dict[str, Any] = {name: self.optional(d, name, "", self.ranged(name))
                              for name in ("weight_kg", "height_cm", "age", "chemotherapy_weeks")}
        kw["sex"] = self.optional(d, "sex", "", self.choices(SEXES))
        kw["liver_condition"] = self.optional(d, "liver_condition", "", self.choices(LIVER_CONDITIONS))
        kw["fit_for_major_surgery"] = self.optional(d, "fit_for_major_surgery", "", self.boolean)
        kw["ascites"] = self.optional(d, "ascites", "", self.choices(ASCITES_GRADES))
        kw["encephalopathy"] = self.optional(d, "encephalopathy", "", self.choices(ENCEPHALOPATHY_GRADES))
        kw["labs"] = self.labs(d.get("labs"))
        kw["primary"] = self.primary(d.get("primary"))
        kw["extrahepatic_disease"] = self.extrahepatic(d.get("extrahepatic_disease"))
        kw["pve"] = self.pve(d.get("pve"))
        if kw["age"] is not None and kw["age"] < 18:
            self.warnings.append(f"age = {kw['age']:g}: flr's volume formulas (BSA, TELV) and thresholds were "
                                 "derived in adults")
        return Patient(**kw, source=self.source, warnings=tuple(self.warnings))

    def labs(self, value: Any) -> Labs:
        if value is None:
            return Labs()
        valid = [*scores.LAB_RANGES, *LAB_ALTERNATIVES, "dialysis"]
        d = self.mapping(value, "labs", valid)
        given: dict[str, list[tuple[str, float, float]]] = {}   # canonical -> [(key, value as given, canonical)]
        for key, raw in d.items():
            if key == "dialysis" or raw is None:
                continue
            canonical, factor, unit = LAB_ALTERNATIVES[key] if key in LAB_ALTERNATIVES else \
                (key, 1.0, scores.LAB_RANGES[key][2])
            lo, hi, _ = scores.LAB_RANGES[canonical]
            v = self.number(raw, f"labs.{key}", round(lo * factor, 6), round(hi * factor, 6), unit,
                            self.unit_hint(key, raw))
            given.setdefault(canonical, []).append((key, v, _convert(v, 1.0 / factor)))  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        for canonical, values in given.items():
            values.sort(key=lambda t: t[0] != canonical)          # the canonical key first, if given
            key0, _, c0 = values[0]
            for key, v, c in values[1:]:
                if abs(c - c0) > LAB_AGREEMENT_FRACTION * max(abs(c), abs(c0)):
                    unit = scores.LAB_RANGES[canonical][2]
                    raise self.fail(f"labs.{key0} = {c0:g} {unit} and labs.{key} = {v:g} (= {c:g} {unit}) disagree "
                                    f"by more than {LAB_AGREEMENT_FRACTION:.0%}; give one of them")
                self.warnings.append(f"labs.{key0} and labs.{key} both given and agree; using {key0} = {c0:g}")
            kw[canonical] = c0
        kw["dialysis"] = self.optional(d, "dialysis", "labs.", self.boolean)
        return Labs(**kw)

    @staticmethod
    def unit_hint(key: str, raw: Any) -> str:
        """``; did you mean g/L? use albumin_g_l`` when the number is too large for the small unit (or too
        small for the large one) of a test that flr also takes in another unit."""
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
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

    def primary(self, value: Any) -> Primary:
        if value is None:
            return Primary()
        d = self.mapping(value, "primary", [f.name for f in fields(Primary)])
        p = "primary."
        kw = {
            "site": self.optional(d, "site", p, self.choices(PRIMARY_SITES)),
            "synchronous": self.optional(d, "synchronous", p, self.boolean),
            "node_positive_primary": self.optional(d, "node_positive_primary", p, self.boolean),
            "disease_free_interval_months": self.optional(d, "disease_free_interval_months", p,
                                                          self.ranged("disease_free_interval_months")),
            "tki_response": self.optional(d, "tki_response", p, self.choices(TKI_RESPONSES)),
            "progression": self.optional(d, "progression", p, self.choices(GIST_PROGRESSION)),
            "origin": self.optional(d, "origin", p, self.choices(NET_ORIGINS)),
            "prior_liver_recurrence": self.optional(d, "prior_liver_recurrence", p, self.boolean),
        }
        dfi = kw["disease_free_interval_months"]
        if kw["synchronous"] and dfi is not None and dfi >= scores.FONG_DFI_MONTHS:
            raise self.fail(f"primary.synchronous = true contradicts primary.disease_free_interval_months = {dfi:g} "
                            "(synchronous metastases have no disease-free interval); correct one of them")
        if kw["site"] is not None:
            for name, sites in _SITE_FIELDS.items():
                if kw[name] is not None and kw["site"] not in sites:
                    self.warnings.append(f"primary.{name} applies to {' and '.join(sites)} primaries, not "
                                         f"{kw['site']}; the rulebook ignores it")
        return Primary(**kw)

    def extrahepatic(self, value: Any) -> tuple[ExtrahepaticDisease, ...] | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise self.fail(f"extrahepatic_disease = {value!r} must be a list of {{site, extent}} (write [] when "
                            "extrahepatic disease was ruled out)")
        out = []
        for i, item in enumerate(value):
            path = f"extrahepatic_disease[{i}]"
            d = self.mapping(item, path, ["site", "extent"])
            if d.get("site") is None:
                raise self.fail(f"{path}.site is missing (one of {', '.join(EXTRAHEPATIC_SITES)})")
            out.append(ExtrahepaticDisease(self.choice(d["site"], f"{path}.site", EXTRAHEPATIC_SITES),
                                           self.optional(d, "extent", f"{path}.", self.choices(EXTRAHEPATIC_EXTENTS))))
        return tuple(out)

    def pve(self, value: Any) -> Pve | None:
        if value is None:
            return None
        d = self.mapping(value, "pve", [f.name for f in fields(Pve)])
        return Pve(self.optional(d, "date", "pve.", lambda v, p: _as_date(v, p, self.source)),
                   self.optional(d, "sflr_before_percent", "pve.", self.ranged("sflr_before_percent")))


# --- helpers --------------------------------------------------------------------------------------------

def _missing(**inputs: Any) -> list[str]:
    """Field paths (``labs.inr``, ``ascites``) of the inputs that are None."""
    return [name if name in ("ascites", "encephalopathy") else f"labs.{name}"
            for name, value in inputs.items() if value is None]


def _convert(value: float | None, factor: float) -> float | None:
    """``value x factor`` rounded to 1e-6 (removes floating-point noise: 34.2 / 17.1 is exactly 2.0)."""
    return None if value is None else round(value * factor, 6)


_EARLIEST_DATE = dt.date(1980, 1, 1)


def _as_date(value: Any, path: str, source: str) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise PatientValueError(f"{source}: {path} = {value!r} is not a date (write YYYY-MM-DD)") from None
    if not isinstance(value, dt.date):
        raise PatientValueError(f"{source}: {path} = {value!r} is not a date (write YYYY-MM-DD)")
    if not _EARLIEST_DATE <= value <= dt.date(2200, 1, 1):
        raise PatientValueError(f"{source}: {path} = {value.isoformat()} is impossible (expected a date after "
                                f"{_EARLIEST_DATE.isoformat()})")
    return value


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
