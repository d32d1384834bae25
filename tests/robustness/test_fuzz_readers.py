"""Property-based fuzzing of the readers: corrupt header bytes and files never crash flr.

For every input hypothesis makes (NIfTI headers with bytes and fields overwritten, NRRD headers built from
good and bad fields, DICOM files with bytes overwritten or cut), a reader either returns a valid image or
raises an :class:`~flr.errors.FlrError` (one line naming the file): never another exception, never a Python
warning (pytest turns them into errors), and never a hang (each read must finish within
:data:`MAX_SECONDS`). The runs are seeded (``derandomize=True``), so a failure reproduces.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flr.errors import FlrError
from flr.image import Geometry, Image
from flr.io import read_image, read_label_map, read_label_maps
from flr.io.dicom import read_dicom, write_dicom_series

#: A read of these tiny files takes milliseconds; a second means a loop or a blind allocation.
MAX_SECONDS = 2.0
FUZZ = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One folder per module: every example overwrites the same few files (function-scoped tmp_path cannot
    be used with @given)."""
    with tempfile.TemporaryDirectory(prefix="flr-fuzz-") as tmp:
        yield Path(tmp)


def _outcome(read: Callable[[], object], path: Path) -> None:
    """``read()`` returns images on valid grids or raises an FlrError naming ``path``, within MAX_SECONDS."""
    start = time.perf_counter()
    try:
        result = read()
    except FlrError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(path.name) in message or str(path) in message or str(path.parent) in message, message
    else:
        for image in result if isinstance(result, list) else [result]:
            assert isinstance(image, Image)
            assert image.array.shape == image.geometry.shape_zyx
            assert all(np.isfinite(image.geometry.spacing_mm)) and min(image.geometry.spacing_mm) > 0
    assert time.perf_counter() - start < MAX_SECONDS


# ----------------------------------------------------------------------------------------------
# NIfTI: a valid 4 x 5 x 6 file, header bytes and fields overwritten
# ----------------------------------------------------------------------------------------------
def _nifti_bytes() -> bytes:
    data = np.zeros((6, 5, 4), np.int16)
    data[2:4, 1:3, 1:3] = 1
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img.header.binaryblock + b"\x00" * 4 + data.tobytes(order="F")


NIFTI = _nifti_bytes()
#: (byte offset, struct format) of the NIfTI-1 fields a corrupt header most often gets wrong.
NIFTI_FIELDS = [(40 + 2 * i, "<h") for i in range(8)] + [(70, "<h"), (72, "<h")] + [
    (76 + 4 * i, "<f") for i in range(8)] + [(108, "<f"), (112, "<f"), (116, "<f"), (123, "<B"), (252, "<h"),
                                             (254, "<h")] + [(256 + 4 * i, "<f") for i in range(18)]
SPECIAL_FLOATS = [0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), -float("inf"), 3e4, 352.0]
SPECIAL_INTS = [0, -1, 1, 2, 3, 5, 7, 8, 128, 1792, 2048, 2304, 16, 32767, -32768]

field_edit = st.sampled_from(NIFTI_FIELDS).flatmap(
    lambda field: st.tuples(st.just(field), st.sampled_from(SPECIAL_FLOATS if field[1] == "<f" else
                                                            [v for v in SPECIAL_INTS if field[1] != "<B" or
                                                             0 <= v < 256])))
byte_edit = st.tuples(st.integers(0, len(NIFTI) - 1), st.integers(0, 255))


@FUZZ
@given(fields=st.lists(field_edit, max_size=4), raw=st.lists(byte_edit, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, len(NIFTI))), compress=st.booleans())
def test_nifti_header_fuzz(workdir, fields, raw, cut, compress):
    blob = bytearray(NIFTI)
    for (offset, fmt), value in fields:
        struct.pack_into(fmt, blob, offset, value)
    for offset, value in raw:
        blob[offset] = value
    blob = blob[:cut] if cut is not None else blob
    path = workdir / ("fuzz.nii.gz" if compress else "fuzz.nii")
    path.write_bytes(gzip.compress(bytes(blob), mtime=0) if compress else bytes(blob))
    _outcome(lambda: read_image(path), path)
    _outcome(lambda: read_label_map(path, {1: "liver"}), path)


