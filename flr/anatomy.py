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
