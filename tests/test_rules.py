"""The rule engine (flr.rules): rulebook validation, predicates, verdict logic, provenance and sources.

The clinical behaviour of the shipped rulebooks is tested scenario by scenario in test_rule_scenarios.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from flr import model
from flr.errors import MAX_PARTIAL_CHARS, MAX_PROBLEMS_CHARS, ConfigFileError, FlrError, ResultFormatError
from flr.rules import (
    BUILTIN_RULEBOOKS,
    DISCLAIMER,
    FACTS,
    PREDICATES,
    FactError,
    Reason,
    RulebookError,
    RulebookFileError,
    Verdict,
    evaluate,
    list_rules,
    liver_condition_keys,
    load_rulebook,
    parse_rulebook,
    rulebook_json_schema,
    rulebook_sha256,
)
from tests.test_rule_scenarios import BASELINE

REPO = Path(__file__).resolve().parents[1]

#: Rules the literature profile deliberately words differently from the source-text profile.
LITERATURE_OWN = {"flr_body_weight", "sflr_by_liver_condition", "pve_degree_of_hypertrophy",
                  "pve_kinetic_growth_rate", "extent_consensus", "extent_consensus_colorectal"}
#: Rules only the source-text profile has (the literature profile judges FLR/BW at 0.5 % and sFLR on its own).
DEFAULT_ONLY = {"liver_condition", "flr_body_weight_one_percent"}

MINIMAL: dict[str, Any] = {
    "id": "test_book",
    "version": "1",
    "title": "t",
    "description": "d",
    "source_text": "s",
    "rules": [
        {"id": "fit", "statement": "Fit.", "inputs": ["fit_for_major_surgery"], "check": "is_true",
         "on_fail": "not_resectable", "source": "source text, section 1"},
        {"id": "volume", "statement": "Big enough.", "inputs": ["flr_body_weight_percent"], "check": "at_least",
         "threshold": 1.0, "on_fail": "strategy", "strategies": ["portal_vein_embolization"],
         "source": "source text, section 1"},
        {"id": "breast", "statement": "Selected.", "inputs": ["verdict"], "check": "in_set",
         "threshold": ["resectable"], "when": {"primary_site": "breast"}, "on_fail": "caution",
         "guidance": {"pass": "carefully selected"}, "source": "source text, section 5"},
    ],
}


def _book(doc: dict[str, Any]):
    return parse_rulebook(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


# --- shipped rulebooks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_builtin_rulebook_loads_with_provenance(name):
    book = load_rulebook(name)
    assert book.id == name
    data = resources.files("flr").joinpath("rulebooks").joinpath(f"{name}.yaml").read_bytes()
    assert book.sha256 == hashlib.sha256(data).hexdigest() == rulebook_sha256(name)
    assert len({r.id for r in book.rules}) == len(book.rules) >= 25


@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_every_rule_has_a_statement_and_a_source(name):
    for rule in load_rulebook(name).rules:
        assert rule.statement.strip() and rule.source.strip(), rule.id
        # a source either quotes the source text by title and section or cites a publication (with its year)
        assert re.search(SOURCE_CITATION, rule.source) or re.search(r"(19|20)\d\d", rule.source), rule.id


#: How a rule cites the clinical source text (issue 13, item 7): by its title and a section a reader can find.
SOURCE_CITATION = r"Liver Metastases \(Liver Secondary\), (section [1-5] \([A-Z][^)]+\)|introduction)"


@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_sources_name_no_repository_path_and_no_verify_marker(name):
    """Issue 13, item 7: no ``[verify]``, no repository path in anything a user reads (rules, sources, guidance)."""
    book = load_rulebook(name)
    texts = [book.title, book.description, book.source_text]
    for rule in book.rules:
        texts += [rule.statement, rule.source, *([rule.guidance] if isinstance(rule.guidance, str) else
                                                 (rule.guidance or {}).values())]
    for text in texts:
        assert not re.search(r"\[verify\]|clinical-reference|\.\./|shared/|\.md\b|\.txt\b", text), text
    for rule in book.rules:  # a literature citation names its journal and year, not a bare author
        for cite in re.findall(r"et al\.,? ([^;)]*)", rule.source):
            assert re.search(r"(19|20)\d\d", cite), (rule.id, cite)


def test_the_source_text_ships_with_flr_and_is_the_one_quoted():
    from flr.rules import source_text

    text = source_text()
    assert text.startswith("Liver Metastases (Liver Secondary)")
    if SOURCE_TEXT.is_file():
        assert text == SOURCE_TEXT.read_text(encoding="utf-8")


SOURCE_TEXT = Path(__file__).resolve().parents[2] / "shared" / "source-text" / "liver-metastases.txt"


def _plain_text(text: str) -> str:
    text = text.replace("≥", ">=").replace("–", "-").replace("’", "").replace("‘", "").replace("'", "")
    return "".join(text.lower().split())  # spacing aside too: the source writes "margin of1-cm"


@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_quotes_are_from_the_source_text(name):
    """Every rule quoting the source text quotes it word for word (typography aside); default rules all quote it."""
    if not SOURCE_TEXT.is_file():
        pytest.skip(f"source text not found at {SOURCE_TEXT}")
    text = _plain_text(SOURCE_TEXT.read_text(encoding="utf-8"))
    for rule in load_rulebook(name).rules:
        cites = re.search(SOURCE_CITATION, rule.source)
        quotes = re.findall(r"'(.+?)'(?=[\s.,;)]|$)", rule.source) if cites else []
        if name == "default" and not rule.source.startswith("Mortele"):  # a caution about imaging, not the text
            assert cites and quotes, f"{rule.id}: quote the source"
        for quote in quotes:
            for fragment in re.split(r"\.\.\.|;", quote):
                assert _plain_text(fragment) in text, (rule.id, fragment)


def test_literature_repeats_the_shared_rules_verbatim():
    default = {r["id"]: r for r in list_rules("default")}
    literature = {r["id"]: r for r in list_rules("literature")}
    assert set(default) - set(literature) == DEFAULT_ONLY
    assert set(literature) - set(default) == LITERATURE_OWN - {"flr_body_weight"}
    for rid in set(default) & set(literature) - LITERATURE_OWN:
        assert default[rid] == literature[rid], f"{rid} drifted between default.yaml and literature.yaml"
    assert default["flr_body_weight"]["threshold"]["flr_body_weight_percent"] == 1.0
    assert literature["flr_body_weight"]["threshold"] == 0.5


def test_list_rules_gives_plain_dicts():
    rules = list_rules("literature")
    json.dumps(rules, allow_nan=False)
    sflr = next(r for r in rules if r["id"] == "sflr_by_liver_condition")
    assert sflr["threshold"] == {"normal": 20, "chemotherapy_up_to_12_weeks": 20, "chemotherapy_over_12_weeks": 30,
                                 "steatosis": 30, "cirrhosis": 40}
    assert sflr["strategies"] == ["portal_vein_embolization", "two_stage_hepatectomy"]
    net = next(r for r in rules if r["id"] == "net_liver_transplant")
    assert net["after_verdict"] and not net["required"]


def test_facts_contract():
    """The facts the lead's code builds (assess + patient file); a rename here must be a deliberate one."""
    assert set(FACTS) == {
        "flr_body_weight_percent", "sflr_percent", "flr_percent_of_functional_liver", "remnant_functional_volume_ml",
        "two_contiguous_segments", "inflow", "outflow", "biliary_drainage", "tumor_clearance", "min_margin_mm",
        "tumor_count", "tumors_left", "tumors_ablated", "largest_tumor_mm", "segments_involved",
        "liver_involved_percent", "bilobar", "plan_is_anatomic", "segments_resected", "major_hepatectomy",
        "fit_for_major_surgery", "liver_condition", "chemotherapy_weeks", "child_pugh_class", "child_pugh_points",
        "albi_grade", "meld", "primary_site", "synchronous", "node_positive_primary", "disease_free_interval_months",
        "tki_response", "progression", "origin", "prior_liver_recurrence", "extrahepatic_sites",
        "extrahepatic_extent", "fong_score", "fong_missing", "cea_ng_ml", "pve_done", "degree_of_hypertrophy_pp",
        "kinetic_growth_rate_pp_per_week",
        # issue 13: the ablated tumour's size, sarcoma recurrence, biliary imaging, extrahepatic disease in one
        "largest_ablated_tumor_mm", "prior_recurrence", "biliary_anatomy", "extrahepatic_disease"}
    assert set(BASELINE) == set(FACTS)
    assert all(f.needs for f in FACTS.values())
    assert all(p.doc for p in PREDICATES.values())


