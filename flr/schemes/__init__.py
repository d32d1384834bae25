"""Label schemes: which label id of a file means which canonical structure.

A scheme maps a file's integer label ids to flr's canonical structure names (``liver``,
``liver_segment_1`` .. ``liver_segment_8`` (``4a``/``4b`` optional), ``tumor``, ``portal_vein``,
``hepatic_artery``, ``hepatic_vein``, ``bile_duct``, ``inferior_vena_cava``, ``hepatic_vessel``).
Built-in schemes are JSON files beside this module, each with its source; ``other_labels`` lists ids the
tool that made the map knows but flr does not use (they are ignored without a warning). Users pass their
own scheme as a JSON or YAML file ``{id: name}``.

>>> s = builtin_scheme("lits")
>>> s.labels
{1: 'liver', 2: 'tumor'}
>>> canonical_name("Segment IVa")
'liver_segment_4a'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from flr.anatomy import SEGMENT_NAMES, segment_id_of
from flr.errors import ConfigFileError, SchemeError, SchemeFileError, UnsupportedConfigFormatError

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


def _parse_mapping(raw: Any, where: str) -> dict[int, str]:
    if not isinstance(raw, Mapping) or not raw:
        raise SchemeError(f"{where}: expected a non-empty mapping {{label id: structure name}}")
    out: dict[int, str] = {}
    for key, value in raw.items():
        try:
            label = int(str(key).strip())
        except ValueError:
            raise SchemeError(f"{where}: label id {key!r} is not an integer") from None
        if label <= 0:
            raise SchemeError(f"{where}: label id {label} must be positive (0 is background)")
        if not isinstance(value, str) or not normalise_name(value):
            raise SchemeError(f"{where}: label {label} needs a structure name, got {value!r}")
        if label in out:
            raise SchemeError(f"{where}: label id {label} is given twice")
        out[label] = canonical_name(value)
    return out


def builtin_scheme(name: str) -> LabelScheme:
    """Load a built-in scheme by name (see :data:`BUILTIN_SCHEMES`)."""
    if name not in BUILTIN_SCHEMES:
        raise SchemeError(f"unknown label scheme {name!r}; built-in schemes: {', '.join(BUILTIN_SCHEMES)}")
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
    if not path.is_file():
        raise SchemeError(f"{path}: label scheme file not found")
    try:
        data = read_config(path, what="label scheme")
    except UnsupportedConfigFormatError as exc:
        raise SchemeFileError(str(exc)) from None
    except ConfigFileError as exc:
        detail = str(exc).removeprefix(f"{path}: ")
        raise SchemeFileError(f"{path}: malformed label scheme: {detail}") from None
    if isinstance(data, Mapping) and "labels" in data:
        labels = _parse_mapping(data["labels"], str(path))
        other = _parse_mapping(data["other_labels"], str(path)) if data.get("other_labels") else {}
        return LabelScheme(path.name, labels, other, str(data.get("description", "")),
                           str(data.get("source", "")), tuple(data.get("notes", ())))
    return LabelScheme(path.name, _parse_mapping(data, str(path)))


def resolve_scheme(spec: str | Path | LabelScheme | Mapping[int, str]) -> LabelScheme:
    """A scheme from a built-in name, a file path, a mapping or a scheme."""
    if isinstance(spec, LabelScheme):
        return spec
    if isinstance(spec, Mapping):
        return LabelScheme("custom", _parse_mapping(spec, "label scheme"))
    if str(spec) in BUILTIN_SCHEMES:
        return builtin_scheme(str(spec))
    path = Path(spec)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        return load_scheme_file(path)
    raise SchemeError(f"unknown label scheme {str(spec)!r}; built-in schemes: {', '.join(BUILTIN_SCHEMES)}, "
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
