"""Resectability rules as data: rulebooks (YAML) evaluated by small pure predicates on a flat mapping of facts.

A *rulebook* lists rules; each rule states one clinical requirement in plain language, names the facts it
reads (``inputs``), the predicate that judges them (``check`` with its ``threshold``), when it applies
(``when``), what a failure means (``on_fail``) and where it comes from (``source``). Two rulebooks ship
with flr: ``default`` follows the clinical source text (*Liver Metastases (Liver Secondary)*, shipped with flr:
:func:`source_text`);
``literature`` keeps those rules but judges volume by the published sFLR thresholds by liver condition,
FLR/BW > 0.5 %, the consensus extent criteria and the response to portal vein embolization.

Rulebook files
    Read by :mod:`flr.io.config` (YAML or JSON; duplicate keys, size, depth and aliases checked) and
    validated field by field by a pydantic model of the file (:func:`rulebook_json_schema` is its JSON
    Schema): every problem is listed at once, each naming the rule id and the field.

Facts
    A flat mapping ``{name: value}`` (see :data:`FACTS`); a fact that is absent or ``None`` is *missing*, and
    so is a check status of ``"not_assessed"``. A predicate never guesses: a rule whose inputs are missing is
    ``not_assessed`` and names them.

Rule status
    ``not_applicable`` (its ``when`` is false), ``not_assessed`` (an input or a ``when`` fact is missing),
    ``pass`` or ``fail``. A rule "fires" when it fails: for a guidance rule that means "raise this point".

Verdict (:func:`evaluate`, a frozen :class:`Verdict` whose ``to_dict()`` is the JSON contract), in this order:

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

Scope (issue 13, item 5): a rule judges *this plan* when it reads a fact of the plan (:data:`PLAN_FACTS`, in
``inputs`` or ``when``; a rule file may state ``scope``), else the *patient*; every reason carries its scope.
In step 2 a failed ``not_resectable`` rule of the patient decides for the patient (only the patient's rules
name strategies); when every such failure is a rule of this plan, the verdict judges this plan and lists the
strategies of those rules (``revise_plan``) and of every failed ``strategy`` rule. The verdict's ``scope`` is
``patient`` when a patient rule decides the status (no other plan would change it), else ``plan``.

An ``inferred`` input (biliary drainage inferred from portal inflow) makes its rule ``inferred``: neither a
pass nor missing, listed in the verdict's ``inferred``; a caution rule asks for its confirmation.

Failed ``caution`` rules never change the status: they are listed in ``cautions`` for the team. A rule is
*required* when its ``on_fail`` is ``not_resectable`` or ``strategy`` unless it says ``required: false``.
Rules that read the pseudo-fact ``verdict`` (in ``inputs`` or ``when``) are evaluated afterwards (phase 2)
with the status of steps 2-5: they add strategies, cautions and guidance (e.g. unresectable
neuroendocrine metastases -> liver transplant evaluation) but never change the status; while the status is
``insufficient_data`` those that apply are ``not_assessed`` (the missing inputs are the verdict's).

>>> verdict = evaluate({"fit_for_major_surgery": False, "major_hepatectomy": True}, "default")
>>> verdict.status, verdict.scope, verdict.strategies
('not_resectable', 'plan', ('revise_plan',))
>>> [r.rule for r in verdict.reasons if r.status == "fail"]
['fit_for_major_surgery']
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic validates typing.TypedDict only from Python 3.12

from flr.errors import ConfigFileError, FactError, RulebookError, RulebookFileError, join_problems, quote, short_path
from flr.io.config import ConfigFormat, config_format, parse_config, read_config_bytes
from flr.model import DISCLAIMER, FAIL, NOT_ASSESSED, PASS, STATUSES, FrozenModel, Status, json_schema

__all__ = [
    "BUILTIN_RULEBOOKS",
    "DISCLAIMER",
    "FACTS",
    "PREDICATES",
    "FactError",
    "Guidance",
    "MissingInput",
    "Outcome",
    "Reason",
    "Rule",
    "Rulebook",
    "RulebookError",
    "RulebookFileError",
    "RulebookRef",
    "Verdict",
    "evaluate",
    "list_rules",
    "liver_condition_keys",
    "load_rulebook",
    "parse_rulebook",
    "rulebook_json_schema",
    "rulebook_sha256",
    "source_text",
    "validate_facts",
]

BUILTIN_RULEBOOKS = ("default", "literature")

#: A rule's outcome for one case: a check status, or ``not_applicable`` when its ``when`` is false.
RuleStatus = Literal[Status, "inferred", "not_applicable"]  # pass, fail, not_assessed, inferred, not_applicable
OnFail = Literal["not_resectable", "strategy", "caution"]
VerdictStatus = Literal["resectable", "resectable_with_strategy", "not_resectable", "insufficient_data"]

RESECTABLE: VerdictStatus = "resectable"
WITH_STRATEGY: VerdictStatus = "resectable_with_strategy"
NOT_RESECTABLE: VerdictStatus = "not_resectable"
INSUFFICIENT: VerdictStatus = "insufficient_data"
NOT_APPLICABLE: RuleStatus = "not_applicable"
#: A rule judged on an inferred input (biliary drainage inferred from portal inflow): neither a pass nor missing.
INFERRED: RuleStatus = "inferred"
Scope = Literal["patient", "plan"]
#: Whom a verdict or a reason judges: the patient (no other plan changes it) or this plan (another might).
SCOPES: tuple[Scope, ...] = ("patient", "plan")
ON_FAIL: tuple[OnFail, ...] = ("not_resectable", "strategy", "caution")
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
#: Biliary drainage may also be ``inferred`` (from portal inflow, without a bile-duct mask; issue 13, item 2).
_STATUS_OR_INFERRED = (*_STATUS, "inferred")

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
    "biliary_drainage": Fact("status", ("bile_duct mask",), _STATUS_OR_INFERRED),
    "tumor_clearance": Fact("status", _TUMOUR, _STATUS),
    "min_margin_mm": Fact("number", _TUMOUR),
    "tumor_count": Fact("count", ("tumour mask",)),
    "tumors_left": Fact("count", _TUMOUR),
    "tumors_ablated": Fact("count", _TUMOUR),
    "largest_tumor_mm": Fact("number", ("tumour mask",)),
    "largest_ablated_tumor_mm": Fact("number", _TUMOUR),
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
    "prior_recurrence": Fact("bool", ("prior_recurrence",)),
    "biliary_anatomy": Fact("enum", ("biliary_anatomy",), ("standard", "variant", "not_imaged")),
    "extrahepatic_sites": Fact("list", ("extrahepatic_sites",),
                               ("lung", "peritoneum", "periportal_nodes", "paraaortic_nodes", "bone", "brain",
                                "other")),
    "extrahepatic_extent": Fact("enum", ("extrahepatic_extent",), ("limited", "extensive")),
    "extrahepatic_disease": Fact("enum", ("extrahepatic_sites", "extrahepatic_extent"),
                                 ("none", "limited", "extensive")),
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

#: Facts that depend on the resection plan: a rule reading one (in ``inputs`` or ``when``) judges *this plan*,
#: which another plan might change; every other rule judges the patient (issue 13, item 5).
PLAN_FACTS = frozenset({
    "flr_body_weight_percent", "sflr_percent", "flr_percent_of_functional_liver", "remnant_functional_volume_ml",
    "two_contiguous_segments", "inflow", "outflow", "biliary_drainage", "tumor_clearance", "min_margin_mm",
    "tumors_left", "tumors_ablated", "largest_ablated_tumor_mm", "plan_is_anatomic", "segments_resected",
    "major_hepatectomy", "degree_of_hypertrophy_pp", "kinetic_growth_rate_pp_per_week"})


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
    #: the input judged was inferred, not measured: the rule is ``inferred`` (never a plain pass)
    inferred: bool = False


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


def _status_pass(values: Sequence[Any], _threshold: Any) -> Outcome:
    """A measured check passed; ``inferred`` is neither a pass nor missing: the rule is ``inferred``."""
    value = values[0]
    if value is None:
        return Outcome(None, (0,))
    if value == "inferred":
        return Outcome(True, inferred=True, detail="inferred, not measured")
    return Outcome(value == PASS)


def _biliary_drained(values: Sequence[Any], _threshold: Any) -> Outcome:
    """Biliary drainage measured (pass / fail), or inferred from portal inflow unless imaging shows a variant.

    An inferred drainage rests on the standard anatomy (the bile duct runs in the Glissonean pedicle with
    the portal vein); where imaging shows a variant (e.g. the right posterior duct draining into the left
    hepatic duct, about a quarter of patients) it cannot be inferred: the drainage is then missing.
    """
    status, anatomy = values
    if status is None:
        return Outcome(None, (0,))
    if status != "inferred":
        return Outcome(status == PASS)
    if anatomy == "variant":
        return Outcome(None, (0,), detail="variant biliary anatomy on imaging: drainage cannot be inferred from "
                                          "portal inflow (give the bile-duct mask or plan from the cholangiogram)")
    return Outcome(True, inferred=True, detail="inferred from portal inflow (no bile-duct mask)"
                   + ("; standard biliary anatomy on imaging" if anatomy == "standard" else ""))


def _confirmed(values: Sequence[Any], threshold: Any) -> Outcome:
    """value == threshold; a missing value counts as not confirmed (fails), for cautions that ask for it."""
    value = values[0]
    if value is None:
        return Outcome(False, detail="not recorded")
    return Outcome(value == threshold)


def _extrahepatic_limited(values: Sequence[Any], _threshold: Any) -> Outcome:
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


#: Keys of :func:`_adequate_volume`'s threshold: the FLR/BW minimum, then the sFLR minimum by liver condition.
ADEQUATE_VOLUME_KEYS = ("flr_body_weight_percent", *LIVER_CONDITION_KEYS)


def _adequate_volume(values: Sequence[Any], threshold: Mapping[str, float]) -> Outcome:
    """FLR/BW >= threshold[flr_body_weight_percent]; below it, the remnant is adequate when its sFLR meets the
    minimum for the liver's condition (the strictest applicable key, as :func:`_at_least_for_liver_condition`).

    Missing: FLR/BW (and sFLR) absent; or FLR/BW below the minimum while the sFLR (height) or the liver's
    condition that would decide is unknown.
    """
    bw, sflr, condition, weeks = values
    bw_min = threshold["flr_body_weight_percent"]
    if bw is None and sflr is None:
        return Outcome(None, (0,))
    if bw is not None and bw >= bw_min:
        return Outcome(True, threshold={"flr_body_weight_at_least": bw_min},
                       detail=f"FLR/BW {bw:.2f} % >= {bw_min:g} %")
    below = f"FLR/BW {bw:.2f} % < {bw_min:g} %" if bw is not None else "FLR/BW unknown"
    keys = liver_condition_keys(condition, weeks) if condition is not None else None
    missing = tuple(i for i, v in ((1, sflr), (2, condition)) if v is None)
    if condition is not None and keys is None:
        missing = (*missing, 3)
    if missing or keys is None:
        return Outcome(None, missing, threshold={"flr_body_weight_at_least": bw_min},
                       detail=f"{below}: the sFLR against the minimum for the liver's condition decides")
    key = max(keys, key=lambda k: threshold[k])
    minimum = threshold[key]
    applied = {"flr_body_weight_at_least": bw_min, "sflr_at_least": minimum, "liver_condition": key}
    verb = ">=" if sflr >= minimum else "<"
    return Outcome(sflr >= minimum, threshold=applied,
                   detail=f"{below}; sFLR {sflr:.1f} % {verb} {minimum:g} % ({key.replace('_', ' ')})")


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
    "is_true": Predicate(_single(lambda v, _t: v is True), (frozenset({"bool"}),), "none", "value is true"),
    "is_false": Predicate(_single(lambda v, _t: v is False), (frozenset({"bool"}),), "none", "value is false"),
    "status_pass": Predicate(_status_pass, (frozenset({"status"}),), "none",
                             "the measured check passed (not_assessed: missing; inferred: the rule is inferred)"),
    "biliary_drained": Predicate(
        _biliary_drained, (frozenset({"biliary_drainage"}), frozenset({"biliary_anatomy"})), "none",
        "biliary drainage passed, or is inferred from portal inflow (missing where imaging shows a variant)"),
    "confirmed": Predicate(_confirmed, (_VALUED,), "value", "value == threshold (missing: not confirmed, fails)"),
    "adequate_volume": Predicate(
        _adequate_volume, (frozenset({"flr_body_weight_percent"}), frozenset({"sflr_percent"}),
                           frozenset({"liver_condition"}), frozenset({"chemotherapy_weeks"})), "keys",
        "FLR/BW >= its minimum, or else sFLR >= the minimum for the liver's condition", ADEQUATE_VOLUME_KEYS),
    "in_set": Predicate(_single(lambda v, t: v in t), (_VALUED,), "set", "value is one of threshold"),
    "not_in_set": Predicate(_single(lambda v, t: v not in t), (_VALUED,), "set", "value is none of threshold"),
    "is_empty": Predicate(_single(lambda v, _t: len(v) == 0), (frozenset({"list"}),), "none", "the list is empty"),
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
    on_fail: OnFail
    source: str
    when: tuple[Condition, ...] = ()
    strategies: tuple[str, ...] = ()
    guidance: str | Mapping[str, str] | None = None
    required: bool = True
    #: ``scope`` as the rule file states it (None: derived from the facts it reads, see :attr:`scope`)
    stated_scope: Scope | None = None

    @property
    def after_verdict(self) -> bool:
        """True for phase-2 rules (they read the verdict)."""
        return VERDICT in self.inputs or any(c.fact == VERDICT for c in self.when)

    @property
    def scope(self) -> Scope:
        """``plan`` when the rule reads a fact of the plan (:data:`PLAN_FACTS`, in ``inputs`` or ``when``) or says
        so, else ``patient``: a failed plan rule means *this plan* fails, and another plan might not."""
        if self.stated_scope is not None:
            return self.stated_scope
        facts = {*self.inputs, *(c.fact for c in self.when)}
        return "plan" if facts & PLAN_FACTS else "patient"

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
            "scope": self.scope,
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
        """The rule with this id (``KeyError`` when there is none)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def thresholds_for(self, fact: str) -> list[tuple[str, Any]]:
        """``(rule id, threshold)`` of every rule that tests ``fact`` (reads it as an input), in rulebook order.

        Parameters
        ----------
        fact : a name of :data:`FACTS` (``KeyError`` for another).

        Returns
        -------
        The rules' thresholds as written (a number, a value, a tuple, or a mapping for keyed checks; ``None``
        for checks without one); empty when no rule reads the fact.

        The report draws the FLR-per-body-weight line at the active rulebook's threshold:

        >>> load_rulebook("literature").thresholds_for("flr_body_weight_percent")
        [('flr_body_weight', 0.5)]
        """
        if fact != VERDICT and fact not in FACTS:
            raise KeyError(f"unknown fact {fact!r}")
        return [(r.id, r.threshold) for r in self.rules if fact in r.inputs]


