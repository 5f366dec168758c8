"""The shape of the code: strict layers (import-linter), no click in the library, the CLI installed
as graphret.cli, CLI options generated from the configs, no import circle, the public names and
errors, and the README's Python that runs."""

import ast
import os
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept(monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_library_never_imports_click_or_the_cli():
    offenders = []
    for path in (ROOT / "graphret").rglob("*.py"):
        for name in _imports(path):
            if name == "click" or name.startswith("click.") or name.startswith("graphret.cli") or name == "cli" or name.startswith("cli."):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_every_package_is_installed_and_the_cli_lands_inside_graphret():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "graphret").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"graphret.cli"}
    assert config["package-dir"] == {"graphret.cli": "cli"}
    assert not any(name == "cli" or name.startswith("cli.") for name in config["packages"])


def test_cli_options_match_the_configs():
    """Each generated option's default is the config field's default (nothing listed twice)."""
    import click
    from graphret.cli.add import add_command
    from graphret.cli.bench import bench_command
    from graphret.cli.build import build_graph_command

    from graphret.api.config import AddConfig, BuildConfig
    from graphret.evaluation.bench import BenchConfig

    for command, config in ((build_graph_command, BuildConfig()), (add_command, AddConfig()), (bench_command, BenchConfig())):
        defaults = {p.name: p.default for p in command.params if isinstance(p, click.Option)}
        flat = config.flat() if hasattr(config, "flat") else {f: getattr(config, f) for f in config.__dataclass_fields__}
        for name, value in flat.items():
            if name not in defaults:
                continue
            shown = ",".join(value) if isinstance(value, (list, tuple)) else value
            assert defaults[name] == shown, (command.name, name)
    assert {"k", "encoder", "communities", "epochs", "heuristic", "on_corrupt"} <= {p.name for p in build_graph_command.params}


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    """Every ```python block of the README runs, in order, in a scratch folder."""
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert blocks, "the README has no Python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own examples


def test_import_graphret_is_light():
    """`import graphret` (what the CLI's --version needs) does not import torch, numba or pyarrow."""
    import subprocess
    import sys

    code = "import sys, graphret; print(','.join(m for m in ('torch', 'numba', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


@pytest.mark.parametrize("name", ["build", "open", "build_from_codes", "Store", "BuildConfig", "SearchConfig", "SearchResult",
                                  "GraphretError", "InputError", "ParameterError", "KTooLarge", "ModeUnavailable", "StoreError"])
def test_public_names(name):
    import graphret

    assert name in graphret.__all__ and getattr(graphret, name) is not None


def test_errors_are_the_builtin_they_mean():
    """graphret's errors are ValueErrors (a value given to graphret is wrong), so callers that
    catch ValueError catch them too."""
    import graphret

    for name in ("GraphretError", "InputError", "ParameterError", "KTooLarge", "ModeUnavailable", "StoreError"):
        assert issubclass(getattr(graphret, name), ValueError), name
    assert issubclass(graphret.ParameterError, graphret.InputError) and issubclass(graphret.KTooLarge, graphret.InputError)


def _module_imports() -> dict[str, set[str]]:
    """Module -> the graphret modules it imports (at the top or inside a function)."""
    modules = {}
    for path in (ROOT / "graphret").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("graphret"):
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                # a package and its own modules import each other by design (re-exports)
                if target in modules and target != name and not (target.startswith(name + ".") or name.startswith(target + ".")):
                    edges[name].add(target)
    return edges


def test_no_import_circle_between_modules():
    """No two modules import each other, directly or through others, even inside functions (a
    circle means neither can be read, or tested, alone)."""
    edges = _module_imports()
    assert len(edges) > 100 and edges["graphret.data.medical"]  # the scan sees the package
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for target in sorted(edges[name]):
            visit(target, path + [name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])
