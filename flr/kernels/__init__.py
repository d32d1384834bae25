"""Core voxel kernels: per-label counts, face adjacency and connected components, one pass each.

Arrays are indexed ``(z, y, x)`` (slowest to fastest). Counts are in voxels and contacts in voxel faces;
multiply by :attr:`flr.image.Geometry.voxel_volume_ml` (or a face area in mm^2) for physical units.

The work is done by numba kernels in :mod:`flr.kernels._numba`, imported on the first call (never at
``import flr.kernels``); :mod:`flr.kernels.reference` holds the plain numpy versions the tests compare
them with. Each kernel compiles on its first call, only for the dtype and path (whole uint64 words or
voxel by voxel) that call needs, and is cached on disk (numba's ``NUMBA_CACHE_DIR``), so a later process
loads it instead. :func:`set_notice` asks to be told once before a compile starts; :func:`warm_up`
compiles every dtype now (README: Performance settings).

Accepted label maps are 3-D arrays of non-negative integers: uint8, uint16 and int32 are read as they
are; bool, int8, int16, uint32, int64 and uint64 are viewed or converted first. Any memory layout is
accepted (non-contiguous views are copied).

>>> import numpy as np
>>> arr = np.zeros((2, 3, 4), np.uint8)
>>> arr[:, :, 2:] = 5            # label 5 fills the right half: 2 x 3 x 2 voxels
>>> stats = label_stats(arr)
>>> stats.labels.tolist(), stats.counts.tolist()
([0, 5], [12, 12])
>>> stats.contact_faces(0, 5).tolist()    # 6 faces between columns x=1 and x=2, along x only
[6, 0, 0]
>>> comps, sizes = connected_components(arr)
>>> sizes.tolist()
[12]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from flr.errors import FlrError, KernelInputError
from flr.kernels._chunks import run_chunks
from flr.kernels._warmup import NATIVE_DTYPES, set_notice, warm_up

__all__ = [
    "MAX_LABELS",
    "NATIVE_DTYPES",
    "LabelStats",
    "components_of_mask",
    "connected_components",
    "label_stats",
    "set_notice",
    "value_counts",
    "warm_up",
]

#: Most distinct labels :func:`label_stats` accepts (its face matrix is ``(3, n, n)`` int64).
MAX_LABELS = 4096

#: Largest label id looked up through a dense table (4 bytes per id); larger ids are first compressed
#: with ``np.unique`` (a sort, slower but bounded in memory).
_LUT_MAX_ID = 1 << 22

#: Per-chunk face tables up to this many entries are dense ``(3, m, m)`` arrays, larger ones hashed.
_DENSE_FACE_ENTRIES = 1 << 22

#: First capacity (slots) of a hashed per-chunk face table; multiplied by 8 while a chunk overflows.
_HASH_START_SLOTS = 1 << 14

_NATIVE = tuple(np.dtype(d) for d in NATIVE_DTYPES)  # uint8, uint16, int32



# ---------------------------------------------------------------------------------------------
# Result type
# ---------------------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class LabelStats:
    """Voxel counts, bounding boxes and 6-neighbour face contacts of the labels of one map.

    Attributes
    ----------
    shape_zyx : tuple of int
        Shape of the label map, ``(z, y, x)``.
    labels : ndarray of int64, shape (n,)
        Sorted label ids with at least one voxel (0, the background, included when present).
    counts : ndarray of int64, shape (n,)
        Voxels of each entry of ``labels``.
    face_counts : ndarray of int64, shape (3, n, n)
        ``face_counts[a, i, j]`` is the number of voxel faces shared by a voxel of ``labels[i]`` and a
        6-neighbour of ``labels[j]`` along axis ``a`` (0 = x, 1 = y, 2 = z). Symmetric in ``(i, j)``,
        zero diagonal.
    bbox_zyx : ndarray of int64, shape (n, 6)
        Inclusive voxel bounding box per label: ``zmin, ymin, xmin, zmax, ymax, xmax``.

    Arrays are read-only. Instances compare by identity (they hold arrays).
    """

    shape_zyx: tuple[int, int, int]
    labels: np.ndarray
    counts: np.ndarray
    face_counts: np.ndarray
    bbox_zyx: np.ndarray

    def _index(self, label: int) -> int | None:
        i = int(np.searchsorted(self.labels, label))
        if i < self.labels.size and int(self.labels[i]) == int(label):
            return i
        return None

    def count(self, label: int) -> int:
        """Voxels of ``label`` (0 when it is absent)."""
        i = self._index(label)
        return 0 if i is None else int(self.counts[i])

    def touches_border(self, label: int) -> bool:
        """True when ``label`` has a voxel on the first or last index of any axis (False when absent)."""
        i = self._index(label)
        if i is None:
            return False
        box = self.bbox_zyx[i]
        last = np.asarray(self.shape_zyx) - 1
        return bool(np.any(box[:3] == 0) or np.any(box[3:] == last))

    def contact_faces(self, a: int, b: int) -> np.ndarray:
        """Faces shared by labels ``a`` and ``b`` along x, y and z, shape (3,) int64 (zeros when absent)."""
        i, j = self._index(a), self._index(b)
        if i is None or j is None:
            return np.zeros(3, np.int64)
        return self.face_counts[:, i, j].copy()

    def adjacent(self, a: int, b: int) -> bool:
        """True when labels ``a != b`` share at least one voxel face."""
        return bool(self.contact_faces(a, b).sum() > 0)

    def adjacent_pairs(self) -> list[tuple[int, int]]:
        """Sorted ``(a, b)`` label pairs, ``a < b``, that share at least one voxel face."""
        i, j = np.nonzero(np.triu(self.face_counts.sum(axis=0), k=1))
        return [(int(self.labels[p]), int(self.labels[q])) for p, q in zip(i, j, strict=True)]


# ---------------------------------------------------------------------------------------------
# Input preparation
# ---------------------------------------------------------------------------------------------


def _kernels() -> ModuleType:
    """:mod:`flr.kernels._numba`, imported on first use (numba loads then).

    Raises
    ------
    FlrError
        When numba finds no folder it can write its cache to (``NUMBA_CACHE_DIR``, the package's
        ``__pycache__``, ``~/.cache/numba``): it then refuses ``cache=True`` kernels at import.
    """
    try:
        from flr.kernels import _numba
    except RuntimeError as exc:
        if "no locator available" not in str(exc):
            raise
        raise FlrError(
            f"numba has no writable folder to cache flr's kernels in ({exc}); set NUMBA_CACHE_DIR to a writable "
            "directory, ideally one that persists between runs (README: Performance settings)"
        ) from exc
    return _numba


def _default_threads(n_threads: int | None) -> int:
    if n_threads is None:
        import numba

        configured = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set from the environment
        return max(1, min(configured, os.cpu_count() or 1))
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise KernelInputError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)


def _row_ranges(n: int, nchunks: int) -> list[tuple[int, int]]:
    """``nchunks`` contiguous ranges ``[i0, i1)`` splitting ``range(n)`` as evenly as integers allow."""
    return [(n * c // nchunks, n * (c + 1) // nchunks) for c in range(nchunks)]


def _check_array(labels: Any, what: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise KernelInputError(f"{what} must be a 3-D (z, y, x) array, got shape {arr.shape}")
    if arr.size == 0:
        raise KernelInputError(f"{what} must not be empty, got shape {arr.shape}")
    return arr


def _native_labels(labels: Any, nchunks: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Return (C-contiguous uint8/uint16/int32 array, its largest value, original ids or None).

    Other integer types are converted; ids beyond int32 are compressed to 0..n-1 and the third item
    then holds the original id of each (sorted). Raises :class:`KernelInputError` for non-integer
    dtypes and negative values.
    """
    arr = _check_array(labels, "label map")
    dt = arr.dtype
    if dt == np.bool_:
        return np.ascontiguousarray(arr).view(np.uint8), 1, None
    if dt.kind not in "iu":
        raise KernelInputError(
            f"label map dtype {dt} is not supported: use uint8, uint16 or int32 "
            "(any other integer type is converted)"
        )
    if not dt.isnative:
        arr = arr.astype(dt.newbyteorder("="))
        dt = arr.dtype
    arr = np.ascontiguousarray(arr)
    if dt == np.uint8:
        return arr, 255, None
    if dt in _NATIVE:
        _numba = _kernels()
        flat = _ro(arr.reshape(-1))
        parts = _row_ranges(flat.size, min(nchunks, flat.size))
        ranges = run_chunks(lambda c: _numba.value_range(flat, *parts[c]), len(parts))
        lo, hi = min(int(r[0]) for r in ranges), max(int(r[1]) for r in ranges)
    else:  # rarer dtypes: numpy's reductions, no extra kernel to compile
        lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise KernelInputError(f"label map ({dt}) holds negative labels (minimum {lo}); labels must be >= 0")
    if dt in _NATIVE:
        return arr, hi, None
    for target in _NATIVE:
        if hi <= np.iinfo(target).max:
            return arr.astype(target), hi, None
    # ids beyond int32 (int64/uint64): compress them to 0..n-1, keeping their order
    ids, inverse = np.unique(arr.reshape(-1), return_inverse=True)
    if ids.size > np.iinfo(np.int32).max:  # pragma: no cover - needs > 2**31 voxels
        raise KernelInputError(f"label map holds {ids.size} distinct labels, too many to compress")
    return inverse.astype(np.int32).reshape(arr.shape), int(ids.size - 1), ids.astype(np.int64)


