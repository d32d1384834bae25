"""Small helpers every reader and writer in :mod:`flr.io` shares."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path


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


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file name beside ``path``; renamed to ``path`` on success, removed on any failure.

    Nothing already at ``path`` is lost or half-overwritten if the write fails.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
