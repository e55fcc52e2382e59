"""``dtctl dashboard``: the task hub as a local web page (the optional ``dashboard`` extra).

Importing this package loads nothing of the web stack: :func:`require_extra` checks that it is
installed and :mod:`dtctl.dashboard.server` is imported only by the command that serves pages.
:mod:`dtctl.dashboard.registry` (how ``dtctl status`` finds a running dashboard) needs no extra either.
"""

from __future__ import annotations

import importlib

from dtctl.errors import UsageError

EXTRA_MODULES = ("starlette", "jinja2", "uvicorn")
INSTALL_HINT = "pip install 'dtctl[dashboard]'"


def require_extra() -> None:
    """Raise a one-line UsageError naming the install command when the web stack is missing."""
    missing = [name for name in EXTRA_MODULES if not _importable(name)]
    if missing:
        raise UsageError(f"dtctl dashboard needs {', '.join(missing)}: {INSTALL_HINT}")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
