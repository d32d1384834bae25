"""flr.kernels against the plain numpy / scipy references, on seeded random and analytic label maps.

Arrays are small (tens of voxels a side) so the file runs in seconds once numba's cache is warm; the
first run compiles the kernels for uint8, uint16 and int32, on both paths (nx = 64: whole uint64 words;
nx = 61: voxel by voxel), each on its first use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import flr.kernels as kernels
from flr.errors import KernelInputError
from flr.kernels import LabelStats, components_of_mask, connected_components, label_stats
from flr.kernels.reference import connected_components_reference, label_stats_reference

REPO = Path(__file__).resolve().parents[2]
DTYPES = [np.uint8, np.uint16, np.int32]
# nx = 64 gives rows of whole uint64 words for every dtype (word path); nx = 61 never does (scalar path)
SHAPES = [(40, 50, 64), (40, 50, 61)]


def blobs(shape: tuple[int, int, int], n_labels: int, seed: int, sigma: float = 2.0) -> np.ndarray:
    """Smoothed Gaussian noise cut at quantiles into labels 0..n_labels-1 (int64)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    cuts = np.quantile(field, np.linspace(0, 1, n_labels + 1)[1:-1])
    return np.digitize(field, cuts).astype(np.int64)


def assert_same_stats(got: LabelStats, want: LabelStats) -> None:
    assert got.shape_zyx == want.shape_zyx
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.bbox_zyx, want.bbox_zyx)
    np.testing.assert_array_equal(got.face_counts, want.face_counts)
    for arr in (got.labels, got.counts, got.face_counts, got.bbox_zyx):
        assert arr.dtype == np.int64


def assert_same_components(labels: np.ndarray, include: list[int] | None, **kwargs: int) -> None:
    got, got_sizes = connected_components(labels, include, **kwargs)
    want, want_sizes = connected_components_reference(labels, include)
    assert got.dtype == np.int32
    assert got.shape == labels.shape
    assert got_sizes.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_sizes, want_sizes)


# --- label_stats -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_label_stats_matches_reference(dtype: type, shape: tuple[int, int, int]) -> None:
    labels = blobs(shape, 6, seed=1).astype(dtype)
    assert_same_stats(label_stats(labels), label_stats_reference(labels))


@pytest.mark.parametrize("shape", [*SHAPES, (7, 3, 8), (3, 1, 16), (1, 1, 1), (1, 1, 9), (9, 1, 1)])
def test_label_stats_thread_counts_agree(shape: tuple[int, int, int]) -> None:
    labels = (
        blobs(shape, 5, seed=2, sigma=1.0).astype(np.uint8)
        if min(shape) > 1
        else (np.arange(np.prod(shape)).reshape(shape) % 3).astype(np.uint8)
    )
    want = label_stats_reference(labels)
    for n_threads in (1, 2, 3, 7):
        assert_same_stats(label_stats(labels, n_threads=n_threads), want)


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(np.zeros((6, 7, 16), np.uint8), id="all-zero"),
        pytest.param(np.full((6, 7, 16), 5, np.uint8), id="one-label-everywhere"),
        pytest.param(np.full((6, 7, 13), 300, np.uint16), id="one-large-label-scalar"),
        pytest.param(np.ones((1, 1, 1), np.int32), id="single-voxel-map"),
    ],
)
def test_label_stats_uniform_maps(labels: np.ndarray) -> None:
    stats = label_stats(labels)
    assert_same_stats(stats, label_stats_reference(labels))
    assert stats.labels.size == 1
    assert stats.count(int(labels.flat[0])) == labels.size
    assert stats.adjacent_pairs() == []
    assert stats.touches_border(int(labels.flat[0]))


def test_label_stats_single_voxel_and_borders() -> None:
    labels = np.zeros((5, 6, 16), np.uint8)
    labels[2, 3, 7] = 9  # one interior voxel: 2 faces along each axis
    labels[0, :, :] = 1  # first slice
    labels[:, :, -1] = 2  # last column (overwrites the edge of slice 0)
    labels[:, -1, 0] = 3  # a line on the last row, first column
    stats = label_stats(labels)
    assert_same_stats(stats, label_stats_reference(labels))
    assert stats.count(9) == 1
    np.testing.assert_array_equal(stats.contact_faces(9, 0), [2, 2, 2])
    np.testing.assert_array_equal(stats.bbox_zyx[stats.labels.tolist().index(9)], [2, 3, 7, 2, 3, 7])
    assert not stats.touches_border(9)
    assert all(stats.touches_border(label) for label in (0, 1, 2, 3))


