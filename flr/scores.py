"""Body size, standardised liver volume, liver function and prognostic scores.

* Volumes: BSA (Mosteller, DuBois), TELV (Vauthey, Urata, Chinese, Korean), FLR/body weight (Truant).
* Liver function: Child-Pugh (Pugh), ALBI (Johnson), MELD (Kamath), MELD-Na (Kim).
* Colorectal prognosis: Fong clinical risk score (Fong).
* Portal vein embolization: degree of hypertrophy (Ribero), kinetic growth rate (Shindoh), :func:`compare_pve`.

Every public function carries its formula and citation; a test fails if one is missing. Units are in the
names: ``_kg``, ``_cm``, ``_m2``, ``_ml``, ``_mg_dl``, ``_umol_l``, ``_g_l``, ``_percent``, ``_pp`` (percentage
points). Impossible inputs raise :class:`PatientValueError` with the value and the expected range.

>>> round(bsa_m2(70, 175), 4)               # Mosteller: sqrt(175 x 70 / 3600)
1.8447
>>> round(telv_ml(1.8447), 1)               # Vauthey: -794.41 + 1267.28 x BSA
1543.3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from flr.errors import PatientValueError

#: Liver density used to turn a volume into a weight (g/mL): 1.0, the usual convention (1 mL of liver counted
#: as 1 g; measured densities are about 0.99 for a normal liver, higher for a cirrhotic one).
LIVER_DENSITY_G_PER_ML = 1.0


def _check(name: str, value: float, lo: float, hi: float, unit: str) -> float:
    u = f" {unit}" if unit else ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PatientValueError(f"{name} = {value!r} is not a number (expected {lo:g}-{hi:g}{u})") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise PatientValueError(f"{name} = {value}{u} is impossible (expected {lo:g}-{hi:g}{u})")
    return v


def bsa_mosteller_m2(weight_kg: float, height_cm: float) -> float:
    """Mosteller: BSA = sqrt(height_cm x weight_kg / 3600). Mosteller RD, N Engl J Med 1987;317:1098."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def bsa_dubois_m2(weight_kg: float, height_cm: float) -> float:
    """DuBois: BSA = 0.007184 x W^0.425 x H^0.725. DuBois D & DuBois EF, Arch Intern Med 1916;17:863."""
    return 0.007184 * weight_kg**0.425 * height_cm**0.725


#: Plausible body measurements ``name: (low, high, unit)`` (shared with :mod:`flr.patient`).
BODY_RANGES: dict[str, tuple[float, float, str]] = {
    "weight_kg": (20.0, 400.0, "kg"),
    "height_cm": (100.0, 250.0, "cm"),
}

BSA_FORMULAS: dict[str, Callable[[float, float], float]] = {
    "mosteller": bsa_mosteller_m2,
    "dubois": bsa_dubois_m2,
}


def bsa_m2(weight_kg: float, height_cm: float, formula: str = "mosteller") -> float:
    """Body surface area (m^2) by ``formula``, inputs range-checked.

    ``mosteller`` (default; Mosteller RD, N Engl J Med 1987;317:1098) or ``dubois`` (DuBois D & DuBois EF, Arch
    Intern Med 1916;17:863); the formulas are in :data:`BSA_FORMULAS`.
    """
    w = _check("weight_kg", weight_kg, *BODY_RANGES["weight_kg"])
    h = _check("height_cm", height_cm, *BODY_RANGES["height_cm"])
    try:
        return BSA_FORMULAS[formula](w, h)
    except KeyError:
        raise PatientValueError(f"unknown BSA formula {formula!r}; choose one of {', '.join(BSA_FORMULAS)}"
                                ) from None


def telv_vauthey_ml(bsa: float) -> float:
    """Vauthey: TELV = -794.41 + 1267.28 x BSA.

    Vauthey JN et al., Liver Transpl 2002;8:233 (Western adults); used for the standardised FLR by Ribero et al.,
    Ann Surg 2013 (doi 10.1097/SLA.0000000000000213). One coefficient set, applied to the BSA given (whichever
    formula computed it).
    """
    return -794.41 + 1267.28 * bsa


