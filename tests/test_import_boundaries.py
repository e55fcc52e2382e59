"""The layering rules of DESIGN §3, checked on every file that exists (including files added later).

- Importing the pure core, ``dtctl``, ``dtctl.task`` or ``dtctl.testing`` loads no database driver, CLI
  library, file watcher, thread, process or event loop machinery (checked in a fresh interpreter).
- ``dtctl/core`` imports nothing from ``hub``, ``runtime``, ``cli`` or the client; ``dtctl/hub`` nothing
  from ``runtime`` or ``cli``; only ``dtctl/cli`` imports typer or rich (checked statically with ast).
- Managing instances needs no runtime: the client never imports ``dtctl.runtime``, neither in its own
  code nor through what it imports (statically, every import, also those inside functions), and
  importing it in a fresh interpreter loads no ``dtctl.runtime`` module.
- The CLI reaches the hub only through the client (:mod:`dtctl.client`) or the admin front
  (:mod:`dtctl.admin`): a CLI module imports nothing from ``dtctl.hub`` but the records and roles of
  :mod:`dtctl.hub.base`.
- No import cycle in ``dtctl/``: the graph of every import (also inside functions and ``TYPE_CHECKING``
  blocks) is acyclic.
"""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dtctl"

FORBIDDEN_AT_IMPORT = (
    "sqlite3",
    "psycopg",
    "typer",
    "rich",
    "watchfiles",
    "multiprocessing",
    "threading",
    "asyncio",
)


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _light_modules() -> list[str]:
    core = sorted(_module_name(path) for path in (PACKAGE / "core").rglob("*.py"))
    return ["dtctl", "dtctl.task", "dtctl.testing", *core]


# -S keeps site-packages (and the .pth files some environments use to preload threading) out of the
# fresh interpreter; the light modules must not need anything from there anyway.
_PROBE = """
import importlib, json, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("module", _light_modules())
def test_light_modules_load_no_heavy_machinery(module: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONSTARTUP", None)
    probe = subprocess.run(
        [sys.executable, "-S", "-c", _PROBE, module],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout)
    heavy = sorted(name for name in loaded if name.split(".")[0] in FORBIDDEN_AT_IMPORT)
    assert heavy == [], f"importing {module} loads {heavy}"


# --- static rules -----------------------------------------------------------------------------------------


def _imports(path: Path, root: Path = REPO) -> set[str]:
    """Every module a file imports, absolute, including ``from pkg import submodule`` forms."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _files(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def _reaches(imported: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported if any(name == p or name.startswith(p + ".") for p in prefixes))


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_core_imports_nothing_from_hub_runtime_cli_or_the_client() -> None:
    bad = {
        _relative(path): hits
        for path in _files("core")
        if (hits := _reaches(_imports(path), ("dtctl.hub", "dtctl.runtime", "dtctl.cli", "dtctl.client")))
    }
    assert bad == {}


def test_hub_imports_nothing_from_runtime_or_cli() -> None:
    bad = {
        _relative(path): hits
        for path in _files("hub")
        if (hits := _reaches(_imports(path), ("dtctl.runtime", "dtctl.cli")))
    }
    assert bad == {}


def test_only_the_cli_imports_typer_or_rich() -> None:
    cli = PACKAGE / "cli"
    bad = {
        _relative(path): hits
        for path in _files()
        if cli not in path.parents and (hits := _reaches(_imports(path), ("typer", "rich")))
    }
    assert bad == {}


def test_the_static_checker_sees_relative_and_submodule_imports(tmp_path: Path) -> None:
    probe = tmp_path / "dtctl" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..hub import sqlite\nfrom dtctl import runtime\nimport rich.console\n")
    found = _imports(probe, tmp_path)
    assert {"dtctl.hub.sqlite", "dtctl.runtime", "rich.console"} <= found
    assert _reaches(found, ("dtctl.hub",)) == ["dtctl.hub", "dtctl.hub.sqlite"]


# --- the client needs no runtime ------------------------------------------------------------------------


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in _files()}


def _graph() -> dict[str, set[str]]:
    """Module -> the dtctl modules it imports (``from pkg import name`` counts as ``pkg.name`` when that
    is a module, else as ``pkg``); every import statement counts, wherever it is."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {m for m in edges if m in modules} - {name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def test_the_client_never_imports_the_runtime_statically() -> None:
    graph = _graph()
    reached = _reachable(graph, "dtctl.client")
    assert "dtctl.hub" in reached  # the walk does follow the client's imports
    assert _reaches(reached, ("dtctl.runtime",)) == []


def test_importing_the_client_loads_no_runtime_module() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONSTARTUP", None)
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, "dtctl.client"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout)
    assert "dtctl.client" in loaded
    assert [name for name in loaded if name == "dtctl.runtime" or name.startswith("dtctl.runtime.")] == []


# --- the CLI reaches the hub through the client or the admin front --------------------------------------

CLI_MAY_IMPORT_FROM_HUB = ("dtctl.hub.base",)  # the records and role protocols: vocabulary, not access


def test_the_cli_reaches_the_hub_only_through_the_client_or_the_admin_front() -> None:
    bad = {
        _relative(path): hits
        for path in _files("cli")
        if (
            hits := [
                name
                for name in _reaches(_imports(path), ("dtctl.hub",))
                if not _reaches({name}, CLI_MAY_IMPORT_FROM_HUB)
            ]
        )
    }
    assert bad == {}


# --- no import cycle -------------------------------------------------------------------------------------

# Cycles that an open issue removes (issue 11, item 1: the replay engine); each must still exist, so the
# entry goes as soon as the cycle does. Nothing may be added here.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The groups of modules that import each other, directly or not (a graph of ~100 modules: plain
    reachability per module is fast enough and easy to check)."""
    reach = {module: _reachable(graph, module) - {module} for module in graph}
    groups = {frozenset({module, *around}) for module in graph if (around := _around(reach, module))}
    return sorted(groups, key=sorted)


def _around(reach: dict[str, set[str]], module: str) -> set[str]:
    """The modules ``module`` reaches that reach it back."""
    return {other for other in reach[module] if module in reach[other]}


def test_no_import_cycle_in_dtctl() -> None:
    cycles = _cycles(_graph())
    assert [sorted(c) for c in cycles if c not in KNOWN_CYCLES] == []
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert gone == [], f"remove these fixed cycles from KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_a_cycle_and_graphlib_agrees() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())
    acyclic = {"a": {"b"}, "b": set(), "c": {"a", "b"}}
    assert _cycles(acyclic) == []
    tuple(graphlib.TopologicalSorter(acyclic).static_order())