def test_label_stats_analytic_boxes() -> None:
    """Two boxes side by side in x: the contact is their shared y-z face, nothing else."""
    labels = np.zeros((6, 7, 24), np.uint8)
    labels[1:5, 2:6, 3:10] = 4  # 4 x 4 x 7
    labels[1:5, 2:6, 10:20] = 7  # 4 x 4 x 10, touching label 4 along x
    stats = label_stats(labels)
    assert stats.labels.tolist() == [0, 4, 7]
    assert stats.count(4) == 4 * 4 * 7
    assert stats.count(7) == 4 * 4 * 10
    assert stats.count(8) == 0
    np.testing.assert_array_equal(stats.contact_faces(4, 7), [16, 0, 0])
    np.testing.assert_array_equal(stats.contact_faces(7, 4), [16, 0, 0])
    # background touches box 4 on its -x face (4*4), both y faces (2*4*7) and both z faces (2*4*7)
    np.testing.assert_array_equal(stats.contact_faces(0, 4), [16, 56, 56])
    np.testing.assert_array_equal(stats.contact_faces(4, 99), [0, 0, 0])
    assert stats.adjacent(4, 7)
    assert not stats.adjacent(4, 4)
    assert not stats.adjacent(4, 99)
    assert stats.adjacent_pairs() == [(0, 4), (0, 7), (4, 7)]
    np.testing.assert_array_equal(stats.bbox_zyx[1], [1, 2, 3, 4, 5, 9])
    np.testing.assert_array_equal(stats.face_counts, stats.face_counts.transpose(0, 2, 1))
    assert not stats.face_counts[:, [0, 1, 2], [0, 1, 2]].any()
    assert not stats.touches_border(4)
    assert not stats.touches_border(99)
    assert stats.touches_border(0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
def test_label_stats_large_sparse_ids(dtype: type) -> None:
    ids = np.array([0, 7, 70000, 999999])
    labels = ids[blobs((20, 30, 32), 4, seed=3)].astype(dtype)
    stats = label_stats(labels)
    assert_same_stats(stats, label_stats_reference(labels))
    assert stats.labels.tolist() == ids.tolist()
    assert stats.face_counts.shape == (3, 4, 4)


def test_label_stats_ids_beyond_int32_are_kept() -> None:
    ids = np.array([3, 2**40, 2**62])
    labels = ids[blobs((10, 12, 16), 3, seed=4)]
    stats = label_stats(labels)
    assert_same_stats(stats, label_stats_reference(labels))
    assert stats.labels.tolist() == ids.tolist()


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint32, np.int64, np.uint64, np.bool_, ">u2", "<i4"])
def test_label_stats_converts_other_integer_types(dtype: str | type) -> None:
    labels = blobs((10, 12, 24), 2, seed=5).astype(dtype)
    assert_same_stats(label_stats(labels), label_stats_reference(labels.astype(np.int64)))


def test_label_stats_uint16_compressed_ids() -> None:
    ids = np.array([0, 255, 256, 4000, 65535])
    labels = ids[blobs((12, 16, 24), 5, seed=6)].astype(np.uint16)
    assert_same_stats(label_stats(labels), label_stats_reference(labels))


def test_label_stats_many_labels_use_the_hash_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 labels (dense tables too big) and a tiny first hash table, so it overflows and is regrown."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 300, size=(8, 16, 24)).astype(np.uint16)
    labels[:, :, 8:12] = 17  # some long runs too
    want = label_stats_reference(labels)
    monkeypatch.setattr(kernels, "_DENSE_FACE_ENTRIES", 0)
    monkeypatch.setattr(kernels, "_HASH_START_SLOTS", 64)
    for n_threads in (1, 2):
        assert_same_stats(label_stats(labels, n_threads=n_threads), want)
    assert_same_stats(label_stats(labels[:, :, :23], n_threads=2), label_stats_reference(labels[:, :, :23]))