def telv_urata_ml(bsa: float) -> float:
    """Urata: TELV = 706.2 x BSA + 2.4. Urata K et al., Hepatology 1995;21:1317.

    One coefficient set, applied to the BSA given (whichever formula computed it).
    """
    return 706.2 * bsa + 2.4


def telv_chinese_ml(bsa: float) -> float:
    """Chinese adults: TELV = 758.259 x BSA - 124.272. Feng LM et al., World J Gastroenterol 2017;23:4968.

    One coefficient set, applied to the BSA given (whichever formula computed it).
    """
    return 758.259 * bsa - 124.272


#: Korean donor TELV ``(slope mL/m^2, intercept mL)`` by the BSA formula each set was derived with (Um 2015).
TELV_KOREAN_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "dubois": (908.204, -464.728),
    "mosteller": (893.485, -439.169),
}


def telv_korean_ml(bsa: float, *, bsa_formula: str = "mosteller") -> float:
    """Korean donors: TELV = 908.204 x BSA_DuBois - 464.728, or 893.485 x BSA_Mosteller - 439.169.

    Um EH et al., Korean J Hepatobiliary Pancreat Surg 2015;19:133 (CT volumetry of 1,000 living donors) derived
    one formula per BSA formula; ``bsa_formula`` (``mosteller``, the default, or ``dubois``) names the formula
    that computed ``bsa`` and picks the matching set (:data:`TELV_KOREAN_COEFFICIENTS`).

    >>> round(telv_korean_ml(1.8482, bsa_formula="dubois"), 1)   # 908.204 x 1.8482 - 464.728
    1213.8
    """
    slope, intercept = TELV_KOREAN_COEFFICIENTS[_bsa_formula(bsa_formula)]
    return slope * bsa + intercept


def _bsa_formula(name: str) -> str:
    """``name`` when it is a :data:`BSA_FORMULAS` key; :class:`PatientValueError` listing them otherwise."""
    if name not in BSA_FORMULAS:
        raise PatientValueError(f"unknown BSA formula {name!r}; choose one of {', '.join(BSA_FORMULAS)}")
    return name


TELV_FORMULAS: dict[str, Callable[[float], float]] = {
    "vauthey": telv_vauthey_ml,
    "urata": telv_urata_ml,
    "chinese": telv_chinese_ml,
    "korean": telv_korean_ml,
}


def telv_ml(bsa: float, formula: str = "vauthey", *, bsa_formula: str = "mosteller") -> float:
    """Total estimated liver volume (mL) from BSA (m^2) by ``formula``; ``bsa_formula`` names how ``bsa`` was computed.

    ``vauthey`` (default; Vauthey JN et al., Liver Transpl 2002;8:233), ``urata`` (Urata K et al., Hepatology
    1995;21:1317), ``chinese`` (Feng LM et al., World J Gastroenterol 2017;23:4968) and ``korean`` (Um EH et al.,
    Korean J Hepatobiliary Pancreat Surg 2015;19:133); see :data:`TELV_FORMULAS`. Only the Korean formula has
    a coefficient set per BSA formula (:func:`telv_korean_ml`); the others apply their one set to any BSA.
    ``bsa_formula`` (a :data:`BSA_FORMULAS` key; default ``mosteller``, the default of :func:`bsa_m2`) is
    checked for every formula.

    >>> round(telv_ml(1.8482, "korean", bsa_formula="dubois"), 1)
    1213.8
    """
    _bsa_formula(bsa_formula)
    try:
        fn = TELV_FORMULAS[formula]
    except KeyError:
        raise PatientValueError(f"unknown TELV formula {formula!r}; choose one of {', '.join(TELV_FORMULAS)}"
                                ) from None
    return telv_korean_ml(bsa, bsa_formula=bsa_formula) if fn is telv_korean_ml else fn(bsa)


def flr_body_weight_percent(flr_ml: float, weight_kg: float) -> float:
    """FLR/BW (%) = FLR volume x liver density (g) / body weight (g) x 100.

    Truant S et al., J Am Coll Surg 2007;204:22 (FLR/BW <= 0.5% predicts morbidity and mortality after major
    hepatectomy). Liver density: :data:`LIVER_DENSITY_G_PER_ML`.
    """
    w = _check("weight_kg", weight_kg, *BODY_RANGES["weight_kg"])
    return flr_ml * LIVER_DENSITY_G_PER_ML / (w * 1000.0) * 100.0


