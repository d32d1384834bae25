"""The report's first screen and its rules: the summary box, the grouped rules, rounded numbers (report and terminal).

The HTML is parsed into a small element tree (stdlib html.parser) and read by id and class, never by layout.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from flr.results import Assessment

SAMPLE_PATIENT = Path(__file__).resolve().parents[1] / "sample_data" / "phantom-001" / "patient.yaml"

#: A number printed with three or more decimals: float noise on a page or a terminal meant for people.
NOISE = re.compile(r"(?<![\w.])\d+\.\d{3,}(?![\w.])")


# --- a small element tree -------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return " ".join("".join(c if isinstance(c, str) else f" {c.text()} " for c in self.children).split())

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def iter(self):
        for c in self.elements():
            yield c
            yield from c.iter()

    def find(self, *, tag: str | None = None, id: str | None = None, cls: str | None = None) -> list[Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag) and (id is None or n.attrs.get("id") == id)
                and (cls is None or cls in n.classes)]

    def one(self, **kw) -> Node:
        found = self.find(**kw)
        assert len(found) == 1, (kw, len(found))
        return found[0]

    def ancestors(self):
        n = self.parent
        while n is not None:
            yield n
            n = n.parent


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html: str) -> Node:
    tree = _Tree()
    tree.feed(html)
    return tree.root


def rows(table: Node) -> list[list[str]]:
    return [[cell.text() for cell in tr.elements() if cell.tag in ("td", "th")] for tr in table.find(tag="tr")]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(phantom_1) -> Assessment:
    """The sample case's plan (flr demo): right hemihepatectomy with ablation of tumour 2, 5 mm."""
    from flr.assessment import Body, assess
    from flr.plan import resection_plan

    plan = resection_plan("right-hemihepatectomy", ablations=["2:5"])
    return assess([phantom_1.labels, phantom_1.liver], plan, ct=phantom_1.ct,
                  body=Body(weight_kg=72.0, height_cm=170.0))


@pytest.fixture(scope="module")
def patient():
    from flr.patient import Patient

    return Patient.from_dict(yaml.safe_load(SAMPLE_PATIENT.read_text()))


def judged(sample, patient, rules: str) -> Assessment:
    from flr.assessment import judge
    from flr.rules import load_rulebook

    return judge(sample, patient, load_rulebook(rules))


def render(a: Assessment, rules: str | None = None) -> str:
    from flr.report.html import Thresholds, render_report
    from flr.rules import load_rulebook

    thresholds = Thresholds.from_rulebook(load_rulebook(rules)) if rules else None
    return render_report(a.to_dict(), thresholds=thresholds, analysed="2026-01-01 00:00 UTC")


def _status_text(status: str) -> str:
    return status.replace("_", " ").upper()


# --- the summary box ------------------------------------------------------------------------------


def test_summary_is_the_first_block_of_the_page(sample, patient):
    body = parse(render(judged(sample, patient, "default"))).one(tag="body")
    first = body.elements()[0]
    assert first.tag == "section" and first.attrs.get("id") == "summary"
    # the disclaimer is part of it: decision support, not a decision
    assert "does not replace it" in first.text() and "Decision support" in first.text()


@pytest.mark.parametrize("rules", ["default", "literature"])
def test_summary_shows_the_assessments_volumes_against_the_active_rulebook(sample, patient, rules):
    from flr.rules import load_rulebook

    a = judged(sample, patient, rules)
    r = a.remnant
    box = parse(render(a, rules)).one(id="summary")
    assert a.plan.name in box.text()
    table = {tr.attrs.get("id"): [c.text() for c in tr.elements()]
             for tr in box.one(id="summary-volumes").find(tag="tr")}
    assert table["summary-remnant"][1].startswith(f"{r.volume_ml:,.1f} mL")
    assert table["summary-flr"][1] == f"{r.functional_volume_ml:,.1f} mL · {r.percent_of_functional_liver:.1f} % " \
                                      "of functional liver"
    assert table["summary-sflr"][1] == f"{r.sflr_percent:.1f} %"
    assert table["summary-flr-bw"][1] == f"{r.flr_body_weight_percent:.2f} %"
    # the thresholds are the rulebook's: FLR/BW the plain percent rule's, sFLR the one for this liver
    # (8 weeks of chemotherapy), as the judging rule applied it
    book = load_rulebook(rules)
    bw = next(t for _, t in book.thresholds_for("flr_body_weight_percent") if isinstance(t, (int, float)))
    sflr = next(t for _, t in book.thresholds_for("sflr_percent") if isinstance(t, dict))
    assert bw == {"default": 1.0, "literature": 0.5}[rules]
    assert table["summary-flr-bw"][2].startswith(f"≥ {bw:.2f} %")
    assert table["summary-sflr"][2].startswith(f"≥ {sflr['chemotherapy_up_to_12_weeks']:g} %")
    assert "chemotherapy up to 12 weeks" in table["summary-sflr"][2]
    assert f"{rules} rulebook" in table["summary-flr-bw"][2]
    # met or not, as the numbers say (41 % >= 20 %; 0.88 % below 1 %, above 0.5 %)
    assert table["summary-sflr"][3] == "meets"
    assert table["summary-flr-bw"][3] == ("below" if r.flr_body_weight_percent < bw else "meets")