#: Longest id (of a rule, a rulebook, a strategy) and version.
MAX_ID_CHARS = 64
#: A snake_case id (matched with ``fullmatch``: ``$`` alone would let a trailing newline through).
_ID = re.compile(rf"^[a-z][a-z0-9_]{{0,{MAX_ID_CHARS - 1}}}$")
_TOP_FIELDS = ("id", "version", "title", "description", "source_text", "rules")
_RULE_FIELDS = ("id", "statement", "inputs", "check", "threshold", "when", "on_fail", "strategies", "guidance",
                "source", "required", "scope")
#: Most rules in one rulebook (the built-in ones hold about 30).
MAX_RULES = 1000
#: At most this many problems of one rulebook are listed (then "... and N more"); fewer when they would make
#: the message longer than :data:`flr.errors.MAX_PROBLEMS_CHARS`.
MAX_LISTED_ERRORS = 20


def _too_long(value: Any) -> str:
    """`` (at most 64 characters)`` for a text over :data:`MAX_ID_CHARS`, else nothing."""
    return f" (at most {MAX_ID_CHARS} characters)" if isinstance(value, str) and len(value) > MAX_ID_CHARS else ""


def _bad(message: str, field: str | None = None) -> PydanticCustomError:
    """A rulebook problem; ``field`` names the rule field at fault when it is not the one being validated."""
    return PydanticCustomError("rulebook", message, {"rule_field": field} if field else None)