def test_label_stats_refuses_too_many_labels() -> None:
    labels = np.arange(kernels.MAX_LABELS + 1, dtype=np.int32).reshape(1, 1, -1)
    with pytest.raises(KernelInputError, match=r"4097 distinct labels.*at most 4096"):
        label_stats(labels)
    ids = np.arange(kernels.MAX_LABELS + 1, dtype=np.int64) * 2**33  # through np.unique
    with pytest.raises(KernelInputError, match="4097 distinct labels"):
        label_stats(ids.reshape(1, 1, -1))


def test_label_stats_label_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A smaller limit keeps the test light: the (3, n, n) matrix for 4096 labels is 400 MB."""
    monkeypatch.setattr(kernels, "MAX_LABELS", 160)
    labels = np.arange(160, dtype=np.int32).reshape(1, 10, 16) * 1000
    stats = label_stats(labels)
    assert stats.labels.size == 160
    assert stats.adjacent(0, 1000)
    assert stats.adjacent(0, 16000)
    assert not stats.adjacent(0, 17000)
    with pytest.raises(KernelInputError, match="161 distinct labels"):
        label_stats(np.arange(161, dtype=np.int32).reshape(1, 7, 23) * 1000)


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(lambda a: a[:, ::2], id="every-other-row"),
        pytest.param(lambda a: a.transpose(2, 1, 0), id="transposed"),
        pytest.param(lambda a: a[:, :, 1:], id="offset-columns"),
        pytest.param(lambda a: a[1:, 3:, 8:], id="offset-aligned"),
        pytest.param(lambda a: a[::-1, :, ::-1], id="reversed"),
        pytest.param(np.asfortranarray, id="fortran-order"),
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_views(view, dtype: type) -> None:
    labels = view(blobs((20, 30, 64), 4, seed=8).astype(dtype))
    assert_same_stats(label_stats(labels), label_stats_reference(labels))
    assert_same_components(labels, [1, 3])


def test_read_only_input() -> None:
    labels = blobs((10, 12, 16), 3, seed=9).astype(np.uint8)
    labels.flags.writeable = False
    assert_same_stats(label_stats(labels), label_stats_reference(labels))
    assert_same_components(labels, None)


# --- connected_components ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("include", [None, [1], [1, 3], [2, 4, 5], [], [99]])
def test_components_match_scipy(dtype: type, shape: tuple[int, int, int], include: list[int] | None) -> None:
    labels = blobs(shape, 6, seed=10, sigma=1.5).astype(dtype)
    assert_same_components(labels, include)


@pytest.mark.parametrize("shape", [(30, 40, 64), (30, 41, 37), (1, 1, 8), (1, 5, 1), (6, 1, 1), (1, 1, 1)])
def test_components_many_small_pieces_any_thread_count(shape: tuple[int, int, int]) -> None:
    """Thresholded white noise: thousands of components, many of them crossing chunk borders."""
    rng = np.random.default_rng(11)
    labels = (rng.random(shape) < 0.45).astype(np.uint8) * rng.integers(1, 4, size=shape).astype(np.uint8)
    for n_threads in (1, 2, 3, 5):
        assert_same_components(labels, None, n_threads=n_threads)
        assert_same_components(labels, [2], n_threads=n_threads)


def test_components_merge_across_labels_and_wrap_around() -> None:
    """A U whose arms meet only at the bottom is one component; labels 1 and 2 merge where they touch."""
    labels = np.zeros((4, 9, 16), np.uint8)
    labels[1, 1:8, 2] = 1  # left arm
    labels[1, 1:8, 12] = 2  # right arm
    labels[1, 7, 3:12] = 1  # bottom bar joining them (first voxel of the component: top of the left arm)
    labels[3, 0, 0] = 2  # a lone voxel in a later slice
    comps, sizes = connected_components(labels)
    assert sizes.tolist() == [7 + 7 + 9, 1]
    assert comps[1, 1, 2] == 1
    assert comps[1, 1, 12] == 1
    assert comps[3, 0, 0] == 2
    comps, sizes = connected_components(labels, include=[2])
    assert sizes.tolist() == [7, 1]


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint32, np.int64, np.uint64, np.bool_, ">u2", "<i4"])
@pytest.mark.parametrize("nx", [24, 21])
def test_components_convert_other_integer_types(dtype: str | type, nx: int) -> None:
    """Every integer dtype the dispatch accepts, converted to uint8/uint16/int32, on both paths."""
    labels = blobs((10, 12, nx), 3, seed=15, sigma=1.0).astype(dtype)
    got, got_sizes = connected_components(labels)
    want, want_sizes = connected_components_reference(labels.astype(np.int64))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_sizes, want_sizes)


def test_components_large_sparse_ids() -> None:
    ids = np.array([0, 7, 70000, 999999])
    labels = ids[blobs((20, 30, 32), 4, seed=12)].astype(np.int32)
    for include in (None, [7], [70000, 999999], [5, 999999]):
        assert_same_components(labels, include)
    wide = ids[blobs((8, 10, 16), 4, seed=13)] * 2**33  # int64 ids beyond int32
    for include in (None, [7 * 2**33], [0]):
        assert_same_components(wide, include)
    no_zero = wide + 1  # compressed ids where 0 is absent: every voxel is nonzero
    assert_same_components(no_zero, None)


@pytest.mark.parametrize("shape", [(12, 16, 24), (12, 16, 21)])
def test_components_of_mask(shape: tuple[int, int, int]) -> None:
    mask = blobs(shape, 2, seed=14, sigma=1.0).astype(bool)
    comps, sizes = components_of_mask(mask)
    want, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
    np.testing.assert_array_equal(comps, want)
    assert sizes.size == n
    assert sizes.sum() == mask.sum()


def test_components_empty_and_full() -> None:
    zeros = np.zeros((5, 6, 16), np.uint8)
    comps, sizes = connected_components(zeros)
    assert not comps.any()
    assert sizes.size == 0
    full = np.full((5, 6, 13), 3, np.uint16)
    comps, sizes = connected_components(full, include=[3])
    assert (comps == 1).all()
    assert sizes.tolist() == [full.size]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((4, 5), np.uint8), "3-D"),
        (np.zeros((2, 3, 4, 5), np.uint8), "3-D"),
        (np.zeros((0, 3, 4), np.uint8), "empty"),
        (np.zeros((2, 3, 4), np.float32), "float32"),
        (np.zeros((2, 3, 4), np.complex64), "complex64"),
        (np.full((2, 3, 4), -1, np.int8), "negative"),
        (np.full((2, 3, 4), -3, np.int16), "negative"),
        (np.full((2, 3, 4), -7, np.int32), "minimum -7"),
        (np.full((2, 3, 4), -(2**40), np.int64), "negative"),
    ],
)
def test_bad_label_maps_are_refused(labels: np.ndarray, match: str) -> None:
    with pytest.raises(KernelInputError, match=match):
        label_stats(labels)
    with pytest.raises(KernelInputError, match=match):
        connected_components(labels)


def test_bad_arguments_are_refused() -> None:
    labels = np.zeros((2, 3, 8), np.uint8)
    with pytest.raises(KernelInputError, match="n_threads"):
        label_stats(labels, n_threads=0)
    with pytest.raises(KernelInputError, match="n_threads"):
        connected_components(labels, n_threads=1.5)  # type: ignore[arg-type]
    with pytest.raises(KernelInputError, match="negative"):
        connected_components(labels, include=[1, -2])
    with pytest.raises(KernelInputError, match="integer label ids"):
        connected_components(labels, include=[1.5])
    with pytest.raises(KernelInputError, match="bool"):
        components_of_mask(labels)
    with pytest.raises(KernelInputError, match="3-D"):
        components_of_mask(np.zeros((3, 3), bool))
    assert isinstance(KernelInputError("x"), TypeError)


def test_result_arrays_are_read_only() -> None:
    stats = label_stats(np.zeros((2, 3, 8), np.uint8))
    with pytest.raises(ValueError, match="read-only"):
        stats.counts[0] = 1


def test_concurrent_calls_from_python_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    maps = [blobs((12, 16, 24), 3 + i % 3, seed=20 + i).astype(np.uint8) for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        stats = list(pool.map(label_stats, maps))
        comps = list(pool.map(connected_components, maps))
    for labels, got, (c, sizes) in zip(maps, stats, comps, strict=True):
        assert_same_stats(got, label_stats_reference(labels))
        want, want_sizes = connected_components_reference(labels)
        np.testing.assert_array_equal(c, want)
        np.testing.assert_array_equal(sizes, want_sizes)


# --- packaging ---------------------------------------------------------------------------------


def test_import_does_not_load_numba() -> None:
    code = "import sys, flr.kernels, flr.kernels.reference; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
