"""Chunks of a kernel's work on Python threads: the parallelism of flr's numba kernels.

Every kernel is a plain (serial) numba function compiled with ``nogil=True``, which releases the GIL while
it runs; a wrapper splits the work into ``nchunks`` contiguous parts and :func:`run_chunks` runs them at
once, the first on the calling thread and the others on a pool of threads shared by the process.

Why not numba's ``parallel=True`` and ``prange``: compiling a parallel kernel costs 2-3 s more than the same
serial kernel (numba's parfor lowering and its threading layer; measured on a 2-CPU x86-64 machine: the
feature transform's two passes 5.0 s serial against 9.3 s parallel, 11.3 s before their slice assignments
became loops), and a first ``flr demo`` pays every one of them. Threads also let several Python threads
(Dask's) run kernels at the same time, where numba's default threading layer must be entered by one at a
time. Results never depend on the number of chunks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_size = 0


def _executor(workers: int) -> ThreadPoolExecutor:
    """The process's pool with at least ``workers`` threads (a new one after a fork or to grow)."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < workers:
            old = _pool if _pool_pid == os.getpid() else None
            _pool_size = max(workers, os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="flr-kernel")
            _pool_pid = os.getpid()
            if old is not None:
                old.shutdown(wait=False)  # its running chunks finish; new work goes to the larger pool
        return _pool


def run_chunks(work: Callable[[int], T], nchunks: int) -> list[T]:
    """``[work(0), ..., work(nchunks - 1)]``, run at the same time: chunk 0 on this thread, the rest on the pool.

    Every chunk has finished when this returns or raises (no kernel writes into an array after its caller
    has moved on); the first exception, in chunk order, is raised.

    >>> run_chunks(lambda c: c * c, 4)
    [0, 1, 4, 9]
    """
    if nchunks <= 1:
        return [work(0)]
    pool = _executor(nchunks - 1)
    futures: list[Future[T]] = [pool.submit(work, c) for c in range(1, nchunks)]
    try:
        first = work(0)
    finally:
        wait(futures)  # every chunk done, even when this one raised
    return [first, *(future.result() for future in futures)]
