"""Resectability rules as data: rulebooks (YAML) evaluated by small pure predicates on a flat mapping of facts.

A *rulebook* lists rules; each rule states one clinical requirement in plain language, names the facts it
reads (``inputs``), the predicate that judges them (``check`` with its ``threshold``), when it applies
(``when``), what a failure means (``on_fail``) and where it comes from (``source``). Two rulebooks ship
with flr: ``default`` follows the clinical source text (``../shared/source-text/liver-metastases.txt``);
``literature`` keeps those rules but judges volume by the published sFLR thresholds by liver condition,
FLR/BW > 0.5 %, the consensus extent criteria and the response to portal vein embolization.

Facts
    A flat mapping ``{name: value}`` (see :data:`FACTS`); a fact that is absent or ``None`` is *missing*, and
    so is a check status of ``"not_assessed"``. A predicate never guesses: a rule whose inputs are missing is
    ``not_assessed`` and names them.

Rule status
    ``not_applicable`` (its ``when`` is false), ``not_assessed`` (an input or a ``when`` fact is missing),
    ``pass`` or ``fail``. A rule "fires" when it fails: for a guidance rule that means "raise this point".

Verdict (:func:`evaluate`), in this order:

1. every rule that does not read the verdict is evaluated (phase 1);
2. any failed ``not_resectable`` rule -> ``not_resectable`` (more data cannot rescue it); the strategies
   are the options those rules name (e.g. chemotherapy for downstaging);
3. otherwise any *required* rule ``not_assessed`` -> ``insufficient_data``, with ``missing_inputs`` naming
   what to provide; strategies already named by failed ``strategy`` rules are listed;
4. otherwise any failed ``strategy`` rule -> ``resectable_with_strategy`` with those strategies (a remnant too
   small -> portal vein embolization, two-stage hepatectomy; R0 doubtful -> neoadjuvant chemotherapy...),
   following the source text: "other modalities ... All modalities are aimed at making safe liver
   resection feasible";
5. otherwise ``resectable``.

Failed ``caution`` rules never change the status: they are listed in ``cautions`` for the team. A rule is
*required* when its ``on_fail`` is ``not_resectable`` or ``strategy`` unless it says ``required: false``.
Rules that read the pseudo-fact ``verdict`` (in ``inputs`` or ``when``) are evaluated afterwards (phase 2)
with the status of steps 2-5: they add strategies, cautions and guidance (e.g. unresectable
neuroendocrine metastases -> liver transplant evaluation) but never change the status; while the status is
``insufficient_data`` those that apply are ``not_assessed`` (the missing inputs are the verdict's).

>>> verdict = evaluate({"fit_for_major_surgery": False}, "default")
>>> verdict.status
'not_resectable'
>>> [r.rule for r in verdict.reasons if r.status == "fail"]
['fit_for_major_surgery']
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flr.errors import FactError, RulebookError

__all__ = [
    "BUILTIN_RULEBOOKS",
    "DISCLAIMER",
    "FACTS",
    "PREDICATES",
    "FactError",
    "Outcome",
    "Reason",
    "Rule",
    "Rulebook",
    "RulebookError",
    "Verdict",
    "evaluate",
    "list_rules",
    "liver_condition_keys",
    "load_rulebook",
    "parse_rulebook",
    "rulebook_sha256",
    "validate_facts",
]

DISCLAIMER = "flr supports the multidisciplinary team's decision; it does not replace it."
BUILTIN_RULEBOOKS = ("default", "literature")

RESECTABLE, WITH_STRATEGY = "resectable", "resectable_with_strategy"
NOT_RESECTABLE, INSUFFICIENT = "not_resectable", "insufficient_data"
PASS, FAIL, NOT_ASSESSED, NOT_APPLICABLE = "pass", "fail", "not_assessed", "not_applicable"
ON_FAIL = ("not_resectable", "strategy", "caution")
#: The pseudo-fact holding the phase-1 status, readable by phase-2 rules.
VERDICT = "verdict"


# --- the facts contract -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """One fact a rule may read: its kind, its vocabulary and what a user provides to obtain it.

    Kinds: ``number`` (finite float), ``count`` (non-negative integer), ``bool``, ``status``
    (``pass``/``fail``/``not_assessed``), ``enum`` (one of ``values``), ``list`` (of strings, from ``values``
    when given).
    """

    kind: str
    needs: tuple[str, ...]
    values: tuple[str, ...] = ()


_ASSESS = ("liver and Couinaud segment masks",)
_TUMOUR = ("tumour mask", "resection plan")
_STATUS = ("pass", "fail", "not_assessed")

#: Every fact a rule may read (the contract with the code that builds facts from ``flr assess`` and the
#: patient file). ``needs`` is what the user must supply when the fact is missing.
FACTS: dict[str, Fact] = {
    # from flr assess (volumes in mL, percentages 0-100)
    "flr_body_weight_percent": Fact("number", ("weight_kg", *_ASSESS)),
    "sflr_percent": Fact("number", ("weight_kg", "height_cm", *_ASSESS)),
    "flr_percent_of_functional_liver": Fact("number", _ASSESS),
    "remnant_functional_volume_ml": Fact("number", _ASSESS),
    "two_contiguous_segments": Fact("status", ("liver and Couinaud segment masks", "resection plan"), _STATUS),
    "inflow": Fact("status", ("portal_vein mask",), _STATUS),
    "outflow": Fact("status", ("hepatic_vein mask", "inferior_vena_cava mask"), _STATUS),
    "biliary_drainage": Fact("status", ("bile_duct mask",), _STATUS),
    "tumor_clearance": Fact("status", _TUMOUR, _STATUS),
    "min_margin_mm": Fact("number", _TUMOUR),
    "tumor_count": Fact("count", ("tumour mask",)),
    "tumors_left": Fact("count", _TUMOUR),
    "tumors_ablated": Fact("count", _TUMOUR),
    "largest_tumor_mm": Fact("number", ("tumour mask",)),
    "segments_involved": Fact("count", ("tumour mask", "Couinaud segment masks")),
    "liver_involved_percent": Fact("number", ("tumour mask", "liver mask")),
    "bilobar": Fact("bool", ("tumour mask", "Couinaud segment masks")),
    "plan_is_anatomic": Fact("bool", ("resection plan",)),
    "segments_resected": Fact("count", ("resection plan",)),
    "major_hepatectomy": Fact("bool", ("resection plan",)),
    # from the patient file
    "fit_for_major_surgery": Fact("bool", ("fit_for_major_surgery",)),
    "liver_condition": Fact("enum", ("liver_condition",), ("normal", "steatosis", "chemotherapy", "cirrhosis")),
    "chemotherapy_weeks": Fact("number", ("chemotherapy_weeks",)),
    "child_pugh_class": Fact("enum", ("bilirubin", "albumin", "inr", "ascites", "encephalopathy"), ("A", "B", "C")),
    "child_pugh_points": Fact("count", ("bilirubin", "albumin", "inr", "ascites", "encephalopathy")),
    "albi_grade": Fact("count", ("bilirubin", "albumin")),
    "meld": Fact("number", ("bilirubin", "inr", "creatinine")),
    "primary_site": Fact("enum", ("primary_site",),
                         ("colorectal", "gist", "neuroendocrine", "sarcoma", "breast", "other")),
    "synchronous": Fact("bool", ("synchronous",)),
    "node_positive_primary": Fact("bool", ("node_positive_primary",)),
    "disease_free_interval_months": Fact("number", ("disease_free_interval_months",)),
    "tki_response": Fact("enum", ("tki_response",), ("responsive", "stable", "progressive")),
    "progression": Fact("enum", ("progression",), ("unifocal", "multifocal")),
    "origin": Fact("enum", ("origin",), ("midgut", "pancreas_head", "pancreas_body_tail", "other")),
    "prior_liver_recurrence": Fact("bool", ("prior_liver_recurrence",)),
    "extrahepatic_sites": Fact("list", ("extrahepatic_sites",),
                               ("lung", "peritoneum", "periportal_nodes", "paraaortic_nodes", "bone", "brain",
                                "other")),
    "extrahepatic_extent": Fact("enum", ("extrahepatic_extent",), ("limited", "extensive")),
    "fong_score": Fact("count", ("node_positive_primary", "disease_free_interval_months", "cea_ng_ml",
                                 "tumour mask")),
    "fong_missing": Fact("list", ("node_positive_primary", "disease_free_interval_months", "cea_ng_ml")),
    "cea_ng_ml": Fact("number", ("cea_ng_ml",)),
    "pve_done": Fact("bool", ("pve_done",)),
    "degree_of_hypertrophy_pp": Fact("number", ("sFLR before and after portal vein embolization",)),
    "kinetic_growth_rate_pp_per_week": Fact("number", ("sFLR before and after portal vein embolization",
                                                       "weeks since portal vein embolization")),
}
_VERDICT_FACT = Fact("enum", (), (RESECTABLE, WITH_STRATEGY, NOT_RESECTABLE))


def _fact(name: str) -> Fact:
    return _VERDICT_FACT if name == VERDICT else FACTS[name]


# --- predicates -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What a predicate found: ``result`` True (pass), False (fail) or None (cannot tell: inputs missing).

    ``missing`` holds the positions of the inputs it needed and lacked; ``threshold`` the threshold as
    applied (e.g. the sFLR minimum chosen by liver condition), None to report the rule's own.
    """

    result: bool | None
    missing: tuple[int, ...] = ()
    threshold: Any = None
    detail: str | None = None