# --- laboratory units and plausible ranges ---------------------------------------------------------------

#: Unit conversions, from the molar masses: 1 mg/dL bilirubin = 10 mg/L / 584.66 g/mol = 17.1 umol/L;
#: 1 g/dL albumin = 10 g/L; 1 mg/dL creatinine = 10 mg/L / 113.12 g/mol = 88.4 umol/L.
BILIRUBIN_UMOL_L_PER_MG_DL = 17.1
ALBUMIN_G_L_PER_G_DL = 10.0
CREATININE_UMOL_L_PER_MG_DL = 88.4

#: Plausible range of each laboratory value in its canonical unit: ``name: (low, high, unit)``. A value
#: outside is a typing error or a unit mix-up, never a patient (shared with :mod:`flr.patient`). The lower bounds
#: of bilirubin, albumin and creatinine also catch the commonest mix-up, the conventional figure under the SI key
#: (bilirubin 0.8 "umol/L" is 0.047 mg/dL), so they sit just below what is measured in a living adult:
#:
#: * bilirubin 0.1 mg/dL (1.71 umol/L): the adult reference interval is about 0.1-1.2 mg/dL (2-21 umol/L) and
#:   laboratories report nothing lower; 0.1-1.71 "umol/L" is a mg/dL value;
#: * albumin 1.0 g/dL (10 g/L): the reference interval is 3.5-5 g/dL; the deepest hypoalbuminaemia (nephrotic
#:   syndrome, critical illness) stays above 1 g/dL; 1-7 "g/L" is a g/dL value;
#: * creatinine 0.1 mg/dL (8.84 umol/L): the reference interval is about 0.6-1.2 mg/dL (53-106 umol/L), a very low
#:   muscle mass 0.2-0.3 mg/dL; 0.1-8.84 "umol/L" is a mg/dL value.
#:
#: The upper bounds catch the reverse (bilirubin 68 "mg/dL" is 68 umol/L, 4 mg/dL).
LAB_RANGES: dict[str, tuple[float, float, str]] = {
    "bilirubin_mg_dl": (0.1, 50.0, "mg/dL"),
    "albumin_g_dl": (1.0, 7.0, "g/dL"),
    "inr": (0.5, 20.0, ""),
    "creatinine_mg_dl": (0.1, 25.0, "mg/dL"),
    "sodium_mmol_l": (100.0, 180.0, "mmol/L"),
    "cea_ng_ml": (0.0, 100000.0, "ng/mL"),
}

#: Child-Pugh clinical grades, in point order (1, 2, 3 points).
ASCITES_GRADES = ("none", "mild", "moderate_severe")
ENCEPHALOPATHY_GRADES = ("none", "grade_1_2", "grade_3_4")


def _lab_range(name: str, factor: float = 1.0, unit: str | None = None) -> tuple[float, float, str]:
    """Plausible range of laboratory value ``name`` (a :data:`LAB_RANGES` key), times ``factor``, in ``unit``.

    >>> _lab_range("albumin_g_dl", ALBUMIN_G_L_PER_G_DL, "g/L")
    (10.0, 70.0, 'g/L')
    """
    lo, hi, canonical_unit = LAB_RANGES[name]
    return round(lo * factor, 6), round(hi * factor, 6), canonical_unit if unit is None else unit


def _lab(name: str, value: float, factor: float = 1.0, unit: str | None = None, label: str | None = None) -> float:
    return _check(label or name, value, *_lab_range(name, factor, unit))


def _round_half_up(x: float) -> int:
    """Round to the nearest integer, halves upwards (as clinical calculators do; Python's round() goes to even)."""
    return math.floor(x + 0.5)


# --- liver function ------------------------------------------------------------------------------------

class ChildPugh(NamedTuple):
    """Child-Pugh points (5-15) and class (``"A"``, ``"B"``, ``"C"``)."""

    points: int
    class_: str


