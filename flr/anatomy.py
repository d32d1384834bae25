"""Couinaud anatomy: the segment registry, textbook adjacency (as a check only) and Brisbane 2000 resections.

Source: Couinaud anatomy and textbook face adjacency (Couinaud C, Le foie: etudes anatomiques et chirurgicales,
Masson 1957; Brisbane 2000 terminology, Strasberg SM et al., HPB 2000;2:333). Real livers
vary; flr measures adjacency from the label map and uses the textbook table only to flag surprising
contacts.

The segment registry :data:`SEGMENTS` is the one place that spells a segment: its integer code (used in
territory maps), canonical name, short label, Roman numeral, display colour and SNOMED CT code.

>>> SEGMENT_BY_NAME["liver_segment_4a"].roman, segment_short("liver_segment_4a"), roman_numeral("liver_segment_7")
('IVa', '4a', 'VII')
>>> textbook_adjacent("liver_segment_6", "liver_segment_7")
True
>>> textbook_adjacent("liver_segment_2", "liver_segment_6")
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One Couinaud segment (or the IVa/IVb halves of IV).

    ``code`` is the value of the segment in flr's territory maps (1-8, IVa 9, IVb 10); ``snomed`` the
    SNOMED CT concept id "Couinaud hepatic segment I..VIII" as pydicom's DICOM code dictionary gives it
    (``pydicom.sr.codedict.codes.SCT.CouinaudHepaticSegmentI`` ...), None for IVa/IVb, which have none there.
    """

    code: int
    name: str
    short: str
    roman: str
    colour: str
    snomed: str | None


#: Every segment flr knows, in code order. Colours: one per segment, no grey (resected) and no pure red
#: (tumours), so figures stay readable.
SEGMENTS: tuple[Segment, ...] = (
    Segment(1, "liver_segment_1", "1", "I", "#ff6a00", "71133005"),
    Segment(2, "liver_segment_2", "2", "II", "#ff47b5", "277956007"),
    Segment(3, "liver_segment_3", "3", "III", "#ffc20a", "277957003"),
    Segment(4, "liver_segment_4", "4", "IV", "#00d5ff", "277958008"),
    Segment(5, "liver_segment_5", "5", "V", "#9a6324", "277959000"),
    Segment(6, "liver_segment_6", "6", "VI", "#1f6fff", "277960005"),
    Segment(7, "liver_segment_7", "7", "VII", "#2eb82e", "277961009"),
    Segment(8, "liver_segment_8", "8", "VIII", "#a64dff", "277962002"),
    Segment(9, "liver_segment_4a", "4a", "IVa", "#b8e600", None),
    Segment(10, "liver_segment_4b", "4b", "IVb", "#00806b", None),
)
SEGMENT_NAMES: tuple[str, ...] = tuple(s.name for s in SEGMENTS)
SEGMENT_BY_NAME: Mapping[str, Segment] = {s.name: s for s in SEGMENTS}
SEGMENT_BY_CODE: Mapping[int, Segment] = {s.code: s for s in SEGMENTS}
#: Territory-map code -> canonical segment name.
SEGMENT_CODES: Mapping[int, str] = {s.code: s.name for s in SEGMENTS}
#: Any spelling of a segment id a user or a file may use (``"iva"``, ``"4A"``, ``"VIII"``) -> short label.
_SPELLINGS: Mapping[str, str] = {
    **{s.short: s.short for s in SEGMENTS},
    **{s.roman.lower(): s.short for s in SEGMENTS},
}
def segment_short(name: str) -> str:
    """Short label of a canonical segment name (``liver_segment_4a`` -> ``4a``); other names unchanged."""
    seg = SEGMENT_BY_NAME.get(name)
    return seg.short if seg else name


def roman_numeral(name: str) -> str:
    """Roman numeral of a canonical segment name (``liver_segment_4a`` -> ``IVa``); other names unchanged."""
    seg = SEGMENT_BY_NAME.get(name)
    return seg.roman if seg else name


def segment_list(names: Iterable[str], sep: str = ", ") -> str:
    """Short labels joined: ``["liver_segment_2", "liver_segment_3"]`` -> ``"2, 3"``."""
    return sep.join(segment_short(n) for n in names)


def segment_id_of(text: str | int) -> str | None:
    """Short label of any spelling of a segment id (``"IVa"``, ``4``, ``"viii"``), or None."""
    return _SPELLINGS.get(str(text).strip().lower())


