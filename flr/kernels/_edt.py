"""Exact Euclidean feature transform of a 3-D boolean mask on an anisotropic grid (numba).

For every voxel of a ``(z, y, x)`` grid, :func:`feature_transform` finds the feature voxel (``True`` in
``features``) nearest in millimetres and its squared distance; :func:`nearest_feature` gives the index
alone. One call replaces ``scipy.ndimage.distance_transform_edt(~features, sampling=spacing,
return_indices=True)`` with a flat int32 index instead of three index arrays.

Method
    The squared distance is separable, ``d^2 = wz^2 dz^2 + wy^2 dy^2 + wx^2 dx^2`` (``w`` the spacing in
    mm), so the exact transform is three one-dimensional passes, each carrying the argmin of the last
    (Felzenszwalb P F, Huttenlocher D P. Distance transforms of sampled functions. Theory of Computing
    2012;8:415-428):

    1. along x, each row: the x of the nearest feature in that row (two sweeps), ``-1`` for none;
    2. along y, each column of each z slice: the lower envelope of the parabolas
       ``f(q) + wy^2 (y - q)^2`` with ``f(q) = wx^2 (x - x_q)^2``; the winner ``q`` and its ``x_q`` are
       stored as one int32 plane code ``(q << bits(nx)) | x_q``;
    3. along z, each ``(y, x)`` column: the lower envelope over z of the pass-2 squared distances
       (weight ``wz^2``), giving the flat C-order index ``z * ny * nx + y * nx + x`` of the nearest
       feature and its squared distance.

    One int32 array holds each pass's result, rewritten in place. Passes 1 and 2 run one z slice at a
    time (the slice stays in cache between them); pass 3 runs over the ``(y, x)`` columns. Lines along
    y and z are gathered 16 and 64 at a time (whole 64-byte cache lines of each row they cross) into a
    per-chunk buffer, solved there and scattered back. The work is ``n_threads`` contiguous chunks (of
    z slices, then of column blocks), run at the same time on threads (the kernels release the GIL;
    :mod:`flr.kernels._chunks`); the result does not depend on their number. Grids under 2**18 voxels run
    on the calling thread.

Exactness and ties
    The returned feature is a true nearest feature: the passes compare float64 squared distances, so
    the distance to it equals the least distance to rounding (measured: 3e-16 relative against scipy,
    whose transform is exact too). Where several features are equally near, the one with the lowest
    flat index wins (lowest z, then y, then x): each pass keeps the lower coordinate at a tie, and a
    tie in 3-D is a tie in the pass that decides it. This holds exactly where the squared distances are
    exact in float64 (spacings that are binary fractions, such as 1, 0.5 or 2.5 mm); with spacings such as
    0.7 mm a tie in real arithmetic may be decided by rounding. scipy breaks ties its own way.

Memory
    Beyond the caller's masks (``features``, and ``within`` if given: bool, 1 byte per voxel each), the
    peak is the int32 index array (4 bytes per voxel) plus, for :func:`feature_transform`, the float32
    squared distances (4 bytes per voxel): 4 or 8 bytes per voxel, plus one byte per ``(y, x)`` column
    for ``within`` and per-chunk buffers of about ``64 * 12 * nz + 40 * max(ny, nz)`` bytes (0.3 MB at
    nz = 400). scipy's ``distance_transform_edt(..., return_indices=True)`` holds three int32 index
    arrays (12 bytes per voxel) and, with distances, 36 more bytes per voxel of float64 distance and
    temporaries at its peak (benchmarks/results/feature-transform-2026-12-03.md).

This module imports numba at import time: import it lazily, inside the function that needs it (as
:mod:`flr.kernels` does with its kernels).

>>> import numpy as np
>>> features = np.zeros((1, 1, 5), bool); features[0, 0, [0, 4]] = True
>>> index, d2 = feature_transform(features, (1.0, 1.0, 0.5))
>>> index.ravel().tolist(), d2.ravel().tolist()      # x = 2 is a tie: the lower x wins
([0, 0, 0, 4, 4], [0.0, 0.25, 1.0, 0.25, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from flr.errors import KernelInputError
from flr.kernels import _warmup
from flr.kernels._chunks import run_chunks

__all__ = ["feature_transform", "feature_transform_reference", "nearest_feature"]

#: Lines gathered per block in pass 2 (y): 16 int32 = one 64-byte cache line of every row they cross.
_BLOCK_Y = 16

#: Lines gathered per block in pass 3 (z): 64 int32 = 256 bytes of each z slice (1 MB apart on a 512 x 512
#: plane). Measured on 512 x 512 x 400, one thread: 64 and 256 take about 20 % less CPU time than 16.
_BLOCK_Z = 64

#: Grids smaller than this run on the calling thread only: one parallel launch costs 0.1 ms on a quiet
#: machine (20 ms measured on a loaded 2-core one with numba's OpenMP layer), a pass over 2**18 voxels ~3 ms.
_PARALLEL_MIN_VOXELS = 1 << 18

_INF = np.inf

_warmup.install()  # the compile notice (flr.kernels.set_notice) listens from here on


# ---------------------------------------------------------------------------------------------
# One-dimensional pieces
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _row_nearest(feat_row, out_row):  # pragma: no cover - compiled
    """x of the nearest True of a bool row at every x (-1 when the row has none); the lower x wins ties."""
    nx = feat_row.shape[0]
    last = -1
    for x in range(nx):
        if feat_row[x]:
            last = x
        out_row[x] = last
    nxt = -1
    for x in range(nx - 1, -1, -1):
        if feat_row[x]:
            nxt = x
        if nxt >= 0:
            left = out_row[x]
            if left < 0 or nxt - x < x - left:
                out_row[x] = nxt


@numba.njit(cache=True, nogil=True, inline="always")
def _meet(f, r, q, fq, w2):  # pragma: no cover - compiled
    """Abscissa where the parabolas of r < q (heights f[r], fq; curvature w2) cross."""
    return 0.5 * (q + r) + (fq - f[r]) / (2.0 * w2 * (q - r))


@numba.njit(cache=True, nogil=True)
def _envelope(f, n, w2, v, zb, arg, best):  # pragma: no cover - compiled
    """Lower envelope of ``f[q] + w2 (p - q)^2`` over the q with finite ``f`` (Felzenszwalb-Huttenlocher).

    Writes ``arg[p]`` (the minimising q; the lower q at a tie) and ``best[p]`` (the minimum) for ``p < n``;
    returns False, with ``arg`` -1 and ``best`` inf, when every ``f`` is inf. ``v`` (int64) and ``zb``
    (float64) are work buffers of length ``n``. (No flag to skip ``best``: a flag passed as a constant by
    one caller and as a variable by another would make numba compile this twice.)
    """
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == _INF:
            continue
        if k < 0:
            k = 0
            v[0] = q
            zb[0] = -_INF
            continue
        s = _meet(f, v[k], q, fq, w2)
        while s <= zb[k]:  # zb[0] is -inf: the loop stops at k = 0
            k -= 1
            s = _meet(f, v[k], q, fq, w2)
        k += 1
        v[k] = q
        zb[k] = s
    if k < 0:
        for p in range(n):  # loops, not slice assignments: those take numba far longer to compile
            arg[p] = -1
            best[p] = _INF
        return False
    j = 0
    for p in range(n):
        while j < k and zb[j + 1] < p:  # at p == zb[j + 1] the two tie: keep the lower q
            j += 1
        r = v[j]
        arg[p] = r
        best[p] = f[r] + w2 * (p - r) * (p - r)
    return True


# ---------------------------------------------------------------------------------------------
# The passes (each rewrites the int32 index array in place)
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _column_y(g, x, wx2, wy2, sh, f, v, zb, arg, best):  # pragma: no cover - compiled
    """Pass 2 on one y column held in ``g`` (x of the row's nearest feature or -1), rewritten as plane codes."""
    ny = g.shape[0]
    for y in range(ny):
        fx = g[y]
        f[y] = _INF if fx < 0 else wx2 * (x - fx) * (x - fx)
    if not _envelope(f, ny, wy2, v, zb, arg, best):
        return
    for y in range(ny):
        q = arg[y]
        arg[y] = (q << sh) | g[q]
    for y in range(ny):
        g[y] = arg[y]


@numba.njit(cache=True, nogil=True)
def _pass_xy(F, IDX, wx2, wy2, sh, need_x, block, z0, z1):  # pragma: no cover - compiled
    """Passes 1 and 2 on z slices ``[z0, z1)``, one at a time (it stays in cache between them): rows along
    x, then the y columns in blocks of ``block`` x (those with ``need_x``), leaving plane codes in ``IDX``."""
    _, ny, nx = IDX.shape
    nb = (nx + block - 1) // block
    g = np.empty((block, ny), np.int32)
    f = np.empty(ny)
    zb = np.empty(ny)
    best = np.empty(ny)
    v = np.empty(ny, np.int64)
    arg = np.empty(ny, np.int64)
    for z in range(z0, z1):
        S = IDX[z]
        for y in range(ny):
            _row_nearest(F[z, y], S[y])
        for b in range(nb):
            x0 = b * block
            bw = min(block, nx - x0)
            for y in range(ny):
                for j in range(bw):
                    g[j, y] = S[y, x0 + j]
            for j in range(bw):
                if need_x[x0 + j]:
                    _column_y(g[j], x0 + j, wx2, wy2, sh, f, v, zb, arg, best)
            for y in range(ny):
                for j in range(bw):
                    S[y, x0 + j] = g[j, y]


@numba.njit(cache=True, nogil=True, inline="always")
def _column_z(g, gd, y, x, nx, plane, wx2, wy2, wz2, sh, want_d, f, v, zb, arg, best):  # pragma: no cover - compiled
    """Pass 3 on one z column held in ``g`` (plane codes or -1), rewritten as flat indices; ``gd`` = d^2."""
    nz = g.shape[0]
    low = (1 << sh) - 1
    for z in range(nz):
        e = g[z]
        if e < 0:
            f[z] = _INF
        else:
            dy = y - (e >> sh)
            dx = x - (e & low)
            f[z] = wy2 * dy * dy + wx2 * dx * dx
    if not _envelope(f, nz, wz2, v, zb, arg, best):
        for z in range(nz):
            g[z] = -1
            gd[z] = _INF
        return
    for z in range(nz):
        q = arg[z]
        e = g[q]
        arg[z] = q * plane + (e >> sh) * nx + (e & low)
    for z in range(nz):
        g[z] = arg[z]
    if want_d:
        for z in range(nz):
            gd[z] = best[z]


@numba.njit(cache=True, nogil=True)
def _pass_z(I2, D2, W2, need_col, nx, wx2, wy2, wz2, sh, want_d, has_within, block, t0, t1):  # pragma: no cover
    """Pass 3 over the ``(nz, ny * nx)`` view, on the blocks ``[t0, t1)`` of ``block`` columns; columns
    without ``need_col`` (when ``has_within``) are -1 / inf."""
    nz, plane = I2.shape
    g = np.empty((block, nz), np.int32)
    gd = np.empty((block, nz), np.float64)
    f = np.empty(nz)
    zb = np.empty(nz)
    best = np.empty(nz)
    v = np.empty(nz, np.int64)
    arg = np.empty(nz, np.int64)
    for t in range(t0, t1):
        p0 = t * block
        bw = min(block, plane - p0)
        for z in range(nz):
            for j in range(bw):
                g[j, z] = I2[z, p0 + j]
        for j in range(bw):
            p = p0 + j
            if has_within and not need_col[p]:
                for z in range(nz):
                    g[j, z] = -1
                    gd[j, z] = _INF
                continue
            y = p // nx
            _column_z(g[j], gd[j], y, p - y * nx, nx, plane, wx2, wy2, wz2, sh, want_d, f, v, zb, arg, best)
        for z in range(nz):  # write the block back (-1 and inf outside ``within``), one row segment per z
            for j in range(bw):
                keep = not has_within or W2[z, p0 + j]
                I2[z, p0 + j] = g[j, z] if keep else -1
                if want_d:
                    D2[z, p0 + j] = gd[j, z] if keep else _INF


# ---------------------------------------------------------------------------------------------
# Typed wrappers
# ---------------------------------------------------------------------------------------------


def _ro(a: np.ndarray) -> np.ndarray:
    """Read-only view: numba compiles once for the read-only inputs."""
    view = a.view()
    view.flags.writeable = False
    return view


def _bool_grid(mask: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise KernelInputError(f"{what} must be a 3-D (z, y, x) array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        raise KernelInputError(f"{what} must be a bool array, got dtype {arr.dtype}; use mask != 0")
    if shape is not None and arr.shape != shape:
        raise KernelInputError(f"{what} has shape {arr.shape}, features {shape}: they must share the grid")
    if arr.size == 0:
        raise KernelInputError(f"{what} must not be empty, got shape {arr.shape}")
    if arr.size > np.iinfo(np.int32).max:
        raise KernelInputError(f"{what} has {arr.size} voxels; flat int32 indices allow at most 2**31 - 1")
    return np.ascontiguousarray(arr)


def _spacing(spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(s) for s in spacing_zyx_mm)
    except (TypeError, ValueError):
        raise KernelInputError(f"spacing_zyx_mm must be 3 numbers (z, y, x) in mm, got {spacing_zyx_mm!r}") from None
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise KernelInputError(f"spacing_zyx_mm must be 3 finite positive mm values (z, y, x), got {spacing_zyx_mm!r}")
    return values[0], values[1], values[2]


def _threads(n_threads: int | None) -> int:
    if n_threads is None:
        configured = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set from the environment
        return max(1, configured)
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise KernelInputError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)


def _within_parts(within: Any | None, shape: tuple[int, int, int]) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """(has_within, within as (nz, ny * nx), (y, x) columns holding a within voxel (ny * nx,), x needed (nx,))."""
    nz, ny, nx = shape
    if within is None:
        return False, np.ones((1, 1), bool), np.ones(1, bool), np.ones(nx, bool)
    W = _bool_grid(within, "within", shape)
    cols = np.asarray(W.any(axis=0))
    return True, W.reshape(nz, ny * nx), cols.reshape(-1), np.asarray(cols.any(axis=0))


def _run(features: Any, spacing_zyx_mm: Sequence[float], within: Any | None, n_threads: int | None,
         want_d: bool) -> tuple[np.ndarray, np.ndarray]:
    """Check the inputs, run the passes; (index, squared distances, or a (1, 1) dummy when not ``want_d``)."""
    _warmup.await_background()  # a first run's helper may be compiling these kernels
    feats = _bool_grid(features, "features")
    wz, wy, wx = _spacing(spacing_zyx_mm)
    nchunks = _threads(n_threads)
    nz, ny, nx = feats.shape
    sh = max(0, (nx - 1).bit_length())
    if (ny << sh) > np.iinfo(np.int32).max:  # pragma: no cover - needs a plane of > 2**30 voxels
        raise KernelInputError(f"a (y, x) plane of {ny} x {nx} voxels is too large for int32 plane codes")
    has_within, W2, need_col, need_x = _within_parts(within, (nz, ny, nx))
    index = np.empty((nz, ny, nx), np.int32)
    d2 = np.empty((nz, ny * nx) if want_d else (1, 1), np.float32)
    if feats.size < _PARALLEL_MIN_VOXELS:
        nchunks = 1
    F, NX, WI, NC, I2 = _ro(feats), _ro(need_x), _ro(W2), _ro(need_col), index.reshape(nz, ny * nx)
    n_xy = min(nchunks, nz)
    run_chunks(lambda c: _pass_xy(F, index, wx * wx, wy * wy, sh, NX, _BLOCK_Y, nz * c // n_xy, nz * (c + 1) // n_xy),
               n_xy)
    nb = -(-(ny * nx) // _BLOCK_Z)
    n_z = min(nchunks, nb)
    run_chunks(lambda c: _pass_z(I2, d2, WI, NC, nx, wx * wx, wy * wy, wz * wz, sh, want_d, has_within, _BLOCK_Z,
                                 nb * c // n_z, nb * (c + 1) // n_z), n_z)
    return index, d2.reshape(index.shape) if want_d else d2


def feature_transform(features: np.ndarray, spacing_zyx_mm: Sequence[float], *, within: np.ndarray | None = None,
                      n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest feature voxel and its squared distance (mm^2) for every voxel, exact, anisotropic.

    Parameters
    ----------
    features : ndarray of bool, shape (z, y, x)
        The feature voxels (scipy's ``~input`` of ``distance_transform_edt``). At most 2**31 - 1 voxels.
    spacing_zyx_mm : (3,) float
        Voxel spacing in mm in array axis order (z, y, x), finite and positive.
    within : ndarray of bool, shape (z, y, x), optional
        Voxels that need an answer; the others get -1 and inf. Features outside ``within`` still count.
        Columns ``(y, x)`` without a ``within`` voxel are skipped in the last pass, and x columns
        without one in the second.
    n_threads : int, optional
        Number of parallel chunks, and at most as many threads (default: numba's configured thread
        count; grids under 2**18 voxels use one). The result does not depend on it.

    Returns
    -------
    nearest_index : ndarray of int32, shape (z, y, x)
        Flat C-order index (``z * ny * nx + y * nx + x``) into ``features`` of the nearest feature voxel
        (a feature voxel is its own), -1 where there is no feature at all or outside ``within``. Among
        equally near features, the lowest flat index (see the module docstring).
    squared_distance_mm2 : ndarray of float32, shape (z, y, x)
        Squared Euclidean distance in mm^2 to that feature (computed in float64, stored as float32), inf
        where the index is -1.

    Raises
    ------
    KernelInputError
        For masks that are not 3-D bool arrays, are empty or of different shapes, for a spacing that is
        not 3 finite positive numbers and for a bad ``n_threads``.
    """
    return _run(features, spacing_zyx_mm, within, n_threads, True)


def nearest_feature(features: np.ndarray, spacing_zyx_mm: Sequence[float], *, within: np.ndarray | None = None,
                    n_threads: int | None = None) -> np.ndarray:
    """:func:`feature_transform`'s ``nearest_index`` alone (int32, shape (z, y, x)), without the distances.

    Peak memory: 4 bytes per voxel beyond the inputs. Same parameters, ties and errors.
    """
    return _run(features, spacing_zyx_mm, within, n_threads, False)[0]


def feature_transform_reference(features: np.ndarray, spacing_zyx_mm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Brute force :func:`feature_transform`: every voxel against every feature, in float64.

    The slow, obvious version the tests compare the kernel with (tiny grids only: it holds a voxels x
    features matrix). Returns the flat index (int32; the lowest among features at the same float64
    distance, -1 without features) and the squared distance in mm^2 (float64, inf without features).
    """
    feats = _bool_grid(features, "features")
    w = np.asarray(_spacing(spacing_zyx_mm))
    grid = np.indices(feats.shape).reshape(3, -1).T
    flat = np.flatnonzero(feats)
    if not len(flat):
        return np.full(feats.shape, -1, np.int32), np.full(feats.shape, np.inf)
    d2 = (((grid[:, None, :] - grid[None, flat, :]) * w) ** 2).sum(axis=2)
    nearest = np.argmin(d2, axis=1)  # the first minimum: features are in flat order
    return flat[nearest].astype(np.int32).reshape(feats.shape), d2.min(axis=1).reshape(feats.shape)