def child_pugh(bilirubin_mg_dl: float, albumin_g_dl: float, inr: float, ascites: str, encephalopathy: str, *,
               cholestatic: bool = False) -> ChildPugh:
    """Child-Pugh score: 1-3 points for each of five findings; class A 5-6, B 7-9, C 10-15.

    Pugh RN et al., Br J Surg 1973;60:646, in the units and with the INR of current practice:

    ==============  =================  ====================  ==================
    finding         1 point            2 points              3 points
    ==============  =================  ====================  ==================
    bilirubin       < 2 mg/dL          2-3 mg/dL             > 3 mg/dL
    (PBC/PSC)       < 4 mg/dL          4-10 mg/dL            > 10 mg/dL
    albumin         > 3.5 g/dL         2.8-3.5 g/dL          < 2.8 g/dL
    INR             < 1.7              1.7-2.3               > 2.3
    ascites         none               mild                  moderate_severe
    encephalopathy  none               grade_1_2             grade_3_4
    ==============  =================  ====================  ==================

    Band edges belong to the middle band (bilirubin 2.0 and 3.0 -> 2 points; albumin 3.5 and 2.8 -> 2;
    INR 1.7 and 2.3 -> 2). ``cholestatic=True`` uses the PBC/PSC bilirubin bands. The INR bands replace
    Pugh's prolongation of the prothrombin time (1-4, 4-6, > 6 s), as in current practice.

    >>> child_pugh(1.0, 4.0, 1.1, "none", "none")
    ChildPugh(points=5, class_='A')
    """
    bili = _lab("bilirubin_mg_dl", bilirubin_mg_dl)
    alb = _lab("albumin_g_dl", albumin_g_dl)
    inr_v = _lab("inr", inr)
    lo, hi = (4.0, 10.0) if cholestatic else (2.0, 3.0)
    points = 1 if bili < lo else 2 if bili <= hi else 3
    points += 1 if alb > 3.5 else 2 if alb >= 2.8 else 3
    points += 1 if inr_v < 1.7 else 2 if inr_v <= 2.3 else 3
    for name, value, grades in (("ascites", ascites, ASCITES_GRADES),
                                ("encephalopathy", encephalopathy, ENCEPHALOPATHY_GRADES)):
        if value not in grades:
            raise PatientValueError(f"{name} = {value!r} is not one of {', '.join(grades)}")
        points += grades.index(value) + 1
    return ChildPugh(points, "A" if points <= 6 else "B" if points <= 9 else "C")


class Albi(NamedTuple):
    """ALBI score (dimensionless) and grade (1, 2, 3)."""

    score: float
    grade: int


#: ALBI grade cut-offs (Johnson PJ et al., J Clin Oncol 2015;33:550): grade 1 <= -2.60 < grade 2 <= -1.39 < grade 3.
ALBI_GRADE_1_MAX = -2.60
ALBI_GRADE_2_MAX = -1.39
#: The ALBI grade compares the score rounded to this many decimals with the cut-offs. 1e-9 is far above the
#: floating-point error of a score (about 1e-15: 0.66 - 0.085 x 24.1176... g/L, exactly -1.39 in exact arithmetic,
#: is -1.3899999999999997 in floats) and far below any difference a laboratory value makes (0.01 g/L albumin moves
#: the score by 8.5e-4). Not the cut-offs' 2 decimals: they are cut-offs on the continuous score, and rounding
#: to 2 decimals would grade -2.596 (> -2.60, grade 2) as grade 1.
ALBI_GRADE_DECIMALS = 9


def albi(bilirubin_umol_l: float, albumin_g_l: float) -> Albi:
    """ALBI = 0.66 x log10(bilirubin umol/L) - 0.085 x albumin (g/L); grade 1 <= -2.60, 2 <= -1.39, 3 > -1.39.

    Johnson PJ et al., J Clin Oncol 2015;33:550. flr uses the published albumin coefficient -0.085 (with -0.0852
    a score would be 0.0002 x albumin lower, 0.008 at 40 g/L). ``score`` is unrounded; the grade compares the
    score rounded to :data:`ALBI_GRADE_DECIMALS` (9) decimals, so that a score on a cut-off in exact arithmetic
    takes the lower grade whatever its floating-point error.

    >>> round(albi(17.1, 40).score, 3)          # 0.66 x 1.2330 - 3.4
    -2.586
    >>> albi(10, (0.66 + 1.39) / 0.085).grade   # 0.66 - 0.085 x 24.1176... = -1.39: grade 2, not 3
    2
    """
    bili = _lab("bilirubin_mg_dl", bilirubin_umol_l, BILIRUBIN_UMOL_L_PER_MG_DL, "umol/L", "bilirubin_umol_l")
    alb = _lab("albumin_g_dl", albumin_g_l, ALBUMIN_G_L_PER_G_DL, "g/L", "albumin_g_l")
    score = 0.66 * math.log10(bili) - 0.085 * alb
    graded = round(score, ALBI_GRADE_DECIMALS)
    return Albi(score, 1 if graded <= ALBI_GRADE_1_MAX else 2 if graded <= ALBI_GRADE_2_MAX else 3)


