"""The code passes the project's ruff and mypy configurations (pyproject.toml), and library functions stay short."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", "--no-cache", "flr", "pipelines", "tests", "benchmarks"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean_on_the_library():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "pyproject.toml"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


#: Where a long function is allowed: numba kernels (straight loops kept whole for speed) and the phantom
#: generator (one analytic anatomy, read top to bottom).
LONG_FUNCTIONS_ALLOWED = ("flr/kernels/_numba.py", "flr/phantom.py")
MAX_FUNCTION_LINES = 80


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out.append((node.name, (node.end_lineno or node.lineno) - first + 1))
    return out


def test_no_library_function_over_80_lines():
    too_long = []
    for path in sorted((REPO / "flr").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in LONG_FUNCTIONS_ALLOWED:
            continue
        too_long += [f"{rel}::{name} ({n} lines)" for name, n in _function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert not too_long, too_long


def test_the_length_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def f():\n{body}\n")
    assert _function_lengths(tmp_path / "m.py") == [("f", MAX_FUNCTION_LINES + 1)]


def test_the_package_declares_its_types():
    """PEP 561: ``py.typed`` ships with flr (pyproject's package-data names it)."""
    assert (REPO / "flr" / "py.typed").is_file()
    assert '"py.typed"' in (REPO / "pyproject.toml").read_text()
