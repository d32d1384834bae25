"""Resection plans: named Brisbane 2000 resections, segment lists, wedges and ablations, combined.

>>> p = resection_plan("right-hemihepatectomy", wedges=["2:5"])
>>> p.resected_segments, p.wedges
(('liver_segment_5', 'liver_segment_6', 'liver_segment_7', 'liver_segment_8'), ((2, 5.0),))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flr.anatomy import RESECTION_ALIASES, RESECTIONS, named_resection, segment_name
from flr.errors import PlanError
from flr.zones import parse_zone_spec


@dataclass(frozen=True)
class Plan:
    """What the surgeon removes or treats. Segment names are canonical; zones are (tumour id, margin mm)."""

    name: str
    resected_segments: tuple[str, ...] = ()
    include_caudate: bool = False
    wedges: tuple[tuple[int, float], ...] = ()
    ablations: tuple[tuple[int, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resected_segments": list(self.resected_segments),
            "include_caudate": self.include_caudate,
            "wedges": [{"tumor_id": t, "margin_mm": m} for t, m in self.wedges],
            "ablations": [{"tumor_id": t, "margin_mm": m} for t, m in self.ablations],
        }


def _segments_from_list(text: str) -> tuple[str, ...]:
    out = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        try:
            out.append(segment_name(part))
        except ValueError:
            raise PlanError(f"--resect {text!r}: {part!r} is not a Couinaud segment (1-8, 4a, 4b)") from None
    if not out:
        raise PlanError(f"--resect {text!r} names no segment")
    return tuple(dict.fromkeys(out))


def resection_plan(resect: str | None = None, *, include_caudate: bool = False,
                   wedges: Sequence[str] = (), ablations: Sequence[str] = ()) -> Plan:
    """Build a plan from command-line style parts.

    ``resect`` is a Brisbane 2000 name (``right-hemihepatectomy``, ...) or a segment list (``"5,6,7,8"``).
    """
    segments: tuple[str, ...] = ()
    name_parts = []
    if resect:
        if re.fullmatch(r"[\divIV,abAB\s]+", resect) and not resect.strip().isalpha():
            segments = _segments_from_list(resect)
            if include_caudate and "liver_segment_1" not in segments:
                segments = (*segments, "liver_segment_1")
            name_parts.append("resection of segments " + ", ".join(s.rsplit("_", 1)[1] for s in segments))
        else:
            try:
                segments = named_resection(resect, include_caudate=include_caudate)
            except KeyError:
                valid = ", ".join([*RESECTIONS, *RESECTION_ALIASES])
                raise PlanError(f"unknown resection {resect!r}; valid names: {valid}, or a segment list "
                                "such as 5,6,7,8") from None
            name_parts.append(resect.strip().lower() + (" with segment 1" if include_caudate else ""))
    w = tuple(parse_zone_spec(s) for s in wedges)
    a = tuple(parse_zone_spec(s) for s in ablations)
    ids = [t for t, _ in w] + [t for t, _ in a]
    if len(ids) != len(set(ids)):
        raise PlanError(f"a tumour is both wedged and ablated, or named twice: {sorted(ids)}")
    name_parts += [f"wedge of tumour {t} ({m:g} mm)" for t, m in w]
    name_parts += [f"ablation of tumour {t} ({m:g} mm)" for t, m in a]
    if not name_parts:
        raise PlanError("no plan: give a resection (--plan NAME or --resect 5,6,7,8), --wedge or --ablate")
    return Plan(" + ".join(name_parts), segments, include_caudate, w, a)
