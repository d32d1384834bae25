"""Property-based fuzzing of the configuration readers: whatever the input, a valid object or one bounded line.

* :func:`flr.io.config.parse_config` on arbitrary text and bytes, and on text built from YAML's and JSON's own
  punctuation (which reaches the parsers' corners far more often than random text);
* :meth:`flr.patient.Patient.from_dict` on arbitrary JSON-like values (nested dicts, lists and scalars), and on
  mutations of the sample patient (``sample_data/phantom-001/patient.yaml``);
* :func:`flr.rules.parse_rulebook` on mutations of the default rulebook (``flr/rulebooks/default.yaml``),
  written as JSON and as YAML; a rulebook that is accepted must also judge a case (``evaluate``, with every
  fact known and with none).

Each run either returns, or raises an :class:`~flr.errors.FlrError` whose message is one line of at most
:data:`flr.errors.MAX_PROBLEMS_CHARS` characters; any other exception fails the test. Runs are seeded
(``derandomize=True``: the same examples every time, no example database) and take a few seconds in all.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flr.errors import MAX_PROBLEMS_CHARS, FlrError
from flr.io.config import parse_config
from flr.patient import Patient, PatientFile
from flr.rules import FACTS, Fact, Rulebook, evaluate, parse_rulebook

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PATIENT = yaml.safe_load((REPO / "sample_data" / "phantom-001" / "patient.yaml").read_text(encoding="utf-8"))
DEFAULT_RULEBOOK = yaml.safe_load((REPO / "flr" / "rulebooks" / "default.yaml").read_text(encoding="utf-8"))



#: libyaml's writer where PyYAML has it (about 8 times faster than the pure-Python one).
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def seeded(max_examples: int) -> settings:
    """Seeded settings (the same examples on every run, no example database, no deadline)."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=max_examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])



def _check_refusal(exc: FlrError) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert 0 < len(message) <= MAX_PROBLEMS_CHARS, len(message)


def _outcome(fn, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)``, or ``None`` after checking the FlrError it raised; other exceptions propagate."""
    try:
        return fn(*args, **kwargs)
    except FlrError as exc:
        _check_refusal(exc)
        return None


# --- values ---------------------------------------------------------------------------------------------------

#: Field names flr knows (so that generated mappings reach the checks of each field), and a few it does not.
KEYS = st.sampled_from([
    *PatientFile.model_fields, "bilirubin_mg_dl", "albumin_g_l", "inr", "dialysis", "site", "extent", "date",
    "sflr_before_percent", "synchronous", "name", "patient_id", "weigth_kg", "", "Sex", "labs.inr",
]) | st.text(max_size=12)

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30) | st.dates()
           | st.sampled_from(["female", "normal", "colorectal", "lung", "limited", "2026-10-01", "70 kg", "none"]))

JSON_LIKE = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
                         max_leaves=25)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists (the root excluded)."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def mutations(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three changes: a value replaced, a key removed, renamed or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "remove", "rename", "add"]))
        if action == "replace":
            parent[key] = draw(JSON_LIKE)
        elif action == "remove":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON_LIKE)
        else:
            parent.append(draw(JSON_LIKE))
    return doc


# --- the parser ---------------------------------------------------------------------------------------------------

#: Characters that matter to YAML and JSON parsers, so that random text is mostly syntax.
SYNTAX = st.text(alphabet=st.sampled_from(list(":-[]{}&*!#|>'\"\\\n\t ,?%@`~.0123456789aeEnulNaIfy\ufeff\x00\x85")),
                 max_size=60)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@seeded(100)
@given(text=st.text(max_size=200) | SYNTAX)
def test_parse_config_on_any_text(fmt, text):
    _outcome(parse_config, text, origin=f"fuzz.{fmt}", fmt=fmt)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@seeded(100)
@given(data=st.binary(max_size=200) | SYNTAX.map(lambda s: s.encode("utf-8")))
def test_parse_config_on_any_bytes(fmt, data):
    _outcome(parse_config, data, origin=f"fuzz.{fmt}", fmt=fmt)


# --- the patient file ---------------------------------------------------------------------------------------------

def _valid_patient(patient: Patient) -> None:
    assert isinstance(patient, Patient)
    patient.to_dict()
    patient.liver_function_scores()
    assert all(isinstance(w, str) and "\n" not in w for w in patient.warnings)


@seeded(60)
@given(data=JSON_LIKE | st.dictionaries(KEYS, JSON_LIKE, max_size=8))
@example(data={"labs": {"sodium_mmol_l": 10**400}})  # found by this test: the unit hint's float(10**400)
@example(data={"weight_kg": 10**5000, "sex": [10**5000]})  # repr refuses integers of over 4300 digits
@example(data=None)
def test_patient_from_any_json_like_value(data):
    patient = _outcome(Patient.from_dict, data, source="fuzz.yaml")
    if patient is not None:
        _valid_patient(patient)


@seeded(60)
@given(data=mutations(SAMPLE_PATIENT))
def test_patient_from_a_mutated_sample(data):
    patient = _outcome(Patient.from_dict, data, source="fuzz.yaml")
    if patient is not None:
        _valid_patient(patient)


# --- the rulebook -------------------------------------------------------------------------------------------------

def _as_text(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, default=lambda v: v.isoformat() if isinstance(v, dt.date) else str(v))
    return yaml.dump(doc, Dumper=DUMPER, sort_keys=False, allow_unicode=True)


@pytest.mark.parametrize(("fmt", "examples"), [("json", 30), ("yaml", 15)])  # YAML: 15 ms a rulebook
def test_rulebook_from_a_mutated_default(fmt, examples):
    @seeded(examples)
    @given(doc=mutations(DEFAULT_RULEBOOK))
    @example(doc=_with(DEFAULT_RULEBOOK, 0, threshold=10**400, check="at_least", inputs=["min_margin_mm"]))
    @example(doc=_with(DEFAULT_RULEBOOK, 3, inputs=["fong_missing"], threshold=[{"a": 1}]))
    def run(doc):
        _judge(doc, fmt)

    run()


def _with(doc: Any, index: int, **fields: Any) -> Any:
    """``doc`` with rule ``index`` changed (a regression example)."""
    out = copy.deepcopy(doc)
    out["rules"][index].update(fields)
    return out


def _a_value(fact: Fact) -> Any:
    """A valid value of ``fact`` (so that every predicate meets its threshold)."""
    plain = {"number": 1.0, "count": 1, "bool": True, "status": "pass"}
    if fact.kind in plain:
        return plain[fact.kind]
    return list(fact.values[:1]) if fact.kind == "list" else fact.values[0]


#: A case where every fact is known, and one where none is.
EVERY_FACT = {name: _a_value(fact) for name, fact in FACTS.items()}


def _judge(doc: Any, fmt: str) -> None:
    """Parse the rulebook ``doc`` written as ``fmt``; an accepted one must judge a case with and without facts."""
    book = _outcome(parse_rulebook, _as_text(doc, fmt), f"fuzz.{fmt}", fmt=fmt)
    if book is not None:
        assert isinstance(book, Rulebook) and book.rules
        for facts in (EVERY_FACT, {}):
            verdict = evaluate(facts, book)
            verdict.to_dict()