def _ro(a: np.ndarray) -> np.ndarray:
    """Read-only view of ``a``.

    Kernels always get read-only inputs, so each dtype compiles once: numba types writeable and
    read-only arrays differently, and the label maps of :class:`flr.image.Image` are read-only.
    """
    v = a.view()
    v.flags.writeable = False
    return v


def _words(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, int, np.uint64, np.uint64]:
    """2-D row view, uint64 word view (or a dummy), whether words apply, voxels/word, mask and rep."""
    nz, ny, nx = arr.shape
    A2 = _ro(arr.reshape(nz * ny, nx))
    size = arr.itemsize
    E = 8 // size
    mask = np.uint64((1 << (8 * size)) - 1)
    rep = np.uint64(sum(1 << (8 * size * e) for e in range(E)))
    if (nx * size) % 8 == 0 and A2.ctypes.data % 8 == 0:
        W2 = A2.view(np.uint64)
        return A2, W2, True, E, mask, rep
    return A2, _ro(np.zeros((1, 1), np.uint64)), False, E, mask, rep


# ---------------------------------------------------------------------------------------------
# label_stats
# ---------------------------------------------------------------------------------------------


def _too_many(n: int) -> KernelInputError:
    gib = 3 * n * n * 8 / 2**30
    return KernelInputError(
        f"label map holds {n} distinct labels; label_stats supports at most {MAX_LABELS} (its (3, n, n) "
        f"face matrix would need {gib:.1f} GiB). Is this an instance map? Use connected_components, or "
        "relabel to fewer ids first."
    )