# --- loading and validation ---------------------------------------------------------------------------------

def test_minimal_rulebook_parses():
    book = _book(MINIMAL)
    assert [r.id for r in book.rules] == ["fit", "volume", "breast"]
    assert [r.required for r in book.rules] == [True, True, False]


def test_load_rulebook_from_a_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    book = load_rulebook(path)
    assert book.id == "test_book" and book.origin == str(path)
    assert book.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_rulebook(str(path)).sha256 == book.sha256
    assert load_rulebook(book) is book


def test_unknown_rulebook_names_the_choices(tmp_path):
    with pytest.raises(RulebookError, match=r"default or literature or a YAML file"):
        load_rulebook("strict")
    with pytest.raises(RulebookError, match="no such rulebook"):
        load_rulebook(tmp_path / "missing.yaml")


def test_rulebook_error_is_a_value_error():
    assert issubclass(RulebookError, FlrError) and issubclass(RulebookError, ValueError)
    assert issubclass(FactError, FlrError) and issubclass(FactError, ValueError)


def _rule(doc, i=1):
    return doc["rules"][i]


BROKEN = [
    ("unknown check", lambda d: _rule(d).update(check="at_leest"), r"rule 'volume', field 'check': unknown check"),
    ("missing threshold", lambda d: _rule(d).pop("threshold"), r"rule 'volume', field 'threshold': missing"),
    ("threshold not a number", lambda d: _rule(d).update(threshold="one"), r"'volume', field 'threshold'"),
    ("threshold on is_true", lambda d: _rule(d, 0).update(threshold=1), r"rule 'fit', field 'threshold': .*no thr"),
    ("unknown fact", lambda d: _rule(d).update(inputs=["flr_bw"]), r"rule 'volume', field 'inputs': unknown fact"),
    ("wrong fact kind", lambda d: _rule(d).update(inputs=["primary_site"]), r"'volume', field 'inputs': .*cannot"),
    ("too many inputs", lambda d: _rule(d).update(inputs=["sflr_percent", "flr_body_weight_percent"]),
     r"'volume', field 'inputs': check 'at_least' reads 1"),
    ("no inputs", lambda d: _rule(d).update(inputs=[]), r"'volume', field 'inputs'"),
    ("duplicate id", lambda d: _rule(d).update(id="fit"), r"rule 'fit', field 'id': duplicate"),
    ("bad on_fail", lambda d: _rule(d).update(on_fail="warn"), r"rule 'volume', field 'on_fail'"),
    ("missing source", lambda d: _rule(d).pop("source"), r"rule 'volume', field 'source': missing"),
    ("empty statement", lambda d: _rule(d).update(statement=" "), r"rule 'volume', field 'statement': missing"),
    ("id not snake_case", lambda d: _rule(d).update(id="Volume-Rule"), r"rule #2, field 'id'"),
    ("unknown field", lambda d: _rule(d).update(treshold=2), r"rule 'volume', field 'treshold': unknown field"),
    ("strategy without strategies", lambda d: _rule(d).pop("strategies"), r"'volume', field 'strategies'"),
    ("caution with strategies", lambda d: _rule(d).update(on_fail="caution"), r"'volume', field 'strategies'"),
    ("strategy not snake_case", lambda d: _rule(d).update(strategies=["PVE now"]), r"'volume', field 'strategies'"),
    ("when unknown fact", lambda d: _rule(d).update(when={"primary": "gist"}), r"'volume', field 'when': unknown"),
    ("when bad value", lambda d: _rule(d).update(when={"primary_site": "colon"}), r"'volume', field 'when': .*colon"),
    ("when bad operator", lambda d: _rule(d).update(when={"primary_site": {"is": "gist"}}), r"field 'when'"),
    ("set value not in vocabulary", lambda d: _rule(d, 2).update(threshold=["maybe"]), r"'breast', field 'thresh"),
    ("verdict decides verdict", lambda d: _rule(d, 2).update(on_fail="not_resectable"),
     r"'breast', field 'on_fail': a rule that reads the verdict"),
    ("verdict rule required", lambda d: _rule(d, 2).update(required=True), r"'breast', field 'required'"),
    ("required not bool", lambda d: _rule(d).update(required="yes"), r"'volume', field 'required'"),
    ("bad guidance key", lambda d: _rule(d, 2).update(guidance={"ok": "x"}), r"'breast', field 'guidance'"),
    ("keys threshold incomplete", lambda d: _rule(d).update(
        check="at_least_for_liver_condition", inputs=["sflr_percent", "liver_condition", "chemotherapy_weeks"],
        threshold={"normal": 20}), r"'volume', field 'threshold': must map exactly"),
    ("no rules", lambda d: d.update(rules=[]), r"field 'rules' must be a non-empty list"),
    ("unknown top-level field", lambda d: d.update(rule=[]), r"unknown top-level field"),
    ("float version", lambda d: d.update(version=1.1), r"field 'version' must be a string"),
    ("missing title", lambda d: d.pop("title"), r"field 'title'"),
    ("rule not a mapping", lambda d: d["rules"].append("fit"), r"rule #4: expected a mapping"),
]


