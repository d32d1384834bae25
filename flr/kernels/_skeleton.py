"""Centerline paths of a 3-D skeleton: the branch decomposition of ``skan.Skeleton`` (skan 0.13), no compile.

skan compiles its path-walking functions with ``cache=False``, so every process paid ~4 s of numba
compilation the first time it built a vessel graph. :func:`skeleton_paths` gives the same coordinates,
degrees and paths (same order, same direction) without numba: the 26-neighbour graph is built in numpy
(one ``searchsorted`` per neighbour offset) and the paths are walked in plain Python over lists. A
skeleton has thousands of points, not millions (7,947 points and 739 paths of 60 random tubes in a
160 x 256 x 256 grid: 21 ms for the graph and 12 ms for the walk, against 0.5 s for
:func:`skimage.morphology.skeletonize` itself), so compiling kernels for it (1.8 s on a first run, which
the version before this one did) costs more than it saves.

What skan computes, and so what this module computes, for a boolean skeleton (z, y, x):

1. Points: the skeleton voxels in raster (C) order; point ``i`` is the ``i``-th nonzero voxel.
2. Pixel graph: an edge between every two points in each other's 26-neighbourhood, weighted by their
   distance in mm, ``sqrt(sum((offset * spacing_zyx) ** 2))``.
3. Junction clusters thinned to a tree (skan's ``_mst_junctions``): among the edges whose two ends both
   have three or more neighbours, those outside the minimum spanning tree of that subgraph
   (:func:`scipy.sparse.csgraph.minimum_spanning_tree`, Kruskal; ties follow its order) are removed. The
   **degree** of a point is its number of neighbours after this step, so it can be below its
   26-neighbour count: a triangle of three junction voxels loses one side and two of them become
   degree 2.
4. Paths (skan's ``_build_paths``): first, for each point of degree 1 or >= 3 in order, for each of its
   neighbours in increasing id order whose edge is not yet walked, a path from that point through the
   degree-2 points up to the next point of degree != 2. Two touching junction points give a 2-point
   path. Then every cycle made only of degree-2 points, from its lowest point through its
   lower-numbered neighbour back to itself (the first point is repeated at the end). An isolated point
   (degree 0) is on no path.

>>> import numpy as np
>>> sk = np.zeros((1, 5, 5), bool)
>>> sk[0, 2, :] = True                      # a horizontal line ...
>>> sk[0, :2, 2] = True                     # ... with a branch up from its middle: a T
>>> coords, degrees, paths = skeleton_paths(sk, (1.0, 1.0, 1.0))
>>> coords[:, 1:].tolist()                  # (y, x) in raster order
[[0, 2], [1, 2], [2, 0], [2, 1], [2, 2], [2, 3], [2, 4]]
>>> degrees.tolist()                        # 26-neighbour counts 1, 4, 1, 3, 3, 3, 1 before the thinning
[1, 2, 1, 2, 3, 2, 1]
>>> [p.tolist() for p in paths]             # the three arms, each walked from its end of lower id
[[0, 1, 4], [2, 3, 4], [4, 5, 6]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from flr.errors import KernelInputError

__all__ = ["skeleton_paths"]

#: The offsets (dz, dy, dx) of the 3x3x3 neighbourhood in raster order, indexed by their code 0..26 (13 is
#: the centre, never a neighbour).
_OFFSETS = np.array([(c // 9 - 1, c // 3 % 3 - 1, c % 3 - 1) for c in range(27)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The pixel graph and its paths
# ---------------------------------------------------------------------------------------------


def _adjacency(flat_ids: np.ndarray, coords: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 26-neighbour pixel graph in CSR form: ``indptr``, ``indices`` and each edge's offset code.

    ``flat_ids`` are the sorted raveled indices of the points, ``coords`` their (z, y, x). Rows list their
    neighbours in increasing id order (the raster order of the offset codes), as scipy's canonical CSR does.
    """
    n = flat_ids.shape[0]
    rows, cols, codes = [], [], []
    for c in range(27):
        if c == 13:
            continue
        nb = coords + _OFFSETS[c]
        i = np.flatnonzero(((nb >= 0) & (nb < shape)).all(axis=1))
        nb = nb[i]
        flat = (nb[:, 0] * shape[1] + nb[:, 1]) * shape[2] + nb[:, 2]
        j = np.searchsorted(flat_ids, flat)
        hit = j < n
        hit[hit] = flat_ids[j[hit]] == flat[hit]
        rows.append(i[hit])
        cols.append(j[hit])
        codes.append(np.full(int(np.count_nonzero(hit)), c, np.int64))
    row, col, code = np.concatenate(rows), np.concatenate(cols), np.concatenate(codes)
    order = np.lexsort((code, row))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(row, minlength=n), out=indptr[1:])
    return indptr, col[order].astype(np.int64), code[order]


