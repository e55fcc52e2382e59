"""Fault points for the crash tests: ``DTCTL_FAULT=name[,name…]`` kills this process at that point.

A fault point is a named place in the worker or hub where a crash is most dangerous (between the
statements of a checkpoint, after an activity ran but before its result committed). The crash tests
set the variable in a real worker process and check that nothing is lost or duplicated. An optional
``@N`` suffix (``checkpoint.before_commit@3``) fires on the N-th time the point is reached.
"""

from __future__ import annotations

import os
import signal

_armed: dict[str, int] | None = None


def _load() -> dict[str, int]:
    armed: dict[str, int] = {}
    for spec in os.environ.get("DTCTL_FAULT", "").split(","):
        name, _, nth = spec.strip().partition("@")
        if name:
            armed[name] = int(nth) if nth.isdigit() else 1
    return armed


def fault_point(name: str) -> None:
    """SIGKILL this process if ``name`` is armed and this is the armed hit (no-op otherwise)."""
    global _armed
    if _armed is None:
        _armed = _load()
    if not _armed or name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
