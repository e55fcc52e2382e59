"""How ``dtctl status`` and ``dtctl list`` find a dashboard running on the same hub.

A running dashboard writes a small JSON file (its base URL, host and pid): next to a SQLite hub file
(``taskhub.db.dashboard.json``: everyone who can open the hub finds it), and for a hub with no file (a
PostgreSQL URL) under the user's cache directory, named after a hash of the hub URL without its
password. A file left by a dashboard that died is ignored (its pid is gone on this host). No web
library is imported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

SUFFIX = ".dashboard.json"
URL_ENV = "DTCTL_DASHBOARD_URL"


def registration_path(watch_path: Path | None, hub_url: str) -> Path:
    """Where the dashboard of this hub registers: beside its file, or in the user's cache."""
    if watch_path is not None:
        return watch_path.with_name(watch_path.name + SUFFIX)
    from dtctl.hub import redact

    digest = hashlib.sha256(redact(hub_url).encode("utf-8")).hexdigest()[:20]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dtctl" / "dashboards" / f"{digest}{SUFFIX}"


def register(path: Path, base_url: str) -> None:
    """Write the registration atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": base_url, "host": socket.gethostname(), "pid": os.getpid()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    temporary.replace(path)


def unregister(path: Path) -> None:
    """Remove the registration if it is still this process's (a newer dashboard may have replaced it)."""
    record = _read(path)
    if record is not None and record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        with contextlib.suppress(OSError):
            path.unlink()


def running_dashboard(path: Path) -> str | None:
    """The base URL of the dashboard registered at ``path``, if it is still running."""
    record = _read(path)
    if record is None or not isinstance(record.get("url"), str):
        return None
    if record.get("host") == socket.gethostname() and not _alive(record.get("pid")):
        return None
    return str(record["url"]).rstrip("/")


def instance_url(base: str, instance_id: str) -> str:
    return f"{base.rstrip('/')}/instances/{quote(instance_id, safe='')}"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
