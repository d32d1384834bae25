"""Label schemes: which label id of a file means which canonical structure.

A scheme maps a file's integer label ids to flr's canonical structure names (``liver``,
``liver_segment_1`` .. ``liver_segment_8`` (``4a``/``4b`` optional), ``tumor``, ``portal_vein``,
``hepatic_artery``, ``hepatic_vein``, ``bile_duct``, ``inferior_vena_cava``, ``hepatic_vessel``).
Built-in schemes are JSON files beside this module, each with its source; ``other_labels`` lists ids the
tool that made the map knows but flr does not use (they are ignored without a warning). Users pass their
own scheme as a JSON or YAML file ``{id: name}`` (or ``{labels: {id: name}, other_labels: ..., description:
..., source: ..., notes: [...]}``), read by :mod:`flr.io.config`; label ids are integers from 1 to
:data:`MAX_LABEL_ID`, names texts of at most :data:`MAX_NAME_CHARS` characters, and every problem of a file
is reported at once, in one line.

>>> s = builtin_scheme("lits")
>>> s.labels
{1: 'liver', 2: 'tumor'}
>>> canonical_name("Segment IVa")
'liver_segment_4a'
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from flr.anatomy import SEGMENT_NAMES, segment_id_of
from flr.errors import (
    ConfigFileError,
    SchemeError,
    SchemeFileError,
    UnsupportedConfigFormatError,
    join_problems,
    quote,
    short_path,
)

VESSEL_NAMES: tuple[str, ...] = (
    "portal_vein",
    "hepatic_artery",
    "hepatic_vein",
    "bile_duct",
    "inferior_vena_cava",
    "hepatic_vessel",
)
CANONICAL_NAMES: tuple[str, ...] = ("liver", *SEGMENT_NAMES, "tumor", *VESSEL_NAMES)
#: Structures whose union is the liver (parenchyma and the tumours inside it).
LIVER_PARTS: frozenset[str] = frozenset(("liver", "tumor", *SEGMENT_NAMES))

BUILTIN_SCHEMES: tuple[str, ...] = (
    "totalseg-total",
    "totalseg-total-v1",
    "totalseg-liver-segments",
    "totalseg-liver-vessels",
    "lits",
    "msd-liver",
    "msd-hepaticvessel",
)

#: Largest label id: flr reads label maps as 32-bit integers (:mod:`flr.io` refuses larger ids).
MAX_LABEL_ID = 2**31 - 1
#: Longest structure name in a scheme (TotalSegmentator's longest is 40 characters).
MAX_NAME_CHARS = 100
#: The fields of a scheme file in its long form (the built-in schemes' form).
SCHEME_FIELDS = ("name", "description", "source", "labels", "other_labels", "notes")
#: A label id written as text: ASCII digits only (``int()`` would also take ``1_000`` and other scripts' digits).
_LABEL_ID_TEXT = re.compile(r"[+-]?[0-9]+")

_ALIASES = {
    "tumour": "tumor", "tumors": "tumor", "tumours": "tumor", "lesion": "tumor", "lesions": "tumor",
    "liver_tumor": "tumor", "liver_tumour": "tumor", "cancer": "tumor", "metastasis": "tumor",
    "metastases": "tumor", "ivc": "inferior_vena_cava", "vena_cava": "inferior_vena_cava",
    "venacava": "inferior_vena_cava", "portalvein": "portal_vein", "pv": "portal_vein",
    "portal_vein_and_splenic_vein": "portal_vein", "hepatic_veins": "hepatic_vein",
    "hepaticvein": "hepatic_vein", "artery": "hepatic_artery", "hepatic_arteries": "hepatic_artery",
    "biliary": "bile_duct", "bile_ducts": "bile_duct", "biliary_tree": "bile_duct",
    "liver_vessels": "hepatic_vessel", "vessel": "hepatic_vessel", "vessels": "hepatic_vessel",
    "hepatic_vessels": "hepatic_vessel", "caudate": "liver_segment_1", "caudate_lobe": "liver_segment_1",
}
_SEGMENT_RE = re.compile(
    r"^(?:liver_)?(?:couinaud_)?seg(?:ment)?_?([1-8]|[1-8][ab]|i|ii|iii|iv|iva|ivb|v|vi|vii|viii)$")


def normalise_name(name: str) -> str:
    """Lower-case, words joined by ``_`` (``"Portal Vein"`` -> ``"portal_vein"``)."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def canonical_name(name: str) -> str:
    """Map a structure name to flr's canonical name; names flr does not know keep their normalised form."""
    n = normalise_name(name)
    n = _ALIASES.get(n, n)
    m = _SEGMENT_RE.match(n)
    if m:
        return f"liver_segment_{segment_id_of(m.group(1))}"
    return n


