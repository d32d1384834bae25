"""Compiling the kernels: only what a call uses, the once-per-process notice, warm_up and an uncacheable setup.

The notice tests run subprocesses with an empty temporary ``NUMBA_CACHE_DIR``; each compiles one small kernel
(``value_range``: one compile event, one notice), a second or two.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import flr.kernels as kernels
from flr.errors import KernelInputError
from flr.kernels import _warmup
from flr.kernels.reference import connected_components_reference, label_stats_reference

REPO = Path(__file__).resolve().parents[2]
KERNELS_SOURCE = REPO / "flr" / "kernels" / "_numba.py"

#: One small kernel in a fresh process, optionally with a notice that writes to standard error.
ONE_KERNEL = """
import sys
import numpy as np
import flr.kernels
if sys.argv[1] == "notice":
    flr.kernels.set_notice(lambda message: print("NOTICE:", message, file=sys.stderr))
from flr.kernels import _numba
flat = np.array([3, 1, 4, 1, 5], np.uint16)
for _ in range(2):
    lo, hi = _numba.value_range(flat, 0, 5)
print(lo, hi)
"""


def run_one_kernel(cache_dir: Path, notice: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.run(
        [sys.executable, "-c", ONE_KERNEL, "notice" if notice else "silent"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=300,
    )


def test_notice_once_when_compiling_into_an_empty_cache_and_never_when_warm(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    cold = run_one_kernel(cache, notice=True)
    assert cold.stdout.strip() == "1 5"
    lines = [line for line in cold.stderr.splitlines() if line.startswith("NOTICE:")]
    assert lines == [
        f"NOTICE: compiling flr's numba kernels once (about {_warmup.FIRST_RUN_COMPILE_S} s; cached in {cache} "
        "(NUMBA_CACHE_DIR))"
    ], cold.stderr
    assert any(cache.rglob("*value_range*.nbi")), "the kernel was not cached where the notice says"
    warm = run_one_kernel(cache, notice=True)
    assert warm.stdout == cold.stdout
    assert "NOTICE" not in warm.stderr


def test_without_a_notice_the_library_prints_nothing(tmp_path: Path) -> None:
    cold = run_one_kernel(tmp_path / "numba-cache", notice=False)
    assert cold.stdout.strip() == "1 5"
    assert cold.stderr == ""


def fake_dispatcher(module: str, cache_path: str | None = "/cache/flr") -> SimpleNamespace:
    cache = SimpleNamespace(_cache_path=cache_path) if cache_path is not None else None
    return SimpleNamespace(py_func=SimpleNamespace(__module__=module), _cache=cache)


@pytest.fixture
def fresh_notice(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """This process's notice state as if no notice was sent yet; the messages sent are collected."""
    sent: list[str] = []
    monkeypatch.setattr(_warmup, "_notified", False)
    monkeypatch.setattr(_warmup, "_notice", sent.append)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    return sent


def test_notice_only_for_flr_functions_and_once(fresh_notice: list[str]) -> None:
    _warmup._about_to_compile(fake_dispatcher("skan.csr"))  # another library's compile: not announced
    _warmup._about_to_compile(SimpleNamespace())  # a dispatcher without py_func (a jitclass part)
    assert fresh_notice == []
    _warmup._about_to_compile(fake_dispatcher("flr.kernels._numba"))
    _warmup._about_to_compile(fake_dispatcher("flr.kernels._numba"))
    assert fresh_notice == [
        f"compiling flr's numba kernels once (about {_warmup.FIRST_RUN_COMPILE_S} s; cached in /cache/flr)"
    ]


def test_a_failing_notice_does_not_fail_the_compile(fresh_notice: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_message: str) -> None:
        raise BrokenPipeError("standard error is closed")

    kernels.set_notice(broken)
    _warmup._about_to_compile(fake_dispatcher("flr.kernels._numba"))  # numba calls this inside its compile
    monkeypatch.setattr(_warmup, "_notice", fresh_notice.append)
    _warmup._about_to_compile(fake_dispatcher("flr.kernels._numba"))
    assert fresh_notice == []  # that was this process's one notice


def test_set_notice_none_silences(fresh_notice: list[str]) -> None:
    kernels.set_notice(None)
    _warmup._about_to_compile(fake_dispatcher("flr.kernels._numba"))
    assert fresh_notice == []


