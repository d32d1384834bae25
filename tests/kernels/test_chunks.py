"""Kernel chunks on Python threads (flr.kernels._chunks): order, errors, forks, and no parallel=True kernels."""

from __future__ import annotations

import ast
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from flr.kernels import connected_components, label_stats
from flr.kernels._chunks import run_chunks
from flr.kernels.reference import connected_components_reference, label_stats_reference

KERNELS = Path(__file__).resolve().parents[2] / "flr" / "kernels"


def test_results_come_back_in_chunk_order_with_more_chunks_than_cpus() -> None:
    def work(c: int) -> int:
        time.sleep(0.001 * ((40 - c) % 7))  # later chunks finish first
        return c * 10

    assert run_chunks(work, 40) == [c * 10 for c in range(40)]
    assert run_chunks(work, 1) == [0]


def test_chunks_run_at_the_same_time() -> None:
    barrier = threading.Barrier(3, timeout=30)  # deadlocks (BrokenBarrierError) unless 3 chunks run at once

    def work(c: int) -> int:
        barrier.wait()
        return c

    assert run_chunks(work, 3) == [0, 1, 2]


def test_an_error_is_raised_after_every_chunk_has_finished() -> None:
    finished = []

    def work(c: int) -> int:
        if c == 0:
            raise ValueError("chunk 0 failed")
        time.sleep(0.2)
        finished.append(c)
        return c

    with pytest.raises(ValueError, match="chunk 0 failed"):
        run_chunks(work, 4)
    assert sorted(finished) == [1, 2, 3]  # nothing still runs once the caller has the error


def test_the_first_failing_chunk_in_order_is_raised() -> None:
    def work(c: int) -> int:
        if c in (2, 3):
            time.sleep(0.1 if c == 2 else 0.0)
            raise ValueError(f"chunk {c}")
        return c

    with pytest.raises(ValueError, match="chunk 2"):
        run_chunks(work, 4)


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, (6, 9, 16)).astype(np.uint8)
    stats = label_stats(labels, n_threads=3)
    comps, _ = connected_components(labels, n_threads=3)
    want_comps, _ = connected_components_reference(labels, None)
    queue.put((stats.counts.tolist(), bool(np.array_equal(comps, want_comps))))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method here")
def test_a_forked_child_gets_its_own_pool() -> None:
    """A pool's threads do not survive fork: a child that inherited a used pool must make its own."""
    run_chunks(lambda c: c, 3)  # the parent's pool exists now
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    child = multiprocessing.get_context("fork").Process(target=_child, args=(queue,))
    child.start()
    counts, same = queue.get(timeout=120)
    child.join(timeout=60)
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, (6, 9, 16)).astype(np.uint8)
    assert counts == label_stats_reference(labels).counts.tolist()
    assert same and child.exitcode == 0


def test_no_kernel_is_compiled_with_parallel_true() -> None:
    """numba's parallel=True adds 2-3 s of compile time per kernel to a first run (see _chunks' docstring)."""
    offenders = []
    for path in sorted(KERNELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "parallel" and getattr(node.value, "value", None) is True:
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Name) and node.id == "prange":
                offenders.append(f"{path.name}:{node.lineno} prange")
    assert offenders == []