@dataclass(frozen=True)
class LabelScheme:
    """``labels``: id -> canonical name; ``other_labels``: ids known to be irrelevant (ignored quietly)."""

    name: str
    labels: Mapping[int, str]
    other_labels: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    notes: tuple[str, ...] = ()


def _label_id(key: Any) -> int | str:
    """The label id a key of a scheme names, or what is wrong with it."""
    if isinstance(key, int) and not isinstance(key, bool):
        label = key
    elif isinstance(key, str) and _LABEL_ID_TEXT.fullmatch(key.strip()):
        digits = key.strip()
        if len(digits.lstrip("+-").lstrip("0")) > len(str(MAX_LABEL_ID)):  # no int() of a thousand digits
            return f"label id {quote(key)} is too large (at most {MAX_LABEL_ID}: label maps hold 32-bit integers)"
        label = int(digits)
    else:
        close = difflib.get_close_matches(key, SCHEME_FIELDS, n=1) if isinstance(key, str) and len(key) < 40 else []
        return f"label id {quote(key)} is not an integer" + (f" (did you mean {close[0]}?)" if close else "")
    if label <= 0:
        return f"label id {label} must be positive (0 is background)"
    if label > MAX_LABEL_ID:
        return f"label id {quote(label)} is too large (at most {MAX_LABEL_ID}: label maps hold 32-bit integers)"
    return label


def _structure_problem(label: int, value: Any) -> str | None:
    """What is wrong with the structure name of ``label`` (``None`` when it is a usable name)."""
    if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
        return f"label {label}: a structure name of {len(value)} characters is too long (at most {MAX_NAME_CHARS})"
    if not isinstance(value, str) or not normalise_name(value):
        return f"label {label} needs a structure name, got {quote(value)}"
    return None


def _parse_mapping(raw: Any, where: str) -> dict[int, str]:
    """``{label id: canonical name}`` from a scheme's mapping; every problem in one :class:`SchemeError` line."""
    if not isinstance(raw, Mapping) or not raw:
        raise SchemeError(f"{short_path(where)}: expected a non-empty mapping {{label id: structure name}}")
    out: dict[int, str] = {}
    problems: list[str] = []
    for key, value in raw.items():
        label = _label_id(key)
        problem = label if isinstance(label, str) else _structure_problem(label, value)
        if problem is None and label in out:
            problem = f"label id {label} is given twice"
        if problem is not None:
            problems.append(problem)
        elif isinstance(label, int):
            out[label] = canonical_name(value)
    if problems:
        raise SchemeError(join_problems(f"{short_path(where)}: ", problems[:20], total=len(problems)))
    return out


def builtin_scheme(name: str) -> LabelScheme:
    """Load a built-in scheme by name (see :data:`BUILTIN_SCHEMES`)."""
    if name not in BUILTIN_SCHEMES:
        raise SchemeError(f"unknown label scheme {quote(name)}; built-in schemes: {', '.join(BUILTIN_SCHEMES)}")
    from flr.io.config import parse_config  # here: flr.io imports this module

    text = resources.files("flr.schemes").joinpath(f"{name}.json").read_bytes()
    data = parse_config(text, origin=f"built-in scheme {name}", fmt="json")
    return LabelScheme(
        name=name,
        labels=_parse_mapping(data["labels"], f"built-in scheme {name}"),
        other_labels={int(k): v for k, v in data.get("other_labels", {}).items()},
        description=data.get("description", ""),
        source=data.get("source", ""),
        notes=tuple(data.get("notes", ())),
    )