#: MELD bounds (UNOS): laboratory values below 1 count as 1, creatinine above 4 mg/dL (or dialysis) as 4.
MELD_MAX = 40
MELD_CREATININE_CAP_MG_DL = 4.0
#: MELD-Na: applied only when MELD > 11; sodium clamped to 125-137 mmol/L.
MELD_NA_MIN_MELD = 11
MELD_NA_SODIUM_RANGE_MMOL_L = (125.0, 137.0)


def meld(creatinine_mg_dl: float | None, bilirubin_mg_dl: float, inr: float, *, dialysis: bool = False) -> int:
    """MELD (UNOS) = 10 x (0.957 ln Cr + 0.378 ln bilirubin + 1.120 ln INR + 0.643), an integer 6-40.

    Kamath PS et al., Hepatology 2001;33:464, with the UNOS (OPTN) modifications: each value
    below 1.0 is set to 1.0; creatinine is capped at 4.0 mg/dL, and ``dialysis`` (two or more dialyses, or
    24 h of CVVHD, in the week before) counts as 4.0 (``creatinine_mg_dl`` may then be None); the result is
    capped at 40.

    Rounding (flr's choice, documented): UNOS rounds the bracket to the tenth and multiplies by 10, which
    is the same as rounding 10 x bracket to the nearest integer; flr does that, halves upwards
    (``floor(x + 0.5)``), so 6.43 -> 6 and 13.5 -> 14.

    >>> meld(1.0, 1.0, 1.0)                     # 10 x 0.643 = 6.43
    6
    """
    if creatinine_mg_dl is None and not dialysis:
        raise PatientValueError("creatinine_mg_dl is missing (MELD needs it unless the patient is on dialysis)")
    cr = min(max(_lab("creatinine_mg_dl", creatinine_mg_dl), 1.0), MELD_CREATININE_CAP_MG_DL) \
        if creatinine_mg_dl is not None else MELD_CREATININE_CAP_MG_DL
    if dialysis:
        cr = MELD_CREATININE_CAP_MG_DL
    bili = max(_lab("bilirubin_mg_dl", bilirubin_mg_dl), 1.0)
    inr_v = max(_lab("inr", inr), 1.0)
    x = 0.957 * math.log(cr) + 0.378 * math.log(bili) + 1.120 * math.log(inr_v) + 0.643
    return min(_round_half_up(10.0 * x), MELD_MAX)


def meld_na(meld: int, sodium_mmol_l: float) -> int:
    """MELD-Na = MELD + 1.32 x (137 - Na) - 0.033 x MELD x (137 - Na), applied when MELD > 11.

    Kim WR et al., N Engl J Med 2008;359:1018 (OPTN policy since 2016). ``meld`` is the integer from
    :func:`meld`; sodium (mmol/L) is clamped to 125-137; the result is rounded halves-up and capped at 40.
    With MELD <= 11 the MELD is returned unchanged.

    >>> meld_na(20, 130)                        # 20 + 1.32 x 7 - 0.033 x 20 x 7 = 24.62
    25
    """
    m = _check("meld", meld, 6, MELD_MAX, "points")
    na = min(max(_lab("sodium_mmol_l", sodium_mmol_l), MELD_NA_SODIUM_RANGE_MMOL_L[0]),
             MELD_NA_SODIUM_RANGE_MMOL_L[1])
    if m <= MELD_NA_MIN_MELD:
        return _round_half_up(m)
    d = 137.0 - na
    return min(_round_half_up(m + 1.32 * d - 0.033 * m * d), MELD_MAX)


