"""Finding the user's App from ``module:attribute`` or ``path/to/file.py:attribute``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from dtctl.core.app import App
from dtctl.errors import AppLoadError


def load_app(spec: str) -> App:
    """Import the app named by ``spec``; every failure is an AppLoadError with the cause in one line."""
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise AppLoadError(
            f"app {spec!r} is not of the form module:attribute or path/to/file.py:attribute",
            hint="for example: dtctl worker samples/hello_cities.py:app",
        )
    module = _import_target(target)
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module {module.__name__!r} has no attribute {attribute!r}") from None
    if not isinstance(app, App):
        raise AppLoadError(
            f"{spec!r} is a {type(app).__name__}, not a dtctl App",
            hint="create it with `app = dtctl.App()` and register functions with @app.orchestrator",
        )
    return app


def _import_target(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target or "\\" in target:
        return _import_file(Path(target))
    return _import_module(target)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise AppLoadError(f"no such app file: {path}")
    # Import under its own module name with its folder on sys.path, so a worker process and the
    # functions it registers see the same module the user wrote (relative imports keep working).
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return _import_module(path.stem)


def _import_module(name: str) -> ModuleType:
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
            raise AppLoadError(f"no module named {name!r} (is it on PYTHONPATH?)") from None
        raise AppLoadError(f"importing {name!r} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise AppLoadError(f"importing {name!r} failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    """``file:line: Kind: message`` of where the user's code failed (importlib's frames are noise)."""
    if isinstance(exc, SyntaxError):
        # The error is about the file being compiled, not a frame: it carries its own place.
        where = f"{exc.filename}:{exc.lineno}: " if exc.filename and exc.lineno else ""
        return f"{where}{type(exc).__name__}: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen ")]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
