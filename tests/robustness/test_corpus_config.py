"""A corpus of bad and odd configuration files (patient files, rulebooks, label schemes), run through the
command line in-process, each with its exact expected outcome.

Every entry is ``(kind, file name, content, outcome)`` where the outcome is

* ``("refused", words)``: exit 2 and one line ``flr: error: ...`` holding ``words``, shorter than 700 characters
  (a quoted value is at most 80, a message at most :data:`flr.errors.MAX_PROBLEMS_CHARS`; one that leaves
  problems out counts them within the command line's 600), no traceback and no ``internal error``;
* ``("warned", words)``: exit 0, and a ``warning:`` line holding ``words``;
* ``("accepted", None)``: exit 0 and no warning at all.

Patient files go through ``flr assess --patient FILE`` on the seed-1 phantom, rulebooks through ``flr rules
--rules FILE``, label schemes through ``flr volumetry --labels PATH:SCHEME_FILE``. Files are written in the test
(nothing hostile is stored in the repository).
"""

from __future__ import annotations

import codecs
import copy
import json
import time
from pathlib import Path

import pytest
import yaml

from flr.io import write_nifti
from tests.helpers import run_cli, run_cli_bad

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PATIENT = (REPO / "sample_data" / "phantom-001" / "patient.yaml").read_text(encoding="utf-8")
DEFAULT_RULEBOOK = (REPO / "flr" / "rulebooks" / "default.yaml").read_text(encoding="utf-8")
#: The longest line a refusal may print ("flr: error: " and a message of at most MAX_PROBLEMS_CHARS).
MAX_LINE_CHARS = 700
#: The seed-1 phantom's labels, as its scheme file says them.
PHANTOM_SCHEME = {"1": "liver_segment_1", "2": "liver_segment_2", "3": "liver_segment_3", "4": "liver_segment_4",
                  "5": "liver_segment_5", "6": "liver_segment_6", "7": "liver_segment_7", "8": "liver_segment_8",
                  "9": "tumor", "10": "portal_vein", "11": "hepatic_vein", "12": "inferior_vena_cava"}


def _bomb(key_line: str) -> str:
    """A billion-laughs document (9^9 values once expanded) whose last alias is used as ``key_line``'s value."""
    levels = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    return levels + key_line.replace("ALIAS", "*i") + "\n"


DEFAULT_DOC = yaml.safe_load(DEFAULT_RULEBOOK)


def _rulebook(mutate) -> str:
    """The default rulebook, changed by ``mutate(doc)``, as JSON (keys kept in order)."""
    doc = copy.deepcopy(DEFAULT_DOC)
    mutate(doc)
    return json.dumps(doc)


def _set(rule_id: str, **fields):
    def mutate(doc):
        next(r for r in doc["rules"] if r["id"] == rule_id).update(fields)
    return mutate


REFUSED, WARNED, ACCEPTED = "refused", "warned", "accepted"