# --- colorectal prognosis -------------------------------------------------------------------------------

class FongScore(NamedTuple):
    """Fong clinical risk score: known ``points`` (a lower bound when ``missing`` is not empty), ``risk``
    (``"low"``, ``"high"`` or ``None`` when the missing factors could change it) and the ``missing`` inputs."""

    points: int
    risk: str | None
    missing: tuple[str, ...]


#: Fong factor thresholds: DFI < 12 months, > 1 tumour, CEA > 200 ng/mL, largest tumour > 50 mm.
FONG_DFI_MONTHS = 12.0
FONG_CEA_NG_ML = 200.0
FONG_LARGEST_MM = 50.0
FONG_HIGH_RISK_MIN_POINTS = 3


def fong_score(node_positive_primary: bool | None, disease_free_interval_months: float | None,
               tumor_count: int | None, cea_ng_ml: float | None, largest_tumor_mm: float | None, *,
               synchronous: bool | None = None) -> FongScore:
    """Fong clinical risk score (0-5) for colorectal liver metastases; 0-2 low risk, 3-5 high risk.

    Fong Y et al., Ann Surg 1999;230:309: 1 point each for a node-positive primary, a disease-free interval
    (primary to liver metastases) < 12 months, > 1 liver tumour, preoperative CEA > 200 ng/mL, largest liver
    tumour > 5 cm (50 mm). Thresholds are strict: DFI 12 months, CEA 200 and 50 mm score 0.

    A missing input (``None``) scores nothing and is listed in ``missing``: ``points`` is then a lower
    bound, and ``risk`` is given only when no missing factor could change it (``None`` otherwise).
    ``synchronous=True`` with no interval counts as an interval of 0 months (< 12).

    >>> fong_score(True, 6, 3, 250, 60)
    FongScore(points=5, risk='high', missing=())
    """
    if disease_free_interval_months is None and synchronous:
        disease_free_interval_months = 0.0
    factors: dict[str, bool | None] = {
        "node_positive_primary": None if node_positive_primary is None else bool(node_positive_primary),
        "disease_free_interval_months": None if disease_free_interval_months is None else
        _check("disease_free_interval_months", disease_free_interval_months, 0, 600, "months") < FONG_DFI_MONTHS,
        "tumor_count": None if tumor_count is None else _check("tumor_count", tumor_count, 0, 10000, "tumours") > 1,
        "cea_ng_ml": None if cea_ng_ml is None else _lab("cea_ng_ml", cea_ng_ml) > FONG_CEA_NG_ML,
        "largest_tumor_mm": None if largest_tumor_mm is None else
        _check("largest_tumor_mm", largest_tumor_mm, 0, 500, "mm") > FONG_LARGEST_MM,
    }
    missing = tuple(k for k, v in factors.items() if v is None)
    points = sum(1 for v in factors.values() if v)
    if points >= FONG_HIGH_RISK_MIN_POINTS:
        risk: str | None = "high"
    elif points + len(missing) < FONG_HIGH_RISK_MIN_POINTS:
        risk = "low"
    else:
        risk = None
    return FongScore(points, risk, missing)


# --- portal vein embolization ---------------------------------------------------------------------------

#: Degree of hypertrophy after PVE at or above which the response is favourable (Ribero D et al., Br J Surg
#: 2007;94:1386).
DH_FAVOURABLE_PP = 5.0
#: Kinetic growth rate below which post-hepatectomy liver insufficiency is predicted (Shindoh J et al., J Am Coll
#: Surg 2013;216:201).
KGR_MIN_PP_PER_WEEK = 2.0
PVE_SOURCES = (
    "Ribero D et al., Br J Surg 2007;94:1386 (degree of hypertrophy >= 5 percentage points)",
    "Shindoh J et al., J Am Coll Surg 2013;216:201 (kinetic growth rate < 2 %/week predicts insufficiency)",
)


