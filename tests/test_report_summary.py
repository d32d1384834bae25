"""Rounded numbers on the terminal: the verdict lines show rule values as people read them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from flr.results import Assessment

SAMPLE_PATIENT = Path(__file__).resolve().parents[1] / "sample_data" / "phantom-001" / "patient.yaml"

#: A number printed with three or more decimals: float noise on a page or a terminal meant for people.
NOISE = re.compile(r"(?<![\w.])\d+\.\d{3,}(?![\w.])")


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


def test_noise_pattern():
    assert NOISE.search("value 0.8831328125000001") and NOISE.search("(41.227 %)")
    assert not NOISE.search("0.88 % 41.2 % 1,708.9 mL v1.0 sha256 e7e24ae2 2026-01-01")
    assert np.isclose(float("0.88"), 0.88)