@dataclass(frozen=True)
class Predicate:
    """A check: ``fn(values, threshold) -> Outcome``, what it accepts per input, and its threshold form.

    ``accepts`` has one set per input: fact kinds and/or fact names. ``threshold`` is ``none``, ``number``,
    ``value`` (one value of the input's vocabulary), ``set`` (a list of such values) or ``keys`` (a mapping
    with exactly :attr:`keys`, numeric values).
    """

    fn: Callable[[Sequence[Any], Any], Outcome]
    accepts: tuple[frozenset[str], ...]
    threshold: str
    doc: str
    keys: tuple[str, ...] = ()


def _single(test: Callable[[Any, Any], bool]) -> Callable[[Sequence[Any], Any], Outcome]:
    def fn(values: Sequence[Any], threshold: Any) -> Outcome:
        value = values[0]
        if value is None:
            return Outcome(None, (0,))
        return Outcome(bool(test(value, threshold)))

    return fn


def _extrahepatic_limited(values: Sequence[Any], threshold: Any) -> Outcome:
    """No extrahepatic disease, or disease stated ``limited``; ``extensive`` fails even without sites."""
    sites, extent = values
    if extent == "extensive":
        return Outcome(False, detail="extensive extrahepatic disease")
    if sites is None:
        return Outcome(None, (0,))
    if not sites:
        return Outcome(True, detail="no extrahepatic disease")
    if extent is None:
        return Outcome(None, (1,), detail=f"extrahepatic disease ({', '.join(sites)}) of unstated extent")
    return Outcome(True, detail=f"limited extrahepatic disease: {', '.join(sites)}")