def degree_of_hypertrophy(sflr_before_percent: float, sflr_after_percent: float) -> float:
    """DH (percentage points) = sFLR after PVE - sFLR before PVE; >= 5 favourable.

    Ribero D et al., Br J Surg 2007;94:1386. Rounded to 1e-9 so that 25.0 - 20.0 style differences
    of decimal inputs land exactly on the threshold instead of floating-point noise beside it.

    >>> degree_of_hypertrophy(18.0, 26.5)
    8.5
    """
    before = _check("sflr_before_percent", sflr_before_percent, 0, 100, "%")
    after = _check("sflr_after_percent", sflr_after_percent, 0, 100, "%")
    return round(after - before, 9)


def kinetic_growth_rate(dh: float, weeks: float) -> float:
    """KGR (percentage points per week) = DH / weeks since PVE; < 2 %/week predicts liver insufficiency.

    Shindoh J et al., J Am Coll Surg 2013;216:201. ``weeks`` > 0 (time from PVE to the volumetry).

    >>> kinetic_growth_rate(8.5, 4)
    2.125
    """
    d = _check("degree_of_hypertrophy_pp", dh, -100, 100, "percentage points")
    w = float(weeks)
    if not math.isfinite(w) or not 0 < w <= 520:
        raise PatientValueError(f"weeks = {weeks} since PVE is impossible (expected > 0 and <= 520 weeks; "
                                "is the scan dated before the embolization?)")
    return round(d / w, 9)


def compare_pve(before: Mapping[str, Any], after: Mapping[str, Any], weeks: float | None) -> dict[str, Any]:
    """Compare two flr assessments, before and after portal vein embolization (PVE).

    DH = sFLR_after - sFLR_before (percentage points; Ribero D et al., Br J Surg 2007;94:1386);
    KGR = DH / weeks (Shindoh J et al., J Am Coll Surg 2013;216:201); FLR growth % = (functional remnant
    after / before - 1) x 100. ``favourable`` is True when DH >= 5 and KGR >= 2 %/week (each criterion
    is also reported); whether the new sFLR is enough for the patient's liver is the rulebook's question.

    ``before``/``after`` are assessment dicts (``Assessment.to_dict()`` or its JSON); both need
    ``remnant.sflr_percent``, which flr reports only when weight and height were given. ``weeks`` None (no
    scan date): DH is given, KGR and its criterion are None, and ``favourable`` is None unless DH fails.
    """
    sflr = []
    for label, result in (("before", before), ("after", after)):
        remnant = result.get("remnant") if isinstance(result, Mapping) else None
        value = remnant.get("sflr_percent") if isinstance(remnant, Mapping) else None
        if value is None:
            raise PatientValueError(f"the assessment {label} PVE has no remnant.sflr_percent: rerun it with the "
                                    "patient's weight and height (sFLR needs the estimated total liver volume)")
        sflr.append(value)
    dh = degree_of_hypertrophy(*sflr)
    kgr = None if weeks is None else kinetic_growth_rate(dh, weeks)
    fv = [r["remnant"].get("functional_volume_ml") for r in (before, after)]
    growth = (fv[1] / fv[0] - 1.0) * 100.0 if None not in fv and fv[0] > 0 else None
    criteria = {"degree_of_hypertrophy": dh >= DH_FAVOURABLE_PP,
                "kinetic_growth_rate": None if kgr is None else kgr >= KGR_MIN_PP_PER_WEEK}
    warnings = []
    if before.get("plan") is not None and after.get("plan") is not None and before["plan"] != after["plan"]:
        warnings.append("the two assessments use different resection plans: the remnants are not comparable")
    return {
        "sflr_before_percent": float(sflr[0]),
        "sflr_after_percent": float(sflr[1]),
        "weeks_since_pve": None if weeks is None else float(weeks),
        "degree_of_hypertrophy_pp": dh,
        "kinetic_growth_rate_pp_per_week": kgr,
        "flr_growth_percent": growth,
        # None when the KGR is missing (no scan date) and DH alone cannot decide
        "favourable": None if kgr is None and criteria["degree_of_hypertrophy"] else all(v is True for v in
                                                                                       criteria.values()),
        "criteria": criteria,
        "thresholds": {"degree_of_hypertrophy_pp_min": DH_FAVOURABLE_PP,
                       "kinetic_growth_rate_pp_per_week_min": KGR_MIN_PP_PER_WEEK},
        "sources": list(PVE_SOURCES),
        "warnings": warnings,
    }