#: Malformations the JSON Schema catches on its own (the rest depend on the check: parse_rulebook's job).
SCHEMA_CATCHES = {"unknown check", "unknown fact", "no inputs", "bad on_fail", "missing source", "empty statement",
                  "id not snake_case", "unknown field", "strategy not snake_case", "when unknown fact",
                  "required not bool", "bad guidance key", "no rules", "unknown top-level field", "float version",
                  "missing title", "rule not a mapping"}


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_malformed_rulebook_is_rejected(mutate, message):
    doc = copy.deepcopy(MINIMAL)
    mutate(doc)
    with pytest.raises(RulebookError, match=message):
        _book(doc)


def test_yaml_errors_and_duplicate_keys_are_rejected():
    with pytest.raises(RulebookError, match=r"bad\.yaml: not valid YAML"):
        parse_rulebook("rules: [", "bad.yaml")
    text = yaml.safe_dump(MINIMAL, sort_keys=False).replace("check: is_true", "check: is_true\n  check: is_false")
    line = text.splitlines().index("  check: is_false") + 1
    with pytest.raises(RulebookError, match=rf"dup\.yaml: line {line}: key 'check' is given twice$") as info:
        parse_rulebook(text, "dup.yaml")
    assert isinstance(info.value, ConfigFileError)  # a file problem and a rulebook problem
    with pytest.raises(RulebookError, match="expected a mapping"):
        parse_rulebook("- a\n- b\n", "list.yaml")