PATIENTS = [
    # hostile structure: each refused before anything is expanded or recursed into
    ("alias_bomb_as_a_value", "p.yaml", _bomb("weight_kg: ALIAS"), (REFUSED, "alias bomb")),
    ("alias_bomb_in_a_section", "p.yaml", _bomb("labs: {inr: ALIAS}"), (REFUSED, "alias bomb")),
    ("recursive_alias", "p.yaml", "labs: &l {inr: *l}\n", (REFUSED, "an alias refers to a mapping or list that")),
    ("nested_5000_deep_json", "p.json", '{"labs": ' * 5000 + "1" + "}" * 5000,
     (REFUSED, "line 1: nested deeper than 50 levels")),
    ("nested_5000_deep_yaml_flow", "p.yaml", "labs: " + "[" * 5000 + "]" * 5000 + "\n",
     (REFUSED, "line 1: nested deeper than 50 levels")),
    ("nested_5000_deep_yaml_block", "p.yaml", "labs:\n  inr:\n    " + "- " * 5000 + "1\n",
     (REFUSED, "nested deeper than 50 levels")),
    ("too_many_values", "p.yaml", "extrahepatic_disease: [" + "lung, " * 30_000 + "]\n",
     (REFUSED, "more than 20000 values")),
    ("over_1_mb", "p.yaml", "# " + "x" * 1_100_000 + "\nweight_kg: 70\n", (REFUSED, "over the 1.0 MB limit")),
    # long values are quoted shortened (the file is under the size limit)
    ("string_of_900_kb", "p.yaml", "weight_kg: '" + "7" * 900_000 + " kg'\n",
     (REFUSED, "weight_kg = '777777777777")),
    ("key_of_10_kb", "p.json", json.dumps({"w" * 10_000: 70}), (REFUSED, "www... is not a patient field")),
    ("5000_unknown_keys", "p.json", json.dumps({f"key{i}": i for i in range(5000)}), (REFUSED, "; ... and ")),
    # keys
    ("duplicate_key_yaml", "p.yaml", "weight_kg: 70\nheight_cm: 175\nweight_kg: 80\n",
     (REFUSED, "line 3: key 'weight_kg' is given twice")),
    ("duplicate_key_json_nested", "p.json", '{"labs": {"inr": 1.0,\n "inr": 1.2}}',
     (REFUSED, "line 2: key 'inr' is given twice")),
    ("misspelt_key", "p.yaml", "weigth_kg: 70\n",
     (REFUSED, "weigth_kg is not a patient field (did you mean weight_kg?)")),
    ("identifier_key", "p.yaml", "age: 61\npatient_name: DOE^JANE\n",
     (REFUSED, "patient_name is refused: flr does not take patient identifiers")),
    ("key_not_text", "p.yaml", "1: 70\n", (REFUSED, "1: field names must be text")),
    # encodings
    ("latin_1", "p.yaml", "weight_kg: 70\nsex: f\xe9minin\n".encode("latin-1"),
     (REFUSED, "line 2: not UTF-8 text (byte 0xe9)")),
    ("utf_16_with_bom", "p.yaml", "weight_kg: 70\n".encode("utf-16"), (REFUSED, "UTF-16 byte-order mark")),
    ("utf_16_without_bom", "p.yaml", "weight_kg: 70\n".encode("utf-16-le"), (REFUSED, "a NUL byte")),
    ("utf_32_with_bom", "p.json", '{"weight_kg": 70}'.encode("utf-32"), (REFUSED, "UTF-32 byte-order mark")),
    # the document is not a mapping
    ("empty_file", "p.yaml", "", (REFUSED, "the patient file is empty")),
    ("comments_only", "p.yaml", "# weight to follow\n# height to follow\n", (REFUSED, "the patient file is empty")),
    ("bare_string", "p.yaml", "a patient of 70 kg\n", (REFUSED, "must be a mapping of fields, not str")),
    ("bare_number", "p.json", "70", (REFUSED, "must be a mapping of fields, not int")),
    ("bare_list", "p.yaml", "- weight_kg: 70\n", (REFUSED, "must be a mapping of fields, not list")),
    ("two_documents", "p.yaml", "weight_kg: 70\n---\nheight_cm: 175\n", (REFUSED, "expected a single document")),
    ("python_object_tag", "p.yaml", "weight_kg: !!python/object/apply:os.system ['true']\n",
     (REFUSED, "not valid YAML: could not determine a constructor")),
    ("wrong_suffix", "p.txt", "weight_kg: 70\n", (REFUSED, "a patient file must be .yaml, .yml or .json, not .txt")),
    # wrong types everywhere
    ("list_where_a_mapping_goes", "p.yaml", "labs: [0.8, 4.1]\n",
     (REFUSED, "labs must be a mapping of fields, not list")),
    ("mapping_where_a_number_goes", "p.yaml", "weight_kg: {value: 70, unit: kg}\n",
     (REFUSED, "weight_kg = {'value': 70, 'unit': 'kg'} is not a number")),
    ("boolean_as_a_number", "p.yaml", "height_cm: true\n", (REFUSED, "height_cm = True is not a number")),
    ("number_as_a_boolean", "p.yaml", "fit_for_major_surgery: 1\n", (REFUSED, "= 1 must be true or false")),
    ("yaml_yes_as_a_choice", "p.yaml", "ascites: no\n", (REFUSED, "ascites = False is not one of none")),
    ("number_with_its_unit", "p.yaml", "weight_kg: 70 kg\n",
     (REFUSED, "weight_kg = '70 kg' is not a number (expected 20-400 kg): write the number alone")),
    ("number_as_text", "p.json", '{"weight_kg": "70"}', (REFUSED, "write it as a plain number")),
    ("json_nan", "p.json", '{"weight_kg": 70,\n "height_cm": NaN}', (REFUSED, "line 2: NaN is not a JSON number")),
    ("json_infinity", "p.json", '{"labs": {"inr": -Infinity}}', (REFUSED, "-Infinity is not a JSON number")),
    ("yaml_nan", "p.yaml", "weight_kg: .nan\n", (REFUSED, "weight_kg = nan is impossible")),
    ("impossible_yaml_date", "p.yaml", "pve:\n  date: 2026-13-45\n",
     (REFUSED, "line 2: 2026-13-45 is not a valid value")),
    ("impossible_text_date", "p.json", '{"pve": {"date": "2026-13-45"}}',
     (REFUSED, "pve.date = '2026-13-45' is not a date")),
    ("integer_of_400_digits", "p.yaml", f"weight_kg: {10**400}\n", (REFUSED, "... is impossible (expected 20-400 kg)")),
    ("lab_integer_of_400_digits", "p.yaml", f"labs:\n  sodium_mmol_l: {10**400}\n",
     (REFUSED, "labs.sodium_mmol_l = 1000000")),
    ("integer_of_5000_digits", "p.json", '{"weight_kg": ' + "9" * 5000 + "}", (REFUSED, "Exceeds the limit")),
    ("extrahepatic_as_a_mapping", "p.yaml", "extrahepatic_disease: {site: lung}\n",
     (REFUSED, "must be a list of {site, extent}")),
    ("unknown_choice", "p.yaml", "primary: {site: lung}\n", (REFUSED, "primary.site = 'lung' is not one of")),
    # odd but valid
    ("under_age", "p.yaml", SAMPLE_PATIENT.replace("age: 61", "age: 16"), (WARNED, "age = 16")),
    ("lab_in_two_units", "p.yaml", SAMPLE_PATIENT.replace("albumin_g_dl: 4.1", "albumin_g_dl: 4.1, albumin_g_l: 41"),
     (WARNED, "labs.albumin_g_dl and labs.albumin_g_l both given and agree")),
    ("field_of_another_site", "p.yaml", "primary: {site: gist, synchronous: false}\n",
     (WARNED, "primary.synchronous applies to colorectal primaries")),
    ("sample", "p.yaml", SAMPLE_PATIENT, (ACCEPTED, None)),
    ("utf_8_with_bom", "p.yaml", codecs.BOM_UTF8 + SAMPLE_PATIENT.encode(), (ACCEPTED, None)),
    ("crlf_line_ends", "p.yaml", SAMPLE_PATIENT.replace("\n", "\r\n").encode(), (ACCEPTED, None)),
]