def test_cache_location_names_the_folder_numba_uses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert _warmup.cache_location(fake_dispatcher("flr.x", "/site/flr/kernels/__pycache__")) == (
        "/site/flr/kernels/__pycache__"
    )
    assert _warmup.cache_location(fake_dispatcher("flr.x", None)) == "nowhere (numba cannot cache them)"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    inside = fake_dispatcher("flr.x", str(tmp_path / "kernels_0123"))
    assert _warmup.cache_location(inside) == f"{tmp_path} (NUMBA_CACHE_DIR)"
    # numba skips an unwritable NUMBA_CACHE_DIR without a word, for __pycache__ or ~/.cache/numba: say so
    fallback = fake_dispatcher("flr.x", "/home/me/.cache/numba/kernels_0123")
    assert _warmup.cache_location(fallback) == (
        f"/home/me/.cache/numba/kernels_0123, as NUMBA_CACHE_DIR={tmp_path} is not writable"
    )


def test_no_writable_cache_folder_is_a_clear_error() -> None:
    """With nowhere to cache (every locator refused), numba refuses cache=True kernels at import: flr says why."""
    code = (
        "import numba.core.caching as c, numpy as np\n"
        "c.CacheImpl._locator_classes = []  # as when NUMBA_CACHE_DIR, __pycache__ and ~/.cache are read-only\n"
        "import flr.kernels\n"
        "from flr.errors import FlrError\n"
        "try:\n"
        "    flr.kernels.label_stats(np.zeros((1, 1, 8), np.uint8))\n"
        "except FlrError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert "no writable folder to cache flr's kernels" in out.stdout
    assert "set NUMBA_CACHE_DIR to a writable directory" in out.stdout


# --- compile only what a call uses --------------------------------------------------------------------------


def _kernel_functions() -> set[str]:
    tree = ast.parse(KERNELS_SOURCE.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("njit" in ast.unparse(d) or "intrinsic" in ast.unparse(d) for d in node.decorator_list)
    }


def test_kernels_call_each_other_without_literal_arguments() -> None:
    """numba compiles one more version of a called kernel per literal argument (``0``, ``True``): none is passed."""
    names = _kernel_functions()
    assert {"_add_face", "_runs_words", "paint_runs_rows"} <= names
    literal_calls = []
    for node in ast.walk(ast.parse(KERNELS_SOURCE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            literal_calls += [
                f"line {node.lineno}: {ast.unparse(node)[:80]}"
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, (bool, int))
            ]
    assert not literal_calls, literal_calls


def test_word_and_voxel_paths_are_separate_kernels() -> None:
    """No compiled entry point takes a use_words flag: a map compiles its own path, not both."""
    from flr.kernels import _numba

    entry_points = [name for name in _kernel_functions() if not name.startswith("_")]
    assert entry_points
    for name in entry_points:
        params = inspect.signature(getattr(_numba, name).py_func).parameters
        assert "use_words" not in params, name


# --- warm_up -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", kernels.NATIVE_DTYPES)
def test_warm_up_maps_take_both_paths_and_the_value_pre_pass(dtype: str) -> None:
    maps = _warmup._warm_up_maps(np.dtype(dtype))
    assert kernels._words(maps["words"])[2] is True
    assert kernels._words(maps["voxels"])[2] is False
    for arr in maps.values():
        assert arr.dtype == np.dtype(dtype)
        assert (int(arr.max()) > 255) == (dtype != "uint8")  # values_present runs for ids above 255
        want = label_stats_reference(arr)
        got = kernels.label_stats(arr)
        np.testing.assert_array_equal(got.counts, want.counts)
        np.testing.assert_array_equal(got.face_counts, want.face_counts)
        np.testing.assert_array_equal(kernels.connected_components(arr)[0], connected_components_reference(arr)[0])


def test_warm_up_reports_each_step() -> None:
    seconds = kernels.warm_up(["uint8"])
    assert list(seconds) == [
        "label_stats uint8 words",
        "connected_components uint8 words",
        "label_stats uint8 voxels",
        "connected_components uint8 voxels",
        "feature_transform",
        "thinning",
    ]
    assert all(s >= 0 for s in seconds.values())
    assert list(kernels.warm_up(["int32"], others=False)) == [
        "label_stats int32 words",
        "connected_components int32 words",
        "label_stats int32 voxels",
        "connected_components int32 voxels",
    ]


def test_an_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown warm-up step 'label_count uint8 words'"):
        _warmup.run_step("label_count uint8 words")


@pytest.mark.parametrize("dtype", ["int64", "bool", "float32"])
def test_warm_up_refuses_dtypes_that_are_converted(dtype: str) -> None:
    with pytest.raises(KernelInputError, match=r"warm_up compiles for uint8, uint16, int32 .* got " + dtype):
        kernels.warm_up([dtype])



#: A fresh process that may start the background compile, then runs the thinning and the feature transform
#: and reports which of flr's functions it compiled itself (numba's compile events).
BACKGROUND = """
import json, os, sys, time
import numpy as np
from numba.core import event
from flr.kernels import _warmup

compiled = []

class Listener(event.Listener):
    def on_start(self, e):
        func = getattr(e.data.get("dispatcher"), "py_func", None)
        if getattr(func, "__module__", "").startswith("flr."):
            compiled.append(func.__qualname__)

    def on_end(self, e):
        pass

event.register("numba:compile", Listener())
started = _warmup.compile_in_background()
helper = _warmup._helper.pid if _warmup._helper is not None else None
if sys.argv[1] == "exit":  # leave at once: the helper is stopped
    print(json.dumps({"started": started, "helper": helper}))
    sys.exit(0)
from flr.kernels import connected_components
from flr.kernels._edt import feature_transform
from flr.kernels._thin import thin

bar = np.zeros((5, 5, 9), bool)
bar[1:4, 1:4, 1:8] = True
f = np.zeros((3, 4, 5), bool)
f[1, 2, 3] = True
index, d2 = feature_transform(f, (2.0, 1.0, 1.0), within=np.ones((3, 4, 5), bool))
two = np.zeros((2, 3, 8), np.uint8)  # rows of one uint64 word: the word path
two[0, 0, :3] = 1
two[1, 2, 5:] = 2
components, sizes = connected_components(two)
print(json.dumps({"started": started, "compiled": compiled, "line": int(thin(bar).sum()),
                  "nearest": int(index[0, 0, 0]), "d2": float(d2[0, 0, 0]), "helper": helper,
                  "sizes": sizes.tolist(), "left": _warmup._helper is None}))
"""


def run_background(cache_dir: Path, mode: str = "run", cwd: Path = REPO, **env: str) -> dict:
    import json

    full = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "FLR_BACKGROUND_COMPILE": "1", **env}
    full.pop("NUMBA_DISABLE_JIT", None)
    if "NUMBA_NUM_THREADS" not in env:
        full.pop("NUMBA_NUM_THREADS", None)
    script = f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + BACKGROUND  # this flr, whatever cwd holds
    out = subprocess.run([sys.executable, "-c", script, mode], cwd=cwd, env=full, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the background compile needs a second CPU")
def test_a_first_run_compiles_the_last_kernels_in_a_helper_process(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    first = run_background(cache)
    assert first["started"] is True and first["helper"] is not None
    # the helper filled the cache; this process waited for it and loaded its kernels without compiling them,
    # and compiled the others (the connected components) itself
    assert not {"_thin_flat", "_pass_xy", "_pass_z"} & set(first["compiled"]), first
    assert "runs_words_rows" in first["compiled"]
    assert first["sizes"] == [3, 3] and first["left"] is True
    assert first["line"] == 5 and first["nearest"] == 1 * 20 + 2 * 5 + 3  # (1, 2, 3) flat in (3, 4, 5)
    assert first["d2"] == pytest.approx(4.0 * 1 + 4 + 9)
    assert any(cache.rglob("*_thin_flat*.nbi")) and any(cache.rglob("*_pass_z*.nbi"))
    second = run_background(cache)  # everything cached: no helper
    assert second["started"] is False and second["compiled"] == [] and second["line"] == 5


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the background compile needs a second CPU")
def test_the_helper_imports_the_same_flr_whatever_its_folder_holds(tmp_path: Path) -> None:
    """A command run from a folder holding another ``flr`` (a checkout, a file of that name): the helper still
    compiles this flr's kernels, the ones the command then loads from the cache."""
    work = tmp_path / "work"
    (work / "flr").mkdir(parents=True)
    (work / "flr" / "__init__.py").write_text("raise ImportError('not the flr the command runs')\n")
    out = run_background(tmp_path / "cache", cwd=work)
    assert out["started"] is True
    assert not {"_thin_flat", "_pass_xy", "_pass_z"} & set(out["compiled"]), out


def test_no_background_compile_on_one_thread_or_when_turned_off(tmp_path: Path) -> None:
    one_thread = run_background(tmp_path / "a", NUMBA_NUM_THREADS="1")
    assert one_thread["started"] is False
    assert {"_thin_flat", "_pass_xy", "_pass_z", "runs_words_rows"} <= set(one_thread["compiled"])  # in the process
    off = run_background(tmp_path / "b", FLR_BACKGROUND_COMPILE="0")
    assert off["started"] is False and "_thin_flat" in off["compiled"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the background compile needs a second CPU")
def test_a_helper_still_running_at_exit_is_stopped(tmp_path: Path) -> None:
    out = run_background(tmp_path / "c", mode="exit")
    assert out["started"] is True and out["helper"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(out["helper"], 0)
