"""The command line around the rulebook: assess --patient/--rules, flr rules, flr compare, bad files."""

from __future__ import annotations

import json

import pytest
import yaml

from flr.io import write_nifti
from pipelines.cli import main

PATIENT = {
    "weight_kg": 70, "height_cm": 175, "sex": "female", "age": 61, "liver_condition": "normal",
    "chemotherapy_weeks": 0, "fit_for_major_surgery": True,
    "labs": {"bilirubin_mg_dl": 0.8, "albumin_g_dl": 4.2, "inr": 1.0, "creatinine_mg_dl": 0.9,
             "sodium_mmol_l": 140, "cea_ng_ml": 12},
    "ascites": "none", "encephalopathy": "none",
    "primary": {"site": "colorectal", "synchronous": True, "node_positive_primary": False},
    "extrahepatic_disease": [],
}


@pytest.fixture(scope="module")
def case(tmp_path_factory, phantom_1):
    d = tmp_path_factory.mktemp("rules-case")
    ph = phantom_1
    write_nifti(ph.labels, d / "labels.nii.gz")
    (d / "labels.scheme.json").write_text(json.dumps({str(k): v for k, v in ph.labels.names.items()}))
    write_nifti(ph.liver, d / "liver.nii.gz")
    (d / "patient.yaml").write_text(yaml.safe_dump(PATIENT))
    return d


def _assess(case, *extra):
    return ["assess", "--labels", str(case / "labels.nii.gz"), "--labels", str(case / "liver.nii.gz"), *extra]


def test_assess_with_patient_gives_a_cited_verdict(case, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([*_assess(case, "--plan", "right-hemihepatectomy", "--ablate", "2:5", "--patient",
                          str(case / "patient.yaml"), "--json", str(out))]) == 0
    text = capsys.readouterr().out
    assert "verdict (default rulebook" in text and "does not replace it" in text
    data = json.loads(out.read_text())
    v = data["verdict"]
    assert v["status"] in ("resectable", "resectable_with_strategy", "not_resectable", "insufficient_data")
    assert v["rulebook"]["id"] == "default" and len(v["rulebook"]["sha256"]) == 64
    assert all(r["source"] for r in v["reasons"])
    rules = {r["rule"]: r for r in v["reasons"]}
    assert rules["fit_for_major_surgery"]["status"] == "pass"
    # no bile duct mask: drainage inferred from portal inflow (issue 13, item 2), not blocking, MRCP asked for
    assert rules["biliary_drainage"]["status"] == "inferred" and v["inferred"] == ["biliary_drainage"]
    assert "biliary_anatomy_confirmed" in v["cautions"]
    assert not any("bile_duct" in " ".join(m["needs"]) for m in v["missing_inputs"] if m["required"])
    assert v["status"] != "insufficient_data" and v["scope"] in ("patient", "plan")
    # synchronous colorectal primary: the sequencing is listed for the multidisciplinary team
    assert any("liver-first" in g["text"].lower() or "liver first" in g["text"].lower() for g in v["primary_guidance"])
    assert data["body"]["weight_kg"] == 70  # taken from the patient file
    assert data["patient"]["primary"]["site"] == "colorectal"
    assert data["facts"]["child_pugh_class"] == "A"
    assert "disclaimer" in data


def test_literature_profile_and_rules_listing(case, tmp_path, capsys):
    out = tmp_path / "lit.json"
    assert main([*_assess(case, "--plan", "right-hemihepatectomy", "--patient", str(case / "patient.yaml"),
                          "--rules", "literature", "--json", str(out))]) == 0
    data = json.loads(out.read_text())
    assert data["verdict"]["rulebook"]["id"] == "literature"
    assert "sflr_by_liver_condition" in {r["rule"] for r in data["verdict"]["reasons"]}
    capsys.readouterr()
    assert main(["rules", "--rules", "literature"]) == 0
    listing = capsys.readouterr().out
    assert "sflr_by_liver_condition" in listing and "source:" in listing
    assert listing.count("source:") >= 25
    assert "[strategy, plan]" in listing and "[not_resectable, patient]" in listing  # each rule's scope
    assert "[verify]" not in listing and "clinical-reference" not in listing and "../" not in listing
    assert main(["rules", "--source-text"]) == 0  # the text the rules quote, shipped with flr
    text = capsys.readouterr().out
    assert text.startswith("Liver Metastases (Liver Secondary)") and "Soft Tissue Sarcoma" in text


@pytest.mark.parametrize(
    ("patient", "match"),
    [({"weight_kg": -70}, "weight_kg"),
     ({"labs": {"albumin_g_dl": 90}}, "albumin_g_dl"),
     ({"liver_condition": "fatty"}, "liver_condition"),
     ({"name": "DOE^JANE"}, "name")],
)
def test_bad_patient_files(case, tmp_path, capsys, patient, match):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(patient))
    code = main([*_assess(case, "--plan", "right-hemihepatectomy", "--patient", str(path))])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("flr: error: ") and err.count("\n") == 1
    assert match in err and "p.yaml" in err
    assert "DOE^JANE" not in err