RULEBOOKS = [
    ("threshold_list_of_100000", "r.json", _rulebook(_set("margin_r0", threshold=list(range(100_000)))),
     (REFUSED, "more than 20000 values")),
    ("threshold_list_of_10000", "r.json", _rulebook(_set("margin_r0", threshold=list(range(10_000)))),
     (REFUSED, "rule 'margin_r0', field 'threshold': must be a number, got [0, 1, 2")),
    ("set_threshold_repeated", "r.json", _rulebook(_set("child_pugh_class", threshold=["A"] * 5000)),
     (REFUSED, "rule 'child_pugh_class', field 'threshold': 'A' is listed twice")),
    ("threshold_of_400_digits", "r.json", _rulebook(_set("margin_r0", threshold=10**400)),
     (REFUSED, "field 'threshold': must be a number, got 1000")),
    ("threshold_nan", "r.json", _rulebook(_set("margin_r0", threshold=float("nan"))),
     (REFUSED, "NaN is not a JSON number")),
    ("rule_id_of_10_kb", "r.json", _rulebook(_set("margin_r0", id="r" * 10_000)),
     (REFUSED, "is not a snake_case id (at most 64 characters)")),
    ("unknown_fact_of_10_kb", "r.json", _rulebook(_set("margin_r0", inputs=["f" * 10_000])),
     (REFUSED, "field 'inputs': unknown fact 'fffff")),
    ("misspelt_check", "r.json", _rulebook(_set("margin_r0", check="at_leest")),
     (REFUSED, "unknown check 'at_leest' (did you mean at_least?)")),
    ("every_rule_broken", "r.json", _rulebook(lambda d: [r.update(check=7) for r in d["rules"]]),
     (REFUSED, "; ... and ")),
    ("2000_rules", "r.json", _rulebook(lambda d: d.update(rules=[1] * 2000)),
     (REFUSED, "field 'rules' holds 2000 rules; a rulebook has at most 1000")),
    ("alias_bomb", "r.yaml", _bomb("rules: ALIAS"), (REFUSED, "alias bomb")),
    ("nested_5000_deep", "r.yaml",
     DEFAULT_RULEBOOK.replace("threshold: 1.0", "threshold: " + "[" * 5000 + "]" * 5000, 1),
     (REFUSED, "nested deeper than 50 levels")),
    ("duplicate_key", "r.yaml", DEFAULT_RULEBOOK.replace("version: ", "title: again\nversion: ", 1),
     (REFUSED, "key 'title' is given twice")),
    ("utf_16", "r.yaml", DEFAULT_RULEBOOK.encode("utf-16"), (REFUSED, "UTF-16 byte-order mark")),
    ("empty_file", "r.yaml", "", (REFUSED, "expected a mapping with id, version")),
    ("bare_list", "r.yaml", "- id: mine\n", (REFUSED, "expected a mapping with id, version")),
    ("as_json", "r.json", _rulebook(lambda _doc: None), (ACCEPTED, None)),
    ("utf_8_with_bom", "r.yaml", codecs.BOM_UTF8 + DEFAULT_RULEBOOK.encode(), (ACCEPTED, None)),
]

