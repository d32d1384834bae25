"""Helpers shared by the test modules: cached seeded phantoms, a command-line runner, and vessel edits on a
phantom's label map (gaps cut into a named vessel piece of its analytic anatomy).

Phantoms are built once per test session (:func:`phantom`); they are immutable (read-only arrays), so
sharing them between modules cannot leak state.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from flr.image import LabelMap
from flr.phantom import HEPATIC_VEIN, PHANTOM_LABELS, PORTAL_VEIN, Phantom, make_liver_phantom
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


#: The first words of flr's compile notice on standard error (README: Performance settings).
COMPILE_NOTICE = "flr: compiling flr's numba kernels once"


def run_cli_bad(args: list[str], capsys: Any, code: int = 2) -> str:
    """Run ``flr ARGS`` expecting a one-line error (no traceback) and exit ``code`` (2: the user's input,
    ``flr: error:``; 1: ``flr: internal error:``); returns stderr."""
    got, _, err = run_cli(args, capsys)
    # the documented once-per-process compile notice may come first when a kernel compiles (a cold cache)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith(COMPILE_NOTICE))
    assert got == code, err
    assert err.startswith("flr: error: " if code == 2 else "flr: internal error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def piece(p, name: str) -> dict:
    return next(v for v in p.truth["anatomy"]["vessels"] if v["name"] == name)


def lps_of_indices(g, idx: np.ndarray) -> np.ndarray:
    """(n, 3) LPS mm of (3, n) (z, y, x) voxel indices."""
    return (g.affine_lps[:3, :3] @ idx[::-1].astype(float)).T + np.asarray(g.origin_mm)


def interrupt(p, labels: np.ndarray, name: str, t0_mm: float, t1_mm: float, *, allow_empty: bool = False
              ) -> np.ndarray:
    """Labels with the voxels of vessel piece ``name`` whose centre projects onto [t0, t1] mm of its axis
    (within radius + 2 mm of it) set to background: a gap of t1 - t0 mm in the vessel mask."""
    v = piece(p, name)
    label = PORTAL_VEIN if v["structure"] == "portal_vein" else HEPATIC_VEIN
    idx = np.array(np.nonzero(labels == label))
    pts = lps_of_indices(p.labels.geometry, idx)
    p0, p1 = np.asarray(v["p0_mm"]), np.asarray(v["p1_mm"])
    u = (p1 - p0) / np.linalg.norm(p1 - p0)
    t = (pts - p0) @ u
    radial = np.linalg.norm(pts - p0 - t[:, None] * u, axis=1)
    hit = (t >= t0_mm) & (t <= t1_mm) & (radial <= v["radius_mm"] + 2.0)
    out = labels.copy()
    out[tuple(idx[:, hit])] = 0
    assert allow_empty or hit.sum() > 0
    return out


def relabel(p, labels: np.ndarray, names: dict[int, str] | None = None) -> list[LabelMap]:
    lm = LabelMap(labels, p.labels.geometry, "test", {}, names=names or PHANTOM_LABELS, scheme="flr-phantom")
    return [lm, p.liver]


def first_intrahepatic_mm(p, name: str) -> float:
    """Distance (mm) along piece ``name`` from its start to its first point inside the liver outline."""
    v = piece(p, name)
    p0, p1 = np.asarray(v["p0_mm"]), np.asarray(v["p1_mm"])
    g = p.labels.geometry
    inv = np.linalg.inv(g.affine_lps[:3, :3])
    length = float(np.linalg.norm(p1 - p0))
    for t in np.arange(0.0, length, 0.5):
        x = p0 + (p1 - p0) * t / length
        ijk = np.rint(inv @ (x - np.asarray(g.origin_mm))).astype(int)
        if p.liver.array[ijk[2], ijk[1], ijk[0]]:
            return float(t)
    raise AssertionError(f"{name} never enters the liver")