def _close(name: Any, names: Iterable[str]) -> list[str]:
    """The valid name closest to ``name`` (a typo), if any; none for a long or non-text ``name``."""
    if not isinstance(name, str) or len(name) > MAX_ID_CHARS:
        return []
    return difflib.get_close_matches(name, list(names), n=1)


def _fact_hint(name: Any) -> str:
    """``did you mean ...?`` for a typo, else where the facts are listed (all of them would make a long line)."""
    close = _close(name, [*FACTS, VERDICT])
    return f"did you mean {close[0]}?" if close else f"not one of the {len(FACTS)} facts: see `flr schema rulebook`"


def _text(value: Any, problem: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(problem)
    return " ".join(value.split())


def _reads_verdict(data: Mapping[str, Any]) -> bool:
    """Whether the rule validated so far (``data``) reads the verdict (in ``inputs`` or ``when``)."""
    return VERDICT in data.get("inputs", ()) or any(c.fact == VERDICT for c in data.get("when", ()))


def _schema_of_rule_file(schema: dict[str, Any]) -> None:
    schema["required"] = ["id", "statement", "inputs", "check", "on_fail", "source"]
    for prop in schema["properties"].values():
        prop.pop("default", None)


_VALUE_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
_WHEN_SCHEMA: dict[str, Any] = {
    "type": "object", "minProperties": 1, "propertyNames": {"enum": [*FACTS, VERDICT]},
    "additionalProperties": {"anyOf": [
        _VALUE_SCHEMA, {"type": "array", "minItems": 1, "items": _VALUE_SCHEMA},
        {"type": "object", "properties": {"not": {"anyOf": [_VALUE_SCHEMA, {"type": "array", "items": _VALUE_SCHEMA}]}},
         "required": ["not"], "additionalProperties": False},
        {"type": "object", "properties": {"present": {"type": "boolean"}}, "required": ["present"],
         "additionalProperties": False}]},
    "description": "when the rule applies: {fact: value | [values] | {not: ...} | {present: true|false}}"}
_SNAKE: dict[str, Any] = {"type": "string", "pattern": _ID.pattern}
#: The statuses a rule's guidance may be keyed by.
_GUIDANCE_KEYS = (*STATUSES, "inferred")
_NONEMPTY: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"\S"}