SCHEMES = [
    ("label_id_2_to_the_70", "s.yaml", f"{2**70}: liver\n", (REFUSED, "label id 1180591620717411303424 is too large")),
    ("label_id_negative", "s.json", '{"-1": "liver"}', (REFUSED, "label id -1 must be positive (0 is background)")),
    ("label_id_zero", "s.yaml", "0: liver\n1: tumor\n", (REFUSED, "label id 0 must be positive")),
    ("label_id_boolean", "s.yaml", "true: liver\n", (REFUSED, "label id True is not an integer")),
    ("label_id_with_underscore", "s.json", '{"1_0": "liver"}', (REFUSED, "label id '1_0' is not an integer")),
    ("name_of_10_kb", "s.json", json.dumps({"1": "l" * 10_000}),
     (REFUSED, "label 1: a structure name of 10000 characters is too long")),
    ("name_not_text", "s.json", '{"1": ["liver"]}', (REFUSED, "label 1 needs a structure name, got ['liver']")),
    ("100000_labels", "s.json", json.dumps({str(i): "liver" for i in range(1, 100_001)}),
     (REFUSED, "over the 1.0 MB limit")),
    ("15000_labels", "s.yaml", "".join(f"{i}: s{i}\n" for i in range(1, 15_001)), (REFUSED, "more than 20000 values")),
    ("duplicate_label", "s.json", '{"1": "liver",\n "1": "tumor"}', (REFUSED, "line 2: key '1' is given twice")),
    ("same_label_twice_spelt_differently", "s.json", '{"1": "liver", "01": "tumor"}',
     (REFUSED, "label id 1 is given twice")),
    ("misspelt_field", "s.json", json.dumps({"lables": PHANTOM_SCHEME}), (REFUSED, "(did you mean labels?)")),
    ("unknown_long_form_field", "s.json", json.dumps({"labels": PHANTOM_SCHEME, "sorce": "me"}),
     (REFUSED, "unknown field 'sorce' (did you mean source?)")),
    ("notes_not_a_list", "s.json", json.dumps({"labels": PHANTOM_SCHEME, "notes": 3}),
     (REFUSED, "notes must be a list of texts, not 3")),
    ("names_no_label_present", "s.json", '{"42": "liver"}', (REFUSED, "names none of the labels present")),
    ("bare_list", "s.yaml", "- liver\n", (REFUSED, "expected a non-empty mapping {label id: structure name}")),
    ("empty_file", "s.yaml", "", (REFUSED, "expected a non-empty mapping")),
    ("utf_16", "s.json", json.dumps(PHANTOM_SCHEME).encode("utf-16"), (REFUSED, "UTF-16 byte-order mark")),
    ("alias_bomb", "s.yaml", _bomb("labels: ALIAS"), (REFUSED, "alias bomb")),
    ("some_labels_only", "s.json", json.dumps({k: v for k, v in PHANTOM_SCHEME.items() if int(k) <= 9}),
     (WARNED, "labels [10, 11, 12] are not in scheme s.json; ignored")),
    ("short_form", "s.json", json.dumps(PHANTOM_SCHEME), (ACCEPTED, None)),
    ("long_form_yaml", "s.yaml", yaml.safe_dump({"labels": {int(k): v for k, v in PHANTOM_SCHEME.items()},
                                                 "description": "the phantom", "notes": ["seeded"]}), (ACCEPTED, None)),
    ("utf_8_with_bom", "s.json", codecs.BOM_UTF8 + json.dumps(PHANTOM_SCHEME).encode(), (ACCEPTED, None)),
]

