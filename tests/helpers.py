"""Helpers shared by the test modules: cached seeded phantoms and a command-line runner.

Phantoms are built once per test session (:func:`phantom`); they are immutable (read-only arrays), so
sharing them between modules cannot leak state.
"""

from __future__ import annotations

import functools
from typing import Any

from flr.phantom import Phantom, make_liver_phantom
from pipelines.cli import main


@functools.lru_cache(maxsize=8)
def phantom(seed: int, **options: Any) -> Phantom:
    """``make_liver_phantom(seed, **options)``, built once per session."""
    return make_liver_phantom(seed, **options)


def run_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run ``flr ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_bad(args: list[str], capsys: Any, code: int = 2) -> str:
    """Run ``flr ARGS`` expecting a one-line error (no traceback) and exit ``code`` (2: the user's input,
    ``flr: error:``; 1: ``flr: internal error:``); returns stderr."""
    got, _, err = run_cli(args, capsys)
    assert got == code, err
    assert err.startswith("flr: error: " if code == 2 else "flr: internal error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err