def test_every_error_of_a_rulebook_is_reported_at_once():
    doc = copy.deepcopy(MINIMAL)
    doc["title"] = " "
    doc["rules"][0].pop("source")
    doc["rules"][1].update(check="at_leest", on_fail="warn", treshold=2)
    doc["rules"][2].update(guidance={"ok": "x"}, id="Breast")
    with pytest.raises(RulebookError) as info:
        _book(doc)
    assert str(info.value) == (
        "test.yaml: field 'title' must be a non-empty string; "
        "rule 'fit', field 'source': missing (every rule needs a plain-language statement and a source); "
        "rule 'volume', field 'check': unknown check 'at_leest' (did you mean at_least?); "
        "rule 'volume', field 'on_fail': 'warn' is not one of not_resectable, strategy, caution; "
        "rule 'volume', field 'treshold': unknown field (did you mean threshold?); "
        "rule #3, field 'id': 'Breast' is not a snake_case id; "
        "rule #3, field 'guidance': must be a text, or a mapping {pass|fail|not_assessed|inferred: text}")


def test_a_rulebook_in_json(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(MINIMAL), encoding="utf-8")
    book = load_rulebook(path)
    assert [r.id for r in book.rules] == ["fit", "volume", "breast"] and book.origin == str(path)
    assert book.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- the rulebook file's schema ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rulebook_schema():
    schema = rulebook_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == model.JSON_SCHEMA_DIALECT
    return Draft202012Validator(schema)


