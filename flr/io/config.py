"""The one reader of configuration files (patient, rulebook, label scheme): JSON or YAML, parsed safely.

Every configuration file flr reads goes through :func:`read_config` (a path) or :func:`parse_config` (text
already in memory, e.g. a built-in rulebook). The rules are the same for every file:

* JSON for ``.json``, YAML for ``.yaml``/``.yml``; any other suffix is refused;
* safe YAML only (plain data: mappings, lists, text, numbers, booleans, dates; never Python objects);
* a key given twice in one mapping is refused, in YAML *and* JSON, with its line (both parsers would
  silently keep the last value);
* the size is bounded (:data:`MAX_CONFIG_BYTES`, checked on the file's size before it is read and again
  on the text), and so are the nesting depth (:data:`MAX_DEPTH`, instead of a ``RecursionError``) and the
  number of values (:data:`MAX_VALUES`: a megabyte of YAML would take seconds to parse);
* YAML aliases may not expand the document by more than :data:`MAX_ALIAS_EXPANSION` values, so an
  alias bomb ("billion laughs") is refused before anything is expanded; a recursive alias is refused;
* JSON's ``NaN`` and ``Infinity`` (which Python's parser accepts, but JSON does not) are refused;
* the text must be UTF-8 (a byte-order mark is allowed); UTF-16 and UTF-32 files are refused with a hint.

Every problem is one :class:`~flr.errors.ConfigFileError` line that names the file (and, where there is
one, the line) and never echoes more than :data:`MAX_SHOWN_CHARS` characters of a value.

>>> parse_config('{"weight_kg": 70}', origin="p.json", fmt="json")
{'weight_kg': 70}
>>> parse_config("weight_kg: 70\\nheight_cm: 175\\nweight_kg: 80\\n", origin="p.yaml", fmt="yaml")
Traceback (most recent call last):
...
flr.errors.ConfigFileError: p.yaml: line 3: key 'weight_kg' is given twice
"""

from __future__ import annotations

import codecs
import json
import json.decoder
import json.scanner
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
import yaml.nodes
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from flr.errors import ConfigFileError, UnsupportedConfigFormatError, short_path

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "ConfigFormat",
    "UnsupportedConfigFormatError",
    "config_format",
    "parse_config",
    "read_config",
    "read_config_bytes",
]

ConfigFormat = Literal["json", "yaml"]

#: Largest configuration file flr reads (bytes). A patient file is about 1 kB, a rulebook about 40 kB.
MAX_CONFIG_BYTES = 1_000_000
#: Deepest nesting of mappings and lists (a patient file nests 3 levels, a rulebook 6).
MAX_DEPTH = 50
#: Most values (mappings, lists, keys, texts and numbers) in one file: a rulebook holds about 700, a label
#: scheme of 10 000 labels 20 000; parsing this many YAML values takes about 0.3 s.
MAX_VALUES = 20_000
#: Most values YAML aliases may add to a document when expanded (an alias bomb adds billions).
MAX_ALIAS_EXPANSION = 10_000
#: Most characters of a value (a key, a token) an error message shows.
MAX_SHOWN_CHARS = 80

_FORMATS: dict[str, ConfigFormat] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
# the pure-Python JSON parser's parts (not in the typing stubs), to find the line of a duplicate key
_JSON_OBJECT: Any = json.decoder.JSONObject  # type: ignore[attr-defined]
_JSON_STRING: Any = json.decoder.scanstring  # type: ignore[attr-defined]
_JSON_WHITESPACE: re.Pattern[str] = json.decoder.WHITESPACE  # type: ignore[attr-defined]
_JSON_SCANNER: Any = json.scanner.py_make_scanner  # type: ignore[attr-defined]
_MERGE_TAG = "tag:yaml.org,2002:merge"


def config_format(path: str | os.PathLike[str], *, what: str) -> ConfigFormat:
    """The format a configuration file's suffix names; any suffix but .json, .yaml, .yml is refused.

    Parameters
    ----------
    path : the file (only its suffix is read, case-insensitively).
    what : what the file is, for the message (``"patient file"``).

    Raises
    ------
    UnsupportedConfigFormatError
        Naming the file and the suffix.

    >>> config_format("rules.YML", what="rulebook")
    'yaml'
    """
    p = Path(path)
    fmt = _FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UnsupportedConfigFormatError(f"{short_path(p)}: a {what} must be .yaml, .yml or .json, not "
                                           f"{_shown(p.suffix) if p.suffix else 'a file without suffix'}")
    return fmt