#: Weeks of chemotherapy beyond which the literature asks for a larger remnant (Shindoh: > 3 months).
CHEMOTHERAPY_LONG_WEEKS = 12.0
LIVER_CONDITION_KEYS = ("normal", "steatosis", "chemotherapy_up_to_12_weeks", "chemotherapy_over_12_weeks",
                        "cirrhosis")


def liver_condition_keys(condition: str, chemotherapy_weeks: float | None) -> tuple[str, ...] | None:
    """The threshold keys that apply to a liver (None when the duration of chemotherapy is needed but missing).

    ``chemotherapy`` splits at :data:`CHEMOTHERAPY_LONG_WEEKS`; more than 12 weeks of chemotherapy also
    applies to a liver reported ``normal`` or ``steatosis`` (the stricter threshold then wins).

    >>> liver_condition_keys("chemotherapy", 16)
    ('chemotherapy_over_12_weeks',)
    >>> liver_condition_keys("normal", None)
    ('normal',)
    """
    long_chemo = chemotherapy_weeks is not None and chemotherapy_weeks > CHEMOTHERAPY_LONG_WEEKS
    if condition == "chemotherapy":
        if chemotherapy_weeks is None:
            return None
        return ("chemotherapy_over_12_weeks" if long_chemo else "chemotherapy_up_to_12_weeks",)
    return (condition, "chemotherapy_over_12_weeks") if long_chemo else (condition,)


def _at_least_for_liver_condition(values: Sequence[Any], threshold: Mapping[str, float]) -> Outcome:
    """value >= the minimum for the liver's condition (the strictest applicable key)."""
    value, condition, weeks = values
    missing = tuple(i for i, v in ((0, value), (1, condition)) if v is None)
    keys = liver_condition_keys(condition, weeks) if condition is not None else None
    if condition is not None and keys is None:
        missing = (*missing, 2)
    if missing or keys is None:
        return Outcome(None, missing)
    key = max(keys, key=lambda k: threshold[k])
    minimum = threshold[key]
    return Outcome(value >= minimum, threshold={"at_least": minimum, "liver_condition": key})


def _fong_at_most(values: Sequence[Any], threshold: float) -> Outcome:
    """Fong score <= threshold, decided from the known items when the unknown ones cannot change it."""
    score, unknown = values
    if score is None:
        return Outcome(None, (0,))
    unknown = tuple(unknown or ())
    low, high = score, score + len(unknown)
    detail = f"score {low}" + (f"-{high} ({', '.join(unknown)} unknown)" if unknown else "")
    if low > threshold:
        return Outcome(False, detail=detail)
    if high <= threshold:
        return Outcome(True, detail=detail)
    return Outcome(None, (0,), detail=detail)