def test_every_problem_of_a_patient_file_on_one_line(case, tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"weigth_kg": 70, "labs": {"albumin_g_dl": 90}, "name": "DOE^JANE"}))
    code = main([*_assess(case, "--plan", "right-hemihepatectomy", "--patient", str(path))])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == (f"flr: error: {path}: labs.albumin_g_dl = 90 is impossible (expected 1-7 g/dL; did you mean g/L? "
                   "use albumin_g_l); name is refused: flr does not take patient identifiers (name, IDs, birth date) - "
                   "remove it: age is all flr needs, and results must not identify the patient; weigth_kg is not a "
                   "patient field (did you mean weight_kg?)\n")


def test_duplicate_key_in_a_patient_file(case, tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text('{"weight_kg": 70,\n "weight_kg": 80}')
    code = main([*_assess(case, "--plan", "right-hemihepatectomy", "--patient", str(path))])
    assert code == 2 and capsys.readouterr().err == f"flr: error: {path}: line 2: key 'weight_kg' is given twice\n"


def test_malformed_rulebook_names_rule_and_field(tmp_path, capsys):
    bad = tmp_path / "rules.yaml"
    bad.write_text(yaml.safe_dump({"id": "mine", "version": "1", "title": "t", "description": "d",
                                   "source_text": "s", "rules": [
        {"id": "flr_bw", "statement": "FLR/BW >= 1%", "inputs": ["flr_body_weight_percent"], "check": "at_least",
         "threshold": 1.0, "on_fail": "strategy"}]}))  # no source
    code = main(["rules", "--rules", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "flr_bw" in err and "source" in err
    # every problem at once: no source, and a strategy rule without strategies
    assert err == (f"flr: error: {bad}: rule 'flr_bw', field 'strategies': a rule with on_fail: strategy must name "
                   "its strategies; rule 'flr_bw', field 'source': missing (every rule needs a plain-language "
                   "statement and a source)\n")


def test_compare_after_pve(case, tmp_path, capsys):
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    for path, plan in ((before, "right-trisectionectomy"), (after, "right-hemihepatectomy")):
        assert main([*_assess(case, "--plan", plan, "--weight-kg", "70", "--height-cm", "175", "--json",
                              str(path), "-q")]) == 0
    out = tmp_path / "cmp.json"
    assert main(["compare", str(before), str(after), "--weeks", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    b = json.loads(before.read_text())["remnant"]["sflr_percent"]
    a = json.loads(after.read_text())["remnant"]["sflr_percent"]
    assert res["degree_of_hypertrophy_pp"] == pytest.approx(a - b, abs=1e-6)
    assert res["kinetic_growth_rate_pp_per_week"] == pytest.approx((a - b) / 4, abs=1e-6)
    assert "degree of hypertrophy" in capsys.readouterr().out
    code = main(["compare", str(before), str(tmp_path / "missing.json"), "--weeks", "4"])
    assert code == 2 and "missing.json: no such file" in capsys.readouterr().err


def test_compare_weeks_from_dates_and_no_kgr_without_them(case, tmp_path, capsys):
    # issue 13 item 3: NIfTI CTs carry no StudyDate: the weeks come from --pve-date and --scan-date; without
    # them DH is given and the KGR is missing (never measured to today)
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    for path, plan in ((before, "right-trisectionectomy"), (after, "right-hemihepatectomy")):
        assert main([*_assess(case, "--plan", plan, "--weight-kg", "70", "--height-cm", "175", "--json",
                              str(path), "-q")]) == 0
    out = tmp_path / "cmp.json"
    assert main(["compare", str(before), str(after), "--pve-date", "2026-10-01", "--scan-date", "2026-10-29",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["weeks_since_pve"] == 4.0
    assert res["kinetic_growth_rate_pp_per_week"] == pytest.approx(res["degree_of_hypertrophy_pp"] / 4, abs=1e-9)
    capsys.readouterr()
    assert main(["compare", str(before), str(after), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["kinetic_growth_rate_pp_per_week"] is None and res["degree_of_hypertrophy_pp"] is not None
    assert "not measured (no scan date" in capsys.readouterr().out
