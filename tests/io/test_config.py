"""The one configuration reader (flr.io.config): JSON/YAML by suffix, duplicate keys, size, depth, aliases.

YAML cases run with both event sources (libyaml's parser and the pure-Python one), since which one a user
has depends on how PyYAML was built.
"""

from __future__ import annotations

import codecs
import datetime as dt
import time

import pytest
import yaml

from flr.errors import (
    ConfigFileError,
    InputFileError,
    PatientValueError,
    RulebookError,
    SchemeError,
    UnsupportedFormatError,
)
from flr.io import config
from flr.io.config import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    UnsupportedConfigFormatError,
    config_format,
    parse_config,
    read_config,
)
from flr.patient import load_patient
from flr.rules import load_rulebook
from flr.schemes import load_scheme_file
from tests.test_rules import MINIMAL

LOADERS = [config._PyLoader] + ([config._CLoader] if hasattr(config, "_CLoader") else [])


@pytest.fixture(params=LOADERS, ids=lambda c: c.__name__)
def yaml_loader(request, monkeypatch):
    """Run the test with each YAML event source."""
    monkeypatch.setattr(config, "_Loader", request.param)
    return request.param


def _yaml(text: str, origin: str = "c.yaml"):
    return parse_config(text, origin=origin, fmt="yaml")


def _json(text: str, origin: str = "c.json"):
    return parse_config(text, origin=origin, fmt="json")


# --- plain reading ------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("yaml_loader")
def test_json_and_yaml_read_the_same_data(tmp_path):
    (tmp_path / "a.json").write_text('{"weight_kg": 70, "labs": {"inr": 1.0}, "sites": ["lung"], "fit": true}')
    (tmp_path / "a.yml").write_text("weight_kg: 70\nlabs: {inr: 1.0}\nsites: [lung]\nfit: true\n")
    expected = {"weight_kg": 70, "labs": {"inr": 1.0}, "sites": ["lung"], "fit": True}
    assert read_config(tmp_path / "a.json", what="patient file") == expected
    assert read_config(tmp_path / "a.yml", what="patient file") == expected


@pytest.mark.usefixtures("yaml_loader")
def test_yaml_dates_and_empty_documents():
    assert _yaml("pve: {date: 2026-10-01}\n") == {"pve": {"date": dt.date(2026, 10, 1)}}
    assert _yaml("") is None
    assert _yaml("# only a comment\n") is None


@pytest.mark.usefixtures("yaml_loader")
def test_a_byte_order_mark_is_accepted():
    assert _yaml("\ufeffa: 1\n".encode()) == {"a": 1}
    assert _json("\ufeff{\"a\": 1}".encode()) == {"a": 1}


@pytest.mark.usefixtures("yaml_loader")
def test_merge_keys_may_be_overridden():
    # YAML's << merge: an explicit key overrides a merged one; that is not a duplicate
    assert _yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")["d"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(("suffix", "fmt"), [(".json", "json"), (".yaml", "yaml"), (".yml", "yaml"),
                                             (".YAML", "yaml")])
def test_format_by_suffix(suffix, fmt):
    assert config_format(f"p{suffix}", what="patient file") == fmt


# --- duplicate keys --------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("yaml_loader")
@pytest.mark.parametrize(("text", "line", "key"), [
    ("weight_kg: 70\nheight_cm: 175\nweight_kg: 80\n", 3, "weight_kg"),
    ("labs:\n  inr: 1.0\n  albumin_g_dl: 4\n  inr: 1.5\n", 4, "inr"),
    ("rules:\n  - {id: a, check: is_true}\n  - {id: b, check: is_true, check: is_false}\n", 3, "check"),
    ("1: liver\n2: tumor\n1: tumour\n", 3, 1),
])
def test_yaml_duplicate_keys_name_the_line(text, line, key):
    with pytest.raises(ConfigFileError) as info:
        _yaml(text, "p.yaml")
    assert str(info.value) == f"p.yaml: line {line}: key {key!r} is given twice"


