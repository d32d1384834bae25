"""Compiling flr's kernels: the once-per-process notice, where numba caches them, and warming them up.

Numba compiles a kernel on its first call for the argument types of that call and caches the machine code on
disk (``cache=True``); later processes load it in milliseconds. Compiling is what makes a first run slow, so
an application may ask to be told, once, when it is about to happen (:func:`set_notice`). The notice comes
from numba's event API (``numba:compile``), which fires only on a cache miss, so a warm cache never shows it.

Importing this module does not import numba: :func:`install` does. A kernel module calls it when it is
imported (on its first use, never at ``import flr.kernels``); the listener then hears the compiles of every
flr function in the process, whichever module it is in.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Seconds a first ``flr demo`` (uint8 label maps) takes longer than a second one, compiling the kernels it
#: uses (part of them in the helper of :func:`compile_in_background`): cold minus warm run on the 2-CPU x86-64
#: machine of benchmarks/results/first-run-2026-12-04.md.
FIRST_RUN_COMPILE_S = 3

#: The dtypes :func:`flr.kernels.label_stats` and :func:`flr.kernels.connected_components` read natively
#: (every other integer type is converted to one of them first), so the ones :func:`warm_up` compiles.
NATIVE_DTYPES = ("uint8", "uint16", "int32")

_lock = threading.Lock()
_notice: Callable[[str], None] | None = None
_notified = False
_installed = False
_helper: subprocess.Popen[bytes] | None = None  # compile_in_background's helper, while it may run


def set_notice(notice: Callable[[str], None] | None) -> None:
    """Call ``notice(message)`` once per process, just before flr's first kernel compile (None: no notice).

    The message says that the kernels are being compiled once, about how long it takes and in which folder
    numba caches them, e.g. ``compiling flr's numba kernels once (about 3 s; cached in /scratch/numba)``. It
    is not sent when every kernel a run uses is in the cache. The library never prints; a command line sends
    the message to standard error (never to standard output, which may carry JSON). Setting a notice again
    (or None) replaces the previous one; a notice already sent is not sent again.

    >>> set_notice(None)
    """
    global _notice
    with _lock:
        _notice = notice


def cache_location(dispatcher: Any) -> str:
    """Where numba caches ``dispatcher``'s machine code, in words (``NUMBA_CACHE_DIR`` named when it applies).

    Numba tries ``NUMBA_CACHE_DIR``, then the ``__pycache__`` folder beside the source file, then the user's
    cache folder (``~/.cache/numba``), taking the first it can write to; an unwritable ``NUMBA_CACHE_DIR`` is
    skipped without a word, which the text then says.
    """
    path = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)  # numba's locator, chosen at decoration
    if not isinstance(path, str):
        return "nowhere (numba cannot cache them)"
    wanted = os.environ.get("NUMBA_CACHE_DIR", "")
    if not wanted:
        return path
    if os.path.abspath(path).startswith(os.path.abspath(wanted) + os.sep):
        return f"{wanted} (NUMBA_CACHE_DIR)"
    return f"{path}, as NUMBA_CACHE_DIR={wanted} is not writable"


def _message(dispatcher: Any) -> str:
    return f"compiling flr's numba kernels once (about {FIRST_RUN_COMPILE_S} s; cached in {cache_location(dispatcher)})"


def _about_to_compile(dispatcher: Any) -> None:
    """Send the notice if ``dispatcher`` is one of flr's and no notice was sent in this process."""
    global _notified
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", None)
    if not isinstance(module, str) or not module.startswith("flr."):
        return  # another library's function (skan, a jitclass): not ours to announce
    with _lock:
        if _notified or _notice is None:
            return
        _notified = True
        notice = _notice
    try:
        notice(_message(dispatcher))
    except Exception:  # noqa: BLE001 - numba calls this inside its compile: a failing notice must not fail the run
        return


