"""numba kernels behind :mod:`flr.kernels` (imported lazily by the wrappers there; not public).

Conventions shared by every kernel here:

* a label map arrives as a C-contiguous 2-D array ``A2`` of shape ``(nz * ny, nx)``: one row per
  ``(z, y)`` pair in C order, so row ``r`` holds ``z = r // ny``, ``y = r % ny``; its y-neighbour is
  row ``r - 1`` (when ``y > 0``) and its z-neighbour row ``r - ny`` (when ``z > 0``). Dtypes are
  uint8, uint16 or int32 with values >= 0 (the wrappers convert the rest);
* ``W2`` is the same memory read as uint64 words of ``E = 8 // itemsize`` voxels ("lanes"), valid
  when ``use_words`` is true (``nx * itemsize`` is a multiple of 8); otherwise it is a dummy and a
  voxel-by-voxel path runs. ``mask`` selects lane 0 and ``rep`` has a 1 in every lane, so
  ``value * rep`` is a word of ``E`` copies of ``value``;
* the word paths first test a whole row against its neighbour rows with one vectorised OR-reduction
  (most rows of a CT label map are one run equal to both neighbours), then build a 64-bit mask of the
  words that hold anything new and visit only those, with count-trailing-zeros, down to the voxels
  that differ;
* every kernel is serial and releases the GIL (``nogil=True``); a wrapper in :mod:`flr.kernels` splits
  the work into ``nchunks`` contiguous ranges of rows with their own accumulators, runs them on threads
  (:func:`flr.kernels._chunks.run_chunks`) and reduces them afterwards. No ``parallel=True``: a parallel
  kernel takes 2-3 s longer to compile (see :mod:`flr.kernels._chunks`). Results do not depend on
  ``nchunks``;
* each kernel compiles on its first call, for the argument types of that call only (no signature lists,
  so a run compiles just the dtypes and paths it uses), and is cached on disk (``cache=True``). The word
  and voxel-by-voxel paths are separate kernels, chosen by the wrapper, so a map compiles only its own
  path. Numba compiles a separate version of a called function for each literal argument (``0``,
  ``True``), so calls between kernels pass typed constants (``_X0``, ``_AXIS_*``) or variables instead.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

from flr.kernels import _warmup

_warmup.install()  # the compile notice (flr.kernels.set_notice) listens from here on

_ZERO = np.uint64(0)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HASH_SHIFT = np.uint64(20)
# int64 constants, not literals: a literal argument would compile one more version of the callee
_X0 = np.int64(0)
_AXIS_X = np.int64(0)
_AXIS_Y = np.int64(1)
_AXIS_Z = np.int64(2)


@intrinsic
def _ctz(typingctx, x):  # pragma: no cover - compiled
    """Count of trailing zero bits of a non-zero uint64 (LLVM ``cttz``, one instruction on x86-64/ARM64)."""
    if x != numba.types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(1)])
        fn = builder.module.declare_intrinsic("llvm.cttz.i64", fnty=fnty)
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return numba.types.uint64(numba.types.uint64), codegen


# ---------------------------------------------------------------------------------------------
# Pre-passes: value range and the set of values present
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def value_range(flat, i0, i1):  # pragma: no cover - compiled
    """Minimum and maximum of ``flat[i0:i1]`` (non-empty), as int64."""
    lo = np.int64(flat[i0])
    hi = lo
    for i in range(i0, i1):
        v = np.int64(flat[i])
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def values_present(flat, i0, i1, flags):  # pragma: no cover - compiled
    """Set ``flags[v] = 1`` (uint8) for every value ``v`` of ``flat[i0:i1]`` (values in [0, flags.size))."""
    last = np.int64(-1)
    for i in range(i0, i1):
        v = np.int64(flat[i])
        if v != last:
            flags[v] = 1
            last = v


# ---------------------------------------------------------------------------------------------
# label_stats: counts, bounding boxes and face adjacency in one pass
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _flush_run(counts, bbox, lab, z, y, xs, xe):  # pragma: no cover - compiled
    """Account the run ``[xs, xe)`` of dense label ``lab`` in row (z, y)."""
    counts[lab] += xe - xs
    b = bbox[lab]
    b[0] = min(b[0], z)
    b[1] = min(b[1], y)
    b[2] = min(b[2], xs)
    b[3] = max(b[3], z)
    b[4] = max(b[4], y)
    b[5] = max(b[5], xe - 1)


@numba.njit(cache=True, nogil=True)
def _add_face(fk, fv, dense, cap_mask, m, axis, a, b):  # pragma: no cover - compiled
    """Count one face between dense labels ``a != b`` along ``axis``; return 1 if a new hash slot was used.

    Dense mode: ``fv`` is a flat ``(3, m, m)`` table. Hash mode: open addressing with linear probing,
    key ``(axis * m + lo) * m + hi`` in ``fk`` (-1 = empty) and its count in ``fv``.
    """
    lo = min(a, b)
    hi = max(a, b)
    key = (axis * m + lo) * m + hi
    if dense:
        fv[key] += 1
        return 0
    slot = np.int64((np.uint64(key) * _GOLDEN) >> _HASH_SHIFT) & cap_mask
    while True:
        k = fk[slot]
        if k == key:
            fv[slot] += 1
            return 0
        if k == -1:
            fk[slot] = key
            fv[slot] = 1
            return 1
        slot = (slot + 1) & cap_mask


@numba.njit(cache=True, nogil=True)
def _lanes_nonzero(d, low, high):  # pragma: no cover - compiled
    """Top bit of each lane of ``d`` set when that lane is non-zero (no carries cross lanes)."""
    return (d | ((d & low) + low)) & high


@numba.njit(cache=True, nogil=True)
def _box_start(bbox, lab, z, y, x):  # pragma: no cover - compiled
    """Label ``lab`` has a voxel at (z, y, x) that starts a run: update all but its box's x maximum."""
    b = bbox[lab]
    b[0] = min(b[0], z)
    b[1] = min(b[1], y)
    b[2] = min(b[2], x)
    b[3] = max(b[3], z)
    b[4] = max(b[4], y)