@pytest.mark.parametrize(("text", "line", "key"), [
    ('{"weight_kg": 70, "height_cm": 175, "weight_kg": 80}', 1, "weight_kg"),
    ('{\n  "labs": {\n    "inr": 1.0,\n    "inr": 1.5\n  }\n}', 4, "inr"),
    # the same key in sibling objects is no duplicate; the one in the third entry is (line 5)
    ('{"e": [\n {"site": "lung"},\n {"site": "bone", "x": {"site": 1}},\n {"site": "brain",\n  "site": "x"}]}', 5,
     "site"),
    ('{"a": "text with \\"a\\": 1, and {braces}", "b": 1,\n "a": 2}', 2, "a"),
])
def test_json_duplicate_keys_name_the_line(text, line, key):
    with pytest.raises(ConfigFileError) as info:
        _json(text, "p.json")
    assert str(info.value) == f"p.json: line {line}: key {key!r} is given twice"


def test_duplicate_keys_in_a_patient_file(tmp_path):
    (tmp_path / "p.yaml").write_text("age: 61\nlabs:\n  inr: 1.0\n  inr: 1.5\n")
    (tmp_path / "p.json").write_text('{"age": 61,\n "age": 62}')
    with pytest.raises(ConfigFileError, match=r"p\.yaml: line 4: key 'inr' is given twice$"):
        load_patient(tmp_path / "p.yaml")
    with pytest.raises(ConfigFileError, match=r"p\.json: line 2: key 'age' is given twice$"):
        load_patient(tmp_path / "p.json")


def test_duplicate_keys_in_a_rulebook_file(tmp_path):
    text = yaml.safe_dump(MINIMAL, sort_keys=False)
    lines = text.splitlines()
    at = next(i for i, s in enumerate(lines) if s.strip() == "check: is_true")
    lines.insert(at + 1, lines[at].replace("is_true", "is_false"))
    (tmp_path / "r.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulebookError, match=rf"r\.yaml: line {at + 2}: key 'check' is given twice$") as info:
        load_rulebook(tmp_path / "r.yaml")
    assert isinstance(info.value, ConfigFileError)
    # a rulebook may be JSON too, with the same rule
    (tmp_path / "r.json").write_text('{"id": "x",\n "id": "y"}')
    with pytest.raises(RulebookError, match=r"r\.json: line 2: key 'id' is given twice$"):
        load_rulebook(tmp_path / "r.json")


def test_duplicate_key_scheme_json_is_refused(tmp_path):
    # the bug: json.loads kept the last value, so label 1 silently became a tumour
    path = tmp_path / "s.json"
    path.write_text('{\n  "1": "liver",\n  "2": "tumor",\n  "1": "tumor"\n}')
    with pytest.raises(SchemeError, match=r"s\.json: malformed label scheme: line 4: key '1' is given twice$") as info:
        load_scheme_file(path)
    assert isinstance(info.value, ConfigFileError)
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("labels:\n  1: liver\n  1: tumor\n")
    with pytest.raises(SchemeError, match=r"s\.yaml: malformed label scheme: line 3: key 1 is given twice$"):
        load_scheme_file(yaml_path)


@pytest.mark.usefixtures("yaml_loader")
def test_a_long_duplicate_key_is_shortened():
    key = "k" * 1000  # YAML allows simple keys up to 1024 characters
    for text, parse in ((f"{key}: 1\n{key}: 2\n", _yaml), (f'{{"{key * 5}": 1, "{key * 5}": 2}}', _json)):
        with pytest.raises(ConfigFileError) as info:
            parse(text)
        message = str(info.value)
        assert len(message) < 120 and message.endswith("... is given twice") and "\n" not in message


# --- size -------------------------------------------------------------------------------------------------------

def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(2_000_000_000)  # sparse: 2 GB that would take seconds to read
    opened = []
    monkeypatch.setattr(type(path), "open", lambda *a, **_: opened.append(a) or pytest.fail("file was opened"))
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match=r"huge\.yaml: 2000\.0 MB is over the 1\.0 MB limit") as info:
        read_config(path, what="patient file")
    assert time.perf_counter() - start < 0.5 and not opened
    assert "\n" not in str(info.value)