def install() -> None:
    """Listen to numba's compile events (idempotent; imports numba). A kernel module calls it on import."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from numba.core import event

    class _CompileListener(event.Listener):
        def on_start(self, event: Any) -> None:
            _about_to_compile(event.data.get("dispatcher"))

        def on_end(self, _event: Any) -> None:
            return

    event.register("numba:compile", _CompileListener())


def _warm_up_maps(dtype: np.dtype) -> dict[str, np.ndarray]:
    """Tiny label maps of ``dtype`` that take the word path (rows of whole uint64 words) and the voxel path.

    The uint16/int32 ones hold a label above 255, which makes :func:`flr.kernels.label_stats` run its
    value-set pre-pass (``values_present``), as a real map of such ids does.
    """
    words = np.zeros((2, 2, 8), dtype)  # 8 voxels of 1, 2 or 4 bytes: 1, 2 or 4 words per row
    voxels = np.zeros((2, 2, 3), dtype)  # 3, 6 or 12 bytes per row: never whole words
    for arr in (words, voxels):
        arr[0, 0, 1:] = 1
        arr[1, 1, 2] = 2 if dtype == np.uint8 else 300
    return {"words": words, "voxels": voxels}


#: Steps of :func:`warm_up` besides the label map kernels: kernels with one version whatever their input.
#: (The paths of a centerline, :mod:`flr.kernels._skeleton`, compile nothing.)
OTHER_STEPS = ("feature_transform", "thinning")


def run_step(step: str) -> None:
    """Run one warm-up step on a tiny input: ``"<label_stats|connected_components> <dtype> <words|voxels>"``
    or ``"feature_transform"`` (the exact EDT's kernels) or ``"thinning"`` (the vessel centerlines' kernel)."""
    from flr.kernels import connected_components, label_stats

    if step == "feature_transform":
        from flr.kernels._edt import feature_transform

        features = np.zeros((3, 4, 5), bool)
        features[1, 2, 3] = True
        feature_transform(features, (2.0, 1.0, 1.0), within=np.ones((3, 4, 5), bool))  # its flags are run-time
        return
    if step == "thinning":
        from flr.kernels._thin import thin

        thin(np.ones((3, 3, 4), bool))
        return
    name, dtype, path = step.split()
    arr = _warm_up_maps(np.dtype(dtype))[path]
    if name == "label_stats":
        label_stats(arr)
    elif name == "connected_components":
        connected_components(arr)
    else:
        raise ValueError(f"unknown warm-up step {step!r}")


def warm_up(dtypes: Sequence[Any] | None = None, *, others: bool = True) -> dict[str, float]:
    """Compile flr's kernels now, or load them from numba's cache, so that a later run does not wait.

    :func:`flr.kernels.label_stats` and :func:`flr.kernels.connected_components` run on tiny maps of each
    dtype, on both of their paths (rows of whole uint64 words, and voxel by voxel), then (``others``) the
    distance transform kernels (:data:`OTHER_STEPS`), one after the other in this process. Measured on a
    2-CPU x86-64 machine with an empty cache: 11.6 s for everything, of it 5.3 s for the uint8 label map
    kernels and 2.1 s for the distance transform (84 s before flr's kernels dropped numba's parallel=True).

    Parameters
    ----------
    dtypes : sequence of dtype-like, optional
        Label map dtypes to compile for; default :data:`NATIVE_DTYPES` (uint8, uint16, int32), which covers
        every dtype the kernels accept (others are converted to one of them).
    others : bool
        Also compile :data:`OTHER_STEPS` (default True).

    Returns
    -------
    dict of str to float
        Seconds (wall clock) of each step, e.g. ``"label_stats uint8 words"``: compile time on a cold cache,
        milliseconds on a warm one.

    Raises
    ------
    KernelInputError
        For a dtype the kernels do not accept natively (they are converted, so there is nothing to compile).
    """
    from flr.errors import KernelInputError

    names = NATIVE_DTYPES if dtypes is None else dtypes
    chosen = [np.dtype(d) for d in names]
    for dt in chosen:
        if dt.name not in NATIVE_DTYPES:
            raise KernelInputError(
                f"warm_up compiles for {', '.join(NATIVE_DTYPES)} (other dtypes are converted to one of them), "
                f"got {dt}"
            )
    steps = [f"{name} {dt.name} {path}" for dt in chosen for path in ("words", "voxels")
             for name in ("label_stats", "connected_components")]
    seconds: dict[str, float] = {}
    for step in [*steps, *(OTHER_STEPS if others else ())]:
        t0 = time.perf_counter()
        run_step(step)
        seconds[step] = time.perf_counter() - t0
    return seconds


#: The warm-up steps :func:`compile_in_background` hands to a helper process: the feature transforms of the
#: territories and tumours and the vessel thinning, which an assessment needs last, while the command itself
#: compiles the label statistics and connected components that it needs first. (A second helper for the
#: connected components was slower: 6.8 s against 6.2 s for a first ``flr demo``, three processes compiling on
#: two CPUs and the command waiting for it.)
BACKGROUND_STEPS = ("feature_transform", "thinning")
#: Seconds a kernel waits for the helper at most before compiling on its own.
BACKGROUND_WAIT_S = 300.0


def _step_kernels(step: str) -> list[Any]:
    """The compiled entry points (numba dispatchers) a warm-up step of :data:`BACKGROUND_STEPS` fills the
    cache with."""
    if step == "feature_transform":
        from flr.kernels import _edt

        return [_edt._pass_xy, _edt._pass_z]
    if step == "thinning":
        from flr.kernels import _thin

        return [_thin._thin_flat]
    raise ValueError(f"no background compile for warm-up step {step!r}")


def _package_root() -> str:
    """The folder holding this process's ``flr`` package (a helper imports the same flr, so that it fills the
    cache entries this process looks up: numba keys them by the kernel's source file)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cached(dispatcher: Any) -> bool | None:
    """Whether numba's cache holds an index for ``dispatcher`` (None: numba cannot cache it at all)."""
    index = getattr(getattr(getattr(dispatcher, "_cache", None), "_cache_file", None), "_index_path", None)
    return os.path.exists(index) if isinstance(index, str) else None