def read_config_bytes(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a configuration file, its suffix and size checked (the size before reading).

    Parameters
    ----------
    path : the file (``.json``, ``.yaml`` or ``.yml``).
    what : what the file is, for messages (``"patient file"``, ``"rulebook"``, ``"label scheme"``).
    max_bytes : the largest size accepted.
    """
    p = Path(path)
    config_format(p, what=what)
    where = short_path(p)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise ConfigFileError(f"{where}: {what} not found") from None
    except OSError as exc:
        raise ConfigFileError(f"{where}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigFileError(f"{where}: the {what} is a folder, not a file")
    _check_size(info.st_size, max_bytes, where)
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # a file that grew since stat() is still caught
    except OSError as exc:
        raise ConfigFileError(f"{where}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    _check_size(len(data), max_bytes, where)
    return data


def read_config(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Read and parse a configuration file, JSON or YAML by its suffix (see the module docstring for the rules).

    Parameters
    ----------
    path : the file (``.json``, ``.yaml`` or ``.yml``).
    what : what the file is, for messages (``"patient file"``, ``"rulebook"``, ``"label scheme"``).
    max_bytes : the largest size accepted.

    Returns
    -------
    The parsed document (plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``, and
    ``datetime.date``/``datetime.datetime`` for YAML timestamps); ``None`` for an empty YAML file.

    Raises
    ------
    ConfigFileError
        One line naming the file: missing, wrong suffix (:class:`UnsupportedConfigFormatError`), too large,
        not UTF-8, a syntax error, a duplicate key, too deep, an alias bomb.
    """
    fmt = config_format(path, what=what)
    data = read_config_bytes(path, what=what, max_bytes=max_bytes)
    return parse_config(data, origin=str(path), fmt=fmt, max_bytes=max_bytes)


def parse_config(text: str | bytes, *, origin: str, fmt: ConfigFormat, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Parse configuration text with the rules of :func:`read_config` (size, duplicate keys, depth, aliases).

    Parameters
    ----------
    text : the document; ``bytes`` must be UTF-8 (a byte-order mark is dropped).
    origin : what names the text in messages (a path, ``built-in rulebook 'default'``).
    fmt : ``"json"`` or ``"yaml"``.
    max_bytes : the largest size accepted (of the UTF-8 bytes).

    Returns
    -------
    The parsed document, as :func:`read_config` returns it.

    Raises
    ------
    ConfigFileError
        One line starting with ``origin`` (its end, when it is over 160 characters).
    """
    origin = short_path(origin)
    if isinstance(text, bytes):
        _check_size(len(text), max_bytes, origin)
        text = _decode(text, origin)
    else:
        if len(text) > max_bytes:  # a character is at least one byte: no need to encode a huge text
            _check_size(len(text), max_bytes, origin)
        _check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes, origin)
        text = text.removeprefix("\ufeff")
        _check_no_nul(text, origin)
    if fmt == "json":
        return _parse_json(text, origin)
    if fmt == "yaml":
        return _parse_yaml(text, origin)
    raise ValueError(f"fmt must be 'json' or 'yaml', not {fmt!r}")


# --- shared checks -----------------------------------------------------------------------------------------

def _shown(value: object) -> str:
    """``value`` on one line, at most :data:`MAX_SHOWN_CHARS` characters (long values end in ``...``)."""
    s = re.sub(r"\s+", " ", str(value)).strip()
    return s if len(s) <= MAX_SHOWN_CHARS else s[: MAX_SHOWN_CHARS - 3] + "..."


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes} bytes"


def _check_size(n_bytes: int, max_bytes: int, origin: str) -> None:
    if n_bytes > max_bytes:
        raise ConfigFileError(f"{origin}: {_size_text(n_bytes)} is over the {_size_text(max_bytes)} limit of a "
                              "configuration file; is this the right file?")


#: Byte-order marks of the encodings a text editor may save in instead of UTF-8 (UTF-32 first: its
#: little-endian mark starts with UTF-16's).
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
               (codecs.BOM_UTF16_BE, "UTF-16"))


def _decode(data: bytes, origin: str) -> str:
    """UTF-8 text (a byte-order mark dropped); UTF-16/32 and binary files refused with what they look like."""
    encoding = next((name for bom, name in _OTHER_BOMS if data.startswith(bom)), None)
    if encoding is not None:
        raise ConfigFileError(f"{origin}: line 1: not UTF-8 text (byte 0x{data[0]:02x}): the file starts with a "
                              f"{encoding} byte-order mark; save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigFileError(f"{origin}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                              "file as UTF-8") from None
    _check_no_nul(text, origin)
    return text


def _check_no_nul(text: str, origin: str) -> None:
    """Refuse a NUL character: no configuration text holds one, UTF-16 without a byte-order mark is full of them."""
    at = text.find("\0")
    if at >= 0:
        raise ConfigFileError(f"{origin}: line {text.count(chr(10), 0, at) + 1}: not UTF-8 text (a NUL byte: UTF-16 "
                              "text or a binary file?); save the file as UTF-8")


def _depth_error(origin: str, line: int) -> ConfigFileError:
    return ConfigFileError(f"{origin}: line {line}: nested deeper than {MAX_DEPTH} levels of mappings and lists")


def _too_many_values() -> str:
    """The problem of a document with more than :data:`MAX_VALUES` values."""
    return (f"more than {MAX_VALUES} values (keys, items, texts and numbers); a configuration file holds far fewer: "
            "is this the right file?")


class _ProblemError(Exception):
    """A problem found while parsing, with its line (1-based; 0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message, line)
        self.message, self.line = message, line

    def error(self, origin: str) -> ConfigFileError:
        where = f" line {self.line}:" if self.line else ""
        return ConfigFileError(f"{origin}:{where} {self.message}")


def _duplicate(key: object, line: int = 0) -> _ProblemError:
    return _ProblemError(f"key {_shown(repr(key))} is given twice", line)


# --- JSON --------------------------------------------------------------------------------------------------

_JSON_SPECIAL = re.compile(r'[\\"\[\]{}]')


def _check_json_depth(text: str, origin: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` before parsing it (the parser recurses).

    One linear pass over the quotes, backslashes and brackets (brackets inside strings do not count).
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth, in_string, escaped = 0, False, -1
    for m in _JSON_SPECIAL.finditer(text):
        c, i = m.group(), m.start()
        if in_string:
            if i == escaped:
                continue
            if c == "\\":
                escaped = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _depth_error(origin, text.count("\n", 0, i) + 1)
        elif c in "]}":
            depth -= 1


def _unique_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            raise _duplicate(key)
        out[key] = value
    return out


class _ConstantError(_ProblemError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON text (the line is found afterwards)."""


def _refuse_constant(name: str) -> Any:
    """``parse_constant`` of the JSON parser: ``NaN`` and the infinities are not JSON."""
    raise _ConstantError(f"{name} is not a JSON number (write a finite number, or null when it is not known)")


_JSON_CONSTANT = re.compile(r'[\\"]|-?Infinity|NaN')


def _json_constant_line(text: str) -> int:
    """Line (1-based) of the first ``NaN``/``Infinity`` outside strings (one linear pass)."""
    in_string, escaped = False, -1
    for m in _JSON_CONSTANT.finditer(text):
        c, i = m.group(), m.start()
        if in_string:
            if i == escaped:
                continue
            if c == "\\":
                escaped = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c != "\\":
            return text.count("\n", 0, i) + 1
    return 0


def _count_values(doc: Any) -> int:
    """Values in a parsed JSON document, counted as YAML counts its nodes (a mapping's keys included)."""
    count, stack = 0, [doc]
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _parse_json(text: str, origin: str) -> Any:
    _check_json_depth(text, origin)
    try:
        doc = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant)
    except _ConstantError as exc:
        raise _ProblemError(exc.message, _json_constant_line(text)).error(origin) from None
    except _ProblemError as exc:
        line = _json_duplicate_line(text)
        raise (_ProblemError(exc.message, line) if line else exc).error(origin) from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{origin}: not valid JSON: {_shown(exc.msg)} (line {exc.lineno}, column "
                              f"{exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigFileError(f"{origin}: not valid JSON: {_shown(exc)}") from None
    if _count_values(doc) > MAX_VALUES:
        raise ConfigFileError(f"{origin}: {_too_many_values()}")
    return doc


def _json_duplicate_line(text: str) -> int:
    """Line (1-based) of the first key given twice in a JSON text, found by a position-keeping parse."""
    found: list[int] = []

    def parse_object(s_and_end: tuple[str, int], strict: bool, scan_once: Any, object_hook: Any,
                     object_pairs_hook: Any, memo: Any = None) -> tuple[Any, int]:
        del object_hook, object_pairs_hook  # the checking hook below replaces them
        s, start = s_and_end

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and not found:
                    found.append(_second_key_position(s, start, key, scan_once))
                seen.add(key)
            return dict(items)

        return _JSON_OBJECT(s_and_end, strict, scan_once, None, pairs, memo)

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object  # type: ignore[attr-defined]  # read by the pure-Python scanner
    decoder.scan_once = _JSON_SCANNER(decoder)  # type: ignore[attr-defined]
    decoder.decode(text)
    return text.count("\n", 0, found[0]) + 1 if found else 0


def _skip_space(s: str, pos: int) -> int:
    m = _JSON_WHITESPACE.match(s, pos)
    return m.end() if m else pos


def _second_key_position(s: str, pos: int, key: str, scan_once: Any) -> int:
    """Index of the second ``key`` among the members of the (valid) JSON object whose ``{`` ends at ``pos``."""
    seen = False
    pos = _skip_space(s, pos)
    while pos < len(s) and s[pos] == '"':
        key_pos = pos
        name, pos = _JSON_STRING(s, pos + 1)
        if name == key:
            if seen:
                return key_pos
            seen = True
        pos = _skip_space(s, _skip_space(s, pos) + 1)  # past the ':'
        _, pos = scan_once(s, pos)
        pos = _skip_space(s, pos)
        if s[pos] != ",":
            break
        pos = _skip_space(s, pos + 1)
    return pos


# --- YAML --------------------------------------------------------------------------------------------------

class _Checks(Composer, SafeConstructor, Resolver):
    """A safe loader's composing and constructing, bounding the nesting depth (duplicate keys: below).

    The Python composer comes before the event source in the method order, so the depth check sees every
    mapping and list whichever parser makes the events.
    """

    def __init__(self, stream: str) -> None:
        self._start_events(stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.depth = 0
        self.values = 0

    def _start_events(self, stream: str) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the event source (libyaml's or the pure-Python parser)
        def peek_event(self) -> yaml.Event: ...

        def dispose(self) -> None: ...

    def _line(self) -> int:
        """Line (1-based) of the next event; 0 when unknown."""
        mark = self.peek_event().start_mark
        return mark.line + 1 if mark is not None else 0

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _ProblemError(f"nested deeper than {MAX_DEPTH} levels of mappings and lists", self._line())

    def compose_node(self, parent: yaml.nodes.Node | None, index: Any) -> yaml.nodes.Node | None:
        """Compose one node, refusing the document once it holds more than :data:`MAX_VALUES` values."""
        self.values += 1  # an alias counts once here; what it expands to is bounded by _check_aliases
        if self.values > MAX_VALUES:
            raise _ProblemError(_too_many_values(), self._line())
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> yaml.nodes.SequenceNode:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> yaml.nodes.MappingNode:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.nodes.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # a timestamp like 2026-13-01, an integer of more than 4300 digits
            what = _shown(node.value) if isinstance(node, yaml.nodes.ScalarNode) else f"a {type(node).__name__}"
            raise _ProblemError(f"{what} is not a valid value ({_shown(exc)})", node.start_mark.line + 1) from None


def _construct_unique_mapping(loader: _Checks, node: yaml.nodes.MappingNode) -> Iterator[dict[Any, Any]]:
    """The safe mapping constructor, refusing a key given twice (merged ``<<`` keys may be overridden)."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if duplicate:
            raise _duplicate(key, key_node.start_mark.line + 1)
        seen.add(key)
    yield from loader.construct_yaml_map(node)


_Checks.add_constructor(  # type: ignore[type-var]  # the stubs know only PyYAML's own loader classes
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


class _PyLoader(_Checks, Reader, Scanner, Parser):
    """YAML events from the pure-Python parser (where PyYAML was built without libyaml)."""

    def _start_events(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


_Loader: type[_Checks] = _PyLoader
try:  # libyaml's parser makes the same events about 8 times faster
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    pass
else:
    class _CLoader(_Checks, CParser):
        """YAML events from libyaml's parser; composing (and its checks) stays in Python."""

        def _start_events(self, stream: str) -> None:
            CParser.__init__(self, stream)

    _Loader = _CLoader


def _children(node: yaml.nodes.Node) -> list[yaml.nodes.Node]:
    if isinstance(node, yaml.nodes.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.nodes.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.nodes.Node) -> None:
    """Refuse a recursive alias, and aliases that expand the document by over :data:`MAX_ALIAS_EXPANSION` values.

    Sizes are computed on the composed node graph, where an alias is the node it names (shared, not
    copied): linear in the document's size, whatever the expansion would be.
    """
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    entered = 0
    stack: list[tuple[yaml.nodes.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            open_nodes.discard(key)
            if size[key] - entered > MAX_ALIAS_EXPANSION:
                raise _ProblemError(f"aliases expand the document by more than {MAX_ALIAS_EXPANSION} values (an alias "
                               "bomb?); write the values out instead of repeating anchors")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _ProblemError("an alias refers to a mapping or list that contains it (a recursive structure)",
                           node.start_mark.line + 1)
        open_nodes.add(key)
        entered += 1
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _parse_yaml(text: str, origin: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except _ProblemError as exc:
        raise exc.error(origin) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = exc.problem or exc.context or type(exc).__name__
        if exc.context and exc.problem and exc.context.startswith("expected"):
            problem = f"{exc.context}, {exc.problem}"   # "expected a single document ..., but found another"
        if "maximum nesting depth" in problem:  # libyaml's own limit (1000 levels), met before ours
            raise _depth_error(origin, mark.line + 1 if mark is not None else 0) from None
        raise ConfigFileError(f"{origin}: not valid YAML: {_shown(problem)}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{origin}: not valid YAML: {_shown(exc)}") from None
    finally:
        loader.dispose()