def test_the_limit_applies_to_text_too(tmp_path):
    text = "a: " + "x" * 2000 + "\n"
    with pytest.raises(ConfigFileError, match=r"c\.yaml: 2004 bytes is over the 1000 bytes limit"):
        parse_config(text, origin="c.yaml", fmt="yaml", max_bytes=1000)
    with pytest.raises(ConfigFileError, match=r"c\.yaml: 2004 bytes is over the 1000 bytes limit"):
        parse_config(text.encode(), origin="c.yaml", fmt="yaml", max_bytes=1000)
    # a character of two bytes counts twice
    with pytest.raises(ConfigFileError, match="1202 bytes is over"):
        parse_config("a: " + "é" * 599 + "\n", origin="c.yaml", fmt="yaml", max_bytes=1000)
    path = tmp_path / "p.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(ConfigFileError, match=r"p\.json: 2009 bytes is over the 1000 bytes limit"):
        read_config(path, what="patient file", max_bytes=1000)


# --- nesting ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_json_is_refused_not_a_recursion_error(depth):
    with pytest.raises(ConfigFileError, match=rf"c\.json: line 1: nested deeper than {MAX_DEPTH} levels"):
        _json("[" * depth + "]" * depth)


def test_json_depth_counts_brackets_outside_strings_only():
    text = '{"a": "' + "[" * 200 + '\\"{{{' + '", "b": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"
    with pytest.raises(ConfigFileError, match=r"nested deeper than 50"):
        _json(text)  # 1 (the object) + 50 lists
    ok = '{"a": "' + "[" * 200 + '\\"{{{' + '", "b": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert _json(ok)["a"].startswith("[[[")


def test_json_at_the_depth_limit_is_read():
    assert _json("[" * MAX_DEPTH + "]" * MAX_DEPTH) == eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # noqa: S307


@pytest.mark.usefixtures("yaml_loader")
@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_yaml_is_refused(style):
    depth = MAX_DEPTH + 1
    text = "[" * depth + "]" * depth if style == "flow" else "".join(f"{'  ' * i}k:\n" for i in range(depth)) + \
        "  " * depth + "v: 1\n"
    with pytest.raises(ConfigFileError, match=rf"c\.yaml: line \d+: nested deeper than {MAX_DEPTH} levels"):
        _yaml(text)


@pytest.mark.usefixtures("yaml_loader")
def test_very_deep_yaml_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match="nest"):  # ours, or libyaml's own limit (1000)
        _yaml("[" * 100_000 + "]" * 100_000)
    assert time.perf_counter() - start < 2.0


@pytest.mark.usefixtures("yaml_loader")
def test_yaml_at_the_depth_limit_is_read():
    assert _yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) == eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # noqa: S307


# --- aliases -----------------------------------------------------------------------------------------------------

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))  # 9^9 lols


@pytest.mark.usefixtures("yaml_loader")
def test_an_alias_bomb_is_refused_fast():
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match=rf"c\.yaml: aliases expand the document by more than "
                                              rf"{MAX_ALIAS_EXPANSION} values"):
        _yaml(BILLION_LAUGHS)
    assert time.perf_counter() - start < 0.2  # nothing was expanded (10^9 values would take minutes)


def test_an_alias_bomb_in_a_patient_file_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(BILLION_LAUGHS)
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match="alias bomb"):
        load_patient(path)
    assert time.perf_counter() - start < 0.5


@pytest.mark.usefixtures("yaml_loader")
def test_modest_aliases_are_fine():
    data = _yaml("s: &s [portal_vein_embolization, two_stage_hepatectomy]\na: {strategies: *s}\nb: {strategies: *s}\n")
    assert data["a"]["strategies"] == data["b"]["strategies"] == ["portal_vein_embolization", "two_stage_hepatectomy"]


@pytest.mark.usefixtures("yaml_loader")
def test_a_recursive_alias_is_refused():
    with pytest.raises(ConfigFileError, match=r"c\.yaml: line 1: an alias refers to a mapping or list that contains"):
        _yaml("a: &a [1, *a]\n")


# --- what YAML may hold -----------------------------------------------------------------------------------------