def load_scheme_file(path: str | os.PathLike[str]) -> LabelScheme:
    """Read a user scheme: JSON or YAML, either ``{id: name}`` or ``{"labels": {id: name}, ...}``.

    Parameters
    ----------
    path : the scheme file (``.json``, ``.yaml`` or ``.yml``).

    The file is read by :func:`flr.io.config.read_config`: a key given twice, a wrong suffix, an oversized
    or malformed file raise :class:`SchemeFileError` (``s.json: malformed label scheme: line 4: key '1' is
    given twice``).
    """
    from flr.io.config import read_config  # here: flr.io imports this module

    path = Path(path)
    where = short_path(path)
    if not _is_file(path):
        raise SchemeError(f"{where}: label scheme file not found")
    try:
        data = read_config(path, what="label scheme")
    except UnsupportedConfigFormatError as exc:
        raise SchemeFileError(str(exc)) from None
    except ConfigFileError as exc:
        detail = str(exc).removeprefix(f"{where}: ")
        raise SchemeFileError(f"{where}: malformed label scheme: {detail}") from None
    if isinstance(data, Mapping) and "labels" in data:
        _check_long_form(data, where)
        labels = _parse_mapping(data["labels"], str(path))
        other = _parse_mapping(data["other_labels"], str(path)) if data.get("other_labels") else {}
        return LabelScheme(path.name, labels, other, data.get("description") or "", data.get("source") or "",
                           tuple(data.get("notes") or ()))
    return LabelScheme(path.name, _parse_mapping(data, str(path)))


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the system cannot look up (too long: ``OSError``)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name the system cannot look up."""
    try:
        return path.exists()
    except OSError:
        return False


def _check_long_form(data: Mapping[Any, Any], where: str) -> None:
    """Refuse unknown fields of a scheme in its long form, and descriptions, sources and notes that are not text."""
    problems = []
    for key in data:
        if key not in SCHEME_FIELDS:
            close = difflib.get_close_matches(key, SCHEME_FIELDS, n=1) if isinstance(key, str) and len(key) < 40 else []
            hint = f"did you mean {close[0]}?" if close else f"a scheme has {', '.join(SCHEME_FIELDS)}"
            problems.append(f"unknown field {quote(key)} ({hint})")
    problems.extend(f"{name} must be a text, not {quote(data[name])}" for name in ("name", "description", "source")
                    if data.get(name) is not None and not isinstance(data[name], str))
    notes = data.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        problems.append(f"notes must be a list of texts, not {quote(notes)}")
    if problems:
        raise SchemeError(join_problems(f"{where}: ", problems[:20], total=len(problems)))


def resolve_scheme(spec: str | Path | LabelScheme | Mapping[int, str]) -> LabelScheme:
    """A scheme from a built-in name, a file path, a mapping or a scheme."""
    if isinstance(spec, LabelScheme):
        return spec
    if isinstance(spec, Mapping):
        return LabelScheme("custom", _parse_mapping(spec, "label scheme"))
    if str(spec) in BUILTIN_SCHEMES:
        return builtin_scheme(str(spec))
    path = Path(spec)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or _exists(path):
        return load_scheme_file(path)
    raise SchemeError(f"unknown label scheme {quote(str(spec))}; built-in schemes: {', '.join(BUILTIN_SCHEMES)}, "
                      "or give a JSON/YAML file {id: name}")


def split_labels_argument(arg: str) -> tuple[str, str | None]:
    """Split ``PATH[:SCHEME]`` (the command line's ``--labels``) into path and scheme.

    The part after the last ``:`` is a scheme when it is a built-in name or names a JSON/YAML file.

    >>> split_labels_argument("seg.nii.gz:lits")
    ('seg.nii.gz', 'lits')
    >>> split_labels_argument("liver.nii.gz")
    ('liver.nii.gz', None)
    """
    head, sep, tail = arg.rpartition(":")
    if sep and head and (tail in BUILTIN_SCHEMES or tail == "totalseg"
                         or Path(tail).suffix.lower() in (".json", ".yaml", ".yml")):
        return head, tail
    return arg, None