@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_shipped_rulebooks_validate_against_the_schema(rulebook_schema, name):
    doc = yaml.safe_load((REPO / "flr" / "rulebooks" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert list(rulebook_schema.iter_errors(doc)) == []
    assert list(rulebook_schema.iter_errors(MINIMAL)) == []


@pytest.mark.parametrize(("mutate", "_message"), [b[1:] for b in BROKEN
                                                  if b[0] in SCHEMA_CATCHES], ids=sorted(SCHEMA_CATCHES))
def test_malformed_rulebooks_fail_the_schema_too(rulebook_schema, mutate, _message):
    doc = copy.deepcopy(MINIMAL)
    mutate(doc)
    assert list(rulebook_schema.iter_errors(doc))


# --- thresholds -------------------------------------------------------------------------------------------------

def test_thresholds_for_a_fact():
    # the report draws the FLR/BW line at the active rulebook's threshold
    assert load_rulebook("default").thresholds_for("flr_body_weight_percent") == [
        ("flr_body_weight", {"flr_body_weight_percent": 1.0, "normal": 20, "chemotherapy_up_to_12_weeks": 20,
                             "chemotherapy_over_12_weeks": 30, "steatosis": 30, "cirrhosis": 40}),
        ("flr_body_weight_one_percent", 1.0)]
    assert load_rulebook("literature").thresholds_for("flr_body_weight_percent") == [("flr_body_weight", 0.5)]
    sflr = load_rulebook("literature").thresholds_for("sflr_percent")
    assert sflr == [("sflr_by_liver_condition", {"normal": 20, "chemotherapy_up_to_12_weeks": 20,
                                                 "chemotherapy_over_12_weeks": 30, "steatosis": 30, "cirrhosis": 40})]
    assert _book(MINIMAL).thresholds_for("flr_body_weight_percent") == [("volume", 1.0)]
    assert _book(MINIMAL).thresholds_for("sflr_percent") == []
    with pytest.raises(KeyError, match="flr_bw"):
        _book(MINIMAL).thresholds_for("flr_bw")


# --- predicates -------------------------------------------------------------------------------------------------

def _run(check, values, threshold=None):
    return PREDICATES[check].fn(values, threshold)


@pytest.mark.parametrize(("check", "value", "threshold", "result"), [
    ("at_least", 1.0, 1.0, True), ("at_least", 0.999, 1.0, False),
    ("above", 0.5, 0.5, False), ("above", 0.51, 0.5, True),
    ("at_most", 70.0, 70, True), ("at_most", 70.01, 70, False), ("below", 2, 2, False),
    ("equals", "A", "A", True), ("not_equals", "A", "A", False),
    ("in_set", "B", ("A", "B"), True), ("not_in_set", "B", ("A", "B"), False),
    ("is_true", True, None, True), ("is_false", True, None, False),
    ("status_pass", "pass", None, True), ("status_pass", "fail", None, False),
    ("is_empty", (), None, True), ("subset_of", ("lung", "bone"), ("lung",), False),
    ("at_least", None, 1.0, None), ("status_pass", None, None, None),
])
def test_simple_predicates(check, value, threshold, result):
    outcome = _run(check, [value], threshold)
    assert outcome.result is result
    assert outcome.missing == (() if result is not None else (0,))


@pytest.mark.parametrize(("sites", "extent", "result", "missing"), [
    ((), None, True, ()), (("lung",), "limited", True, ()), (("lung",), "extensive", False, ()),
    (None, "extensive", False, ()), (("lung",), None, None, (1,)), (None, None, None, (0,)),
])
def test_extrahepatic_limited(sites, extent, result, missing):
    outcome = _run("extrahepatic_limited", [sites, extent])
    assert (outcome.result, outcome.missing) == (result, missing)


@pytest.mark.parametrize(("score", "unknown", "result"), [
    (2, (), True), (3, (), False), (2, ("cea_ng_ml",), None), (1, ("cea_ng_ml",), True), (3, ("cea_ng_ml",), False),
    (0, ("a", "b", "c"), None), (None, (), None),
])
def test_fong_decides_only_when_the_unknown_items_cannot_change_it(score, unknown, result):
    assert _run("fong_at_most", [score, unknown], 2).result is result


@pytest.mark.parametrize(("condition", "weeks", "keys"), [
    ("normal", None, ("normal",)), ("normal", 16, ("normal", "chemotherapy_over_12_weeks")),
    ("chemotherapy", 12, ("chemotherapy_up_to_12_weeks",)), ("chemotherapy", 12.5, ("chemotherapy_over_12_weeks",)),
    ("chemotherapy", None, None), ("cirrhosis", 20, ("cirrhosis", "chemotherapy_over_12_weeks")),
])
def test_liver_condition_keys(condition, weeks, keys):
    assert liver_condition_keys(condition, weeks) == keys


def test_sflr_threshold_by_liver_condition_reports_the_threshold_applied():
    threshold = load_rulebook("literature").rule("sflr_by_liver_condition").threshold
    out = _run("at_least_for_liver_condition", [35.0, "cirrhosis", 20.0], threshold)
    assert out.result is False and out.threshold == {"at_least": 40, "liver_condition": "cirrhosis"}
    out = _run("at_least_for_liver_condition", [25.0, "normal", 16.0], threshold)
    assert out.result is False and out.threshold["liver_condition"] == "chemotherapy_over_12_weeks"
    assert _run("at_least_for_liver_condition", [25.0, "chemotherapy", None], threshold).missing == (2,)
    assert _run("at_least_for_liver_condition", [None, None, None], threshold).missing == (0, 1)


def test_consensus_extent_fails_on_either_criterion_even_with_the_other_missing():
    limits = {"max_liver_percent": 70, "max_segments": 6}
    assert _run("consensus_extent", [75.0, None], limits).result is False
    assert _run("consensus_extent", [None, 7], limits).result is False
    assert _run("consensus_extent", [70.0, 6], limits).result is True
    assert _run("consensus_extent", [50.0, None], limits).missing == (1,)


# --- evaluation ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_verdict_contract(name):
    book = load_rulebook(name)
    verdict = evaluate(BASELINE, book).to_dict()
    assert list(verdict) == ["status", "scope", "strategies", "reasons", "missing_inputs", "primary_guidance",
                             "cautions", "rulebook", "disclaimer", "inferred"]
    assert verdict["disclaimer"] == DISCLAIMER
    assert verdict["rulebook"] == {"id": name, "version": book.version, "sha256": book.sha256}
    assert [r["rule"] for r in verdict["reasons"]] == [r.id for r in book.rules]  # every rule, in order
    for reason in verdict["reasons"]:
        assert set(reason) == {"rule", "statement", "status", "value", "threshold", "source", "on_fail", "missing",
                               "detail", "scope"}
        assert reason["status"] in {"pass", "fail", "not_assessed", "not_applicable", "inferred"}
        assert reason["scope"] == book.rule(reason["rule"]).scope in {"patient", "plan"}
    assert json.loads(json.dumps(verdict, allow_nan=False)) == verdict


@pytest.mark.parametrize(("sample", "name"), [("sample-assessment.json", "default"),
                                              ("sample-lls-wedge-literature.json", "literature")])
def test_a_round1_verdict_still_reads_and_today_s_adds_keys_only(sample, name):
    """Round 1's published verdicts read back (rulebook 1.0: scope and inferred absent); a verdict of today on
    the same facts keeps every round-1 key in the same order and adds scope, inferred and each reason's scope.
    Values differ where issue 13 corrected the rules (e.g. the sFLR rescue of FLR/BW < 1 %)."""
    published = json.loads((REPO / "tests" / "data" / "round1" / sample).read_text())
    back = Verdict.from_dict(published["verdict"])
    assert back.scope is None and back.inferred == ()
    assert {k: v for k, v in back.to_dict().items() if k not in ("scope", "inferred")} == published["verdict"]
    assert back.rulebook_id == name and back.rulebook_version == "1.0"
    assert back.disclaimer == model.DISCLAIMER == DISCLAIMER
    verdict = evaluate(published["facts"], name).to_dict()
    old_keys = list(published["verdict"])
    assert [k for k in verdict if k in old_keys] == old_keys
    assert set(verdict) - set(old_keys) == {"scope", "inferred"}
    assert verdict["rulebook"]["version"] == load_rulebook(name).version == "2.0"
    assert [r["rule"] for r in verdict["reasons"]] == [r.id for r in load_rulebook(name).rules]


def test_reason_and_verdict_are_frozen_and_checked():
    verdict = evaluate(BASELINE, "default")
    with pytest.raises(ValidationError, match="frozen"):
        verdict.status = "resectable"  # type: ignore[misc]
    reason = verdict.reasons[0]
    assert Reason.from_dict(reason.to_dict()) == reason
    with pytest.raises(ResultFormatError, match=r"result: status: Input should be 'pass', 'fail', 'not_assessed', "
                                                r"'inferred' or 'not_applicable'"):
        Reason.from_dict({**reason.to_dict(), "status": "passed"})
    with pytest.raises(ResultFormatError, match=r"rulebook: Field required"):
        Verdict.from_dict({k: v for k, v in verdict.to_dict().items() if k != "rulebook"})


@pytest.mark.parametrize("name", BUILTIN_RULEBOOKS)
def test_no_facts_is_insufficient_data_never_a_pass(name):
    verdict = evaluate({}, name)
    assert verdict.status == "insufficient_data"
    assert {r.status for r in verdict.reasons} <= {"not_assessed", "not_applicable"}
    required = {m["fact"] for m in verdict.missing_inputs if m["required"]}
    # fitness for major surgery is judged for a major hepatectomy: without a plan, that is what is missing
    assert {"major_hepatectomy", "flr_body_weight_percent", "inflow", "outflow", "biliary_drainage",
            "child_pugh_class", "extrahepatic_sites", "primary_site"} <= required


def test_a_name_or_a_path_works_as_the_rulebook(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    assert evaluate({"fit_for_major_surgery": True, "flr_body_weight_percent": 1.2}, path).status == "resectable"
    assert evaluate(BASELINE, "default").status == "resectable"


def test_status_precedence_on_a_small_rulebook():
    book = _book(MINIMAL)
    assert evaluate({"fit_for_major_surgery": False}, book).status == "not_resectable"
    small = evaluate({"fit_for_major_surgery": True, "flr_body_weight_percent": 0.7}, book)
    assert small.status == "resectable_with_strategy" and small.strategies == ("portal_vein_embolization",)
    unknown = evaluate({"flr_body_weight_percent": 0.7}, book)
    assert unknown.status == "insufficient_data" and unknown.strategies == ("portal_vein_embolization",)
    assert unknown.missing_inputs[0]["needs"] == ["fit_for_major_surgery"]


def test_after_verdict_rules_see_the_status_and_wait_for_missing_data():
    book = _book(MINIMAL)
    ok = evaluate({"fit_for_major_surgery": True, "flr_body_weight_percent": 2.0, "primary_site": "breast"}, book)
    assert ok.reasons[2].status == "pass" and ok.reasons[2].value == "resectable"
    assert ok.primary_guidance == ({"rule": "breast", "text": "carefully selected"},)
    waiting = evaluate({"fit_for_major_surgery": True, "primary_site": "breast"}, book)
    assert waiting.status == "insufficient_data" and waiting.reasons[2].status == "not_assessed"
    assert waiting.reasons[2].detail == "depends on the verdict, which needs the missing inputs"
    assert [m["fact"] for m in waiting.missing_inputs] == ["flr_body_weight_percent"]  # never "verdict"
    other = evaluate({"fit_for_major_surgery": True, "primary_site": "gist"}, book)
    assert other.status == "insufficient_data" and other.reasons[2].status == "not_applicable"


def test_when_fact_missing_makes_the_rule_not_assessed_unless_another_condition_excludes_it():
    book = load_rulebook("default")
    facts = {**BASELINE, "tki_response": None}
    colorectal = {r.rule: r for r in evaluate(facts, book).reasons}
    assert colorectal["gist_progressive_unifocal"].status == "not_applicable"  # not GIST, whatever the TKI
    reasons = {r.rule: r for r in evaluate({**facts, "primary_site": "gist"}, book).reasons}
    assert reasons["gist_progressive_unifocal"].status == "not_assessed"
    assert reasons["gist_progressive_unifocal"].missing == ("tki_response",)


def test_optional_rules_list_their_missing_inputs_without_withholding_the_verdict():
    verdict = evaluate({**BASELINE, "fong_score": None}, "default")
    assert verdict.status == "resectable"
    assert verdict.missing_inputs == ({"fact": "fong_score", "needs": list(FACTS["fong_score"].needs),
                                       "rules": ["fong_clinical_risk_score"], "required": False},)


def test_strategies_are_listed_once_in_rule_order():
    facts = {**BASELINE, "tumor_clearance": "fail", "bilobar": True, "min_margin_mm": 0.5, "fong_score": 4}
    verdict = evaluate(facts, "default")  # this plan leaves tumour: its options, each once, in rule order
    assert verdict.strategies == ("revise_plan", "two_stage_hepatectomy", "parenchymal_sparing_with_ablation",
                                  "neoadjuvant_chemotherapy")


def test_reason_reports_value_threshold_and_detail():
    reasons = {r["rule"]: r for r in evaluate({**BASELINE, "extrahepatic_sites": ["lung"],
                                               "extrahepatic_extent": "limited"}, "default").to_dict()["reasons"]}
    assert reasons["extrahepatic_disease_limited"]["value"] == {"extrahepatic_sites": ["lung"],
                                                                "extrahepatic_extent": "limited"}
    assert reasons["extrahepatic_disease_limited"]["detail"] == "limited extrahepatic disease: lung"
    assert reasons["margin_desirable"]["value"] == 12.0 and reasons["margin_desirable"]["threshold"] == 10.0
    assert reasons["child_pugh_class"]["threshold"] == ["A", "B"]


BAD_FACTS = [
    ("liver_condition", "fatty", "one of normal"), ("fit_for_major_surgery", "yes", "true or false"),
    ("sflr_percent", float("nan"), "finite number"), ("flr_body_weight_percent", True, "finite number"),
    ("tumor_count", 1.5, "non-negative integer"), ("tumor_count", -1, "non-negative integer"),
    ("inflow", "ok", "pass, fail, not_assessed"), ("extrahepatic_sites", "lung", "a list of strings"),
    ("extrahepatic_sites", ["lung", "liver"], "unknown: liver"),
]


@pytest.mark.parametrize(("fact", "value", "message"), BAD_FACTS, ids=[f"{b[0]}={b[1]!r}" for b in BAD_FACTS])
def test_bad_facts_are_refused(fact, value, message):
    with pytest.raises(FactError, match=f"fact {fact} = .*{re.escape(message)}"):
        evaluate({**BASELINE, fact: value}, "default")


def test_numpy_scalars_and_unknown_keys_are_accepted():
    facts = {**BASELINE, "flr_body_weight_percent": np.float32(1.25), "tumor_count": np.int64(1),
             "bilobar": np.bool_(False), "something_else": object()}
    verdict = evaluate(facts, "default").to_dict()
    assert verdict["status"] == "resectable"
    json.dumps(verdict, allow_nan=False)


def test_rulebook_files_are_where_package_data_expects_them():
    root = Path(str(resources.files("flr")))
    assert sorted(p.name for p in (root / "rulebooks").glob("*.yaml")) == sorted(f"{n}.yaml" for n in BUILTIN_RULEBOOKS)


# --- hostile and odd rulebooks: every message bounded, never another exception ----------------------------------

def _refused(mutate) -> str:
    doc = copy.deepcopy(MINIMAL)
    mutate(doc)
    with pytest.raises(RulebookError) as info:
        _book(doc)
    message = str(info.value)
    assert "\n" not in message and len(message) <= MAX_PROBLEMS_CHARS
    return message


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: _rule(d).update(threshold=10**400), "field 'threshold': must be a number, got 1000"),
    (lambda d: _rule(d).update(id="v" * 65), f"field 'id': '{'v' * 65}' is not a snake_case id (at most 64 "
                                             "characters)"),
    (lambda d: _rule(d).update(id="volume\n"), "rule #2, field 'id': 'volume\\n' is not a snake_case id"),
    (lambda d: _rule(d).update(strategies=["s" * 65]), "field 'strategies': must be a list of snake_case"),
    (lambda d: d.update(id="b" * 65), "field 'id' must be snake_case, got 'bbbb"),
    (lambda d: d.update(version="1." * 40), "field 'version' must be at most 64 characters"),
    (lambda d: d.update(version=10**70), "field 'version' must be at most 64 characters"),
    (lambda d: _rule(d, 2).update(threshold=["resectable"] * 1000), "field 'threshold': 'resectable' is listed twice"),
    (lambda d: _rule(d, 2).update(when={"primary_site": ["breast", "gist", "breast"]}), "'breast' is listed twice"),
    (lambda d: _rule(d).update(inputs=["f" * 10_000]), "unknown fact 'ffff"),
    (lambda d: _rule(d).update(inputs=["tumour_count"]), "unknown fact 'tumour_count' (did you mean tumor_count?)"),
    (lambda d: _rule(d).update(inputs=["xyz"]), "unknown fact 'xyz' (not one of the 47 facts: see `flr schema "
                                                "rulebook`)"),
    (lambda d: _rule(d).update(check="c" * 10_000), "unknown check 'cccc"),
    (lambda d: d.update(rules=[1] * 1001), "field 'rules' holds 1001 rules; a rulebook has at most 1000"),
], ids=["threshold-of-400-digits", "id-of-65", "id-with-newline", "strategy-of-65", "book-id-of-65",
        "version-of-80", "version-of-71-digits", "set-repeated", "when-repeated", "fact-of-10-kb", "fact-typo",
        "fact-unknown", "check-of-10-kb", "1001-rules"])