def _paths(indptr: np.ndarray, indices: np.ndarray, degrees: np.ndarray) -> list[list[int]]:
    """All paths, as skan's ``_build_paths`` orders them: lists of point ids (see the module docstring)."""
    ip, ix, deg = indptr.tolist(), indices.tolist(), degrees.tolist()
    walked = bytearray(len(ix))

    def edge(a: int, b: int) -> int:  # position of edge a -> b (rows hold at most 26 entries)
        return next(p for p in range(ip[a], ip[a + 1]) if ix[p] == b)

    def walk(start: int, first: int) -> list[int]:  # from start over first to the next point of degree != 2
        path, node, nxt = [start], start, first
        while True:
            walked[edge(node, nxt)] = walked[edge(nxt, node)] = 1
            path.append(nxt)
            if deg[nxt] != 2 or nxt == start:
                return path
            a, b = ix[ip[nxt]], ix[ip[nxt] + 1]
            node, nxt = nxt, (a if a != node else b)

    paths = [walk(node, ix[p]) for node in range(len(deg)) if deg[node] == 1 or deg[node] > 2  # ends, junctions
             for p in range(ip[node], ip[node + 1]) if not walked[p]]
    # what is left are cycles of degree-2 points (lazily: each condition sees the walks before it)
    paths.extend(walk(node, ix[ip[node]]) for node in range(len(deg)) if deg[node] > 0 and not walked[ip[node]])
    return paths


# ---------------------------------------------------------------------------------------------
# Wrapper
# ---------------------------------------------------------------------------------------------


def _check(skeleton: np.ndarray, spacing_zyx: Sequence[float] | np.ndarray) -> np.ndarray:
    if not isinstance(skeleton, np.ndarray) or skeleton.ndim != 3:
        raise KernelInputError(f"skeleton must be a 3-D numpy array (z, y, x), got {type(skeleton).__name__} "
                               f"of shape {np.shape(skeleton)}")
    if skeleton.dtype != np.bool_:
        raise KernelInputError(f"skeleton must be a bool array, got dtype {skeleton.dtype}; pass skeleton != 0")
    spacing = np.asarray(spacing_zyx, dtype=float)
    if spacing.shape != (3,) or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise KernelInputError(f"spacing_zyx must be 3 finite positive numbers of mm, got {spacing_zyx!r}")
    return spacing


def _tree_junctions(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Which directed edges survive skan's ``_mst_junctions`` (bool per CSR entry)."""
    n = len(indptr) - 1
    raw_degree = np.diff(indptr)
    rows = np.repeat(np.arange(n), raw_degree)
    between = (raw_degree[rows] >= 3) & (raw_degree[indices] >= 3)
    if not between.any():
        return np.ones(len(indices), bool)
    # the junction subgraph in skan's layout (same entries, same order), so its MST breaks ties alike
    sub_indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[between], minlength=n))])
    sub = sparse.csr_matrix((weights[between], indices[between], sub_indptr), shape=(n, n))
    tree = csgraph.minimum_spanning_tree(sub).tocoo()
    tree_rows, tree_cols = tree.row.astype(np.int64), tree.col.astype(np.int64)
    tree_keys = np.concatenate([tree_rows * n + tree_cols, tree_cols * n + tree_rows])
    off_tree = between.copy()
    off_tree[between] = ~np.isin(rows[between] * n + indices[between], tree_keys)
    return ~off_tree


def skeleton_paths(
    skeleton: np.ndarray, spacing_zyx: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Points, degrees and centerline paths of a 3-D skeleton, as :class:`skan.Skeleton` gives them.

    See the module docstring for the rules (26-neighbourhood, junction clusters thinned to their minimum
    spanning tree, paths between points of degree != 2 and cycles of degree-2 points).

    Parameters
    ----------
    skeleton : ndarray of bool, shape (z, y, x)
        A thinned mask (e.g. :func:`skimage.morphology.skeletonize`); every True voxel is a point.
    spacing_zyx : (3,) float
        Voxel spacing in mm along z, y, x: it weighs the edges whose minimum spanning tree thins a
        junction cluster (skan's ``spacing``).

    Returns
    -------
    coords : ndarray of int64, shape (n, 3)
        Voxel index (z, y, x) of each point, in raster order (skan's ``coordinates``).
    degrees : ndarray of int64, shape (n,)
        Neighbours of each point after the junction thinning (skan's ``degrees``).
    paths : list of ndarray of int64
        Point ids of each path, end point to end point (skan's ``paths_list()``, same order and
        direction); a cycle starts and ends on the same point.

    Raises
    ------
    KernelInputError
        For a skeleton that is not a 3-D bool array, or a spacing that is not 3 finite positive numbers.
    """
    spacing = _check(skeleton, spacing_zyx)
    flat_ids = np.flatnonzero(skeleton).astype(np.int64)
    coords = np.stack(np.unravel_index(flat_ids, skeleton.shape), axis=1).astype(np.int64)
    indptr, indices, codes = _adjacency(flat_ids, coords, np.asarray(skeleton.shape, np.int64))
    weights = np.sqrt(np.sum((_OFFSETS * spacing) ** 2, axis=1))[codes]   # skan's formula, bit for bit
    keep = _tree_junctions(indptr, indices, weights)
    n = len(flat_ids)
    degrees = np.bincount(np.repeat(np.arange(n), np.diff(indptr))[keep], minlength=n).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(degrees)])
    return coords, degrees, [np.asarray(p, np.int64) for p in _paths(indptr, indices[keep], degrees)]
