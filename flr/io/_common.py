"""Small helpers every reader and writer in :mod:`flr.io` shares."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flr.errors import OutputError
from flr.image import Geometry


@dataclass(frozen=True)
class ImageHeader:
    """An image's grid and metadata without its voxels (:func:`flr.io.read_image_header`): ``geometry``,
    ``source`` and ``metadata`` are those of the :class:`~flr.image.Image` the full read gives. ``metadata``
    is copied (shallowly)."""

    geometry: Geometry
    source: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", dict(self.metadata))


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom/highdicom UserWarnings about non-conforming values while reading (scoped, never global).

    Real exports often carry values that are legal but odd; flr validates every value it uses itself.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def one_line(text: object, limit: int = 120) -> str:
    """``text`` on one line, shortened to ``limit`` characters (for error messages)."""
    s = re.sub(r"\s+", " ", str(text)).strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."


#: Hidden temporary names flr writes beside an output: ``.NAME.flr<pid>-<hex>.tmp`` (a file or a folder being
#: written) and ``.NAME.flr<pid>-<hex>.old`` (a previous output moved aside while a new one is renamed in). The
#: process id lets a later run tell the leftovers of a killed run from those of one still running.
TEMP_PREFIX = "flr"


def temp_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """An unused hidden name beside ``path``: ``.NAME.flr<pid>-<16 hex digits><suffix>`` (nothing is created).

    >>> temp_sibling(Path("out/result.json")).name.startswith(".result.json.flr")
    True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{suffix}")


def create_temp_file(path: Path, suffix: str = ".tmp", *, shown: str | Path | None = None) -> Path:
    """Create an empty hidden temporary file beside ``path`` (see :func:`temp_sibling`) and return its name.

    The file is created with mode ``0o666`` less the umask, as ``open()`` would (not ``mkstemp``'s ``0o600``), so
    the output renamed from it has the permissions the user expects (0644 under umask 022).

    Raises
    ------
    OutputError
        The folder is missing, read-only or not writable; the message names ``shown`` (default ``path``).
    """
    path = Path(path)
    for _ in range(100):
        tmp = temp_sibling(path, suffix)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise output_error(Path(shown or path), exc) from None
        return tmp
    raise OutputError(f"{shown or path}: cannot find an unused temporary name beside it")  # pragma: no cover


def create_temp_folder(path: Path, *, shown: str | Path | None = None) -> Path:
    """Create an empty hidden temporary folder beside ``path`` (mode ``0o777`` less the umask) and return it.

    Raises
    ------
    OutputError
        The folder is missing, read-only or not writable; the message names ``shown`` (default ``path``).
    """
    path = Path(path)
    for _ in range(100):
        tmp = temp_sibling(path)
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        except OSError as exc:
            raise output_error(Path(shown or path), exc) from None
        return tmp
    raise OutputError(f"{shown or path}: cannot find an unused temporary name beside it")  # pragma: no cover


def output_error(path: Path, exc: OSError) -> OutputError:
    """The one-line :class:`~flr.errors.OutputError` for an ``OSError`` met while writing ``path``.

    >>> str(output_error(Path("out/a.json"), OSError(28, "No space left on device")))
    'out/a.json: cannot write (No space left on device)'
    """
    if isinstance(exc, OutputError):
        return exc
    if isinstance(exc, FileNotFoundError) and not Path(path).parent.is_dir():
        err = OutputError(f"{path}: output folder {Path(path).parent} does not exist")
    else:
        err = OutputError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})")
    err.errno = exc.errno
    return err


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file name beside ``path``; renamed to ``path`` on success, removed on any failure.

    Nothing already at ``path`` is lost or half-overwritten if the write fails. The temporary file is hidden
    (:func:`temp_sibling`) and gets the user's umask; ``suffix`` ends its name (writers that pick a format by the
    name pass e.g. ``".nii.gz"``).

    Raises
    ------
    OutputError
        An ``OSError`` while creating, writing or renaming (disk full, read-only, a folder at ``path``), or an
        existing ``path`` that is not a regular file (a device or a FIFO is never replaced by a rename).
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise OutputError(f"{path}: not a regular file (a device, FIFO or socket); give a file name")
    tmp = create_temp_file(path, suffix)
    try:
        yield str(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from exc
        raise