def _consensus_extent(values: Sequence[Any], threshold: Mapping[str, float]) -> Outcome:
    """Involved liver <= max_liver_percent and involved segments <= max_segments; either one over fails."""
    percent, segments = values
    over = (percent is not None and percent > threshold["max_liver_percent"]) or (
        segments is not None and segments > threshold["max_segments"])
    if over:
        return Outcome(False)
    missing = tuple(i for i, v in enumerate(values) if v is None)
    return Outcome(None, missing) if missing else Outcome(True)


_NUM = frozenset({"number", "count"})
_VALUED = frozenset({"enum", "status", "bool"})
PREDICATES: dict[str, Predicate] = {
    "at_least": Predicate(_single(lambda v, t: v >= t), (_NUM,), "number", "value >= threshold"),
    "at_most": Predicate(_single(lambda v, t: v <= t), (_NUM,), "number", "value <= threshold"),
    "above": Predicate(_single(lambda v, t: v > t), (_NUM,), "number", "value > threshold"),
    "below": Predicate(_single(lambda v, t: v < t), (_NUM,), "number", "value < threshold"),
    "equals": Predicate(_single(lambda v, t: v == t), (_VALUED,), "value", "value == threshold"),
    "not_equals": Predicate(_single(lambda v, t: v != t), (_VALUED,), "value", "value != threshold"),
    "is_true": Predicate(_single(lambda v, t: v is True), (frozenset({"bool"}),), "none", "value is true"),
    "is_false": Predicate(_single(lambda v, t: v is False), (frozenset({"bool"}),), "none", "value is false"),
    "status_pass": Predicate(_single(lambda v, t: v == PASS), (frozenset({"status"}),), "none",
                             "the measured check passed (not_assessed: missing)"),
    "in_set": Predicate(_single(lambda v, t: v in t), (_VALUED,), "set", "value is one of threshold"),
    "not_in_set": Predicate(_single(lambda v, t: v not in t), (_VALUED,), "set", "value is none of threshold"),
    "is_empty": Predicate(_single(lambda v, t: len(v) == 0), (frozenset({"list"}),), "none", "the list is empty"),
    "subset_of": Predicate(_single(lambda v, t: set(v) <= set(t)), (frozenset({"list"}),), "set",
                           "every item of the list is in threshold"),
    "extrahepatic_limited": Predicate(
        _extrahepatic_limited, (frozenset({"extrahepatic_sites"}), frozenset({"extrahepatic_extent"})), "none",
        "no extrahepatic disease, or its extent is limited"),
    "at_least_for_liver_condition": Predicate(
        _at_least_for_liver_condition,
        (_NUM, frozenset({"liver_condition"}), frozenset({"chemotherapy_weeks"})), "keys",
        "value >= threshold[liver condition] (chemotherapy split at 12 weeks; strictest key wins)",
        LIVER_CONDITION_KEYS),
    "fong_at_most": Predicate(_fong_at_most, (frozenset({"fong_score"}), frozenset({"fong_missing"})), "number",
                              "Fong score <= threshold whatever the unknown items are"),
    "consensus_extent": Predicate(
        _consensus_extent, (frozenset({"liver_involved_percent"}), frozenset({"segments_involved"})), "keys",
        "involved liver <= max_liver_percent and involved segments <= max_segments",
        ("max_liver_percent", "max_segments")),
}


# --- rulebooks ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    """One ``when`` entry: ``fact`` equals / is one of ``values``; ``negate`` inverts; ``present`` tests presence."""

    fact: str
    values: tuple[Any, ...] = ()
    negate: bool = False
    present: bool | None = None

    def to_data(self) -> Any:
        if self.present is not None:
            return {"present": self.present}
        value: Any = self.values[0] if len(self.values) == 1 else list(self.values)
        return {"not": value} if self.negate else value


@dataclass(frozen=True)
class Rule:
    """One clinical rule (see the module docstring and the rulebook files for the fields)."""

    id: str
    statement: str
    inputs: tuple[str, ...]
    check: str
    threshold: Any
    on_fail: str
    source: str
    when: tuple[Condition, ...] = ()
    strategies: tuple[str, ...] = ()
    guidance: str | Mapping[str, str] | None = None
    required: bool = True

    @property
    def after_verdict(self) -> bool:
        """True for phase-2 rules (they read the verdict)."""
        return VERDICT in self.inputs or any(c.fact == VERDICT for c in self.when)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "inputs": list(self.inputs),
            "check": self.check,
            "threshold": _plain(self.threshold),
            "when": {c.fact: c.to_data() for c in self.when},
            "on_fail": self.on_fail,
            "strategies": list(self.strategies),
            "guidance": _plain(self.guidance),
            "source": self.source,
            "required": self.required,
            "after_verdict": self.after_verdict,
        }


