"""Body size and standardised liver volume: BSA, TELV, sFLR, FLR/body weight.

Every formula carries its citation (see ``../shared/clinical-reference.md``, "Volumes"); a test fails if
one is missing. Units are in the names: ``_kg``, ``_cm``, ``_m2``, ``_ml``.

>>> round(bsa_m2(70, 175), 4)               # Mosteller: sqrt(175 x 70 / 3600)
1.8447
>>> round(telv_ml(1.8447), 1)               # Vauthey: -794.41 + 1267.28 x BSA
1543.3
"""

from __future__ import annotations

import math
from collections.abc import Callable

from flr.errors import FlrError

#: Liver density used to turn a volume into a weight (g/mL); clinical-reference.md: "about 1.0 g/mL".
LIVER_DENSITY_G_PER_ML = 1.0


class PatientValueError(FlrError, ValueError):
    """A patient measurement is missing, impossible or in the wrong unit."""


def _check(name: str, value: float, lo: float, hi: float, unit: str) -> float:
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise PatientValueError(f"{name} = {value} {unit} is impossible (expected {lo}-{hi} {unit})")
    return v


def bsa_mosteller_m2(weight_kg: float, height_cm: float) -> float:
    """Mosteller: BSA = sqrt(height_cm x weight_kg / 3600). Mosteller, N Engl J Med 1987;317:1098."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def bsa_dubois_m2(weight_kg: float, height_cm: float) -> float:
    """DuBois: BSA = 0.007184 x W^0.425 x H^0.725. DuBois & DuBois, Arch Intern Med 1916;17:863."""
    return 0.007184 * weight_kg**0.425 * height_cm**0.725


BSA_FORMULAS: dict[str, Callable[[float, float], float]] = {
    "mosteller": bsa_mosteller_m2,
    "dubois": bsa_dubois_m2,
}


def bsa_m2(weight_kg: float, height_cm: float, formula: str = "mosteller") -> float:
    """Body surface area (m^2) by ``formula`` (``mosteller`` default, ``dubois``), inputs range-checked."""
    w = _check("weight_kg", weight_kg, 20, 400, "kg")
    h = _check("height_cm", height_cm, 100, 250, "cm")
    try:
        return BSA_FORMULAS[formula](w, h)
    except KeyError:
        raise PatientValueError(f"unknown BSA formula {formula!r}; choose one of {', '.join(BSA_FORMULAS)}"
                                ) from None


def telv_vauthey_ml(bsa: float) -> float:
    """Vauthey: TELV = -794.41 + 1267.28 x BSA. Vauthey et al., Liver Transpl 2002;8:233; Ribero, Ann Surg 2013."""
    return -794.41 + 1267.28 * bsa


def telv_urata_ml(bsa: float) -> float:
    """Urata: TELV = 706.2 x BSA + 2.4. Urata et al., Hepatology 1995;21:1317."""
    return 706.2 * bsa + 2.4


def telv_chinese_ml(bsa: float) -> float:
    """Chinese adults: TELV = 758.259 x BSA - 124.272. World J Gastroenterol 2017;23:4968."""
    return 758.259 * bsa - 124.272


def telv_korean_ml(bsa: float) -> float:
    """Korean donors (Mosteller BSA): TELV = 893.485 x BSA - 439.169. As quoted in clinical-reference.md [verify]."""
    return 893.485 * bsa - 439.169


TELV_FORMULAS: dict[str, Callable[[float], float]] = {
    "vauthey": telv_vauthey_ml,
    "urata": telv_urata_ml,
    "chinese": telv_chinese_ml,
    "korean": telv_korean_ml,
}


def telv_ml(bsa: float, formula: str = "vauthey") -> float:
    """Total estimated liver volume (mL) from BSA (m^2) by ``formula`` (``vauthey`` default)."""
    try:
        return TELV_FORMULAS[formula](bsa)
    except KeyError:
        raise PatientValueError(f"unknown TELV formula {formula!r}; choose one of {', '.join(TELV_FORMULAS)}"
                                ) from None


def flr_body_weight_percent(flr_ml: float, weight_kg: float) -> float:
    """FLR/BW (%) = FLR volume x liver density (g) / body weight (g) x 100. Truant et al., J Am Coll Surg 2007."""
    w = _check("weight_kg", weight_kg, 20, 400, "kg")
    return flr_ml * LIVER_DENSITY_G_PER_ML / (w * 1000.0) * 100.0
