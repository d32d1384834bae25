"""Everything one command writes, as one set: checked before anything runs, written under hidden temporary
names, renamed into place together at the end.

A command (``flr assess --export E --report R --json J``, ``flr report ... -o R``, ``flr volumetry --json J``,
``flr compare --json J``) describes its outputs as :class:`Output` objects and its inputs as paths, and runs
inside :meth:`OutputSet.staged`:

1. **check** (before any input is read): every output's folder exists; ``--json`` is not a folder; a folder
   output is not a file, holds nothing but the files flr writes there, and is not the current folder; no
   output is an input (same resolved path, or the same file by ``samefile``), holds an input, or lies inside an
   input folder; no two outputs overlap.
2. **stage**: a hidden temporary sibling is created for each output, ``.R.flr<pid>-<hex>.tmp/`` for a folder,
   ``.J.flr<pid>-<hex>.tmp`` for a file (creating it is the writability probe: it answers truly for root, a
   read-only file system or ``/sys`` alike). Leftovers of killed runs beside the same names (hidden names whose
   process no longer runs) are removed first.
3. **write**: the command computes and writes into the temporaries only.
4. **commit**, with SIGINT, SIGTERM and SIGHUP held until it is done:

   a. stream outputs (``--json -``, a device such as ``/dev/null``, a FIFO) are written;
   b. each previous output is renamed aside to ``.NAME.flr<pid>-<hex>.old`` (folders first, the JSON last);
   c. each new output is renamed to its final name: the folders first (export, report), the JSON last;
   d. the previous outputs moved aside are removed, and so are those a killed run had moved aside.

What a crash (SIGKILL, power loss) leaves under the final names:

* before 4b: the previous set, complete (plus hidden temporaries, removed when the next run stages);
* during 4b: part of the previous set, the rest under hidden ``.old`` names; nothing new;
* during 4c: part of the new set; nothing of the previous one visible (it is under hidden ``.old`` names);
* during or after 4d: the new set, complete (plus hidden ``.old`` names).

Hidden ``.old`` names are removed by the next run that commits (step 4d), not when it stages: a run that
fails keeps them, the only copy of a previous output a killed commit had moved aside (rename it back by hand).

So every name holds a complete output, and the outputs present all come from one run: a new
``report/result.json`` never stands beside an old ``report.html`` or an old ``--json`` file. An error or a
signal before 4 removes the temporaries and leaves the previous set as it was; an error during 4b or 4c (a
rename refused) puts back what was moved.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flr.errors import OutputError
from flr.io._common import TEMP_PREFIX, create_temp_file, create_temp_folder, output_error, temp_sibling

#: ``--json -``: the JSON goes to standard output.
STDOUT = "-"


@dataclass(frozen=True)
class Output:
    """One output of a command.

    Parameters
    ----------
    option : the option that names it, for messages (``"--json"``, ``"--report"``, ``"--export"``, ``"--out"``).
    path : the path as the user gave it; ``"-"`` is standard output (files only).
    folder : a folder written whole and swapped in, rather than one file.
    writes : the names flr writes into a folder output; an existing folder may hold only these.
    """

    option: str
    path: Path | str
    folder: bool = False
    writes: tuple[str, ...] = ()

    @property
    def given(self) -> str:
        """The path as given, for messages."""
        return str(self.path)

    @property
    def to_stdout(self) -> bool:
        """Standard output (``-``)."""
        return not self.folder and str(self.path) == STDOUT


def _resolved(path: Path | str) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _is_stream(out: Output) -> bool:
    """Standard output, or an existing file that is neither regular nor a folder (``/dev/null``, a FIFO): written
    in place at commit, since a device cannot be replaced by a rename."""
    if out.to_stdout:
        return True
    if out.folder:
        return False
    try:
        mode = os.stat(out.path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _check_place(out: Output, target: Path) -> None:
    """The output's own place: its folder exists, and what is already there may be replaced."""
    given, parent = out.given, Path(out.path).parent
    if not target.parent.is_dir():
        problem = "is not a folder" if target.parent.exists() else "does not exist"
        raise OutputError(f"{given}: output folder {parent} {problem}")
    if not out.folder:
        if target.is_dir():
            raise OutputError(f"{given}: is a folder; {out.option} needs a file name")
        return
    if target.exists() and not target.is_dir():
        raise OutputError(f"{given}: exists and is not a folder; {out.option} needs a folder")
    if _resolved(Path.cwd()).is_relative_to(target):
        raise OutputError(f"{given}: is the current folder or holds it; choose a new folder for {out.option}")
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if p.name not in out.writes)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise OutputError(f"{given}: folder holds files flr does not write there ({shown}); choose a new or "
                              "empty folder")


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_not_input(out: Output, target: Path, inputs: Sequence[tuple[str, Path]]) -> None:
    """The output is no input of the run, holds none (a folder) and lies inside no input folder."""
    what = "folder" if out.folder else "file"
    for given_in, real_in in inputs:
        if _same(target, real_in):
            raise OutputError(f"{out.given}: is an input of this run ({given_in}); choose another {what} for "
                              f"{out.option}")
        if out.folder and real_in.is_relative_to(target):
            raise OutputError(f"{out.given}: holds an input of this run ({given_in}); choose another folder for "
                              f"{out.option}")
        if real_in.is_dir() and target.is_relative_to(real_in):
            raise OutputError(f"{out.given}: lies inside the input folder {given_in}; choose another place for "
                              f"{out.option}")


