"""Label schemes: built-ins against the published label conventions, user files, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flr.errors import MAX_PARTIAL_CHARS, ConfigFileError, EmptyStructureError, SchemeError
from flr.image import Geometry, Image
from flr.io import read_label_map, write_nifti
from flr.schemes import (
    BUILTIN_SCHEMES,
    CANONICAL_NAMES,
    builtin_scheme,
    canonical_name,
    load_scheme_file,
    resolve_scheme,
    split_labels_argument,
)


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [  # ids from ../shared/clinical-reference.md, "Label conventions of public data and tools"
        ("totalseg-total", {5: "liver", 63: "inferior_vena_cava", 64: "portal_vein"}),
        ("totalseg-total-v1", {5: "liver", 8: "inferior_vena_cava", 9: "portal_vein"}),
        ("totalseg-liver-segments", {i: f"liver_segment_{i}" for i in range(1, 9)}),
        ("totalseg-liver-vessels", {1: "hepatic_vessel", 2: "tumor"}),
        ("lits", {1: "liver", 2: "tumor"}),
        ("msd-liver", {1: "liver", 2: "tumor"}),
        ("msd-hepaticvessel", {1: "hepatic_vessel", 2: "tumor"}),
    ],
)
def test_builtin_schemes_match_published_ids(scheme, expected):
    s = builtin_scheme(scheme)
    assert dict(s.labels) == expected
    assert s.source, f"scheme {scheme} has no source"
    assert set(s.labels.values()) <= set(CANONICAL_NAMES)


def test_totalseg_other_labels_cover_every_class():
    assert sorted({**builtin_scheme("totalseg-total").labels, **builtin_scheme("totalseg-total").other_labels}) \
        == list(range(1, 118))
    v1 = builtin_scheme("totalseg-total-v1")
    assert sorted({**v1.labels, **v1.other_labels}) == list(range(1, 105))
    assert v1.other_labels[7] == "aorta"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("Liver", "liver"), ("Segment IVb", "liver_segment_4b"), ("seg_7", "liver_segment_7"),
     ("Couinaud segment VIII", "liver_segment_8"), ("IVC", "inferior_vena_cava"), ("Tumour", "tumor"),
     ("Portal Vein", "portal_vein"), ("spleen", "spleen")],
)
def test_canonical_names(raw, canonical):
    assert canonical_name(raw) == canonical


def test_user_scheme_files_json_and_yaml(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"1": "Liver", "2": "Tumour"}))
    (tmp_path / "s.yaml").write_text("labels:\n  1: liver\n  4: segment 4a\n")
    assert dict(load_scheme_file(tmp_path / "s.json").labels) == {1: "liver", 2: "tumor"}
    assert dict(load_scheme_file(tmp_path / "s.yaml").labels) == {1: "liver", 4: "liver_segment_4a"}


@pytest.mark.parametrize(
    ("text", "match"),
    [("{not json", r"malformed label scheme: not valid JSON: Expecting property name .*\(line 1, column 2\)"),
     ('{"a": "liver"}', "not an integer"), ('{"0": "liver"}', "must be positive"),
     ('{"1": 5}', "needs a structure name"), ("[]", "non-empty mapping")],
)
def test_malformed_scheme_files(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SchemeError, match=match) as info:
        load_scheme_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [("dup.json", '{"1": "liver",\n "2": "tumor",\n "1": "tumour"}', 3),
     ("dup.json", '{"labels": {"1": "liver"}, "labels": {"1": "tumor"}}', 1),
     ("dup.yaml", "labels:\n  1: liver\n  2: tumor\n  1: tumour\n", 4)],
)
def test_duplicate_label_ids_are_refused_with_their_line(tmp_path, name, text, line):
    # json.loads / yaml.safe_load would keep the last value: label 1 silently becoming a tumour
    path = tmp_path / name
    path.write_text(text)
    message = rf"{name}: malformed label scheme: line {line}: key .* is given twice$"
    with pytest.raises(SchemeError, match=message) as info:
        load_scheme_file(path)
    assert isinstance(info.value, ConfigFileError)


def test_scheme_file_suffix_is_checked(tmp_path):
    path = tmp_path / "scheme.txt"
    path.write_text('{"1": "liver"}')
    with pytest.raises(SchemeError, match=r"scheme\.txt: a label scheme must be \.yaml, \.yml or \.json, not \.txt"):
        load_scheme_file(path)


def test_split_labels_argument():
    assert split_labels_argument("/a/b:c/seg.nii.gz:totalseg-total") == ("/a/b:c/seg.nii.gz", "totalseg-total")
    assert split_labels_argument("seg.nii.gz:my.yaml") == ("seg.nii.gz", "my.yaml")
    assert split_labels_argument("seg.nii.gz") == ("seg.nii.gz", None)
    assert "lits" in BUILTIN_SCHEMES


def _write(tmp_path, arr, name="seg.nii.gz"):
    return write_nifti(Image(arr, Geometry(arr.shape, (1.0, 1.0, 2.0))), tmp_path / name)


def test_unknown_labels_warned_and_listed(tmp_path):
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[0, 0, :3] = [1, 2, 7]
    lm = read_label_map(_write(tmp_path, arr), "lits")
    assert any("labels [7] are not in scheme lits" in w for w in lm.metadata["warnings"])


def test_scheme_matching_nothing_is_an_error(tmp_path):
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1, 1, 1] = 42
    with pytest.raises(SchemeError, match=r"seg\.nii\.gz: scheme lits names none of the labels present \[42\]"):
        read_label_map(_write(tmp_path, arr), "lits")


def test_empty_map_is_an_error(tmp_path):
    with pytest.raises(EmptyStructureError, match=r"liver\.nii\.gz: label map has no labelled voxels"):
        read_label_map(_write(tmp_path, np.zeros((3, 3, 3), np.uint8), "liver.nii.gz"))


def test_multilabel_without_scheme_asks_for_one(tmp_path):
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[0, 0, :2] = [1, 2]
    with pytest.raises(SchemeError, match="no label scheme; add one as"):
        read_label_map(_write(tmp_path, arr))


def test_sidecar_scheme_is_found(tmp_path):
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[0, 0, :2] = [3, 4]
    path = _write(tmp_path, arr, "case.nii.gz")
    (tmp_path / "case.scheme.json").write_text(json.dumps({"labels": {"3": "liver_segment_3", "4": "tumor"}}))
    assert dict(read_label_map(path).names) == {3: "liver_segment_3", 4: "tumor"}


# --- hostile and odd scheme files: every problem at once, on one short line -------------------------------------

TOO_LARGE = "is too large (at most 2147483647: label maps hold 32-bit integers)"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("s.json", f'{{"{2**70}": "liver"}}', f"label id '1180591620717411303424' {TOO_LARGE}"),
    ("s.yaml", "2147483648: liver\n", f"label id 2147483648 {TOO_LARGE}"),
    ("s.json", '{"-3": "liver"}', "label id -3 must be positive (0 is background)"),
    ("s.yaml", "true: liver\n", "label id True is not an integer"),
    ("s.yaml", "1.0: liver\n", "label id 1.0 is not an integer"),
    ("s.json", '{"1_000": "liver"}', "label id '1_000' is not an integer"),
    ("s.json", '{"\\u0661": "liver"}', "label id '\u0661' is not an integer"),  # int() reads Arabic-Indic digits
    ("s.json", '{"1": "' + "l" * 101 + '"}', "label 1: a structure name of 101 characters is too long (at most 100)"),
    ("s.json", '{"1": {"name": "liver"}}', "label 1 needs a structure name, got {'name': 'liver'}"),
    ("s.json", '{"1": "liver", "001": "tumor"}', "label id 1 is given twice"),
    ("s.json", '{"lables": {"1": "liver"}}', "label id 'lables' is not an integer (did you mean labels?)"),
    ("s.json", '{"labels": {"1": "liver"}, "sorce": "me", "notes": "one"}',
     "unknown field 'sorce' (did you mean source?); notes must be a list of texts, not 'one'"),
    ("s.json", '{"labels": {"1": "liver"}, "description": ["a"]}', "description must be a text, not ['a']"),
])
def test_odd_scheme_files_are_refused(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemeError) as info:
        load_scheme_file(path)
    assert str(info.value) == f"{path}: {message}"


def test_every_problem_of_a_scheme_at_once(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0": "liver", "x": "tumor", "2": 7, **{f"k{i}": "liver" for i in range(500)}}))
    with pytest.raises(SchemeError) as info:
        load_scheme_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: label id 0 must be positive (0 is background); label id 'x' is not an "
                              "integer; label 2 needs a structure name, got 7; label id 'k0'")
    assert message.endswith(" more") and len(message) <= MAX_PARTIAL_CHARS


def test_a_long_scheme_file_with_a_valid_mapping_is_read(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"{i}: structure {i}\n" for i in range(1, 5001)))  # 10 000 values, under the limit
    assert len(load_scheme_file(path).labels) == 5000


def test_a_name_too_long_for_the_system_is_not_found():
    with pytest.raises(SchemeError, match=r"^\.\.\.s+\.json: label scheme file not found$"):
        resolve_scheme("s" * 10_000 + ".json")
    with pytest.raises(SchemeError, match=r"^unknown label scheme 'sss"):
        resolve_scheme("s" * 10_000)
