"""Brisbane 2000 catalogue, plan parsing and body-size formulas against hand-worked values."""

from __future__ import annotations

import inspect

import pytest

from flr import scores
from flr.anatomy import RESECTIONS, named_resection, segment_name, textbook_adjacent
from flr.errors import PlanError
from flr.plan import resection_plan
from flr.zones import parse_zone_spec


@pytest.mark.parametrize(
    ("name", "segments"),
    [  # IHPBA Brisbane 2000 (HPB 2000;2:333), as in ../shared/clinical-reference.md
        ("right-hemihepatectomy", (5, 6, 7, 8)),
        ("left-hemihepatectomy", (2, 3, 4)),
        ("right-anterior-sectionectomy", (5, 8)),
        ("right-posterior-sectionectomy", (6, 7)),
        ("left-medial-sectionectomy", (4,)),
        ("left-lateral-sectionectomy", (2, 3)),
        ("right-trisectionectomy", (4, 5, 6, 7, 8)),
        ("left-trisectionectomy", (2, 3, 4, 5, 8)),
        ("central-hepatectomy", (4, 5, 8)),
    ],
)
def test_brisbane_catalogue(name, segments):
    assert named_resection(name) == tuple(f"liver_segment_{i}" for i in segments)
    with_caudate = named_resection(name, include_caudate=True)
    assert with_caudate[0] == "liver_segment_1" and len(with_caudate) == len(segments) + 1


def test_catalogue_is_complete_and_sectionectomies_are_textbook_contiguous():
    assert len(RESECTIONS) == 9
    for segs in RESECTIONS.values():
        names = [segment_name(s) for s in segs]
        # every named resection removes a contiguous block of segments
        if len(names) > 1:
            assert all(any(textbook_adjacent(a, b) for b in names if b != a) for a in names)


def test_plans():
    p = resection_plan("5, 6,7,8", wedges=["2"], ablations=["3:5mm"])
    assert p.resected_segments == ("liver_segment_5", "liver_segment_6", "liver_segment_7", "liver_segment_8")
    assert [(z.tumor_id, z.margin_mm) for z in p.wedges] == [(2, 10.0)]
    assert [(z.tumor_id, z.margin_mm) for z in p.ablations] == [(3, 5.0)]
    assert "wedge of tumour 2 (10 mm)" in p.name
    assert resection_plan("Right-Hepatectomy").resected_segments == named_resection("right-hemihepatectomy")
    assert resection_plan("4a,4b").resected_segments == ("liver_segment_4a", "liver_segment_4b")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"resect": "right-lobe-thing"}, "unknown resection 'right-lobe-thing'; valid names: right-hemihepatectomy"),
     ({"resect": "5,9"}, "'9' is not a Couinaud segment"),
     ({}, "no plan"),
     ({"wedges": ["x"]}, "not a whole number"),
     ({"wedges": ["1"], "ablations": ["1"]}, "both wedged and ablated")],
)
def test_bad_plans(kwargs, match):
    with pytest.raises(PlanError, match=match):
        resection_plan(**kwargs)


def test_zone_spec():
    assert parse_zone_spec("4:7.5") == (4, 7.5)


def test_bsa_and_telv_hand_worked():
    # 70 kg, 175 cm. Mosteller: sqrt(175*70/3600) = sqrt(3.402777...) = 1.84466 m^2
    assert scores.bsa_m2(70, 175) == pytest.approx(1.84466, abs=1e-5)
    # DuBois: 0.007184 * 70^0.425 * 175^0.725 = 0.007184 * exp(0.425 ln 70) * exp(0.725 ln 175)
    #       = 0.007184 * 6.08368 * 42.2866 = 1.84814 m^2
    assert scores.bsa_m2(70, 175, "dubois") == pytest.approx(1.84814, abs=1e-5)
    # Vauthey: -794.41 + 1267.28 * 1.84466 = 1543.2 mL; Urata: 706.2 * 1.84466 + 2.4 = 1305.1 mL
    assert scores.telv_ml(1.84466) == pytest.approx(1543.29, abs=0.05)
    assert scores.telv_ml(1.84466, "urata") == pytest.approx(1305.10, abs=0.05)
    # FLR/BW: 560 mL of remnant (560 g) in a 70 kg patient = 0.8 %
    assert scores.flr_body_weight_percent(560, 70) == pytest.approx(0.8)


@pytest.mark.parametrize(("args", "match"), [((-70, 175), "weight_kg = -70"), ((70, 17.5), "height_cm = 17.5")])
def test_impossible_body_values(args, match):
    with pytest.raises(scores.PatientValueError, match=match):
        scores.bsa_m2(*args)


def test_every_formula_cites_its_source():
    for fn in [*scores.BSA_FORMULAS.values(), *scores.TELV_FORMULAS.values(), scores.flr_body_weight_percent]:
        doc = inspect.getdoc(fn) or ""
        assert "=" in doc and any(ch.isdigit() for ch in doc.split("=")[-1]), fn.__name__
        assert any(w in doc for w in ("et al", "N Engl", "Arch Intern", "Gastroenterol", "clinical-reference")), \
            f"{fn.__name__} has no citation"
