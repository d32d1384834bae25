"""The one reader of configuration files (patient, rulebook, label scheme): JSON or YAML, parsed safely.

Every configuration file flr reads goes through :func:`read_config` (a path) or :func:`parse_config` (text
already in memory, e.g. a built-in rulebook). The rules are the same for every file:

* JSON for ``.json``, YAML for ``.yaml``/``.yml``; any other suffix is refused;
* safe YAML only (plain data: mappings, lists, text, numbers, booleans, dates; never Python objects);
* a key given twice in one mapping is refused, in YAML *and* JSON, with its line (both parsers would
  silently keep the last value);
* the size is bounded (:data:`MAX_CONFIG_BYTES`, checked on the file's size before it is read and again
  on the text), and so is the nesting depth (:data:`MAX_DEPTH`, instead of a ``RecursionError``);
* YAML aliases may not expand the document by more than :data:`MAX_ALIAS_EXPANSION` values, so an
  alias bomb ("billion laughs") is refused before anything is expanded; a recursive alias is refused;
* the text must be UTF-8 (a byte-order mark is allowed).

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

from flr.errors import ConfigFileError, UnsupportedConfigFormatError

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
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
        raise UnsupportedConfigFormatError(f"{p}: a {what} must be .yaml, .yml or .json, not "
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
    try:
        info = p.stat()
    except FileNotFoundError:
        raise ConfigFileError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigFileError(f"{p}: the {what} is a folder, not a file")
    _check_size(info.st_size, max_bytes, str(p))
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # a file that grew since stat() is still caught
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    _check_size(len(data), max_bytes, str(p))
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
        One line starting with ``origin``.
    """
    if isinstance(text, bytes):
        _check_size(len(text), max_bytes, origin)
        text = _decode(text, origin)
    else:
        if len(text) > max_bytes:  # a character is at least one byte: no need to encode a huge text
            _check_size(len(text), max_bytes, origin)
        _check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes, origin)
        text = text.removeprefix("\ufeff")
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


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigFileError(f"{origin}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                              "file as UTF-8") from None


def _depth_error(origin: str, line: int) -> ConfigFileError:
    return ConfigFileError(f"{origin}: line {line}: nested deeper than {MAX_DEPTH} levels of mappings and lists")


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


def _parse_json(text: str, origin: str) -> Any:
    _check_json_depth(text, origin)
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _ProblemError as exc:
        line = _json_duplicate_line(text)
        raise (_ProblemError(exc.message, line) if line else exc).error(origin) from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{origin}: not valid JSON: {_shown(exc.msg)} (line {exc.lineno}, column "
                              f"{exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigFileError(f"{origin}: not valid JSON: {_shown(exc)}") from None


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

    def _start_events(self, stream: str) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the event source (libyaml's or the pure-Python parser)
        def peek_event(self) -> yaml.Event: ...

        def dispose(self) -> None: ...

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _ProblemError(f"nested deeper than {MAX_DEPTH} levels of mappings and lists",
                                mark.line + 1 if mark is not None else 0)

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
            raise _ProblemError(f"{_shown(node.value)} is not a valid value ({_shown(exc)})",
                           node.start_mark.line + 1) from None


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
        raise ConfigFileError(f"{origin}: not valid YAML: {_shown(problem)}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{origin}: not valid YAML: {_shown(exc)}") from None
    finally:
        loader.dispose()