@pytest.mark.usefixtures("yaml_loader")
@pytest.mark.parametrize("text", [
    "a: !!python/object/apply:os.system ['echo hi']\n",
    "a: !!python/name:os.system\n",
    "a: !!binary aGVsbG8=\n!!python/tuple [1]: 2\n",
])
def test_only_safe_yaml(text):
    with pytest.raises(ConfigFileError, match=r"c\.yaml: not valid YAML: .*(constructor|tag)"):
        _yaml(text)


@pytest.mark.usefixtures("yaml_loader")
def test_an_impossible_date_names_its_line():
    with pytest.raises(ConfigFileError, match=r"c\.yaml: line 2: 2026-13-01 is not a valid value \(month must be"):
        _yaml("pve:\n  date: 2026-13-01\n")


@pytest.mark.usefixtures("yaml_loader")
@pytest.mark.parametrize(("text", "fmt", "match"), [
    ("weight_kg: [70\n", "yaml", r"c\.yaml: not valid YAML: .*\(line 2, column 1\)$"),
    ("a: 1\n--- b\n", "yaml", r"c\.yaml: not valid YAML: expected a single document .*\(line 2, column 1\)$"),
    ("a: *nowhere\n", "yaml", r"c\.yaml: not valid YAML: found undefined alias 'nowhere' \(line 1, column 4\)$"),
    ('{"weight_kg": 70,}', "json", r"c\.json: not valid JSON: Expecting property name .*\(line 1, column 18\)$"),
    ("", "json", r"c\.json: not valid JSON: Expecting value \(line 1, column 1\)$"),
    ("1" * 5000, "json", r"c\.json: not valid JSON: Exceeds the limit"),
])
def test_syntax_errors_are_one_line(text, fmt, match):
    with pytest.raises(ConfigFileError, match=match) as info:
        parse_config(text, origin=f"c.{fmt}", fmt=fmt)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_non_utf8_is_refused_in_one_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"weight_kg: 70\nsex: female\nnote: caf\xe9\n")  # Latin-1 e-acute
    with pytest.raises(ConfigFileError) as info:
        read_config(path, what="patient file")
    assert str(info.value) == f"{path}: line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    with pytest.raises(ConfigFileError, match=r"line 1: not UTF-8 text \(byte 0xff\)"):
        parse_config(b'\xff\xfe{"a": 1}', origin="c.json", fmt="json")


# --- files --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "what"), [("p.txt", "patient file"), ("rules.toml", "rulebook"),
                                            ("scheme", "label scheme")])
def test_a_wrong_suffix_is_refused_naming_the_file(tmp_path, name, what):
    path = tmp_path / name
    path.write_text("a: 1\n")
    with pytest.raises(UnsupportedConfigFormatError, match=rf"{name}: a {what} must be \.yaml, \.yml or \.json") \
            as info:
        read_config(path, what=what)
    assert isinstance(info.value, UnsupportedFormatError) and isinstance(info.value, ConfigFileError)


def test_wrong_suffix_through_each_loader(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("{}")
    with pytest.raises(UnsupportedFormatError, match=r"p\.txt: a patient file must be"):
        load_patient(path)
    with pytest.raises(RulebookError, match=r"p\.txt: a rulebook must be"):
        load_rulebook(path)
    with pytest.raises(SchemeError, match=r"p\.txt: a label scheme must be"):
        load_scheme_file(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigFileError, match=r"absent\.yaml: patient file not found"):
        read_config(tmp_path / "absent.yaml", what="patient file")
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ConfigFileError, match=r"dir\.yaml: the patient file is a folder"):
        read_config(folder, what="patient file")
    assert issubclass(ConfigFileError, InputFileError)


def test_the_patient_file_content_is_validated_after_parsing(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"weight_kg": -70}')
    with pytest.raises(PatientValueError, match=r"p\.json: weight_kg = -70 is impossible"):
        load_patient(path)


# --- encodings, JSON's non-numbers, the number of values, long names ---------------------------------------------

TEXT = "weight_kg: 70\n"