def _dense_ids(arr: np.ndarray, hi: int, nchunks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map values to dense ids: (array to scan, lut value -> dense id (int32), dense id -> label id)."""
    if arr.dtype == np.uint8:
        ids = np.arange(256, dtype=np.int64)
        return arr, ids.astype(np.int32), ids
    if hi <= 255:
        ids = np.arange(hi + 1, dtype=np.int64)
        return arr, ids.astype(np.int32), ids
    if hi < _LUT_MAX_ID:
        _numba = _kernels()
        flat = _ro(arr.reshape(-1))
        parts = _row_ranges(flat.size, min(nchunks, flat.size))
        flags = np.zeros((len(parts), hi + 1), np.uint8)
        run_chunks(lambda c: _numba.values_present(flat, *parts[c], flags[c]), len(parts))
        ids = np.flatnonzero(flags.any(axis=0)).astype(np.int64)
        if ids.size > MAX_LABELS:
            raise _too_many(int(ids.size))
        lut = np.zeros(hi + 1, np.int32)
        lut[ids] = np.arange(ids.size, dtype=np.int32)
        return arr, lut, ids
    ids, inverse = np.unique(arr.reshape(-1), return_inverse=True)
    if ids.size > MAX_LABELS:
        raise _too_many(int(ids.size))
    dense = inverse.astype(np.int32).reshape(arr.shape)
    return dense, np.arange(ids.size, dtype=np.int32), ids.astype(np.int64)


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def label_stats(labels: np.ndarray, *, n_threads: int | None = None) -> LabelStats:
    """Voxel counts, bounding boxes and 6-neighbour face contacts of every label, in one pass.

    Parameters
    ----------
    labels : ndarray, shape (z, y, x)
        Label map of non-negative integers (uint8, uint16, int32 natively; other integer types and
        bool are converted). At most :data:`MAX_LABELS` distinct ids; ids may be large (e.g. 999999).
    n_threads : int, optional
        Number of parallel chunks (default: numba's thread count, at most the CPU count). The result
        does not depend on it.

    Returns
    -------
    LabelStats
        Counts in voxels, contacts in voxel faces per axis (x, y, z), boxes in voxel indices (z, y, x).

    Raises
    ------
    KernelInputError
        For an array that is not 3-D, is empty, is not of an integer dtype, holds negative labels or more
        than :data:`MAX_LABELS` distinct ones.
    """
    nchunks = _default_threads(n_threads)
    arr, hi, original_ids = _native_labels(labels, nchunks)
    scan, lut, ids = _dense_ids(arr, hi, nchunks)
    if original_ids is not None:
        ids = original_ids[ids]
    nz, ny, nx = scan.shape
    present, counts, bbox, faces = _accumulate(scan, lut, int(ids.size), min(nchunks, nz * ny))
    return LabelStats(
        shape_zyx=(int(nz), int(ny), int(nx)),
        labels=_readonly(ids[present].astype(np.int64)),
        counts=_readonly(counts),
        face_counts=_readonly(faces),
        bbox_zyx=_readonly(bbox),
    )


#: Voxels per row of the word-aligned rows :func:`value_counts` cuts an array into (512 bytes of uint8)
_COUNT_ROW_VOXELS = 512


def value_counts(values: np.ndarray, *, n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``values`` (any shape) and how many voxels hold each, ascending (int64 both).

    :func:`label_stats`'s counts, with its input checks, on the flat data cut into rows of
    :data:`_COUNT_ROW_VOXELS` voxels (whole 64-bit words for every native dtype): its word path whatever the
    array's shape, so a caller that needs only counts never makes numba compile the voxel-by-voxel path for
    rows of another width (issue 14, first run). The tail shorter than one row is counted by ``np.unique``.

    >>> value_counts(np.array([[[3, 0, 3]]], np.uint8))
    (array([0, 3]), array([1, 2]))
    """
    arr = np.asarray(values)
    flat = np.ascontiguousarray(arr).reshape(-1)
    rows = flat.size // _COUNT_ROW_VOXELS
    found: dict[int, int] = {}
    if rows:
        stats = label_stats(flat[:rows * _COUNT_ROW_VOXELS].reshape(1, rows, _COUNT_ROW_VOXELS), n_threads=n_threads)
        found = dict(zip(stats.labels.tolist(), stats.counts.tolist(), strict=True))
    tail = flat[rows * _COUNT_ROW_VOXELS:]
    if tail.size:
        if not rows and ((arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer)) or tail.min() < 0):
            raise KernelInputError(f"value_counts needs non-negative integer values, got dtype {arr.dtype}")
        for v, n in zip(*np.unique(tail, return_counts=True), strict=True):
            found[int(v)] = found.get(int(v), 0) + int(n)
    keys = sorted(found)
    return np.array(keys, np.int64), np.array([found[k] for k in keys], np.int64)


def _stats_chunks(A2: np.ndarray, W2: np.ndarray, use_words: bool, ny: int, lut: np.ndarray, m: int, E: int,
                  mask: np.uint64, rep: np.uint64, counts: np.ndarray, bbox: np.ndarray, fk: np.ndarray,
                  fv: np.ndarray, dense: bool) -> list[int]:
    """Accumulate one chunk of rows into each row of the accumulators, at the same time; the chunks' statuses.

    Status 1: that chunk's hash table filled up. See :func:`flr.kernels._numba.stats_rows_words`.
    """
    _numba = _kernels()
    nchunks = counts.shape[0]
    parts = _row_ranges(A2.shape[0], nchunks)
    cap_mask = fk.shape[1] - 1

    def chunk(c: int) -> int:
        r0, r1 = parts[c]
        if use_words:
            return int(_numba.stats_rows_words(A2, W2, ny, r0, r1, lut, m, E, mask, rep, counts[c], bbox[c], fk[c],
                                               fv[c], dense, cap_mask))
        return int(_numba.stats_rows_scalar(A2, ny, r0, r1, lut, m, counts[c], bbox[c], fk[c], fv[c], dense, cap_mask))

    return run_chunks(chunk, nchunks)


def _accumulate(scan: np.ndarray, lut: np.ndarray, m: int, nchunks: int) -> tuple[np.ndarray, ...]:
    """Run the one-pass kernel over dense ids ``lut[value]`` in [0, m) and reduce its chunks.

    Returns the dense ids present (n,), their counts (n,), boxes (n, 6) and symmetric faces (3, n, n).
    """
    _numba = _kernels()
    A2, W2, use_words, E, mask, rep = _words(scan)
    ny = scan.shape[1]
    dense = 3 * m * m * nchunks <= _DENSE_FACE_ENTRIES
    full_cap = _next_pow2(3 * m * (m - 1) + 2)  # twice the number of (axis, pair) keys, a power of 2
    cap = 1 if dense else min(_HASH_START_SLOTS, full_cap)
    while True:
        counts = np.zeros((nchunks, m), np.int64)
        bbox = np.empty((nchunks, m, 6), np.int64)
        bbox[:, :, :3] = np.iinfo(np.int64).max
        bbox[:, :, 3:] = -1
        if dense:
            fk, fv = np.empty((nchunks, 1), np.int64), np.zeros((nchunks, 3 * m * m), np.int64)
        else:
            fk, fv = np.full((nchunks, cap), -1, np.int64), np.zeros((nchunks, cap), np.int64)
        if not any(_stats_chunks(A2, W2, use_words, ny, lut, m, E, mask, rep, counts, bbox, fk, fv, dense)):
            break
        cap = min(cap * 8, full_cap)  # a chunk's hash table filled up: retry with a bigger one
    total = counts.sum(axis=0)
    present = np.flatnonzero(total)
    n = present.size
    boxes = np.concatenate([bbox[:, present, :3].min(axis=0), bbox[:, present, 3:].max(axis=0)], axis=1)
    if dense:  # gather present labels only: m is 256 for any uint8 map, n often a dozen
        grid = np.ix_(np.arange(nchunks), np.arange(3), present, present)
        upper = fv.reshape(nchunks, 3, m, m)[grid].sum(axis=0)
    else:
        upper = np.zeros((3, n, n), np.int64)
        where = np.full(m, -1, np.int64)
        where[present] = np.arange(n)
        used = fk >= 0
        axis, rest = np.divmod(fk[used], m * m)
        lo, hi = np.divmod(rest, m)
        np.add.at(upper, (axis, where[lo], where[hi]), fv[used])
    return present, total[present], boxes, upper + upper.transpose(0, 2, 1)


# ---------------------------------------------------------------------------------------------
# connected components
# ---------------------------------------------------------------------------------------------


def _include_table(arr: np.ndarray, hi: int, include: Sequence[int] | None) -> np.ndarray | None:
    """uint8 table value -> 1 when included (None when the ids are too large for a table)."""
    size = 256 if arr.dtype == np.uint8 else (65536 if arr.dtype == np.uint16 else hi + 1)
    if size > _LUT_MAX_ID:
        return None
    inc = np.zeros(size, np.uint8)
    if include is None:
        inc[1:] = 1
        return inc
    ids = np.asarray(include, dtype=np.int64).reshape(-1)
    inc[ids[ids < size]] = 1
    return inc


def _check_include(include: Sequence[int] | None) -> Sequence[int] | None:
    if include is None:
        return None
    ids = np.asarray(list(include))
    if ids.size and ids.dtype.kind not in "iu":
        raise KernelInputError(f"include must hold integer label ids, got dtype {ids.dtype}")
    if ids.size and ids.min() < 0:
        raise KernelInputError(f"include holds negative label ids: {sorted(int(i) for i in ids[ids < 0])}")
    return [int(i) for i in ids.reshape(-1)]


def connected_components(
    labels: np.ndarray, include: Sequence[int] | None = None, *, n_threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """6-connected components of the voxels whose label is in ``include``.

    Voxels of different included labels that touch belong to one component: this labels the union mask.

    Parameters
    ----------
    labels : ndarray, shape (z, y, x)
        Label map of non-negative integers (any integer dtype or bool).
    include : sequence of int, optional
        Label ids forming the mask; None (default) means every nonzero label. Ids absent from the map
        are ignored.
    n_threads : int, optional
        Number of parallel chunks (default: numba's thread count, at most the CPU count). The result
        does not depend on it.

    Returns
    -------
    components : ndarray of int32, shape (z, y, x)
        0 outside the mask, else the component number 1..N, numbered in raster (C) order of each
        component's first voxel, exactly as :func:`scipy.ndimage.label` numbers them.
    sizes : ndarray of int64, shape (N,)
        ``sizes[k - 1]`` is the number of voxels of component k.

    Raises
    ------
    KernelInputError
        For an array that is not 3-D, is empty, is not of an integer dtype or holds negative labels, and
        for negative or non-integer ``include`` ids.
    """
    nchunks = _default_threads(n_threads)
    ids = _check_include(include)
    arr, hi, original_ids = _native_labels(labels, nchunks)
    if original_ids is not None:  # ids were compressed to their positions in original_ids
        wanted = original_ids != 0 if ids is None else np.isin(original_ids, ids)
        ids = np.flatnonzero(wanted).tolist()
    inc = _include_table(arr, hi, ids)
    if inc is None:  # ids too large for a lookup table: build the mask with numpy
        selected = arr != 0 if ids is None else np.isin(arr, ids)
        arr, inc = selected.view(np.uint8), np.array([0, 1], np.uint8)
    _numba = _kernels()
    nz, ny, nx = arr.shape
    nchunks = min(nchunks, nz * ny)
    A2, W2, use_words, E, mask, rep = _words(arr)
    offsets = np.zeros(nz * ny + 1, np.int64)
    none32, none64 = np.empty(0, np.int32), np.empty(0, np.int64)
    # count the runs of each row
    _runs(A2, W2, use_words, ny, inc, E, mask, rep, offsets, none32, none32, none64, False, nchunks)
    np.cumsum(offsets, out=offsets)
    total = int(offsets[-1])
    starts, ends = np.empty(total, np.int32), np.empty(total, np.int32)
    parent = np.empty(total, np.int64)
    # store them and union the overlapping ones
    _runs(A2, W2, use_words, ny, inc, E, mask, rep, offsets, starts, ends, parent, True, nchunks)
    _numba.union_chunk_edges(ny, offsets, starts, ends, parent, nchunks)
    lab, sizes = _number_runs(parent, starts, ends)
    out = np.zeros(arr.shape, np.int32)
    out2 = out.reshape(nz * ny, nx)
    parts = _row_ranges(nz * ny, nchunks)
    run_chunks(lambda c: _numba.paint_runs_rows(out2, offsets, starts, ends, lab, *parts[c]), nchunks)
    return out, sizes


def _number_runs(parent: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component number of each run (int32, 1..N in raster order of first voxel) and sizes (N,) int64.

    ``parent`` is the union-find forest of the runs, each root the smallest run index of its tree, so
    numbering roots in index order numbers components in raster order of their first voxel, exactly as
    :func:`scipy.ndimage.label` does. Roots are found by pointer jumping (``root = root[root]`` until
    nothing changes: log2 of the deepest tree steps), in numpy: one kernel less to compile on a first run.
    """
    root = parent
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    is_root = root == np.arange(root.size)
    number = np.cumsum(is_root, dtype=np.int32)
    lab = number[root]
    sizes = np.bincount(lab - 1, weights=(ends - starts), minlength=int(number[-1]) if number.size else 0)
    return lab, sizes.astype(np.int64)


def _runs(
    A2: np.ndarray, W2: np.ndarray, use_words: bool, ny: int, inc: np.ndarray, E: int, mask: np.uint64,
    rep: np.uint64, offsets: np.ndarray, starts: np.ndarray, ends: np.ndarray, parent: np.ndarray, write: bool,
    nchunks: int,
) -> None:
    """Count the runs of included voxels of every row (``write`` false), or store and union them.

    On the word path or voxel by voxel, ``nchunks`` ranges of rows at the same time; see
    :func:`flr.kernels._numba.runs_words_rows` (the caller then joins the chunks when ``write``).
    """
    _numba = _kernels()
    parts = _row_ranges(A2.shape[0], nchunks)
    nx = A2.shape[1]

    def chunk(c: int) -> None:
        r0, r1 = parts[c]
        if use_words:
            _numba.runs_words_rows(W2, nx, ny, inc, E, mask, rep, offsets, starts, ends, parent, write, r0, r1)
        else:
            _numba.runs_scalar_rows(A2, ny, inc, offsets, starts, ends, parent, write, r0, r1)

    run_chunks(chunk, nchunks)


def components_of_mask(mask: np.ndarray, *, n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """6-connected components of a boolean mask (z, y, x); see :func:`connected_components`.

    Raises
    ------
    KernelInputError
        When ``mask`` is not a 3-D bool array.
    """
    arr = _check_array(mask, "mask")
    if arr.dtype != np.bool_:
        raise KernelInputError(f"mask must be a bool array, got dtype {arr.dtype}; use connected_components")
    return connected_components(arr, None, n_threads=n_threads)