@pytest.mark.parametrize("rules", ["default", "literature"])
def test_summary_has_a_line_per_check_the_verdict_strategies_and_cautions(sample, patient, rules):
    a = judged(sample, patient, rules)
    v = a.verdict
    box = parse(render(a, rules)).one(id="summary")
    lines = box.one(id="summary-checks").find(tag="tr")
    assert [tr.attrs.get("data-check") for tr in lines] == [name for name, _ in a.checks.items()]
    for tr, (_, check) in zip(lines, a.checks.items(), strict=True):
        _, status, detail = (c.text() for c in tr.elements())
        assert status == _status_text(check.status) and detail == check.detail
        assert check.status in tr.elements()[1].classes
    verdict = box.one(id="summary-verdict")
    assert verdict.text().startswith(_status_text(v.status))
    scope = getattr(v, "scope", None)
    if scope is not None:
        assert {"plan": "— this plan", "patient": "— the patient"}[scope] in verdict.text()
    if v.strategies:
        assert box.one(id="summary-strategies").text().endswith(", ".join(s.replace("_", " ") for s in v.strategies))
    cautions = box.one(id="summary-cautions").find(tag="li")
    assert [li.attrs.get("data-rule") for li in cautions] == list(v.cautions)


def test_inferred_is_its_own_status_never_a_pass(sample, patient):
    """biliary_drainage inferred from the portal inflow (no bile-duct mask) reads INFERRED, styled as such."""
    a = judged(sample, patient, "default")
    if a.checks.biliary_drainage.status != "inferred":
        pytest.skip("this build does not infer the biliary drainage")
    tree = parse(render(a, "default"))
    line = next(tr for tr in tree.one(id="summary-checks").find(tag="tr")
                if tr.attrs.get("data-check") == "biliary_drainage")
    cell = line.elements()[1]
    assert cell.text() == "INFERRED" and "inferred" in cell.classes and "pass" not in cell.classes
    rule = tree.one(id="rule-biliary_drainage")
    assert "inferred" in rule.elements()[1].classes and rule.elements()[1].text().startswith("inferred")


def test_summary_scope_of_a_verdict_on_the_patient(sample):
    """A verdict that judges the patient says so next to its status; one without a scope (older JSON) says
    nothing."""
    from flr.report.html import render_report

    for scope, words in (("patient", "— the patient"), ("plan", "— this plan"), (None, None)):
        result = _minimal_result(sample, scope)
        text = parse(render_report(result)).one(id="summary-verdict").text()
        assert text.startswith("NOT RESECTABLE")
        if words:
            assert words in text
        else:
            assert "—" not in text


def test_summary_without_a_verdict_shows_the_default_rulebooks_thresholds(sample):
    a = sample
    assert a.verdict is None
    box = parse(render(a, "default")).one(id="summary")
    assert box.one(id="summary-verdict").text().startswith("NOT JUDGED")
    lines = box.one(id="summary-checks").find(tag="tr")
    assert len(lines) == len(list(a.checks.items()))
    bw = {tr.attrs.get("id"): [c.text() for c in tr.elements()] for tr in box.find(tag="tr")}["summary-flr-bw"]
    assert bw[2].startswith("≥ 1.00 %") and "default rulebook" in bw[2]


# --- rules: failures and cautions first, not applicable folded --------------------------------------


def _groups(tree: Node) -> list[tuple[str, list[str], Node]]:
    """(group class, rule ids, the group's element) of the rules section, in page order."""
    section = tree.one(id="rules")
    out = []
    for group in section.find(cls="rule-group"):
        kind = next(c for c in group.classes if c.startswith("g-"))
        ids = [tr.attrs["id"].removeprefix("rule-") for tr in group.find(tag="tr") if tr.attrs.get("id")]
        out.append((kind, ids, group))
    return out