@numba.njit(cache=True, nogil=True)
def stats_rows_words(
    A2, W2, ny, r0, r1, lut, m, E, mask, rep, counts, bbox, fk, fv, dense, cap_mask
):  # pragma: no cover - compiled
    """Accumulate rows ``[r0, r1)`` read as uint64 words; return 1 if the chunk's hash table filled up.

    Dense labels are ``lut[value]`` in ``[0, m)``. The chunk's accumulators (allocated by the caller):
    ``counts`` (m,) zeros; ``bbox`` (m, 6) with minima at a huge value and maxima at -1; faces, stored once
    per unordered pair (lo < hi): dense mode, ``fv`` is (3 * m * m,) zeros and ``fk`` unused; hash mode,
    ``fk``/``fv`` are (cap,) keys (-1 = empty) and zero counts, ``cap`` a power of two, ``cap_mask = cap - 1``.

    Counts use run starts only: a run of label ``a`` starting at x after a run of ``b`` adds ``nx - x``
    voxels to ``a`` and removes them from ``b``; boxes likewise grow at run starts and ends. Every voxel
    that differs from its left, upper (y - 1) or lower-slice (z - 1) neighbour is an *event*. A word's
    events are gathered in bit masks (one bit per lane for x; two for y and z) and visited with
    count-trailing-zeros, so a word costs two data-dependent loops whatever mix of events it holds.
    """
    nx = A2.shape[1]
    nkw = W2.shape[1]
    fill = 0
    limit = (cap_mask + 1) // 2
    bits = np.uint64(64 // E)
    lbits = np.uint64(3 if E == 8 else (4 if E == 4 else 5))
    last = np.uint64(64) - bits
    one = np.uint64(1)
    two = np.uint64(2)
    high = rep << (bits - one)
    low = high - rep
    for r in range(r0, r1):
        z = r // ny
        y = r - z * ny
        up = r - 1 if y > 0 else r
        bk = r - ny if z > 0 else r
        wrow = W2[r]
        wup = W2[up]
        wbk = W2[bk]
        plast = wrow[0] & mask  # value of the voxel left of the next word
        first = np.int64(lut[plast])
        counts[first] += nx
        _box_start(bbox, first, z, y, _X0)
        cw = plast * rep
        acc = _ZERO
        for k in range(nkw):  # vectorised test: is the whole row one run, equal to both neighbours?
            acc |= (wrow[k] ^ cw) | (wup[k] ^ cw) | (wbk[k] ^ cw)
        if acc != _ZERO:
            for seg in range(0, nkw, 64):
                # bit j of `todo`: word seg + j holds an event (it is not a copy of the voxel left of it,
                # repeated, equal to both neighbours)
                kend = min(seg + 64, nkw)
                todo = _ZERO
                for k in range(max(seg, 1), kend):
                    w = wrow[k]
                    same = (w ^ ((w << bits) | (wrow[k - 1] >> last))) | (w ^ wup[k]) | (w ^ wbk[k])
                    todo |= np.uint64(same != _ZERO) << np.uint64(k - seg)
                if seg == 0:
                    w = wrow[0]
                    todo |= np.uint64(((w ^ ((w << bits) | plast)) | (w ^ wup[0]) | (w ^ wbk[0])) != _ZERO)
                while todo != _ZERO:
                    k = seg + np.int64(_ctz(todo))  # type: ignore[call-arg]  # numba intrinsic: typing context is implicit
                    todo &= todo - one
                    w = wrow[k]
                    wx = (w << bits) | plast  # left neighbours
                    wu = wup[k]
                    wb = wbk[k]
                    # x events: a run of `a` starts at x, the run of `b` left of it ends at x - 1
                    ev = _lanes_nonzero(w ^ wx, low, high) >> (bits - one)
                    while ev != _ZERO:
                        pos = _ctz(ev)
                        ev &= ev - one
                        a = np.int64(lut[(w >> pos) & mask])
                        b = np.int64(lut[(wx >> pos) & mask])
                        fill += _add_face(fk, fv, dense, cap_mask, m, _AXIS_X, a, b)
                        x = k * E + np.int64(pos >> lbits)
                        counts[a] += nx - x
                        counts[b] -= nx - x
                        _box_start(bbox, a, z, y, x)
                        bbox[b, 5] = max(bbox[b, 5], x - 1)
                    # y and z events (bit 0 and 1 of each lane): faces only
                    ev = (_lanes_nonzero(w ^ wu, low, high) >> (bits - one)) | (
                        _lanes_nonzero(w ^ wb, low, high) >> (bits - two)
                    )
                    while ev != _ZERO:
                        pos = _ctz(ev)
                        ev &= ev - one
                        sh = (pos >> lbits) << lbits
                        along_z = pos != sh
                        other = wb if along_z else wu
                        a = np.int64(lut[(w >> sh) & mask])
                        b = np.int64(lut[(other >> sh) & mask])
                        fill += _add_face(fk, fv, dense, cap_mask, m, _AXIS_Y + np.int64(along_z), a, b)
                    plast = w >> last
                    if fill > limit:  # checked per word: a word adds at most 3 * E slots, never the last
                        return 1
        lastlab = np.int64(lut[plast])
        bbox[lastlab, 5] = max(bbox[lastlab, 5], nx - 1)
    return 0


@numba.njit(cache=True, nogil=True)
def stats_rows_scalar(A2, ny, r0, r1, lut, m, counts, bbox, fk, fv, dense, cap_mask):  # pragma: no cover
    """Accumulate rows ``[r0, r1)`` voxel by voxel; return 1 if the chunk's hash table filled up."""
    nx = A2.shape[1]
    fill = 0
    limit = (cap_mask + 1) // 2
    for r in range(r0, r1):
        z = r // ny
        y = r - z * ny
        row = A2[r]
        rup = A2[r - 1 if y > 0 else r]
        rbk = A2[r - ny if z > 0 else r]
        cur = np.int64(lut[row[0]])
        start = _X0
        for x in range(nx):
            a = row[x]
            b = rup[x]
            if a != b:
                fill += _add_face(fk, fv, dense, cap_mask, m, _AXIS_Y, np.int64(lut[a]), np.int64(lut[b]))
            b = rbk[x]
            if a != b:
                fill += _add_face(fk, fv, dense, cap_mask, m, _AXIS_Z, np.int64(lut[a]), np.int64(lut[b]))
            v = np.int64(lut[a])
            if v != cur:
                _flush_run(counts, bbox, cur, z, y, start, x)
                fill += _add_face(fk, fv, dense, cap_mask, m, _AXIS_X, cur, v)
                cur = v
                start = x
            if fill > limit:  # checked per voxel: a voxel adds at most 3 slots, never the last
                return 1
        _flush_run(counts, bbox, cur, z, y, start, nx)
    return 0


# ---------------------------------------------------------------------------------------------
# connected components: run-length union-find
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _runs_words(W2, r0, r1, nx, inc, E, mask, rep, offsets, starts, ends, write):  # pragma: no cover
    """Runs ``[start, end)`` of voxels with ``inc[value] != 0`` in rows ``[r0, r1)`` read as uint64 words.

    Counting (``write`` false): ``offsets[r + 1]`` = number of runs of row r. Writing: the runs of row r
    go to ``starts``/``ends`` from ``offsets[r]``. Only words that are not a copy of the voxel left of
    them are looked at, and in those only the voxels where inclusion flips.
    """
    nkw = W2.shape[1]
    bits = np.uint64(64 // E)
    last = np.uint64(64) - bits
    one = np.uint64(1)
    for r in range(r0, r1):
        wrow = W2[r]
        pos = offsets[r] if write else 0
        plast = wrow[0] & mask  # value of the voxel left of the next word
        n = 0
        if inc[plast] != 0:
            if write:
                starts[pos] = 0
            n = 1
        cw = plast * rep
        acc = _ZERO
        for k in range(nkw):  # vectorised test: is the whole row one value?
            acc |= wrow[k] ^ cw
        if acc != _ZERO:
            for seg in range(0, nkw, 64):
                kend = min(seg + 64, nkw)
                todo = _ZERO  # bit j: word seg + j is not a copy of the voxel left of it
                for k in range(max(seg, 1), kend):
                    w = wrow[k]
                    todo |= np.uint64(w != ((w << bits) | (wrow[k - 1] >> last))) << np.uint64(k - seg)
                if seg == 0:
                    w = wrow[0]
                    todo |= np.uint64(w != ((w << bits) | plast))
                while todo != _ZERO:
                    k = seg + np.int64(_ctz(todo))  # type: ignore[call-arg]  # numba intrinsic: typing context is implicit
                    todo &= todo - one
                    w = wrow[k]
                    flags = _ZERO  # bit e: voxel e of the word is included
                    for e in range(E):
                        flags |= np.uint64(inc[(w >> (np.uint64(e) * bits)) & mask]) << np.uint64(e)
                    flips = flags ^ ((flags << one) | np.uint64(inc[plast]))
                    while flips != _ZERO:
                        e = _ctz(flips)
                        flips &= flips - one
                        x = k * E + np.int64(e)
                        if (flags >> e) & one:
                            if write:
                                starts[pos + n] = x
                            n += 1
                        elif write:
                            ends[pos + n - 1] = x
                    plast = w >> last
        if write:
            if inc[plast] != 0:
                ends[pos + n - 1] = nx
        else:
            offsets[r + 1] = n


@numba.njit(cache=True, nogil=True)
def _runs_scalar(A2, r0, r1, inc, offsets, starts, ends, write):  # pragma: no cover - compiled
    """Runs of included voxels in rows ``[r0, r1)``, voxel by voxel (see :func:`_runs_words`)."""
    nx = A2.shape[1]
    for r in range(r0, r1):
        row = A2[r]
        pos = offsets[r] if write else 0
        n = 0
        inside = inc[row[0]] != 0
        if inside:
            if write:
                starts[pos] = 0
            n = 1
        for x in range(1, nx):
            s = inc[row[x]] != 0
            if s != inside:
                if s:
                    if write:
                        starts[pos + n] = x
                    n += 1
                elif write:
                    ends[pos + n - 1] = x
                inside = s
        if write:
            if inside:
                ends[pos + n - 1] = nx
        else:
            offsets[r + 1] = n


@numba.njit(cache=True, nogil=True)
def _find(parent, i):  # pragma: no cover - compiled
    """Root of run ``i`` in the union-find forest ``parent``, compressing the path on the way."""
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@numba.njit(cache=True, nogil=True)
def _merge_rows(parent, starts, ends, i0, i1, j0, j1):  # pragma: no cover - compiled
    """Union every run of ``[i0, i1)`` with the runs of ``[j0, j1)`` (a neighbouring row) it overlaps.

    Unions keep the smaller run index as root, so a root is the first run of its component in raster
    order.
    """
    i = i0
    j = j0
    while i < i1 and j < j1:
        if ends[i] <= starts[j]:
            i += 1
        elif ends[j] <= starts[i]:
            j += 1
        else:
            ra = _find(parent, i)
            rb = _find(parent, j)
            if ra < rb:
                parent[rb] = ra
            elif rb < ra:
                parent[ra] = rb
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1


@numba.njit(cache=True, nogil=True)
def _union_rows(ny, offsets, starts, ends, parent, r0, r1):  # pragma: no cover - compiled
    """Start the forest of the runs of rows ``[r0, r1)`` and union those that overlap inside these rows.

    A run is joined with the runs it overlaps in the row above (y - 1) and in the slice below (z - 1), when
    that row is one of ``[r0, r1)``; :func:`union_chunk_edges` joins the rest.
    """
    for i in range(offsets[r0], offsets[r1]):
        parent[i] = i
    for r in range(r0, r1):
        if r % ny != 0 and r - 1 >= r0:
            _merge_rows(parent, starts, ends, offsets[r], offsets[r + 1], offsets[r - 1], offsets[r])
        if r - ny >= r0:
            _merge_rows(parent, starts, ends, offsets[r], offsets[r + 1], offsets[r - ny], offsets[r - ny + 1])


@numba.njit(cache=True, nogil=True)
def union_chunk_edges(ny, offsets, starts, ends, parent, nchunks):  # pragma: no cover - compiled
    """Union the runs of each chunk's first rows with the runs above them and behind them in earlier chunks."""
    nrows = offsets.shape[0] - 1
    for c in range(1, nchunks):
        r0 = nrows * c // nchunks
        r1 = nrows * (c + 1) // nchunks
        if r0 < r1 and r0 % ny != 0:
            _merge_rows(parent, starts, ends, offsets[r0], offsets[r0 + 1], offsets[r0 - 1], offsets[r0])
        for r in range(r0, min(r0 + ny, r1)):
            if r - ny >= 0:
                _merge_rows(parent, starts, ends, offsets[r], offsets[r + 1], offsets[r - ny], offsets[r - ny + 1])


@numba.njit(cache=True, nogil=True)
def runs_words_rows(W2, nx, ny, inc, E, mask, rep, offsets, starts, ends, parent, write, r0, r1):  # pragma: no cover
    """Count the runs of rows ``[r0, r1)`` (``write`` false), or store them and union the overlapping ones.

    Rows are read as uint64 words (see :func:`_runs_words`). Counting: ``offsets[r + 1]`` = runs of row r;
    ``starts``, ``ends`` and ``parent`` may be empty. Writing (``offsets`` now prefix sums): the runs of
    row r go to ``starts``/``ends`` from ``offsets[r]``, and ``parent`` becomes the union-find forest of
    the 6-connected runs of these rows (a chunk's rows and runs are its own, so chunks run at the same
    time); :func:`union_chunk_edges` then joins the chunks. One kernel for both passes (``write`` is a
    run-time flag), so the first pass compiles what the second uses.
    """
    _runs_words(W2, r0, r1, nx, inc, E, mask, rep, offsets, starts, ends, write)
    if write:
        _union_rows(ny, offsets, starts, ends, parent, r0, r1)


@numba.njit(cache=True, nogil=True)
def runs_scalar_rows(A2, ny, inc, offsets, starts, ends, parent, write, r0, r1):  # pragma: no cover - compiled
    """:func:`runs_words_rows` voxel by voxel, for rows that are not whole words."""
    _runs_scalar(A2, r0, r1, inc, offsets, starts, ends, write)
    if write:
        _union_rows(ny, offsets, starts, ends, parent, r0, r1)


@numba.njit(cache=True, nogil=True)
def paint_runs_rows(out2, offsets, starts, ends, lab, r0, r1):  # pragma: no cover - compiled
    """Write each run of rows ``[r0, r1)`` as its component number into ``out2`` (rows x nx, zeros elsewhere)."""
    for r in range(r0, r1):
        orow = out2[r]
        for i in range(offsets[r], offsets[r + 1]):
            v = lab[i]
            for x in range(starts[i], ends[i]):
                orow[x] = v