class _RuleFile(BaseModel):
    """One rule as written in a rulebook file; validated field by field, every problem reported."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_of_rule_file)

    id: Annotated[str, WithJsonSchema(_SNAKE)] = Field(default=None, validate_default=True)
    statement: Annotated[str, WithJsonSchema(_NONEMPTY)] = Field(default=None, validate_default=True)
    inputs: Annotated[tuple[str, ...], WithJsonSchema({
        "type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": [*FACTS, VERDICT]}})] = Field(
        default=None, validate_default=True)
    check: Annotated[str, WithJsonSchema({"enum": list(PREDICATES)})] = Field(default=None, validate_default=True)
    threshold: Annotated[Any, WithJsonSchema({"type": ["number", "string", "boolean", "array", "object", "null"]})] \
        = Field(default=None, validate_default=True)
    when: Annotated[tuple[Condition, ...], WithJsonSchema(_WHEN_SCHEMA)] = Field(default=None, validate_default=True)
    on_fail: Annotated[OnFail, WithJsonSchema({"enum": list(ON_FAIL)})] = Field(default=None, validate_default=True)
    strategies: Annotated[tuple[str, ...], WithJsonSchema({"type": "array", "items": _SNAKE})] = Field(
        default=None, validate_default=True)
    guidance: Annotated[str | dict[str, str] | None, WithJsonSchema({"anyOf": [
        _NONEMPTY, {"type": "object", "minProperties": 1, "propertyNames": {"enum": list(_GUIDANCE_KEYS)},
                    "additionalProperties": _NONEMPTY}]})] = None
    source: Annotated[str, WithJsonSchema(_NONEMPTY)] = Field(default=None, validate_default=True)
    required: Annotated[bool, WithJsonSchema({"type": "boolean"})] = Field(default=None, validate_default=True)
    scope: Annotated[Scope | None, WithJsonSchema({"enum": list(SCOPES)})] = None

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise _bad(f"{quote(value)} is not a snake_case id{_too_long(value)}")
        seen = (info.context or {}).setdefault("rule_ids", set())
        if value in seen:
            raise _bad("duplicate rule id")
        seen.add(value)
        return value

    @field_validator("statement", "source", mode="plain")
    @classmethod
    def _statement(cls, value: Any) -> str:
        return _text(value, "missing (every rule needs a plain-language statement and a source)")

    @field_validator("inputs", mode="plain")
    @classmethod
    def _inputs(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
            raise _bad("must be a non-empty list of fact names")
        for name in value:
            if name != VERDICT and name not in FACTS:
                raise _bad(f"unknown fact {quote(name)} ({_fact_hint(name)})")
        if len(set(value)) != len(value):
            raise _bad("a fact is listed twice")
        return tuple(value)

    @field_validator("check", mode="plain")
    @classmethod
    def _check(cls, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or value not in PREDICATES:
            close = _close(value, PREDICATES)
            hint = f"did you mean {close[0]}?" if close else f"known checks: {', '.join(PREDICATES)}"
            raise _bad(f"unknown check {quote(value)} ({hint})")
        inputs = info.data.get("inputs")
        if inputs is None:
            return value  # the inputs are at fault, and reported
        pred = PREDICATES[value]
        if len(inputs) != len(pred.accepts):
            raise _bad(f"check {value!r} reads {len(pred.accepts)} fact(s), {len(inputs)} given", "inputs")
        for name, accepts in zip(inputs, pred.accepts, strict=True):
            if name not in accepts and _fact(name).kind not in accepts:
                raise _bad(f"check {value!r} cannot read {name!r} ({_fact(name).kind}); it accepts "
                           f"{', '.join(sorted(accepts))}", "inputs")
        return value

    @field_validator("threshold", mode="plain")
    @classmethod
    def _threshold(cls, value: Any, info: ValidationInfo) -> Any:
        check, inputs = info.data.get("check"), info.data.get("inputs")
        if check is None or inputs is None:
            return value  # the check or the inputs are at fault, and reported
        return _parse_threshold(value, check, _fact(inputs[0]))

    @field_validator("when", mode="plain")
    @classmethod
    def _when(cls, value: Any) -> tuple[Condition, ...]:
        return _parse_when(value)

    @field_validator("on_fail", mode="plain")
    @classmethod
    def _on_fail(cls, value: Any, info: ValidationInfo) -> OnFail:
        on_fail = next((option for option in ON_FAIL if option == value), None)
        if on_fail is None:
            raise _bad(f"{quote(value)} is not one of {', '.join(ON_FAIL)}")
        if on_fail == "not_resectable" and _reads_verdict(info.data):
            raise _bad("a rule that reads the verdict cannot decide it (use caution or strategy, required: false)")
        return on_fail

    @field_validator("strategies", mode="plain")
    @classmethod
    def _strategies(cls, value: Any, info: ValidationInfo) -> tuple[str, ...]:
        strategies = [] if value is None else value
        if not isinstance(strategies, list) or not all(isinstance(s, str) and _ID.fullmatch(s) for s in strategies):
            raise _bad("must be a list of snake_case strategy names")
        on_fail = info.data.get("on_fail")
        if on_fail == "strategy" and not strategies:
            raise _bad("a rule with on_fail: strategy must name its strategies")
        if on_fail == "caution" and strategies:
            raise _bad("a caution names no strategies (use on_fail: strategy)")
        return tuple(strategies)

    @field_validator("guidance", mode="plain")
    @classmethod
    def _guidance(cls, value: Any) -> str | dict[str, str] | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
        if isinstance(value, Mapping) and value and all(
                k in _GUIDANCE_KEYS and isinstance(v, str) and v.strip() for k, v in value.items()):
            return {k: " ".join(v.split()) for k, v in value.items()}
        raise _bad("must be a text, or a mapping {pass|fail|not_assessed|inferred: text}")

    @field_validator("scope", mode="plain")
    @classmethod
    def _scope(cls, value: Any) -> Scope | None:
        if value is None:
            return None
        scope = next((s for s in SCOPES if s == value), None)
        if scope is None:
            raise _bad(f"{quote(value)} is not one of {', '.join(SCOPES)}")
        return scope

    @field_validator("required", mode="plain")
    @classmethod
    def _required(cls, value: Any, info: ValidationInfo) -> bool:
        after = _reads_verdict(info.data)
        if value is None:
            return info.data.get("on_fail") != "caution" and not after
        if not isinstance(value, bool):
            raise _bad(f"must be true or false, got {quote(value)}")
        if after and value:
            raise _bad("a rule that reads the verdict cannot decide it (use caution or strategy, required: false)")
        return value

    def rule(self) -> Rule:
        """The validated rule."""
        return Rule(id=self.id, statement=self.statement, inputs=self.inputs, check=self.check,
                    threshold=self.threshold, on_fail=self.on_fail, source=self.source, when=self.when,
                    strategies=self.strategies, guidance=self.guidance, required=self.required,
                    stated_scope=self.scope)


def _schema_of_rulebook_file(schema: dict[str, Any]) -> None:
    schema["required"] = list(_TOP_FIELDS)
    for prop in schema["properties"].values():
        prop.pop("default", None)


class _RulebookFile(BaseModel):
    """A rulebook file as written: provenance fields and a non-empty list of rules."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_of_rulebook_file)

    id: Annotated[str, WithJsonSchema(_SNAKE)] = Field(default=None, validate_default=True)
    version: Annotated[str, WithJsonSchema({"anyOf": [_NONEMPTY, {"type": "integer"}]})] = Field(
        default=None, validate_default=True)
    title: Annotated[str, WithJsonSchema(_NONEMPTY)] = Field(default=None, validate_default=True)
    description: Annotated[str, WithJsonSchema(_NONEMPTY)] = Field(default=None, validate_default=True)
    source_text: Annotated[str, WithJsonSchema(_NONEMPTY)] = Field(default=None, validate_default=True)
    rules: list[_RuleFile] = Field(default=None, validate_default=True, json_schema_extra={"minItems": 1})

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: Any) -> str:
        text = _text(value, "must be a non-empty string")
        if not _ID.fullmatch(text):
            raise _bad(f"must be snake_case, got {quote(value)}{_too_long(text)}")
        return text

    @field_validator("title", "description", "source_text", mode="plain")
    @classmethod
    def _texts(cls, value: Any) -> str:
        _text(value, "must be a non-empty string")
        return str(value).strip()

    @field_validator("version", mode="plain")
    @classmethod
    def _version(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise _bad(f'must be a string (quote it: version: "1.0"), got {quote(value)}')
        too_long = abs(value) >= 10**MAX_ID_CHARS if isinstance(value, int) else len(value) > MAX_ID_CHARS
        if too_long:
            raise _bad(f"must be at most {MAX_ID_CHARS} characters, got {quote(value)}")
        return str(value)

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise _bad("must be a non-empty list of rules")
        if len(value) > MAX_RULES:
            raise _bad(f"holds {len(value)} rules; a rulebook has at most {MAX_RULES}")
        return value


def _rule_message(err: Mapping[str, Any], rules: Any) -> str:
    """``rule 'volume', field 'check': ...`` (``rule #2`` when the rule has no valid id)."""
    loc = err["loc"]
    i = loc[1]
    raw = rules[i] if isinstance(rules, list) and i < len(rules) else None
    rid = raw.get("id") if isinstance(raw, Mapping) else None
    name = f"rule {rid!r}" if isinstance(rid, str) and _ID.fullmatch(rid) else f"rule #{i + 1}"
    if len(loc) == 2:
        if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            return f"{name}: expected a mapping with {', '.join(_RULE_FIELDS)}"
        return f"{name}: {err['msg']}"
    field = (err.get("ctx") or {}).get("rule_field") or str(loc[2])
    if err["type"] == "invalid_key":
        return f"{name}: field names must be text, not {quote(loc[2])}"
    if err["type"] == "extra_forbidden":
        close = _close(field, _RULE_FIELDS)
        hint = f"did you mean {close[0]}?" if close else f"a rule has {', '.join(_RULE_FIELDS)}"
        return f"{name}, field {quote(field)}: unknown field ({hint})"
    return f"{name}, field {field!r}: {err['msg']}"


def _rulebook_messages(exc: ValidationError, doc: Mapping[Any, Any]) -> tuple[list[str], int]:
    """The first :data:`MAX_LISTED_ERRORS` problems of a rulebook, each naming the rule (id, or position) and the
    field, and how many problems there are in all."""
    out = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_LISTED_ERRORS]:
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            out.append(_rule_message(err, doc.get("rules")))
        elif err["type"] == "extra_forbidden":
            out.append(f"unknown top-level field {quote(loc[0])} (a rulebook has {', '.join(_TOP_FIELDS)})")
        elif err["type"] == "invalid_key":
            out.append(f"field names must be text, not {quote(loc[0])}")
        else:
            out.append(f"field {loc[0]!r} {err['msg']}")
    first = list(dict.fromkeys(out))
    return first, len(first) + max(len(errors) - MAX_LISTED_ERRORS, 0)