# ----------------------------------------------------------------------------------------------
# NRRD: headers assembled from good and bad field values, with payloads of any length
# ----------------------------------------------------------------------------------------------
NRRD_TYPES = ["uchar", "short", "float", "double", "int64", "block", "complex", "uint8_t", ""]
NRRD_SPACES = ["LPS", "RAS", "left-anterior-superior", "scanner-xyz", "", "3D-right-handed"]
NRRD_ENCODINGS = ["raw", "gzip", "bzip2", "ascii", "hex", "zip"]
VECTORS = ["(1,0,0)", "(0,1,0)", "(0,0,1)", "(0,0,0)", "none", "(nan,0,0)", "(1e308,0,0)", "(0,1)", "x"]


@st.composite
def nrrd_files(draw) -> bytes:
    dimension = draw(st.integers(0, 5))
    sizes = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 2**31, 30000]), min_size=max(dimension - 1, 0),
                          max_size=dimension + 1))
    lines = ["NRRD0004", f"type: {draw(st.sampled_from(NRRD_TYPES))}", f"dimension: {dimension}",
             "sizes: " + " ".join(map(str, sizes)), f"space: {draw(st.sampled_from(NRRD_SPACES))}",
             "space directions: " + " ".join(draw(st.lists(st.sampled_from(VECTORS), max_size=5))),
             f"encoding: {draw(st.sampled_from(NRRD_ENCODINGS))}",
             f"endian: {draw(st.sampled_from(['little', 'big']))}"]
    if draw(st.booleans()):
        lines.append("kinds: " + " ".join(draw(st.lists(st.sampled_from(["domain", "list", "RGB-color", "vector"]),
                                                        max_size=5))))
    if draw(st.booleans()):
        lines.append("space origin: " + draw(st.sampled_from(["(0,0,0)", "(nan,0,0)", "(1,2)", "zero"])))
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["byte skip: -1", "byte skip: 7", "line skip: 2", "data file: gone.raw",
                                           "Segment0_Name:=liver", "Segment0_LabelValue:=x", "Segment0_Layer:=9"])))
    lines = draw(st.permutations(lines[1:]).map(lambda rest: [lines[0], *rest]))
    payload = draw(st.sampled_from([b"", bytes(24), bytes(200), gzip.compress(bytes(24)), b"1 2 3 4"]))
    return ("\n".join(lines) + "\n\n").encode() + payload


@FUZZ
@given(content=nrrd_files(), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3))
def test_nrrd_header_fuzz(workdir, content, flips):
    blob = bytearray(content)
    for offset, value in flips:
        if offset < len(blob):
            blob[offset] = value
    path = workdir / "fuzz.seg.nrrd"
    path.write_bytes(bytes(blob))
    _outcome(lambda: read_image(path), path)
    _outcome(lambda: read_label_maps(path), path)  # as a 3D Slicer segmentation


# ----------------------------------------------------------------------------------------------
# DICOM: one file of a 3-slice series with bytes overwritten and the file cut
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series_bytes(workdir) -> list[bytes]:
    rng = np.random.default_rng(5)
    image = Image(rng.integers(-1000, 1000, (3, 8, 8)).astype(np.int16), Geometry((3, 8, 8), (0.7, 0.7, 2.0)))
    return [p.read_bytes() for p in write_dicom_series(image, workdir / "clean")]


@FUZZ
@given(which=st.integers(0, 2), flips=st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 255)), min_size=1,
                                               max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 1800)))
def test_dicom_byte_corruption_fuzz(workdir, series_bytes, which, flips, cut):
    folder = workdir / "series"
    folder.mkdir(exist_ok=True)
    for k, blob in enumerate(series_bytes):
        data = bytearray(blob)
        if k == which:
            for offset, value in flips:
                data[offset % len(data)] = value
            data = data[:cut] if cut is not None else data
        (folder / f"CT{k}.dcm").write_bytes(bytes(data))
    _outcome(lambda: read_dicom(folder), folder / "CT0.dcm")
    _outcome(lambda: read_image(folder / f"CT{which}.dcm"), folder / f"CT{which}.dcm")