@dataclass(frozen=True)
class Rulebook:
    """A validated rulebook; ``sha256`` is the hash of the file's bytes (provenance)."""

    id: str
    version: str
    title: str
    description: str
    source_text: str
    rules: tuple[Rule, ...]
    sha256: str
    origin: str = ""

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_FIELDS = ("id", "version", "title", "description", "source_text", "rules")
_RULE_FIELDS = ("id", "statement", "inputs", "check", "threshold", "when", "on_fail", "strategies", "guidance",
                "source", "required")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last silently)."""


def _construct_unique(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique)


def parse_rulebook(data: bytes | str, origin: str = "<rulebook>") -> Rulebook:
    """Validate a rulebook's YAML text; raise :class:`RulebookError` naming the rule id and field at fault."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        doc = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RulebookError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise RulebookError(f"{origin}: expected a mapping with {', '.join(_TOP_FIELDS)}")
    unknown = sorted(set(doc) - set(_TOP_FIELDS))
    if unknown:
        raise RulebookError(f"{origin}: unknown top-level field(s) {', '.join(map(str, unknown))}; "
                            f"expected {', '.join(_TOP_FIELDS)}")
    for key in ("id", "title", "description", "source_text"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise RulebookError(f"{origin}: field {key!r} must be a non-empty string")
    if not _ID.match(doc["id"]):
        raise RulebookError(f"{origin}: field 'id' = {doc['id']!r} must be snake_case")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, str | int) or not str(version).strip():
        raise RulebookError(f"{origin}: field 'version' must be a string (quote it: version: \"1.0\"), "
                            f"got {version!r}")
    rules_raw = doc.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise RulebookError(f"{origin}: field 'rules' must be a non-empty list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(rules_raw):
        rule = _parse_rule(item, f"{origin}: rule #{i + 1}", origin)
        if rule.id in seen:
            raise RulebookError(f"{origin}: rule {rule.id!r}, field 'id': duplicate rule id")
        seen.add(rule.id)
        rules.append(rule)
    return Rulebook(id=doc["id"], version=str(version), title=doc["title"].strip(),
                    description=doc["description"].strip(), source_text=doc["source_text"].strip(),
                    rules=tuple(rules), sha256=hashlib.sha256(raw).hexdigest(), origin=origin)


def _parse_rule(item: Any, where: str, origin: str) -> Rule:
    if not isinstance(item, Mapping):
        raise RulebookError(f"{where}: expected a mapping with {', '.join(_RULE_FIELDS)}")
    rid = item.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RulebookError(f"{where}, field 'id': {rid!r} is not a snake_case id")

    def bad(fld: str, problem: str) -> RulebookError:
        return RulebookError(f"{origin}: rule {rid!r}, field {fld!r}: {problem}")

    unknown = sorted(set(item) - set(_RULE_FIELDS))
    if unknown:
        raise bad(str(unknown[0]), f"unknown field; a rule has {', '.join(_RULE_FIELDS)}")
    for fld in ("statement", "source"):
        if not isinstance(item.get(fld), str) or not item[fld].strip():
            raise bad(fld, "missing (every rule needs a plain-language statement and a source)")

    inputs = item.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
        raise bad("inputs", "must be a non-empty list of fact names")
    for name in inputs:
        if name != VERDICT and name not in FACTS:
            raise bad("inputs", f"unknown fact {name!r}; known facts: {', '.join(FACTS)}, {VERDICT}")
    if len(set(inputs)) != len(inputs):
        raise bad("inputs", "a fact is listed twice")

    check = item.get("check")
    if check not in PREDICATES:
        raise bad("check", f"unknown check {check!r}; known checks: {', '.join(PREDICATES)}")
    pred = PREDICATES[check]
    if len(inputs) != len(pred.accepts):
        raise bad("inputs", f"check {check!r} reads {len(pred.accepts)} fact(s), {len(inputs)} given")
    for name, accepts in zip(inputs, pred.accepts, strict=True):
        if name not in accepts and _fact(name).kind not in accepts:
            raise bad("inputs", f"check {check!r} cannot read {name!r} ({_fact(name).kind}); "
                                f"it accepts {', '.join(sorted(accepts))}")
    threshold = _parse_threshold(item, pred, _fact(inputs[0]), bad)

    when = _parse_when(item.get("when"), bad)
    on_fail = item.get("on_fail")
    if on_fail not in ON_FAIL:
        raise bad("on_fail", f"{on_fail!r} is not one of {', '.join(ON_FAIL)}")
    strategies = item.get("strategies", [])
    if not isinstance(strategies, list) or not all(isinstance(s, str) and _ID.match(s) for s in strategies):
        raise bad("strategies", "must be a list of snake_case strategy names")
    if on_fail == "strategy" and not strategies:
        raise bad("strategies", "a rule with on_fail: strategy must name its strategies")
    if on_fail == "caution" and strategies:
        raise bad("strategies", "a caution names no strategies (use on_fail: strategy)")
    guidance = item.get("guidance")
    if guidance is not None:
        ok_text = isinstance(guidance, str) and guidance.strip()
        ok_map = isinstance(guidance, Mapping) and guidance and all(
            k in (PASS, FAIL, NOT_ASSESSED) and isinstance(v, str) and v.strip() for k, v in guidance.items())
        if not (ok_text or ok_map):
            raise bad("guidance", "must be a text, or a mapping {pass|fail|not_assessed: text}")
    rule = Rule(id=rid, statement=" ".join(item["statement"].split()), inputs=tuple(inputs), check=check,
                threshold=threshold, on_fail=on_fail, source=" ".join(item["source"].split()), when=when,
                strategies=tuple(strategies),
                guidance=(" ".join(guidance.split()) if isinstance(guidance, str) else
                          {k: " ".join(v.split()) for k, v in guidance.items()} if guidance else None))
    after = rule.after_verdict
    required = item.get("required", on_fail != "caution" and not after)
    if not isinstance(required, bool):
        raise bad("required", f"must be true or false, got {required!r}")
    if after and (required or on_fail == "not_resectable"):
        raise bad("on_fail" if on_fail == "not_resectable" else "required",
                  "a rule that reads the verdict cannot decide it (use caution or strategy, required: false)")
    return replace(rule, required=required)


def _parse_threshold(item: Mapping[str, Any], pred: Predicate, fact: Fact,
                     bad: Callable[[str, str], RulebookError]) -> Any:
    has = "threshold" in item and item["threshold"] is not None
    value = item.get("threshold")
    if pred.threshold == "none":
        if has:
            raise bad("threshold", f"check {item['check']!r} takes no threshold")
        return None
    if not has:
        raise bad("threshold", f"missing threshold for check {item['check']!r} ({pred.doc})")
    if pred.threshold == "number":
        if not _is_number(value):
            raise bad("threshold", f"must be a number, got {value!r}")
        return value
    if pred.threshold == "keys":
        if not isinstance(value, Mapping) or set(value) != set(pred.keys) or not all(
                _is_number(v) for v in value.values()):
            raise bad("threshold", f"must map exactly {', '.join(pred.keys)} to numbers, got {value!r}")
        return dict(value)
    items = [value] if pred.threshold == "value" else value
    if pred.threshold == "set" and (not isinstance(value, list) or not value):
        raise bad("threshold", f"must be a non-empty list, got {value!r}")
    for v in items:
        problem = _vocabulary_problem(fact, v)
        if problem:
            raise bad("threshold", problem)
    return value if pred.threshold == "value" else tuple(value)


def _parse_when(raw: Any, bad: Callable[[str, str], RulebookError]) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise bad("when", "must be a mapping {fact: value | [values] | {not: ...} | {present: true|false}}")
    out = []
    for name, cond in raw.items():
        if name != VERDICT and name not in FACTS:
            raise bad("when", f"unknown fact {name!r}")
        fact = _fact(name)
        negate = False
        if isinstance(cond, Mapping):
            if set(cond) == {"present"} and isinstance(cond["present"], bool):
                out.append(Condition(name, present=cond["present"]))
                continue
            if set(cond) != {"not"}:
                raise bad("when", f"{name}: use a value, a list, {{not: ...}} or {{present: true|false}}")
            negate, cond = True, cond["not"]
        values = tuple(cond) if isinstance(cond, list) else (cond,)
        if not values:
            raise bad("when", f"{name}: empty list of values")
        for v in values:
            problem = _vocabulary_problem(fact, v)
            if problem:
                raise bad("when", f"{name}: {problem}")
        out.append(Condition(name, values, negate))
    return tuple(out)


def _vocabulary_problem(fact: Fact, value: Any) -> str | None:
    if fact.kind == "bool":
        return None if isinstance(value, bool) else f"{value!r} is not true/false"
    if fact.kind in ("number", "count"):
        return None if _is_number(value) else f"{value!r} is not a number"
    if fact.values and value not in fact.values:
        return f"{value!r} is not one of {', '.join(fact.values)}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def load_rulebook(source: str | os.PathLike[str] | Rulebook = "default") -> Rulebook:
    """A built-in rulebook by name (``default``, ``literature``), a YAML file, or ``source`` itself."""
    if isinstance(source, Rulebook):
        return source
    if isinstance(source, str) and source in BUILTIN_RULEBOOKS:
        data = resources.files("flr").joinpath("rulebooks").joinpath(f"{source}.yaml").read_bytes()
        return parse_rulebook(data, f"built-in rulebook {source!r}")
    path = Path(source)
    if not path.is_file():
        raise RulebookError(f"{path}: no such rulebook; give {' or '.join(BUILTIN_RULEBOOKS)} or a YAML file")
    return parse_rulebook(path.read_bytes(), str(path))


def rulebook_sha256(rulebook: str | os.PathLike[str] | Rulebook) -> str:
    """SHA-256 (hex) of the rulebook file's bytes, recorded in every verdict."""
    return load_rulebook(rulebook).sha256


def list_rules(rulebook: str | os.PathLike[str] | Rulebook = "default") -> list[dict[str, Any]]:
    """Every rule as a plain dict, in rulebook order (for ``flr rules``)."""
    return [r.to_dict() for r in load_rulebook(rulebook).rules]


# --- evaluation --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """How one rule came out for one case."""

    rule: str
    statement: str
    status: str
    value: Any
    threshold: Any
    source: str
    on_fail: str
    missing: tuple[str, ...] = ()
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "statement": self.statement, "status": self.status,
                "value": _plain(self.value), "threshold": _plain(self.threshold), "source": self.source,
                "on_fail": self.on_fail, "missing": list(self.missing), "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """The result of :func:`evaluate`; ``to_dict()`` is the JSON contract."""

    status: str
    strategies: tuple[str, ...]
    reasons: tuple[Reason, ...]
    missing_inputs: tuple[Mapping[str, Any], ...]
    primary_guidance: tuple[Mapping[str, str], ...]
    cautions: tuple[str, ...]
    rulebook_id: str
    rulebook_version: str
    rulebook_sha256: str
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "strategies": list(self.strategies),
            "reasons": [r.to_dict() for r in self.reasons],
            "missing_inputs": [_plain(m) for m in self.missing_inputs],
            "primary_guidance": [dict(g) for g in self.primary_guidance],
            "cautions": list(self.cautions),
            "rulebook": {"id": self.rulebook_id, "version": self.rulebook_version, "sha256": self.rulebook_sha256},
            "disclaimer": self.disclaimer,
        }


def evaluate(facts: Mapping[str, Any], rulebook: str | os.PathLike[str] | Rulebook = "default") -> Verdict:
    """Judge one case: every rule of ``rulebook`` against ``facts`` (see the module docstring for the logic).

    Keys of ``facts`` that no rule knows are ignored; a known fact with a wrong type or an unknown value
    raises :class:`FactError`.
    """
    book = load_rulebook(rulebook)
    values = validate_facts(facts)
    reasons: dict[str, Reason] = {}
    for rule in book.rules:
        if not rule.after_verdict:
            reasons[rule.id] = _evaluate_rule(rule, values)
    phase1 = [(r, reasons[r.id]) for r in book.rules if not r.after_verdict]
    failed = [r for r, why in phase1 if why.status == FAIL]
    hard = [r for r in failed if r.on_fail == "not_resectable"]
    soft = [r for r in failed if r.on_fail == "strategy"]
    blocking = [r for r, why in phase1 if why.status == NOT_ASSESSED and r.required]
    if hard:
        status, named = NOT_RESECTABLE, hard
    elif blocking:
        status, named = INSUFFICIENT, soft
    else:
        status, named = (WITH_STRATEGY if soft else RESECTABLE), soft
    strategies = [s for r in named for s in r.strategies]

    known = {**values, VERDICT: None if status == INSUFFICIENT else status}
    for rule in book.rules:
        if rule.after_verdict:
            why = _evaluate_rule(rule, known)
            if why.status == NOT_ASSESSED and VERDICT in why.missing:
                why = replace(why, detail="depends on the verdict, which needs the missing inputs")
            reasons[rule.id] = why
            if why.status == FAIL and rule.on_fail == "strategy":
                strategies.extend(rule.strategies)

    ordered = tuple(reasons[r.id] for r in book.rules)
    return Verdict(
        status=status,
        strategies=tuple(dict.fromkeys(strategies)),
        reasons=ordered,
        missing_inputs=_missing_inputs(book.rules, ordered),
        primary_guidance=tuple({"rule": r.id, "text": text} for r, why in zip(book.rules, ordered, strict=True)
                               if (text := _guidance(r, why.status))),
        cautions=tuple(r.id for r, why in zip(book.rules, ordered, strict=True)
                       if why.status == FAIL and r.on_fail == "caution"),
        rulebook_id=book.id, rulebook_version=book.version, rulebook_sha256=book.sha256,
    )


def validate_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Known facts checked and normalised to plain Python values (lists become tuples); ``None`` kept."""
    out: dict[str, Any] = {}
    for name, fact in FACTS.items():
        value = facts.get(name)
        out[name] = None if value is None else _normalise(name, fact, value)
    return out


def _normalise(name: str, fact: Fact, value: Any) -> Any:
    def bad(expected: str) -> FactError:
        return FactError(f"fact {name} = {value!r}: expected {expected}")

    if hasattr(value, "item") and not isinstance(value, list | tuple | str):  # numpy scalars
        value = value.item()
    if fact.kind == "number":
        if not _is_number(value):
            raise bad("a finite number")
        return float(value)
    if fact.kind == "count":
        if not _is_number(value) or value < 0 or float(value) != int(value):
            raise bad("a non-negative integer")
        return int(value)
    if fact.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if fact.kind in ("enum", "status"):
        if value not in fact.values:
            raise bad(f"one of {', '.join(fact.values)}")
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise bad("a list of strings")
    unknown = [v for v in value if fact.values and v not in fact.values]
    if unknown:
        raise bad(f"items from {', '.join(fact.values)} (unknown: {', '.join(unknown)})")
    return tuple(value)


def _missing(fact: str, value: Any) -> bool:
    return value is None or (_fact(fact).kind == "status" and value == NOT_ASSESSED)


def _evaluate_rule(rule: Rule, values: Mapping[str, Any]) -> Reason:
    def reason(status: str, value: Any = None, threshold: Any = rule.threshold, missing: Sequence[str] = (),
               detail: str | None = None) -> Reason:
        return Reason(rule.id, rule.statement, status, value, threshold, rule.source, rule.on_fail,
                      tuple(missing), detail)

    unknown_when: list[str] = []
    for cond in rule.when:
        value = values.get(cond.fact)
        if cond.present is not None:
            holds = (not _missing(cond.fact, value)) == cond.present
        elif _missing(cond.fact, value):
            unknown_when.append(cond.fact)
            continue
        else:
            holds = (value in cond.values) != cond.negate
        if not holds:
            return reason(NOT_APPLICABLE)
    raw = [values.get(name) for name in rule.inputs]
    shown = raw[0] if len(raw) == 1 else dict(zip(rule.inputs, raw, strict=True))
    if unknown_when:
        return reason(NOT_ASSESSED, shown, missing=unknown_when,
                      detail=f"whether the rule applies depends on {', '.join(unknown_when)}")
    args = [None if _missing(name, v) else v for name, v in zip(rule.inputs, raw, strict=True)]
    outcome = PREDICATES[rule.check].fn(args, rule.threshold)
    threshold = rule.threshold if outcome.threshold is None else outcome.threshold
    if outcome.result is None:
        return reason(NOT_ASSESSED, shown, threshold, [rule.inputs[i] for i in outcome.missing], outcome.detail)
    return reason(PASS if outcome.result else FAIL, shown, threshold, detail=outcome.detail)


def _missing_inputs(rules: Sequence[Rule], reasons: Sequence[Reason]) -> tuple[dict[str, Any], ...]:
    entries: dict[str, dict[str, Any]] = {}
    for rule, why in zip(rules, reasons, strict=True):
        if why.status != NOT_ASSESSED:
            continue
        for fact in why.missing:
            if fact == VERDICT:
                continue
            entry = entries.setdefault(fact, {"fact": fact, "needs": list(_fact(fact).needs), "rules": [],
                                              "required": False})
            entry["rules"].append(rule.id)
            entry["required"] = entry["required"] or rule.required
    return tuple(entries.values())


def _guidance(rule: Rule, status: str) -> str | None:
    if rule.guidance is None or status == NOT_APPLICABLE:
        return None
    if isinstance(rule.guidance, str):
        return rule.guidance
    return rule.guidance.get(status)


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples and sets become lists, mappings dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value

