"""Resection plans: named Brisbane 2000 resections, segment lists, wedges and ablations, combined.

>>> p = resection_plan("right-hemihepatectomy", wedges=["2:5"])
>>> p.resected_segments, p.wedges
(('liver_segment_5', 'liver_segment_6', 'liver_segment_7', 'liver_segment_8'), (Zone(tumor_id=2, margin_mm=5.0),))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from flr.anatomy import RESECTION_ALIASES, RESECTIONS, named_resection, segment_list, segment_name
from flr.errors import PlanError
from flr.model import FrozenModel
from flr.zones import parse_zone_spec


class Zone(FrozenModel):
    """A wedge or an ablation: the tumour it treats and the margin (mm) around it."""

    tumor_id: int = Field(ge=1)
    margin_mm: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        """Accept ``(tumor_id, margin_mm)`` pairs as well as the JSON object."""
        if isinstance(data, (tuple, list)) and len(data) == 2:
            return {"tumor_id": data[0], "margin_mm": data[1]}
        return data


class Plan(FrozenModel):
    """What the surgeon removes or treats. Segment names are canonical; zones name a tumour and a margin."""

    name: str
    resected_segments: tuple[str, ...] = ()
    include_caudate: bool = False
    wedges: tuple[Zone, ...] = ()
    ablations: tuple[Zone, ...] = ()
    keep_plane_vessels: bool = Field(
        default=True, description="vessels on the transection plane that also serve the remnant are kept (the middle "
                                  "hepatic vein in a right hemihepatectomy); false takes them with the specimen")

    @property
    def zones(self) -> tuple[Zone, ...]:
        """Wedges, then ablations."""
        return (*self.wedges, *self.ablations)


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
                   wedges: Sequence[str] = (), ablations: Sequence[str] = (), keep_plane_vessels: bool = True) -> Plan:
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
            name_parts.append("resection of segments " + segment_list(segments))
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
    if not keep_plane_vessels:
        name_parts[0] += " taking the veins on the transection plane"
    return Plan(name=" + ".join(name_parts), resected_segments=segments, include_caudate=include_caudate,
                wedges=tuple(Zone(tumor_id=t, margin_mm=m) for t, m in w),
                ablations=tuple(Zone(tumor_id=t, margin_mm=m) for t, m in a), keep_plane_vessels=keep_plane_vessels)
