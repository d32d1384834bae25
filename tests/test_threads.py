"""The assessment's second thread (issue 14) changes nothing but the time it takes.

Independent truth: the same ``assess`` with flr's kernels set to one thread, where the segment territories
and the vessel systems are made one after the other in the calling thread. Every value of the result and
every array must be equal, bit for bit, whatever the plan, the grid or the vessel systems present.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import flr.kernels
from flr.assessment import StageClock, _Background, assess
from flr.plan import resection_plan
from pipelines.cli import keep_freed_memory


def _serial_and_threaded(monkeypatch, maps, plan):
    with monkeypatch.context() as m:
        m.setattr(flr.kernels, "_default_threads", lambda _n: 1)
        serial_clock = StageClock()
        serial = assess(maps, plan, clock=serial_clock)
    with monkeypatch.context() as m:
        m.setattr(flr.kernels, "_default_threads", lambda _n: 2)
        threaded_clock = StageClock()
        threaded = assess(maps, plan, clock=threaded_clock)
    return (serial, serial_clock), (threaded, threaded_clock)


@pytest.mark.parametrize(("fixture", "plan"), [
    ("phantom_1", resection_plan("right-hemihepatectomy", wedges=["2:10"])),
    ("phantom_1", resection_plan("left-lateral-sectionectomy", ablations=["1:5"])),
    ("phantom_0_oblique", resection_plan("right-posterior-sectionectomy")),
])
def test_the_second_thread_gives_the_one_thread_result(monkeypatch, request, fixture, plan):
    ph = request.getfixturevalue(fixture)
    maps = [ph.labels, ph.liver]
    (serial, serial_clock), (threaded, threaded_clock) = _serial_and_threaded(monkeypatch, maps, plan)
    # the threaded run did use the second thread, the serial one did not
    assert "vessel systems (second thread)" in threaded_clock.times
    assert not any("second thread" in k for k in serial_clock.times)
    assert json.loads(threaded.to_json()) == json.loads(serial.to_json())
    s, t = serial.arrays, threaded.arrays
    for name in ("territory", "removed", "ablation", "functional", "tumors", "liver"):
        assert np.array_equal(getattr(s, name), getattr(t, name)), name
    for name in ("at_risk", "vessels", "vessel_territories"):
        a, b = getattr(s, name), getattr(t, name)
        assert list(a) == list(b), name  # same systems, in the same order
        for k in a:
            assert np.array_equal(a[k], b[k]), (name, k)
    # more than one vessel system was prepared, so the systems' own threads ran too
    assert len(s.vessels) >= 2


@pytest.mark.parametrize("threads", [1, 2])
def test_background_work_gives_results_and_errors(monkeypatch, threads):
    monkeypatch.setattr(flr.kernels, "_default_threads", lambda _n: threads)
    clock = StageClock()
    ran_in: list[str] = []
    calls: list[int] = []

    def work(x: int) -> int:
        ran_in.append(threading.current_thread().name)
        calls.append(x)
        return 10 * x

    def fail() -> None:
        raise ValueError("the background work failed")

    with _Background(clock) as bg:
        first = bg.run("first", work, 1)
        broken = bg.run("broken", fail)
        second = bg.run("second", work, 2)
        assert first() == 10
        assert first() == 10  # the result is kept, the work done once
        with pytest.raises(ValueError, match="background work failed"):
            broken()
        assert second() == 20
    assert calls == [1, 2]
    if threads == 1:
        assert ran_in == [threading.current_thread().name] * 2
        assert not clock.times
    else:
        assert all(n.startswith("flr-assess") for n in ran_in)
        assert set(clock.times) == {"first (second thread)", "broken (second thread)", "second (second thread)"}


def test_work_not_started_is_dropped_when_the_caller_fails(monkeypatch):
    monkeypatch.setattr(flr.kernels, "_default_threads", lambda _n: 2)
    started = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        done.append("slow")

    def leave_failing() -> None:
        with _Background(StageClock()) as bg:
            bg.run("slow", slow)
            bg.run("later", lambda: done.append("later"))
            started.wait(10)
            threading.Timer(0.2, release.set).start()  # still running when the block is left
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError, match="the caller failed"):
        leave_failing()
    assert done == ["slow"]  # the work in progress finished; the rest never ran


def test_keep_freed_memory_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FLR_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("FLR_KEEP_FREED_MEMORY")
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True



#: Run in a process of its own (the allocator settings are the process's): the bytes glibc holds in mmapped
#: blocks after a 64 MB array is made, and the number of heaps (arenas) after a second thread made a 16 MB one.
_ALLOCATOR_PROBE = """
import ctypes, json, os, sys, tempfile, threading
import numpy as np
from pipelines.cli import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

