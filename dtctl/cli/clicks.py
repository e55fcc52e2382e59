"""The click that typer is built on: the public ``click`` package, or the copy newer typers vendor.

typer ≥ 0.29 ships its own click under ``typer._click``; the usage errors it raises and the command
tree it builds are instances of that copy's classes, not of ``click``'s. Everything in dtctl that names
click classes goes through this module, so it works with either. (``typer.Exit`` and ``typer.Abort``
are public in every version and are used directly.)
"""

from __future__ import annotations

import importlib
from types import ModuleType

import typer.core


def _click_package() -> ModuleType:
    for cls in typer.core.TyperCommand.__mro__[1:]:
        if cls.__name__ == "Command":
            return importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    return importlib.import_module("click")


click = _click_package()
ClickException: type[Exception] = importlib.import_module(f"{click.__name__}.exceptions").ClickException
