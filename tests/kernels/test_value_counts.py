"""Counting without the voxel-by-voxel kernel (issue 14, first run): flr.kernels.value_counts against numpy's
own count of the values (np.unique), on every native dtype, shapes whose rows are and are not whole 64-bit
words, arrays shorter than one of its rows, views; the assessment's zero-padded word rows against label_stats
of the unpadded codes."""

from __future__ import annotations

import numpy as np
import pytest

from flr.errors import KernelInputError
from flr.kernels import value_counts


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.bool_])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (2, 1, 511), (1, 1, 512), (4, 9, 127), (7, 33, 61)])
def test_counts_equal_numpy_s(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    top = 2 if dtype == np.bool_ else (300 if dtype != np.uint8 else 9)
    values = rng.integers(0, top, shape).astype(dtype)
    want_values, want_counts = np.unique(values, return_counts=True)
    got_values, got_counts = value_counts(values)
    assert got_values.tolist() == [int(v) for v in want_values]
    assert got_counts.tolist() == want_counts.tolist()
    assert int(got_counts.sum()) == values.size


def test_a_strided_view_is_counted_as_it_is():
    values = np.random.default_rng(1).integers(0, 5, (20, 30, 40)).astype(np.uint8)
    view = values[2:17, ::3, 5:33].transpose(2, 0, 1)
    got = value_counts(view)
    want = np.unique(view, return_counts=True)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()


def test_negative_or_non_integer_values_are_refused():
    with pytest.raises(KernelInputError):
        value_counts(np.array([[[1, -1]]], np.int32))
    with pytest.raises(KernelInputError):
        value_counts(np.full((3, 30, 40), -2, np.int32))
    with pytest.raises(KernelInputError):
        value_counts(np.zeros((2, 2, 2), np.float32))


@pytest.mark.parametrize("nx", [1, 7, 8, 13, 61])
def test_word_rows_keep_every_positive_code_s_counts_and_faces(nx):
    from flr.assessment import _word_rows
    from flr.kernels import label_stats

    rng = np.random.default_rng(nx)
    codes = rng.integers(0, 6, (5, 9, nx)).astype(np.uint8)
    padded = _word_rows(codes)
    assert padded.shape[2] % 8 == 0 and padded.shape[2] - nx < 8
    assert np.array_equal(padded[:, :, :nx], codes) and not padded[:, :, nx:].any()
    a, b = label_stats(codes), label_stats(padded)
    for c in range(1, 6):
        assert a.count(c) == b.count(c)
        for d in range(1, 6):
            assert a.adjacent(c, d) == b.adjacent(c, d)
    i = [int(np.searchsorted(a.labels, c)) for c in a.labels if c]
    j = [int(np.searchsorted(b.labels, c)) for c in a.labels if c]
    assert np.array_equal(a.face_counts[:, i][:, :, i], b.face_counts[:, j][:, :, j])