def parse_rulebook(data: bytes | str, origin: str = "<rulebook>", *, fmt: ConfigFormat = "yaml") -> Rulebook:
    """Validate a rulebook's text (YAML, or JSON with ``fmt="json"``); ``sha256`` is the hash of its bytes.

    Parameters
    ----------
    data : the rulebook file's bytes (text is encoded as UTF-8).
    origin : what names the rulebook in messages (a path, ``built-in rulebook 'default'``).
    fmt : ``"yaml"`` or ``"json"``.

    Raises :class:`RulebookError` listing every problem at once, each naming the rule id and the field
    (``test.yaml: rule 'volume', field 'check': unknown check 'at_leest' (did you mean at_least?)``); a
    text that cannot be parsed at all raises :class:`RulebookFileError` (also a ConfigFileError).
    """
    # a lone surrogate (possible in a str) is kept, and refused as not UTF-8 by parse_config
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        doc = parse_config(raw, origin=origin, fmt=fmt)
    except ConfigFileError as exc:
        raise RulebookFileError(str(exc)) from None
    if not isinstance(doc, Mapping):
        raise RulebookError(f"{origin}: expected a mapping with {', '.join(_TOP_FIELDS)}")
    try:
        book = _RulebookFile.model_validate(dict(doc), context={"rule_ids": set()})
    except ValidationError as exc:
        messages, total = _rulebook_messages(exc, doc)
        raise RulebookError(join_problems(f"{origin}: ", messages, total=total)) from None
    return Rulebook(id=book.id, version=book.version, title=book.title, description=book.description,
                    source_text=book.source_text, rules=tuple(r.rule() for r in book.rules),
                    sha256=hashlib.sha256(raw).hexdigest(), origin=origin)


