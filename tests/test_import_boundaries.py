"""The layering rules of DESIGN §3, checked on every file that exists (including files added later).

- Importing the pure core, ``dtctl``, ``dtctl.task`` or ``dtctl.testing`` loads no database driver, CLI
  library, file watcher, thread, process or event loop machinery (checked in a fresh interpreter).
- ``dtctl/core`` imports nothing from ``hub``, ``runtime``, ``cli`` or the client; ``dtctl/hub`` nothing
  from ``runtime`` or ``cli``; only ``dtctl/cli`` imports typer or rich (checked statically with ast).
"""

from __future__ import annotations

import ast
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