@pytest.mark.parametrize("rules", ["default", "literature"])
def test_rules_failures_and_cautions_first_passed_and_not_applicable_folded(sample, patient, rules):
    a = judged(sample, patient, rules)
    v = a.verdict
    groups = _groups(parse(render(a, rules)))
    kinds = [k for k, _, _ in groups]
    order = ["g-fail", "g-caution", "g-not_assessed", "g-inferred", "g-pass", "g-not_applicable"]
    assert kinds == sorted(kinds, key=order.index)
    by_kind = {k: ids for k, ids, _ in groups}
    status = {r.rule: r.status for r in v.reasons}
    caution = {r.rule for r in v.reasons if r.status == "fail" and r.on_fail == "caution"}
    assert set(by_kind.get("g-caution", [])) == caution
    assert set(by_kind.get("g-fail", [])) == {k for k, s in status.items() if s == "fail"} - caution
    for kind in ("not_assessed", "inferred", "pass", "not_applicable"):
        assert set(by_kind.get(f"g-{kind}", [])) == {k for k, s in status.items() if s == kind}
    # every rule once
    assert sorted(i for _, ids, _ in groups for i in ids) == sorted(status)
    # not applicable, and passed: inside a closed <details> whose summary counts them (and names the passed ones,
    # shown closed and printed); failures, cautions, not assessed and inferred never folded
    for kind, words in (("not_applicable", "Not applicable"), ("pass", "Passed")):
        folded = [g for k, _, g in groups if k == f"g-{kind}"]
        count = sum(1 for s in status.values() if s == kind)
        assert count > 0 and len(folded) == 1
        assert folded[0].tag == "details" and "open" not in folded[0].attrs
        head = folded[0].one(tag="summary").text()
        assert head.startswith(f"{words}") and f"({count})" in head
        if kind == "pass":
            assert head.endswith(", ".join(r.rule for r in v.reasons if r.status == "pass"))
    for k, _, g in groups:
        if k not in ("g-not_applicable", "g-pass"):
            assert not any(n.tag == "details" and "open" not in n.attrs for n in [g, *g.ancestors()]), k


# --- numbers as people read them ------------------------------------------------------------------


@pytest.mark.parametrize("rules", ["default", "literature"])
def test_no_float_noise_on_the_page(sample, patient, rules):
    """Rounded for display (1 decimal for mL and %, 2 for FLR/BW, 1 for mm); the JSON keeps full precision."""
    a = judged(sample, patient, rules)
    html = render(a, rules)
    tree = parse(html)
    for node in tree.one(tag="body").elements():
        if node.attrs.get("class") != "prov":
            assert not NOISE.search(node.text()), NOISE.findall(node.text())[:5]
    assert NOISE.search(str(a.remnant.flr_body_weight_percent))   # the data itself is not rounded
    assert f"{a.remnant.flr_body_weight_percent:.2f}" in tree.one(id="rules").text()


@pytest.mark.parametrize("rules", ["default", "literature"])
def test_terminal_verdict_lines_are_rounded(sample, patient, rules):
    from pipelines.assess import _verdict_lines, format_summary

    a = judged(sample, patient, rules)
    lines = _verdict_lines(a)
    assert lines
    for line in lines:
        assert not NOISE.search(line), line
    text = format_summary(a)
    assert not NOISE.search(text)
    assert f"{a.remnant.flr_body_weight_percent:.2f}" in text


def test_terminal_values_keep_their_meaning():
    from pipelines.assess import _display

    assert _display(0.8831328125000001) == "0.88"
    assert _display(9.0) == "9"
    assert _display(41.2267136298016) == "41.23"
    assert _display(True) == "true" and _display(None) == "none" and _display("A") == "A"
    assert _display({"sflr_percent": 41.2267, "liver_condition": "chemotherapy"}) == \
        "sflr_percent 41.23, liver_condition chemotherapy"
    assert _display(["A", "B"]) == "A, B"


# --- tumours --------------------------------------------------------------------------------------


def test_tumour_table_shows_each_tumours_note(sample):
    from flr.report.html import render_report

    result = sample.to_dict()
    note = "the plan cuts through this tumour: 3 % of it lies in the remnant (margin 0, R1 risk)"
    result["tumors"][0]["note"] = note
    table = rows(parse(render_report(result)).one(id="tumours"))
    head, first, *rest = table
    assert head[-1] == "note" and first[-1] == note and all(row[-1] == "" for row in rest)
    assert first[0] == str(result["tumors"][0]["id"])


def test_report_names_no_repository_path(sample, patient):
    """flr adds no path of its repository to the page (rule sources are shown as the rulebook gives them)."""
    a = judged(sample, patient, "literature")
    result = a.to_dict()
    for r in result["verdict"]["reasons"]:
        r["source"] = "a source"
    from flr.report.html import render_report

    html = render_report(result)
    for path in ("../shared", "clinical-reference.md", "/work/", ".md"):
        assert path not in html


def _minimal_result(sample: Assessment, scope: str | None) -> dict:
    """The sample plan's JSON with a verdict of one failing rule, judging ``scope`` (None: an older verdict)."""
    result = sample.to_dict()
    verdict = {"status": "not_resectable", "strategies": [], "missing_inputs": [], "primary_guidance": [],
               "cautions": [], "rulebook": {"id": "default", "version": "x", "sha256": "0" * 64},
               "reasons": [{"rule": "child_pugh_class", "statement": "Liver function allows resection.",
                            "status": "fail", "value": "C", "threshold": ["A", "B"], "source": "a source",
                            "on_fail": "not_resectable"}]}
    if scope is not None:
        verdict["scope"] = scope
        verdict["reasons"][0]["scope"] = scope
    result["verdict"] = verdict
    return result


def test_noise_pattern():
    assert NOISE.search("value 0.8831328125000001") and NOISE.search("(41.227 %)")
    assert not NOISE.search("0.88 % 41.2 % 1,708.9 mL v1.0 sha256 e7e24ae2 2026-01-01")
    assert np.isclose(float("0.88"), 0.88)