def rulebook_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a rulebook FILE (what ``flr/rulebooks/*.yaml`` and user rulebooks hold).

    The schema checks the shape and vocabulary (facts, checks, outcomes); what depends on the check (the
    number of inputs, the threshold's form) is checked by :func:`parse_rulebook`.
    """
    return json_schema(_RulebookFile, title="flr rulebook")


def _parse_threshold(value: Any, check: str, fact: Fact) -> Any:
    pred = PREDICATES[check]
    if pred.threshold == "none":
        if value is not None:
            raise _bad(f"check {check!r} takes no threshold")
        return None
    if value is None:
        raise _bad(f"missing threshold for check {check!r} ({pred.doc})")
    if pred.threshold == "number":
        if not _is_number(value):
            raise _bad(f"must be a number, got {quote(value)}")
        return value
    if pred.threshold == "keys":
        if not isinstance(value, Mapping) or set(value) != set(pred.keys) or not all(
                _is_number(v) for v in value.values()):
            raise _bad(f"must map exactly {', '.join(pred.keys)} to numbers, got {quote(value)}")
        return dict(value)
    if pred.threshold == "set" and (not isinstance(value, list) or not value):
        raise _bad(f"must be a non-empty list, got {quote(value)}")
    values = [value] if pred.threshold == "value" else value
    problem = _values_problem(fact, values)
    if problem:
        raise _bad(problem)
    return value if pred.threshold == "value" else tuple(value)


def _parse_condition(name: Any, cond: Any) -> Condition:
    if name != VERDICT and name not in FACTS:
        raise _bad(f"unknown fact {quote(name)} ({_fact_hint(name)})")
    fact = _fact(name)
    negate = False
    if isinstance(cond, Mapping):
        if set(cond) == {"present"} and isinstance(cond["present"], bool):
            return Condition(name, present=cond["present"])
        if set(cond) != {"not"}:
            raise _bad(f"{name}: use a value, a list, {{not: ...}} or {{present: true|false}}")
        negate, cond = True, cond["not"]
    values = tuple(cond) if isinstance(cond, list) else (cond,)
    if not values:
        raise _bad(f"{name}: empty list of values")
    problem = _values_problem(fact, values)
    if problem:
        raise _bad(f"{name}: {problem}")
    return Condition(name, values, negate)


def _parse_when(raw: Any) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise _bad("must be a mapping {fact: value | [values] | {not: ...} | {present: true|false}}")
    return tuple(_parse_condition(name, cond) for name, cond in raw.items())


def _values_problem(fact: Fact, values: Sequence[Any]) -> str | None:
    """What is wrong with a list of values for ``fact`` (a threshold's, a ``when``'s): the first value outside
    its vocabulary, or one listed twice (a list holds each value once, so it is as short as the vocabulary)."""
    seen: list[Any] = []
    for v in values:
        problem = _vocabulary_problem(fact, v)
        if problem:
            return problem
        if any(v == s and type(v) is type(s) for s in seen):
            return f"{quote(v)} is listed twice"
        seen.append(v)
    return None


def _vocabulary_problem(fact: Fact, value: Any) -> str | None:
    if fact.kind == "list" and not isinstance(value, str):
        return f"{quote(value)} is not a text"
    if fact.kind == "bool":
        return None if isinstance(value, bool) else f"{quote(value)} is not true/false"
    if fact.kind in ("number", "count"):
        return None if _is_number(value) else f"{quote(value)} is not a number"
    if fact.values and value not in fact.values:
        return f"{quote(value)} is not one of {', '.join(fact.values)}"
    return None


def _is_number(value: Any) -> bool:
    """A finite real number, not a bool (an integer too large for a float is not finite)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def load_rulebook(source: str | os.PathLike[str] | Rulebook = "default") -> Rulebook:
    """A built-in rulebook by name (``default``, ``literature``), a YAML (or JSON) file, or ``source`` itself.

    Parameters
    ----------
    source : a built-in name, a path (``.yaml``, ``.yml`` or ``.json``, read by :mod:`flr.io.config`) or a
        :class:`Rulebook` (returned as is).
    """
    if isinstance(source, Rulebook):
        return source
    if isinstance(source, str) and source in BUILTIN_RULEBOOKS:
        data = resources.files("flr").joinpath("rulebooks").joinpath(f"{source}.yaml").read_bytes()
        return parse_rulebook(data, f"built-in rulebook {source!r}")
    path = Path(source)
    try:
        found = path.is_file()
    except OSError:  # a name too long to look up
        found = False
    if not found:
        raise RulebookError(f"{short_path(path)}: no such rulebook; give {' or '.join(BUILTIN_RULEBOOKS)} or a YAML "
                            "file")
    try:
        fmt = config_format(path, what="rulebook")
        data = read_config_bytes(path, what="rulebook")
    except ConfigFileError as exc:
        raise RulebookFileError(str(exc)) from None
    return parse_rulebook(data, str(path), fmt=fmt)


#: The clinical source text the built-in rulebooks quote, shipped with flr (``flr rules --source-text``).
SOURCE_TEXT_TITLE = "Liver Metastases (Liver Secondary)"


def source_text() -> str:
    """The clinical source text (*Liver Metastases (Liver Secondary)*) that the built-in rules quote by section."""
    return resources.files("flr").joinpath("sources").joinpath("liver-metastases.txt").read_text(encoding="utf-8")


def rulebook_sha256(rulebook: str | os.PathLike[str] | Rulebook) -> str:
    """SHA-256 (hex) of the rulebook file's bytes, recorded in every verdict."""
    return load_rulebook(rulebook).sha256


def list_rules(rulebook: str | os.PathLike[str] | Rulebook = "default") -> list[dict[str, Any]]:
    """Every rule as a plain dict, in rulebook order (for ``flr rules``)."""
    return [r.to_dict() for r in load_rulebook(rulebook).rules]


# --- evaluation --------------------------------------------------------------------------------------------

class Reason(FrozenModel):
    """How one rule came out for one case: the value judged, the threshold applied, the source."""

    rule: str
    statement: str
    status: RuleStatus
    value: Any = None
    threshold: Any = None
    source: str
    on_fail: OnFail
    missing: tuple[str, ...] = ()
    detail: str | None = None
    #: whom the rule judges: ``plan`` (it reads a fact of the plan) or ``patient``; absent in round-1 documents
    scope: Scope | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("value", "threshold", mode="before")
    @classmethod
    def _json_ready(cls, value: Any) -> Any:
        return _plain(value)


class MissingInput(TypedDict):
    """A fact some rules needed and lacked: what the user must supply, and whether it withholds the verdict."""

    fact: str
    needs: list[str]
    rules: list[str]
    required: bool


class Guidance(TypedDict):
    """A rule's guidance text for the team (primary-specific advice)."""

    rule: str
    text: str


class RulebookRef(FrozenModel):
    """Which rulebook judged: its id, version and the SHA-256 of its file."""

    id: str
    version: str
    sha256: str


class Verdict(FrozenModel):
    """The result of :func:`evaluate`; ``to_dict()`` is the JSON contract, ``from_dict()`` reads it back."""

    status: VerdictStatus
    #: whom the status judges: ``patient`` when a patient rule decides it (no other plan changes it), ``plan``
    #: when only rules of this plan do (another plan might: ``revise_plan``); absent in round-1 documents
    scope: Scope | None = None
    strategies: tuple[str, ...]
    reasons: tuple[Reason, ...]
    missing_inputs: tuple[MissingInput, ...]
    primary_guidance: tuple[Guidance, ...]
    cautions: tuple[str, ...]
    rulebook: RulebookRef
    disclaimer: str = DISCLAIMER
    #: rules judged on an inferred input (e.g. biliary drainage from portal inflow): not a measured pass
    inferred: tuple[str, ...] = ()

    @property
    def rulebook_id(self) -> str:
        """The judging rulebook's id (``rulebook.id``)."""
        return self.rulebook.id

    @property
    def rulebook_version(self) -> str:
        """The judging rulebook's version (``rulebook.version``)."""
        return self.rulebook.version

    @property
    def rulebook_sha256(self) -> str:
        """SHA-256 of the judging rulebook's file (``rulebook.sha256``)."""
        return self.rulebook.sha256


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
    status, scope, named = _status(hard, soft, blocking)
    strategies = [s for r in book.rules if r in named for s in r.strategies]

    known = {**values, VERDICT: None if status == INSUFFICIENT else status}
    for rule in book.rules:
        if rule.after_verdict:
            why = _evaluate_rule(rule, known)
            if why.status == NOT_ASSESSED and VERDICT in why.missing:
                why = why.model_copy(update={"detail": "depends on the verdict, which needs the missing inputs"})
            reasons[rule.id] = why
            if why.status == FAIL and rule.on_fail == "strategy":
                strategies.extend(rule.strategies)

    ordered = tuple(reasons[r.id] for r in book.rules)
    return Verdict(
        status=status,
        scope=scope,
        strategies=tuple(dict.fromkeys(strategies)),
        reasons=ordered,
        missing_inputs=_missing_inputs(book.rules, ordered),
        primary_guidance=tuple(Guidance(rule=r.id, text=text) for r, why in zip(book.rules, ordered, strict=True)
                               if (text := _guidance(r, why.status))),
        cautions=tuple(r.id for r, why in zip(book.rules, ordered, strict=True)
                       if why.status == FAIL and r.on_fail == "caution"),
        rulebook=RulebookRef(id=book.id, version=book.version, sha256=book.sha256),
        inferred=tuple(why.rule for why in ordered if why.status == INFERRED),
    )


def _status(hard: Sequence[Rule], soft: Sequence[Rule], blocking: Sequence[Rule]
            ) -> tuple[VerdictStatus, Scope, list[Rule]]:
    """The verdict's status, its scope and the rules whose strategies it lists (steps 2-5 of the module docstring).

    A failed ``not_resectable`` rule of the patient decides for the patient, and only the patient's rules
    name strategies; when every such failure is a rule of this plan (tumour left, remnant not contiguous,
    inflow cut...) the verdict judges this plan: its rules' strategies (``revise_plan``...) and those of every
    failed ``strategy`` rule are the options. Otherwise the scope is the patient's when any rule deciding the
    status is a patient rule, else this plan's (a resectable verdict judges this plan).
    """
    def scope_of(rules: Sequence[Rule]) -> Scope:
        return "patient" if any(r.scope == "patient" for r in rules) else "plan"

    if hard:
        patient = [r for r in hard if r.scope == "patient"]
        if patient:
            return NOT_RESECTABLE, "patient", patient
        return NOT_RESECTABLE, "plan", [*hard, *soft]
    if blocking:
        return INSUFFICIENT, scope_of(blocking), list(soft)
    return (WITH_STRATEGY if soft else RESECTABLE), scope_of(soft), list(soft)


def validate_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Known facts checked and normalised to plain Python values (lists become tuples); ``None`` kept."""
    out: dict[str, Any] = {}
    for name, fact in FACTS.items():
        value = facts.get(name)
        out[name] = None if value is None else _normalise(name, fact, value)
    return out


def _normalise(name: str, fact: Fact, value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, list | tuple | str):  # numpy scalars
        value = value.item()
    expected = _fact_problem(fact, value)
    if expected is not None:
        raise FactError(f"fact {name} = {quote(value)}: expected {expected}")
    if fact.kind == "number":
        return float(value)
    if fact.kind == "count":
        return int(value)
    return tuple(value) if fact.kind == "list" else value


def _fact_problem(fact: Fact, value: Any) -> str | None:
    """What a fact's value should have been (``None`` when it is fine)."""
    if fact.kind == "number":
        return None if _is_number(value) else "a finite number"
    if fact.kind == "count":
        ok = _is_number(value) and value >= 0 and float(value) == int(value)
        return None if ok else "a non-negative integer"
    if fact.kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if fact.kind in ("enum", "status"):
        return None if value in fact.values else f"one of {', '.join(fact.values)}"
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return "a list of strings"
    unknown = [v for v in value if fact.values and v not in fact.values]
    return f"items from {', '.join(fact.values)} (unknown: {', '.join(unknown)})" if unknown else None


def _missing(fact: str, value: Any) -> bool:
    return value is None or (_fact(fact).kind == "status" and value == NOT_ASSESSED)


def _evaluate_rule(rule: Rule, values: Mapping[str, Any]) -> Reason:
    def reason(status: RuleStatus, value: Any = None, threshold: Any = rule.threshold, missing: Sequence[str] = (),
               detail: str | None = None) -> Reason:
        return Reason(rule=rule.id, statement=rule.statement, status=status, value=value, threshold=threshold,
                      source=rule.source, on_fail=rule.on_fail, missing=tuple(missing), detail=detail,
                      scope=rule.scope)

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
    if outcome.inferred:
        return reason(INFERRED, shown, threshold, detail=outcome.detail)
    return reason(PASS if outcome.result else FAIL, shown, threshold, detail=outcome.detail)


def _missing_inputs(rules: Sequence[Rule], reasons: Sequence[Reason]) -> tuple[MissingInput, ...]:
    entries: dict[str, MissingInput] = {}
    for rule, why in zip(rules, reasons, strict=True):
        if why.status != NOT_ASSESSED:
            continue
        for fact in why.missing:
            if fact == VERDICT:
                continue
            entry = entries.setdefault(fact, MissingInput(fact=fact, needs=list(_fact(fact).needs), rules=[],
                                                          required=False))
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