@dataclass
class _Entry:
    """One output while it is staged: its resolved final name, its temporary and what was moved aside."""

    output: Output
    target: Path
    stream: bool
    temp: Path | None = None
    old: Path | None = None
    written: bool = False
    committed: bool = False
    text: str | None = None


class OutputSet:
    """The outputs of one command, checked together and written all or nothing (see the module docstring).

    Parameters
    ----------
    outputs : the outputs; ``None`` entries (an option not given) are skipped.
    inputs : every path the command reads (label maps, their scheme files, the CT, patient file, rulebook,
        a saved result); ``None`` entries are skipped.
    """

    def __init__(self, outputs: Iterable[Output | None], inputs: Iterable[str | Path | None] = ()) -> None:
        self.outputs = tuple(o for o in outputs if o is not None)
        self.inputs = tuple(str(i) for i in inputs if i is not None and str(i) != "")

    def check(self) -> None:
        """Refuse the whole set, before anything is read or written, if any output cannot be written where asked.

        Raises
        ------
        OutputError
            One line naming the output as given and what is wrong with it.
        """
        inputs = [(i, _resolved(i)) for i in self.inputs]
        seen: list[tuple[Output, Path]] = []
        for out in self.outputs:
            if _is_stream(out):
                continue
            target = _resolved(out.path)
            _check_not_input(out, target, inputs)
            for other, other_target in seen:
                if target.is_relative_to(other_target) or other_target.is_relative_to(target):
                    raise OutputError(f"{out.given}: {out.option} and {other.option} {other.given} overlap; give "
                                      "each its own place")
            _check_place(out, target)
            seen.append((out, target))

    @contextlib.contextmanager
    def staged(self) -> Iterator[Staging]:
        """Check, stage, let the caller write into the temporaries, then commit; on any failure remove them.

        SIGINT, SIGTERM and SIGHUP are held while the temporaries are created or removed and during the commit, so
        a signal never leaves an unrecorded temporary or half a commit (it takes effect when that step is done).
        """
        self.check()
        staging = Staging(self.outputs)
        try:
            with _signals_held():  # a temporary is created and recorded, or neither
                staging.reserve()
            yield staging
        except BaseException:
            with _signals_held():
                staging.discard()
            raise
        with _signals_held():
            try:
                staging.commit()
            except BaseException:
                staging.discard()
                raise
            staging.remove_old()


class Staging:
    """The temporaries of an :class:`OutputSet` between staging and commit (made by :meth:`OutputSet.staged`)."""

    def __init__(self, outputs: Sequence[Output]) -> None:
        entries = [_Entry(o, _resolved(o.path), _is_stream(o)) for o in outputs]
        # folders first, in the order given, the files (the JSON) last
        self._entries = sorted(entries, key=lambda e: not e.output.folder)

    def _entry(self, option: str) -> _Entry:
        for e in self._entries:
            if e.output.option == option:
                return e
        raise KeyError(option)

    def reserve(self) -> None:
        """Remove leftovers of killed runs, then create every temporary (the probe that the place is writable)."""
        for e in self._entries:
            if e.stream:
                continue
            remove_stale_temporaries(e.target, ("tmp",))
            shown = e.output.given
            e.temp = create_temp_folder(e.target, shown=shown) if e.output.folder else create_temp_file(
                e.target, shown=shown)

    @contextlib.contextmanager
    def writing(self, option: str) -> Iterator[Path]:
        """The temporary to write ``option``'s output into; an ``OSError`` inside is an :class:`OutputError` that
        names the output as given (never the temporary)."""
        e = self._entry(option)
        if e.temp is None:
            raise OutputError(f"{e.output.given}: {option} cannot be written to a stream")
        try:
            yield e.temp
            e.written = True
        except OSError as exc:
            text = str(output_error(Path(e.output.given), exc) if not isinstance(exc, OutputError) else exc)
            err = OutputError(text.replace(str(e.temp), e.output.given))
            err.errno = exc.errno
            raise err from exc

    def write_json(self, option: str, data: Any) -> None:
        """Write ``data`` as JSON (indented, no NaN) for ``option``: into its temporary now, or to the stream at
        commit."""
        e = self._entry(option)
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        if e.stream:
            e.text, e.written = text, True
            return
        with self.writing(option) as tmp:
            tmp.write_text(text, encoding="utf-8")

    def commit(self) -> None:
        """Write the streams, move the previous outputs aside, rename the new ones in (module docstring, step 4)."""
        unwritten = [e.output.option for e in self._entries if not e.written]
        if unwritten:
            raise RuntimeError(f"outputs staged but never written: {', '.join(unwritten)}")
        for e in self._entries:
            if e.stream:
                _write_stream(e)
        files = [e for e in self._entries if e.temp is not None]
        done: list[tuple[str, _Entry]] = []
        current: _Entry | None = None
        try:
            for current in files:
                if os.path.lexists(current.target):
                    current.old = temp_sibling(current.target, ".old")
                    os.rename(current.target, current.old)
                    done.append(("aside", current))
            for current in files:
                assert current.temp is not None
                os.rename(current.temp, current.target)
                current.temp, current.committed = None, True
                done.append(("in", current))
        except OSError as exc:
            _roll_back(done)
            raise output_error(Path(current.output.given if current else "?"), exc) from exc

    def discard(self) -> None:
        """Remove every temporary not renamed in (after an error or a signal), and what was committed's old copy."""
        for e in self._entries:
            if e.temp is not None:
                _remove(e.temp)
                e.temp = None
            if e.committed and e.old is not None:
                _remove(e.old)
                e.old = None

    def remove_old(self) -> None:
        """Remove the previous outputs moved aside by the commit, and those a killed commit left (step 4d)."""
        for e in self._entries:
            if e.old is not None:
                _remove(e.old)
                e.old = None
            if e.committed:
                remove_stale_temporaries(e.target)