kept = keep_freed_memory()
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes, libc.malloc_info.argtypes = [ctypes.c_void_p], [ctypes.c_int, ctypes.c_void_p]
mmapped = libc.mallinfo2().hblkhd
big = np.ones(64 << 20, np.uint8)
mmapped = libc.mallinfo2().hblkhd - mmapped
held = []
t = threading.Thread(target=lambda: held.append(np.ones(16 << 20, np.uint8)))
t.start(); t.join()
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, fp); libc.fclose(fp)
heaps = open(path).read().count("<heap nr=")
from numpy._core import multiarray
huge_pages = bool(multiarray._set_madvise_hugepage(False))  # the setting before this call
print(json.dumps({"kept": kept, "mmapped_bytes": mmapped, "heaps": heaps, "huge_pages": huge_pages}))
"""


def _numpy_default_huge_pages() -> bool:
    """numpy's own choice in a fresh process (on unless NUMPY_MADVISE_HUGEPAGE=0 or an old kernel)."""
    import subprocess
    import sys

    code = "from numpy._core import multiarray; print(bool(multiarray._set_madvise_hugepage(False)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def _probe_allocator(env: dict[str, str]) -> dict:
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _ALLOCATOR_PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout)


def test_keep_freed_memory_puts_every_array_in_the_one_heap():
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not hasattr(ctypes.CDLL(None),
                                                                                       "mallinfo2"):
        pytest.skip("glibc >= 2.33 (mallinfo2) only: the settings are glibc's")
    kept = _probe_allocator({"FLR_KEEP_FREED_MEMORY": "1"})
    default = _probe_allocator({"FLR_KEEP_FREED_MEMORY": "0"})
    assert kept["kept"] is True and default["kept"] is False
    # glibc's default: the 64 MB array is a block of its own, mmapped (given back, zeroed anew, on free)
    assert default["mmapped_bytes"] >= 64 << 20
    assert default["heaps"] >= 2  # the second thread got a heap (arena) of its own
    # kept: the array comes from the heap, which keeps it when freed; the thread shares the main heap
    assert kept["mmapped_bytes"] == 0
    assert kept["heaps"] == 1
    assert kept["huge_pages"] is False  # numpy asks for no transparent huge pages
    assert default["huge_pages"] is (_numpy_default_huge_pages())


_OWN_PROCESS_PROBE = """
import gc, json, sys
from pipelines import cli
sys.argv = ["flr", "schemes"]
code = cli.main()                      # the flr command itself: its process is tuned
after_main = gc.get_freeze_count()
supply_before = "flr.supply" in sys.modules
done = cli.freeze_objects(*cli.ASSESSMENT_MODULES)
print(json.dumps({"code": code, "frozen_by_main": after_main, "supply_before": supply_before, "done": done,
                  "supply_after": "flr.supply" in sys.modules, "frozen_after": gc.get_freeze_count()}))
"""


def test_the_flr_command_freezes_its_imported_objects_in_its_own_process_only(capsys):
    import gc
    import subprocess
    import sys

    from pipelines import cli
    from tests.helpers import run_cli

    before = gc.get_freeze_count()
    code, _, _ = run_cli(["schemes"], capsys)  # in-process, with argv: the host process is left alone
    assert code == 0 and gc.get_freeze_count() == before and cli._OWN_PROCESS is False
    assert cli.freeze_objects("flr.zones") is False
    out = subprocess.run([sys.executable, "-c", _OWN_PROCESS_PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["code"] == 0 and probe["frozen_by_main"] > 10_000  # the command's imports, out of the passes
    assert probe["supply_before"] is False and probe["done"] is True and probe["supply_after"] is True
    assert probe["frozen_after"] > probe["frozen_by_main"]  # the assessment's modules too
