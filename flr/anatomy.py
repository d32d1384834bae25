"""Couinaud anatomy flr checks measurements against (textbook, as a check only).

Source: ``../shared/clinical-reference.md`` (Couinaud anatomy; textbook face adjacency). Real livers
vary; flr measures adjacency from the label map and uses this table only to flag surprising contacts.

>>> textbook_adjacent("liver_segment_6", "liver_segment_7")
True
>>> textbook_adjacent("liver_segment_2", "liver_segment_6")
False
"""

from __future__ import annotations

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
#: Source: IHPBA Brisbane 2000 terminology (Strasberg, HPB 2000;2:333), as tabulated in
#: ../shared/clinical-reference.md. Segment I is added only on request ("+/- I").
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

SEGMENT_IDS: tuple[str, ...] = ("1", "2", "3", "4", "4a", "4b", "5", "6", "7", "8")


def segment_name(segment_id: str | int) -> str:
    """Canonical name of a Couinaud segment id (``5`` -> ``liver_segment_5``, ``"IVa"`` -> ``..._4a``)."""
    text = str(segment_id).strip().lower()
    roman = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "iva": "4a", "ivb": "4b", "v": "5", "vi": "6",
             "vii": "7", "viii": "8"}
    text = roman.get(text, text)
    if text not in SEGMENT_IDS:
        raise ValueError(f"{segment_id!r} is not a Couinaud segment (1-8, 4a, 4b)")
    return f"liver_segment_{text}"


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