def compile_in_background() -> bool:
    """On a first run, compile the kernels of :data:`BACKGROUND_STEPS` into numba's cache in a helper process,
    now (issue 14); True when the helper started.

    A command line that will need them calls this when it starts. The helper uses CPU that the command's own
    compiling (one thread, under numba's compiler lock) leaves idle, so a first ``flr demo`` waits for the
    label map kernels' compiles only. Those kernels wait for the helper (:func:`await_background`) before
    their first call, then load from the cache; a helper that fails changes nothing but the time (the kernel
    compiles in the calling process). Nothing starts when every kernel is cached already, when numba cannot
    cache, with flr's kernels on one thread (``NUMBA_NUM_THREADS=1``, as in batch and Dask workers: they run
    side by side already), with ``FLR_BACKGROUND_COMPILE=0`` or when a helper runs already. A helper still
    running when the process exits is stopped.
    """
    global _helper
    if os.environ.get("FLR_BACKGROUND_COMPILE", "1") == "0":
        return False
    from flr.kernels import _default_threads

    if _default_threads(None) <= 1:
        return False
    states = [_cached(k) for step in BACKGROUND_STEPS for k in _step_kernels(step)]
    if None in states or all(states):
        return False
    code = (f"import sys\nsys.path.insert(0, {_package_root()!r})\n"  # this flr, whatever the helper's cwd holds
            "from flr.kernels._warmup import run_step\n" + "".join(f"run_step({s!r})\n" for s in BACKGROUND_STEPS))
    with _lock:
        if _helper is not None:
            return False
        try:
            _helper = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
    atexit.register(_stop_helper)
    return True


def await_background() -> None:
    """Wait for the helper of :func:`compile_in_background`, if one runs (at most :data:`BACKGROUND_WAIT_S`
    seconds, then it is stopped); the kernels of :data:`BACKGROUND_STEPS` call this before they run."""
    global _helper
    helper = _helper
    if helper is None:
        return
    try:
        helper.wait(BACKGROUND_WAIT_S)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
    with _lock:
        if _helper is helper:
            _helper = None


def _stop_helper() -> None:
    global _helper
    with _lock:
        helper, _helper = _helper, None
    if helper is not None and helper.poll() is None:
        helper.kill()
        helper.wait()