def test_hostile_rule_fields_are_refused_shortly(mutate, message):
    assert message in _refused(mutate)


def test_a_list_fact_threshold_holds_texts():
    # a mapping in a subset_of threshold passed validation and broke set() when the rule was evaluated
    message = _refused(lambda d: _rule(d).update(inputs=["fong_missing"], check="subset_of", threshold=[{"a": 1}]))
    assert "rule 'volume', field 'threshold': {'a': 1} is not a text" in message


def test_thousands_of_problems_are_counted_on_one_short_line():
    doc = copy.deepcopy(MINIMAL)
    doc["rules"] = [{**MINIMAL["rules"][0], "id": f"r{i}", "check": 7} for i in range(900)]
    with pytest.raises(RulebookError) as info:
        parse_rulebook(json.dumps(doc), "big.json", fmt="json")
    assert len(str(info.value)) <= MAX_PARTIAL_CHARS and re.search(r"; \.\.\. and 89\d more$", str(info.value))


def test_text_with_a_lone_surrogate_is_a_file_error():
    with pytest.raises(RulebookFileError, match=r"x\.yaml: line 1: not UTF-8 text"):
        parse_rulebook("id: \ud800\n", "x.yaml")


def test_a_name_too_long_for_the_system_is_no_such_rulebook():
    with pytest.raises(RulebookError, match=r"^\.\.\.r+\.yaml: no such rulebook") as info:
        load_rulebook("r" * 10_000 + ".yaml")  # os.stat: "File name too long"
    assert len(str(info.value)) < 300