CORPUS = [(kind, *entry) for kind, entries in (("patient", PATIENTS), ("rulebook", RULEBOOKS), ("scheme", SCHEMES))
          for entry in entries]


@pytest.fixture(scope="module")
def case(tmp_path_factory, phantom_1):
    """The seed-1 phantom's label map and liver outline, written once for the module.

    The label map's own scheme (read when ``--labels`` names none) lists the vessels as other labels, so that an
    assessment skips the vessel checks: the patient file is what those runs test, and each takes half the time.
    """
    d = tmp_path_factory.mktemp("corpus-case")
    write_nifti(phantom_1.labels, d / "labels.nii.gz")
    vessels = ("10", "11", "12")
    (d / "labels.scheme.json").write_text(json.dumps({
        "labels": {k: v for k, v in PHANTOM_SCHEME.items() if k not in vessels},
        "other_labels": {k: v for k, v in PHANTOM_SCHEME.items() if k in vessels}}))
    write_nifti(phantom_1.liver, d / "liver.nii.gz")
    return d


def _command(kind: str, path: Path, case: Path) -> list[str]:
    if kind == "patient":
        return ["assess", "--labels", case / "labels.nii.gz", "--labels", case / "liver.nii.gz", "--plan",
                "right-hemihepatectomy", "--patient", path]
    if kind == "rulebook":
        return ["rules", "--rules", path]
    return ["volumetry", "--labels", f"{case / 'labels.nii.gz'}:{path}", "--labels", case / "liver.nii.gz"]


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_the_corpus_is_large_and_has_every_outcome():
    outcomes = [entry[-1][0] for entry in CORPUS]
    assert len(CORPUS) >= 20 and {REFUSED, WARNED, ACCEPTED} <= set(outcomes)
    assert all(words for outcome, words in (e[-1] for e in CORPUS) if outcome != ACCEPTED)
    assert all(e[0] in ("patient", "rulebook", "scheme") for e in CORPUS)


@pytest.mark.parametrize(("kind", "name", "content", "expected"), [(e[0], *e[2:]) for e in CORPUS],
                         ids=[f"{e[0]}-{e[1]}" for e in CORPUS])
def test_corpus(kind, name, content, expected, case, tmp_path, capsys):
    outcome, words = expected
    path = _write(tmp_path, name, content)
    if outcome == REFUSED:
        err = run_cli_bad(_command(kind, path, case), capsys)
        assert words in err, err
        assert len(err) < MAX_LINE_CHARS, len(err)
        assert "internal error" not in err and "Traceback" not in err
        return
    code, out, err = run_cli(_command(kind, path, case), capsys)
    assert code == 0, err
    warnings = [line for line in (out + err).splitlines() if line.startswith("warning:")]
    if outcome == WARNED:
        assert any(words in line for line in warnings), warnings
    else:
        assert warnings == []


@pytest.mark.parametrize("key", ["name", "patient_id", "MRN", "date_of_birth", "Address"])
def test_identifiers_are_refused_without_their_value(key, case, tmp_path, capsys):
    path = _write(tmp_path, "p.yaml", f"age: 61\n{key}: DOE^JANE-1234567\n")
    err = run_cli_bad(_command("patient", path, case), capsys)
    assert f"{key} is refused" in err and "DOE" not in err and "1234567" not in err


# --- no hang ----------------------------------------------------------------------------------------------------
# 2 s is a guard against a hang, not a benchmark: each refusal takes milliseconds (nothing is expanded, nothing is
# recursed into), and the whole command, imports included, well under a second; expanding the bomb (10^9 values)
# or recursing 5000 levels would take minutes or end in a RecursionError.

@pytest.mark.parametrize(("name", "content", "words"), [
    ("p.yaml", _bomb("weight_kg: ALIAS"), "alias bomb"),
    ("p.json", '{"labs": ' * 5000 + "1" + "}" * 5000, "nested deeper than 50"),
    ("p.yaml", "labs: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 50"),
    ("p.yaml", "labs:\n  inr:\n    " + "- " * 5000 + "1\n", "nested deeper than 50"),
], ids=["alias-bomb", "deep-json", "deep-yaml-flow", "deep-yaml-block"])
def test_hostile_structure_is_refused_quickly(name, content, words, case, tmp_path, capsys):
    path = _write(tmp_path, name, content)
    start = time.perf_counter()
    err = run_cli_bad(_command("patient", path, case), capsys)
    assert time.perf_counter() - start < 2.0
    assert words in err