@pytest.mark.parametrize(("data", "name"), [
    (TEXT.encode("utf-16"), "UTF-16"), (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "UTF-16"),
    (TEXT.encode("utf-32"), "UTF-32"),
], ids=["utf-16", "utf-16-be", "utf-32"])
def test_utf_16_and_32_are_refused_with_a_hint(data, name):
    with pytest.raises(ConfigFileError, match=rf"^c\.yaml: line 1: not UTF-8 text \(byte 0x(fe|ff)\): the file starts "
                                              rf"with a {name} byte-order mark; save the file as UTF-8$"):
        parse_config(data, origin="c.yaml", fmt="yaml")


@pytest.mark.parametrize("text", [TEXT.encode("utf-16-le"), "a: 1\nb: \x00\n"], ids=["utf-16-le", "nul"])
def test_a_nul_character_is_refused(text):
    with pytest.raises(ConfigFileError, match=r"c\.yaml: line \d: not UTF-8 text \(a NUL byte: UTF-16 text or a binary "
                                              r"file\?\); save the file as UTF-8$"):
        parse_config(text, origin="c.yaml", fmt="yaml")


@pytest.mark.parametrize(("text", "line", "name"), [
    ('{"weight_kg": NaN}', 1, "NaN"),
    ('{"a": "NaN and \\"Infinity\\"",\n "b": [1,\n -Infinity]}', 3, "-Infinity"),
    ('[\n\nInfinity]', 3, "Infinity"),
])
def test_json_nan_and_infinity_are_refused_with_their_line(text, line, name):
    with pytest.raises(ConfigFileError, match=rf"^c\.json: line {line}: {name} is not a JSON number \(write a finite "
                                              r"number, or null when it is not known\)$"):
        _json(text)
    assert _json('{"a": "NaN", "b": "Infinity"}') == {"a": "NaN", "b": "Infinity"}  # in strings they are text


@pytest.mark.usefixtures("yaml_loader")
def test_the_number_of_values_is_bounded(monkeypatch):
    monkeypatch.setattr(config, "MAX_VALUES", 100)
    ok_yaml, ok_json = "[" + "1, " * 98 + "1]", "[" + "1, " * 98 + "1]"  # a list and 99 numbers
    assert len(_yaml(ok_yaml)) == len(_json(ok_json)) == 99
    with pytest.raises(ConfigFileError, match=r"^c\.yaml: line 1: more than 100 values \(keys, items, texts and "
                                              r"numbers\); a configuration file holds far fewer"):
        _yaml("[" + "1, " * 100 + "1]")
    with pytest.raises(ConfigFileError, match=r"^c\.json: more than 100 values"):
        _json('{"a": [' + "1, " * 97 + "1]}")  # the mapping, its key, the list and 98 numbers


@pytest.mark.usefixtures("yaml_loader")
def test_a_megabyte_of_yaml_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match=f"more than {config.MAX_VALUES} values"):
        _yaml("x: [" + "1," * 490_000 + "]\n")  # parsing it all would take about 8 s
    assert time.perf_counter() - start < 4.0  # stopped early: half the full parse even on a loaded 2-core machine


def test_libyaml_s_own_depth_limit_reads_like_ours(monkeypatch):
    if not hasattr(config, "_CLoader"):
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(config, "_Loader", config._CLoader)
    with pytest.raises(ConfigFileError, match=rf"^c\.yaml: line 1: nested deeper than {MAX_DEPTH} levels"):
        _yaml("[" * 100_000 + "]" * 100_000)


def test_a_long_origin_keeps_its_end(tmp_path):
    deep = tmp_path.joinpath(*["d" * 50] * 6)
    deep.mkdir(parents=True)
    path = deep / "patient.yaml"
    path.write_bytes(b"\xff")
    with pytest.raises(ConfigFileError) as info:
        read_config(path, what="patient file")
    assert str(info.value) == f"...{str(path)[-157:]}: line 1: not UTF-8 text (byte 0xff); save the file as UTF-8"
    with pytest.raises(ConfigFileError, match=r"^\.\.\.a+\.yaml: cannot read the patient file \(File name too long\)$"):
        read_config("a" * 10_000 + ".yaml", what="patient file")