#: Textbook face adjacency between Couinaud segments (IVa/IVb split; "6" next to "1" is variable).
_TEXTBOOK: dict[str, tuple[str, ...]] = {
    "1": ("2", "4a", "7", "8", "6"),
    "2": ("1", "3", "4a"),
    "3": ("2", "4b"),
    "4a": ("1", "2", "4b", "8"),
    "4b": ("3", "4a", "5"),
    "5": ("4b", "6", "8"),
    "6": ("5", "7"),
    "7": ("1", "6", "8"),
    "8": ("1", "4a", "5", "7"),
}
#: Pairs the textbook calls variable (present in some livers, absent in others).
VARIABLE_PAIRS: frozenset[frozenset[str]] = frozenset({frozenset(("1", "6"))})


def _segment_id(name: str) -> str:
    prefix = "liver_segment_"
    if not name.startswith(prefix):
        raise ValueError(f"not a liver segment name: {name!r}")
    return name[len(prefix):]


def _expand(seg: str) -> tuple[str, ...]:
    return ("4a", "4b") if seg == "4" else (seg,)


def textbook_adjacent(a: str, b: str) -> bool:
    """Whether the textbook expects segments ``a`` and ``b`` (canonical names) to share a face.

    Segment IV unsplit (``liver_segment_4``) is adjacent to whatever IVa or IVb is adjacent to.
    """
    sa, sb = _segment_id(a), _segment_id(b)
    for x in _expand(sa):
        for y in _expand(sb):
            if x != y and (y in _TEXTBOOK.get(x, ()) or x in _TEXTBOOK.get(y, ())):
                return True
    return False


# --- Brisbane 2000 terminology of liver resections ------------------------------------------------
#: Source: IHPBA Brisbane 2000 terminology (Strasberg SM et al., HPB 2000;2:333). Segment I is added only on
#: request ("+/- I").
BRISBANE_SOURCE = "IHPBA Brisbane 2000 terminology of liver anatomy and resections, HPB 2000;2:333"
RESECTIONS: dict[str, tuple[int, ...]] = {
    "right-hemihepatectomy": (5, 6, 7, 8),
    "left-hemihepatectomy": (2, 3, 4),
    "right-anterior-sectionectomy": (5, 8),
    "right-posterior-sectionectomy": (6, 7),
    "left-medial-sectionectomy": (4,),
    "left-lateral-sectionectomy": (2, 3),
    "right-trisectionectomy": (4, 5, 6, 7, 8),
    "left-trisectionectomy": (2, 3, 4, 5, 8),
    "central-hepatectomy": (4, 5, 8),
}
#: Common synonyms (Brisbane 2000 gives them as equivalent terms).
RESECTION_ALIASES: dict[str, str] = {
    "right-hepatectomy": "right-hemihepatectomy",
    "left-hepatectomy": "left-hemihepatectomy",
    "extended-right-hemihepatectomy": "right-trisectionectomy",
    "extended-left-hemihepatectomy": "left-trisectionectomy",
    "segmentectomy-4": "left-medial-sectionectomy",
    "bisegmentectomy-2-3": "left-lateral-sectionectomy",
    "mesohepatectomy": "central-hepatectomy",
}

def segment_name(segment_id: str | int) -> str:
    """Canonical name of a Couinaud segment id (``5`` -> ``liver_segment_5``, ``"IVa"`` -> ``..._4a``)."""
    short = segment_id_of(segment_id)
    if short is None:
        raise ValueError(f"{segment_id!r} is not a Couinaud segment (1-8, 4a, 4b)")
    return f"liver_segment_{short}"


def named_resection(name: str, *, include_caudate: bool = False) -> tuple[str, ...]:
    """Segment names removed by a Brisbane 2000 resection (``include_caudate`` adds segment I).

    >>> named_resection("right-hemihepatectomy")
    ('liver_segment_5', 'liver_segment_6', 'liver_segment_7', 'liver_segment_8')
    """
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = RESECTION_ALIASES.get(key, key)
    if key not in RESECTIONS:
        raise KeyError(key)
    ids = RESECTIONS[key] + ((1,) if include_caudate and 1 not in RESECTIONS[key] else ())
    return tuple(segment_name(i) for i in sorted(ids))
