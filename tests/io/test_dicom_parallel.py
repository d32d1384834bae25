"""Compressed DICOM series decoded by several processes (flr.io.dicom, issue 14): the same array, geometry,
metadata and errors as the serial decode. Series are small (tens of 64 x 64 slices) so a pool's start-up
dominates; the speed is measured in ``benchmarks/bench_dicom_decode.py``, never here."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import flr.io.dicom as dicom
from flr.errors import FlrError, InputFileError
from flr.image import Geometry, Image
from flr.io.dicom import DECODE_WORKERS_ENV, decode_worker_count, read_dicom, write_dicom_series


def ct(shape=(12, 64, 64), seed=0, peak_hu=3000):
    """Seeded integer HU in [-1024, peak_hu] on an oblique, anisotropic grid."""
    rng = np.random.default_rng(seed)
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    array = rng.integers(-1024, peak_hu + 1, size=shape).astype(np.int32)
    return Image(array, Geometry(shape, (0.7, 0.8, 2.5), (-100.25, 50.5, 30.125), direction))


def assert_same_read(got: Image, want: Image) -> None:
    assert got.array.dtype == want.array.dtype
    assert np.array_equal(got.array, want.array)
    assert got.geometry == want.geometry
    assert got.metadata == want.metadata


@pytest.mark.parametrize("transfer_syntax", ["jpeg2000-lossless", "jpeg-lossless"])
def test_parallel_decode_equals_the_serial_decode(tmp_path, transfer_syntax):
    image = ct()
    write_dicom_series(image, tmp_path, transfer_syntax=transfer_syntax, shuffle_names=True, seed=4)
    serial = read_dicom(tmp_path, decode_workers=1)
    assert serial.array.dtype == np.int16 and np.array_equal(serial.array, image.array)
    assert_same_read(read_dicom(tmp_path, decode_workers=2), serial)


def test_parallel_decode_equals_the_serial_decode_when_a_slice_needs_float32(tmp_path):
    """A slice in the middle holds HU beyond int16: the stack turns float32 whichever slice arrives first."""
    image = ct(shape=(10, 32, 32), seed=1)
    array = np.array(image.array)
    array[6, 3, 4] = 40_000
    write_dicom_series(image.with_array(array), tmp_path, transfer_syntax="jpeg2000-lossless")
    serial = read_dicom(tmp_path, decode_workers=1)
    assert serial.array.dtype == np.float32 and np.array_equal(serial.array, array)
    assert_same_read(read_dicom(tmp_path, decode_workers=3), serial)


def test_a_corrupt_slice_fails_as_in_the_serial_decode(tmp_path):
    """Two damaged files: the error names the first in slice order, on one line, whatever the worker count."""
    paths = write_dicom_series(ct(shape=(10, 32, 32), seed=2), tmp_path, transfer_syntax="jpeg2000-lossless")
    for bad in (paths[4], paths[7]):
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))  # codestream zeroed: undecodable
    with pytest.raises(InputFileError, match=rf"{paths[4].name}: .*pixel data") as serial:
        read_dicom(tmp_path, decode_workers=1)
    with pytest.raises(InputFileError) as parallel:
        read_dicom(tmp_path, decode_workers=2)
    assert str(parallel.value) == str(serial.value) and "\n" not in str(parallel.value)


def _exit_on_slice_3(path):
    """A decoder that takes its process down on one file (forked, so the worker sees this patch)."""
    if path.name == "CT00003.dcm":
        os._exit(3)
    return dicom._decode(path)[0]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_decoder_crash_is_an_error_naming_the_files(tmp_path, monkeypatch):
    write_dicom_series(ct(shape=(6, 32, 32), seed=3), tmp_path, transfer_syntax="jpeg2000-lossless")
    monkeypatch.setattr(dicom, "_START_METHOD", "fork")
    monkeypatch.setattr(dicom, "_decode_array", _exit_on_slice_3)
    with pytest.raises(InputFileError, match=r"decoder process ended abruptly .* one of .*CT00003\.dcm") as info:
        read_dicom(tmp_path, decode_workers=2)
    assert f"{DECODE_WORKERS_ENV}=1" in str(info.value) and "\n" not in str(info.value)


def test_worker_count_from_the_argument_the_environment_or_the_cpus(monkeypatch):
    monkeypatch.delenv(DECODE_WORKERS_ENV, raising=False)
    assert decode_worker_count() == dicom._available_cpus() >= 1
    assert decode_worker_count(5) == 5
    monkeypatch.setenv(DECODE_WORKERS_ENV, " 3 ")
    assert decode_worker_count() == 3
    assert decode_worker_count(1) == 1  # the argument wins
    monkeypatch.delenv(DECODE_WORKERS_ENV)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())  # a pool's worker: cases in parallel
    assert decode_worker_count() == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_worker_count_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(DECODE_WORKERS_ENV, value)
    with pytest.raises(FlrError, match=rf"{DECODE_WORKERS_ENV}='{value}' is not a positive integer"):
        decode_worker_count()


@pytest.mark.parametrize("value", [0, -1, True, 2.0])
def test_a_bad_worker_argument_is_refused(value):
    with pytest.raises(FlrError, match="decode_workers must be a positive integer"):
        decode_worker_count(value)


def test_small_uncompressed_or_single_file_series_stay_in_this_process(tmp_path, monkeypatch):
    """No pool below PARALLEL_MIN_PIXELS (unless asked), for uncompressed data, or for one file."""
    started = []
    context = dicom._process_context
    monkeypatch.setattr(dicom, "_process_context", lambda: started.append(1) or context())
    monkeypatch.setenv(DECODE_WORKERS_ENV, "4")
    small = tmp_path / "small"
    write_dicom_series(ct(shape=(4, 32, 32)), small, transfer_syntax="jpeg2000-lossless")
    plain = tmp_path / "plain"
    write_dicom_series(ct(shape=(4, 32, 32)), plain)
    single = tmp_path / "single"
    write_dicom_series(ct(shape=(1, 32, 32)), single, transfer_syntax="jpeg2000-lossless")
    read_dicom(small)
    read_dicom(plain, decode_workers=4)
    read_dicom(single, decode_workers=4)
    assert started == []
    monkeypatch.setattr(dicom, "PARALLEL_MIN_PIXELS", 4 * 32 * 32)
    read_dicom(small)
    assert started == [1]
