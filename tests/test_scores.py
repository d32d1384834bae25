"""Liver function, prognostic and PVE scores (flr.scores) against worked examples.

Every expected value is computed by hand in the comment next to it from the formula in the cited paper
(as tabulated in ../shared/clinical-reference.md); where an example comes from a published page, the
comment gives the address.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from fractions import Fraction

import pytest

from flr import scores
from flr.scores import PatientValueError

# --- citations --------------------------------------------------------------------------------------------

#: "Journal Year;volume:page", e.g. "Br J Surg 1973;60:646".
CITATION = re.compile(r"[A-Z][A-Za-z .&]+ (18|19|20)\d\d;\d+:\d+")
#: Public functions that dispatch to formulas documented elsewhere (they cite, but state no formula).
DISPATCHERS = {"bsa_m2", "telv_ml"}


def _public_functions():
    return [fn for name, fn in inspect.getmembers(scores, inspect.isfunction)
            if not name.startswith("_") and fn.__module__ == scores.__name__]


def test_public_functions_are_found():
    names = {fn.__name__ for fn in _public_functions()}
    assert {"child_pugh", "albi", "meld", "meld_na", "fong_score", "degree_of_hypertrophy", "kinetic_growth_rate",
            "compare_pve", "bsa_m2", "telv_ml"} <= names


@pytest.mark.parametrize("fn", _public_functions(), ids=lambda fn: fn.__name__)
def test_every_public_score_function_has_formula_and_citation(fn):
    doc = inspect.getdoc(fn) or ""
    assert CITATION.search(doc), f"{fn.__name__}: docstring has no citation (Journal Year;vol:page)"
    if fn.__name__ not in DISPATCHERS:
        assert "=" in doc or "points" in doc, f"{fn.__name__}: docstring states no formula"


def test_citation_pattern_rejects_a_bare_docstring():
    assert not CITATION.search("Degree of hypertrophy = after - before.")
    assert CITATION.search("Pugh et al., Br J Surg 1973;60:646")



#: A mark of an unchecked citation, or a path of flr's repository, that must not reach a reader of flr's texts.
UNSOURCED = re.compile(r"\[verify\]|clinical-reference|\.\./|shared/")


def test_no_verify_marker_and_no_repository_path_in_the_scores_texts():
    """Issue 13, item 5: every citation in flr.scores is to the literature (author, journal, year;vol:page, e.g.
    Ribero D et al., Br J Surg 2007;94:1386), never a [verify] marker or a path of the repository, in docstrings,
    doc comments and the sources compare_pve reports."""
    found = [f"{i}: {line.strip()}" for i, line in enumerate(inspect.getsource(scores).splitlines(), 1)
             if UNSOURCED.search(line)]
    assert found == []
    for source in scores.PVE_SOURCES:
        assert CITATION.search(source) and not UNSOURCED.search(source), source

# --- TELV: the Korean formula has one coefficient set per BSA formula ---------------------------------------

def test_korean_telv_uses_the_coefficients_of_the_bsa_formula():
    """Um EH et al., Korean J Hepatobiliary Pancreat Surg 2015;19:133 (1,000 Korean living donors) derived two
    formulas: SLV (mL) = 908.204 x BSA_DuBois - 464.728, and 893.485 x BSA_Mosteller - 439.169."""
    # 70 kg, 175 cm. Mosteller: sqrt(175 x 70 / 3600) = 1.844662 m^2; DuBois: 0.007184 x 70^0.425 x 175^0.725
    # = 1.848143 m^2
    mosteller, dubois = scores.bsa_m2(70, 175), scores.bsa_m2(70, 175, "dubois")
    # Mosteller set: 893.485 x 1.844662 - 439.169 = 1648.178 - 439.169 = 1209.009 mL (the default, as before)
    assert scores.telv_ml(mosteller, "korean") == pytest.approx(1209.009, abs=1e-3)
    assert scores.telv_ml(mosteller, "korean", bsa_formula="mosteller") == pytest.approx(1209.009, abs=1e-3)
    # DuBois set: 908.204 x 1.848143 - 464.728 = 1678.491 - 464.728 = 1213.763 mL (the Mosteller coefficients
    # applied to the DuBois BSA would give 893.485 x 1.848143 - 439.169 = 1212.119 mL)
    assert scores.telv_ml(dubois, "korean", bsa_formula="dubois") == pytest.approx(1213.763, abs=1e-3)
    assert scores.telv_korean_ml(dubois, bsa_formula="dubois") == pytest.approx(1213.763, abs=1e-3)
    assert scores.telv_korean_ml(mosteller) == pytest.approx(1209.009, abs=1e-3)


@pytest.mark.parametrize("formula", ["vauthey", "urata", "chinese"])
def test_other_telv_formulas_do_not_depend_on_the_bsa_formula(formula):
    """Vauthey JN et al., Liver Transpl 2002;8:233; Urata K et al., Hepatology 1995;21:1317; Feng LM et al.,
    World J Gastroenterol 2017;23:4968: one coefficient set each, applied to the BSA given."""
    assert scores.telv_ml(1.9, formula, bsa_formula="dubois") == scores.telv_ml(1.9, formula)
    assert scores.telv_ml(1.9, formula, bsa_formula="mosteller") == scores.telv_ml(1.9, formula)


@pytest.mark.parametrize("formula", ["vauthey", "korean"])
def test_telv_refuses_an_unknown_bsa_formula(formula):
    with pytest.raises(PatientValueError, match=r"unknown BSA formula 'haycock'; choose one of mosteller, dubois"):
        scores.telv_ml(1.9, formula, bsa_formula="haycock")


# --- Child-Pugh (Pugh et al., Br J Surg 1973;60:646; bands from clinical-reference.md) ---------------------

@pytest.mark.parametrize(("args", "points", "klass"), [
    # A5: bilirubin 1.0 (<2: 1) + albumin 4.0 (>3.5: 1) + INR 1.1 (<1.7: 1) + none (1) + none (1) = 5 -> A
    ((1.0, 4.0, 1.1, "none", "none"), 5, "A"),
    # A5 just inside every 1-point band: 1.99 < 2, 3.51 > 3.5, 1.69 < 1.7 -> 5 -> A
    ((1.99, 3.51, 1.69, "none", "none"), 5, "A"),
    # A6: as A5 with mild ascites (2) -> 6 -> A (upper edge of class A)
    ((1.0, 4.0, 1.1, "mild", "none"), 6, "A"),
    # B7: bilirubin 2.0, the lower edge of 2-3 (2) + albumin (1) + INR (1) + none (1) + grade_1_2 (2) = 7 -> B
    ((2.0, 4.0, 1.1, "none", "grade_1_2"), 7, "B"),
    # B8: bilirubin 2.0 (2) + albumin 3.5, the upper edge of 2.8-3.5 (2) + INR 1.7, lower edge of 1.7-2.3 (2)
    #     + none (1) + none (1) = 8 -> B
    ((2.0, 3.5, 1.7, "none", "none"), 8, "B"),
    # B9: bilirubin 3.0, upper edge of 2-3 (2) + albumin 2.8, lower edge of 2.8-3.5 (2) + INR 2.3, upper edge
    #     (2) + mild (2) + none (1) = 9 -> B (upper edge of class B)
    ((3.0, 2.8, 2.3, "mild", "none"), 9, "B"),
    # C10: as B9 with grade_1_2 encephalopathy (2) -> 10 -> C
    ((3.0, 2.8, 2.3, "mild", "grade_1_2"), 10, "C"),
    # C12: bilirubin 3.1 (>3: 3) + albumin 2.8 (2) + INR 2.31 (>2.3: 3) + mild (2) + grade_1_2 (2) = 12 -> C
    ((3.1, 2.8, 2.31, "mild", "grade_1_2"), 12, "C"),
    # C15: 3 + 3 (albumin 2.79 < 2.8) + 3 + moderate_severe (3) + grade_3_4 (3) = 15 -> C
    ((3.1, 2.79, 2.31, "moderate_severe", "grade_3_4"), 15, "C"),
])
def test_child_pugh_worked_examples(args, points, klass):
    assert scores.child_pugh(*args) == (points, klass)
    assert scores.child_pugh(*args).class_ == klass


@pytest.mark.parametrize(("bilirubin", "points"), [(3.99, 5), (4.0, 6), (10.0, 6), (10.01, 7)])
def test_child_pugh_cholestatic_bilirubin_bands(bilirubin, points):
    # PBC/PSC bands < 4 (1), 4-10 (2), > 10 (3) mg/dL; other findings all 1 point (4 points in total)
    assert scores.child_pugh(bilirubin, 4.0, 1.0, "none", "none", cholestatic=True).points == points


def test_child_pugh_cholestatic_changes_the_class():
    # bilirubin 3.5: 3 points in the ordinary bands (> 3) -> 7 (B), 1 point in the PBC/PSC bands -> 5 (A)
    assert scores.child_pugh(3.5, 4.0, 1.0, "none", "none") == (7, "B")
    assert scores.child_pugh(3.5, 4.0, 1.0, "none", "none", cholestatic=True) == (5, "A")


@pytest.mark.parametrize(("args", "match"), [
    ((-1.0, 4.0, 1.0, "none", "none"), r"bilirubin_mg_dl = -1\.0 mg/dL is impossible"),
    ((1.0, 90, 1.0, "none", "none"), r"albumin_g_dl = 90 g/dL is impossible \(expected 1-7 g/dL\)"),
    ((1.0, 4.0, 40, "none", "none"), r"inr = 40 is impossible \(expected 0\.5-20\)"),
    ((1.0, 4.0, 1.0, "severe", "none"), r"ascites = 'severe' is not one of none, mild, moderate_severe"),
    ((1.0, 4.0, 1.0, "none", 2), r"encephalopathy = 2 is not one of none, grade_1_2, grade_3_4"),
    ((float("nan"), 4.0, 1.0, "none", "none"), r"bilirubin_mg_dl = nan"),
])
def test_child_pugh_refuses_impossible_inputs(args, match):
    with pytest.raises(PatientValueError, match=match):
        scores.child_pugh(*args)


# --- ALBI (Johnson et al., J Clin Oncol 2015;33:550) -------------------------------------------------------

@pytest.mark.parametrize(("bilirubin_umol_l", "albumin_g_l", "score", "grade"), [
    # 0.66 x log10(17.1) - 0.085 x 40 = 0.66 x 1.23300 - 3.4 = 0.81378 - 3.4 = -2.58622 -> > -2.60 -> grade 2
    (17.1, 40, -2.58622, 2),
    # 0.66 x log10(10) - 0.085 x 45 = 0.66 - 3.825 = -3.165 -> <= -2.60 -> grade 1
    (10, 45, -3.165, 1),
    # 0.66 x log10(51.3) - 0.085 x 25 = 0.66 x 1.71012 - 2.125 = 1.12868 - 2.125 = -0.99632 -> > -1.39 -> grade 3
    (51.3, 25, -0.99632, 3),
    # 0.66 x log10(20.52) - 0.085 x 35 = 0.66 x 1.31218 - 2.975 = 0.86604 - 2.975 = -2.10896 -> grade 2
    # (albumin 3.5 g/dL and bilirubin 1.2 mg/dL converted: 35 g/L, 1.2 x 17.1 = 20.52 umol/L)
    (20.52, 35, -2.10896, 2),
])
def test_albi_worked_examples(bilirubin_umol_l, albumin_g_l, score, grade):
    result = scores.albi(bilirubin_umol_l, albumin_g_l)
    # worked examples above are rounded to 5 decimals, after rounding log10 to 5 decimals too: off by ~1e-5
    assert result.score == pytest.approx(score, abs=5e-5)
    assert result.grade == grade


@pytest.mark.parametrize(("bilirubin_umol_l", "cut_off", "grade"), [
    (10, "-2.60", 1), (100, "-2.60", 1), (10, "-1.39", 2), (100, "-1.39", 2)])
def test_albi_on_a_cut_off_takes_the_lower_grade(bilirubin_umol_l, cut_off, grade):
    """Johnson PJ et al., J Clin Oncol 2015;33:550: grade 1 <= -2.60 < grade 2 <= -1.39 < grade 3.

    With bilirubin 10 or 100 umol/L (log10 exactly 1 or 2) and albumin (0.66 x log10 b - cut-off) / 0.085 g/L,
    the score is exactly the cut-off in exact arithmetic (shown with fractions: e.g. 0.66 - 0.085 x 410/17 =
    -139/100). A float cannot hold 410/17: whether it is computed in floats as a caller would
    ((0.66 + 1.39) / 0.085 = 24.117647058823525, whose score was -1.3899999999999997 and graded 3) or is the
    float nearest to it, give or take a few units in the last place, it is the cut-off and grades the lower.
    """
    k = round(math.log10(bilirubin_umol_l))
    cut = Fraction(cut_off)
    exact_albumin = (Fraction(66, 100) * k - cut) / Fraction(85, 1000)
    assert Fraction(66, 100) * k - Fraction(85, 1000) * exact_albumin == cut
    nearest = float(exact_albumin)
    albumins = {(0.66 * k - float(cut)) / 0.085, nearest}
    down = up = nearest
    for _ in range(4):
        down, up = math.nextafter(down, 0), math.nextafter(up, math.inf)
        albumins |= {down, up}
    for albumin_g_l in albumins:
        assert abs(Fraction(albumin_g_l) - exact_albumin) < Fraction(1, 10**12)  # the same albumin, to 1e-12 g/L
        result = scores.albi(bilirubin_umol_l, albumin_g_l)
        assert result.grade == grade, (albumin_g_l, result)
        assert result.score == pytest.approx(float(cut), abs=1e-12)  # the score itself is not rounded


@pytest.mark.parametrize(("cut_off", "lower", "upper"), [(-2.60, 1, 2), (-1.39, 2, 3)])
@pytest.mark.parametrize("score_step", [8.5e-8, 0.004])
def test_albi_just_either_side_of_a_cut_off(cut_off, lower, upper, score_step):
    """Johnson PJ et al., J Clin Oncol 2015;33:550: the cut-offs are on the continuous score, so a score 8.5e-8
    (albumin 1e-6 g/L) or 0.004 beside a cut-off keeps its side; rounding the score to the cut-offs' 2 decimals
    would move -2.596 onto -2.60 (grade 1 instead of 2). Only a difference below 1e-9 (floating-point error,
    about 1e-15) is taken as the cut-off itself."""
    # bilirubin 10 umol/L: score = 0.66 - 0.085 x albumin, so albumin + step / 0.085 lowers the score by step
    albumin_on_cut = (0.66 - cut_off) / 0.085
    below = scores.albi(10, albumin_on_cut + score_step / 0.085)
    above = scores.albi(10, albumin_on_cut - score_step / 0.085)
    assert below.score == pytest.approx(cut_off - score_step, abs=1e-12) and below.grade == lower
    assert above.score == pytest.approx(cut_off + score_step, abs=1e-12) and above.grade == upper


@pytest.mark.parametrize(("args", "match"), [
    ((0, 40), r"bilirubin_umol_l = 0 umol/L is impossible"),
    ((17.1, 4), r"albumin_g_l = 4 g/L is impossible \(expected 10-70 g/L\)"),
])
def test_albi_refuses_impossible_inputs(args, match):
    with pytest.raises(PatientValueError, match=match):
        scores.albi(*args)


# --- MELD (Kamath et al., Hepatology 2001;33:464; UNOS rules) and MELD-Na (Kim et al., NEJM 2008;359:1018) ---

@pytest.mark.parametrize(("cr", "bili", "inr", "dialysis", "expected"), [
    # all 1.0: 10 x (0 + 0 + 0 + 0.643) = 6.43 -> 6 (the minimum MELD)
    (1.0, 1.0, 1.0, False, 6),
    # values < 1 are set to 1: same as above -> 6
    (0.5, 0.3, 0.9, False, 6),
    # Published worked example, https://calculatorlib.com/meld-score-calculator ("Worked Example"):
    # bilirubin 1.9, INR 1.2, creatinine 1.3 -> 3.78 ln 1.9 + 11.2 ln 1.2 + 9.57 ln 1.3 + 6.43
    # = 2.426 + 2.042 + 2.511 + 6.43 = 13.41 -> 13
    (1.3, 1.9, 1.2, False, 13),
    # dialysis counts as creatinine 4.0: 10 x (0.957 ln 4 + 0.643) = 10 x (1.32668 + 0.643) = 19.70 -> 20
    (1.0, 1.0, 1.0, True, 20),
    # creatinine above 4 is capped at 4.0: same as dialysis -> 20
    (8.0, 1.0, 1.0, False, 20),
    # bilirubin 4.0, INR 2.0, creatinine 2.0: 10 x (0.957 x 0.69315 + 0.378 x 1.38629 + 1.120 x 0.69315 + 0.643)
    # = 10 x (0.66334 + 0.52402 + 0.77632 + 0.643) = 26.07 -> 26
    (2.0, 4.0, 2.0, False, 26),
    # capped at 40: Cr 4, bilirubin 40, INR 10: 10 x (1.32668 + 0.378 x 3.68888 + 1.120 x 2.30259 + 0.643)
    # = 10 x (1.32668 + 1.39440 + 2.57890 + 0.643) = 59.4 -> 40
    (4.0, 40.0, 10.0, False, 40),
])
def test_meld_worked_examples(cr, bili, inr, dialysis, expected):
    assert scores.meld(cr, bili, inr, dialysis=dialysis) == expected


def test_meld_rounds_to_the_nearest_integer():
    # bilirubin chosen so that 10 x bracket = 13.49 and 13.51: 0.378 ln b = 1.349 - 0.643 -> b = exp(0.706/0.378)
    b_low = math.exp((1.349 - 0.643) / 0.378)
    b_high = math.exp((1.351 - 0.643) / 0.378)
    assert scores.meld(1.0, b_low, 1.0) == 13
    assert scores.meld(1.0, b_high, 1.0) == 14


def test_meld_on_dialysis_needs_no_creatinine():
    assert scores.meld(None, 1.0, 1.0, dialysis=True) == 20
    with pytest.raises(PatientValueError, match="creatinine_mg_dl is missing"):
        scores.meld(None, 1.0, 1.0)


@pytest.mark.parametrize(("meld", "sodium", "expected"), [
    # MELD 20, Na 130: 20 + 1.32 x 7 - 0.033 x 20 x 7 = 20 + 9.24 - 4.62 = 24.62 -> 25
    (20, 130, 25),
    # Na is clamped to 125: MELD 12, Na 120 -> 12 + 1.32 x 12 - 0.033 x 12 x 12 = 12 + 15.84 - 4.752 = 23.09 -> 23
    (12, 120, 23),
    # Na is clamped to 137: MELD 20, Na 140 -> no change -> 20
    (20, 140, 20),
    # MELD <= 11: not applied, even with Na 125 -> 11
    (11, 125, 11),
    # MELD 12 (> 11), Na 136: 12 + 1.32 - 0.396 = 12.92 -> 13
    (12, 136, 13),
    # MELD 40, Na 125: 40 + 15.84 - 0.033 x 40 x 12 = 40 + 15.84 - 15.84 = 40
    (40, 125, 40),
])
def test_meld_na_worked_examples(meld, sodium, expected):
    assert scores.meld_na(meld, sodium) == expected


@pytest.mark.parametrize(("call", "match"), [
    (lambda: scores.meld(-1, 1, 1), r"creatinine_mg_dl = -1 mg/dL is impossible"),
    (lambda: scores.meld(1, 1, 40), r"inr = 40 is impossible"),
    (lambda: scores.meld_na(20, 90), r"sodium_mmol_l = 90 mmol/L is impossible \(expected 100-180 mmol/L\)"),
    (lambda: scores.meld_na(50, 130), r"meld = 50 points is impossible \(expected 6-40 points\)"),
])
def test_meld_refuses_impossible_inputs(call, match):
    with pytest.raises(PatientValueError, match=match):
        call()


# --- Fong clinical risk score (Fong et al., Ann Surg 1999;230:309) -----------------------------------------

def test_fong_all_five_factors():
    # node-positive (1) + DFI 6 < 12 months (1) + 3 > 1 tumours (1) + CEA 250 > 200 (1) + 60 > 50 mm (1) = 5
    assert scores.fong_score(True, 6, 3, 250, 60) == (5, "high", ())


def test_fong_no_factor():
    # node-negative, DFI 24, single tumour, CEA 5, 30 mm: 0 -> low
    assert scores.fong_score(False, 24, 1, 5, 30) == (0, "low", ())


def test_fong_thresholds_are_strict():
    # DFI exactly 12 months, CEA exactly 200, largest exactly 50 mm score nothing; 2 tumours score 1 -> 1, low
    assert scores.fong_score(False, 12, 2, 200, 50) == (1, "low", ())
    # three factors: node-positive + DFI 11.9 + 2 tumours = 3 -> high (lowest high-risk score)
    assert scores.fong_score(True, 11.9, 2, 200, 50) == (3, "high", ())


def test_fong_missing_inputs_give_a_lower_bound():
    # 3 known points (node-positive, DFI 6, 60 mm) -> high whatever the missing tumour count and CEA are
    assert scores.fong_score(True, 6, None, None, 60) == (3, "high", ("tumor_count", "cea_ng_ml"))
    # 1 known point + 2 missing: could be 1-3 -> risk undetermined (None)
    assert scores.fong_score(False, 24, 2, None, None) == (1, None, ("cea_ng_ml", "largest_tumor_mm"))
    # 0 known points + 2 missing: at most 2 -> low for certain
    assert scores.fong_score(False, 24, 1, None, None) == (0, "low", ("cea_ng_ml", "largest_tumor_mm"))
    # nothing known
    fs = scores.fong_score(None, None, None, None, None)
    assert fs.points == 0 and fs.risk is None and len(fs.missing) == 5


def test_fong_synchronous_counts_as_short_interval():
    # synchronous metastases: DFI 0 < 12 months -> 1 point, DFI no longer missing
    assert scores.fong_score(False, None, 1, 5, 30, synchronous=True) == (1, "low", ())


def test_fong_refuses_impossible_inputs():
    with pytest.raises(PatientValueError, match=r"largest_tumor_mm = -5 mm is impossible"):
        scores.fong_score(True, 6, 3, 250, -5)
    with pytest.raises(PatientValueError, match=r"disease_free_interval_months = -1 months is impossible"):
        scores.fong_score(True, -1, 3, 250, 60)


# --- PVE: degree of hypertrophy (Ribero 2007) and kinetic growth rate (Shindoh 2013) ---------------------

def test_degree_of_hypertrophy_and_kgr():
    # sFLR 18% -> 26.5%: DH = 8.5 percentage points; 4 weeks: KGR = 8.5 / 4 = 2.125 %/week
    assert scores.degree_of_hypertrophy(18.0, 26.5) == 8.5
    assert scores.kinetic_growth_rate(8.5, 4) == 2.125
    # threshold edges land exactly: 20.1 -> 25.1 is DH 5.0 (decimal inputs, no 4.999999...)
    assert scores.degree_of_hypertrophy(20.1, 25.1) == 5.0
    # atrophy after PVE is a negative DH
    assert scores.degree_of_hypertrophy(20.0, 19.0) == -1.0


@pytest.mark.parametrize(("call", "match"), [
    (lambda: scores.degree_of_hypertrophy(-1, 20), r"sflr_before_percent = -1 % is impossible"),
    (lambda: scores.kinetic_growth_rate(5, 0), r"weeks = 0 since PVE is impossible"),
    (lambda: scores.kinetic_growth_rate(5, -2), r"scan dated before the embolization"),
])
def test_pve_scores_refuse_impossible_inputs(call, match):
    with pytest.raises(PatientValueError, match=match):
        call()


def _assessment(sflr_percent, functional_ml, plan=None):
    out = {"kind": "assessment", "remnant": {"sflr_percent": sflr_percent, "functional_volume_ml": functional_ml}}
    if plan is not None:
        out["plan"] = plan
    return out


def test_compare_pve_favourable():
    # before 18% (300 mL), after 26.5% (420 mL) at 4 weeks: DH 8.5 >= 5, KGR 2.125 >= 2 -> favourable;
    # FLR growth (420 / 300 - 1) x 100 = 40%
    before, after = _assessment(18.0, 300.0), _assessment(26.5, 420.0)
    out = scores.compare_pve(json.loads(json.dumps(before)), after, 4)
    assert out["sflr_before_percent"] == 18.0 and out["sflr_after_percent"] == 26.5
    assert out["degree_of_hypertrophy_pp"] == 8.5
    assert out["kinetic_growth_rate_pp_per_week"] == 2.125
    assert out["flr_growth_percent"] == pytest.approx(40.0)
    assert out["favourable"] is True
    assert out["thresholds"] == {"degree_of_hypertrophy_pp_min": 5.0, "kinetic_growth_rate_pp_per_week_min": 2.0}
    assert any("Ribero" in s for s in out["sources"]) and any("Shindoh" in s for s in out["sources"])
    json.dumps(out, allow_nan=False)


def test_compare_pve_slow_growth_is_not_favourable():
    # DH 6 (>= 5) but over 4 weeks: KGR 1.5 < 2 %/week -> not favourable (Shindoh: KGR predicts better than DH)
    out = scores.compare_pve(_assessment(20.0, 300.0), _assessment(26.0, 360.0), 4)
    assert out["criteria"] == {"degree_of_hypertrophy": True, "kinetic_growth_rate": False}
    assert out["favourable"] is False


def test_compare_pve_at_the_thresholds():
    # DH exactly 5 in 2.5 weeks: KGR exactly 2 -> both criteria met (>=)
    out = scores.compare_pve(_assessment(20.0, 300.0), _assessment(25.0, 375.0), 2.5)
    assert out["degree_of_hypertrophy_pp"] == 5.0 and out["kinetic_growth_rate_pp_per_week"] == 2.0
    assert out["favourable"] is True


def test_compare_pve_without_functional_volume_reports_no_growth():
    out = scores.compare_pve(_assessment(18.0, None), _assessment(26.5, 420.0), 4)
    assert out["flr_growth_percent"] is None


def test_compare_pve_warns_about_different_plans():
    out = scores.compare_pve(_assessment(18.0, 300.0, {"name": "right hemihepatectomy"}),
                             _assessment(26.5, 420.0, {"name": "right trisectionectomy"}), 4)
    assert "different resection plans" in out["warnings"][0]


@pytest.mark.parametrize(("before", "after", "match"), [
    (_assessment(None, 300.0), _assessment(26.5, 420.0), "assessment before PVE has no remnant.sflr_percent"),
    (_assessment(18.0, 300.0), {"remnant": {}}, "assessment after PVE has no remnant.sflr_percent.*weight and height"),
    (_assessment(18.0, 300.0), {}, "assessment after PVE"),
])
def test_compare_pve_needs_sflr(before, after, match):
    with pytest.raises(PatientValueError, match=match):
        scores.compare_pve(before, after, 4)


def test_compare_pve_without_weeks_gives_dh_and_no_kgr():
    # issue 13 item 3: without a scan date the KGR is missing, never computed to today; DH 26.5 - 18 = 8.5
    out = scores.compare_pve(_assessment(18.0, 300.0), _assessment(26.5, 420.0), None)
    assert out["degree_of_hypertrophy_pp"] == 8.5
    assert out["kinetic_growth_rate_pp_per_week"] is None and out["weeks_since_pve"] is None
    assert out["criteria"]["kinetic_growth_rate"] is None and out["favourable"] is None
    json.dumps(out, allow_nan=False)
