"""The benchmark scripts stay runnable: each answers ``--help`` (argparse, no work done), and
every graphret name they import, at the top or inside a function, exists (a deleted module such as
``graphret.pipeline`` fails here, not hours into a run)."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in ("common.py", "shared_data.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_script_answers_help(script):
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=BENCHMARKS.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("usage:") and "--help" in run.stdout


def graphret_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from graphret... import name`` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "graphret":
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_every_graphret_name_the_benchmarks_import_exists():
    imports = sorted({pair for script in SCRIPTS + [BENCHMARKS / "common.py"] for pair in graphret_imports(script)})
    assert len(imports) > 20  # the scan sees the scripts' imports
    missing = []
    for module, name in imports:
        try:
            owner = importlib.import_module(module)
        except ImportError as error:
            missing.append(f"{module} ({error})")
            continue
        if not hasattr(owner, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, missing