def _write_stream(e: _Entry) -> None:
    """Write a stream output (standard output, a device, a FIFO) in one go, through the path as given."""
    assert e.text is not None
    try:
        if e.output.to_stdout:
            sys.stdout.write(e.text)
            sys.stdout.flush()
        else:
            with open(e.output.path, "w", encoding="utf-8") as fh:
                fh.write(e.text)
    except OSError as exc:
        raise output_error(Path(e.output.given), exc) from exc


def _roll_back(done: list[tuple[str, _Entry]]) -> None:
    """Undo a commit that failed half-way (best effort): new outputs back to their temporaries, old ones back."""
    for step, e in reversed(done):
        with contextlib.suppress(OSError):
            if step == "in":
                e.temp = temp_sibling(e.target)
                os.rename(e.target, e.temp)
                e.committed = False
            elif e.old is not None:
                os.rename(e.old, e.target)
                e.old = None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def remove_stale_temporaries(target: Path, kinds: tuple[str, ...] = ("tmp", "old")) -> list[Path]:
    """Remove the hidden names beside ``target`` that a killed flr run left (``.NAME.flr<pid>-<hex>.tmp``, a
    temporary, or ``.old``, a previous output moved aside) whose process no longer runs; those of a running process
    are left alone.

    Staging removes only stale temporaries; stale previous outputs are removed after a commit, once the new
    outputs are in place (until then they are the only copy of what a killed commit had moved aside).

    Returns
    -------
    The paths removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{TEMP_PREFIX}(\d+)-[0-9a-f]{{16}}\.({'|'.join(kinds)})")
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m and not _process_runs(int(m.group(1))):
            _remove(target.parent / name)
            removed.append(target.parent / name)
    return removed


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM), or no way to tell
        return True
    return True


_HELD = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
#: While above zero a commit or a clean-up runs: :func:`defer_signal` keeps signals for its end.
_hold: dict[str, Any] = {"depth": 0, "pending": []}


def defer_signal(signum: int) -> bool:
    """For a signal handler (the CLI's): while a commit or a clean-up runs, keep ``signum`` and return True; the
    signal is raised again when it ends. Returns False (act now) otherwise.

    Blocking the signals (``pthread_sigmask``) is not enough: it holds them only in the thread that blocks them,
    and a process-directed signal goes to any other thread (numba's workers) that has them unblocked.
    """
    if _hold["depth"]:
        _hold["pending"].append(signum)
        return True
    return False


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends: blocked in this thread where the platform can, and
    deferred by the CLI's handler (:func:`defer_signal`); a held signal is raised again at the end."""
    mask = getattr(signal, "pthread_sigmask", None)
    previous = mask(signal.SIG_BLOCK, _HELD) if mask is not None else None
    _hold["depth"] += 1
    try:
        yield
    finally:
        _hold["depth"] -= 1
        if mask is not None and previous is not None:
            mask(signal.SIG_SETMASK, previous)
        if not _hold["depth"] and _hold["pending"]:
            signum = _hold["pending"][0]
            _hold["pending"].clear()
            signal.raise_signal(signum)
