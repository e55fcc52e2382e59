"""Stand-ins for the durabletask SDK's ``worker``, ``client`` and ``testing`` modules over a real dtctl
hub, so the SDK's entity end-to-end tests run with their imports changed.

``create_test_backend(port)`` makes a fresh SQLite hub for that port; ``worker.TaskHubGrpcWorker`` runs a
real dtctl :class:`~dtctl.runtime.worker.Worker` loop in a thread of the test process (so the SDK tests'
``nonlocal`` flags work) on that hub; ``client.TaskHubGrpcClient`` is a :class:`~dtctl.client.TaskHubClient`
with the SDK's method names and result shapes. Nothing here goes over gRPC: that is ``dtctl serve``.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

_HUBS: dict[str, Path] = {}


def find_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_for(host_address: str | None) -> Path:
    port = (host_address or "").rsplit(":", 1)[-1]
    try:
        return _HUBS[port]
    except KeyError:
        raise RuntimeError(
            f"no test backend on {host_address!r}: call create_test_backend(port=...)"
        ) from None


def register(port: int) -> Path:
    from dtctl.hub import open_hub

    path = Path(tempfile.mkdtemp(prefix="dtctl-sdk-")) / "hub.db"
    open_hub(str(path), create=True).close()
    _HUBS[str(port)] = path
    return path


def forget(port: int) -> None:
    _HUBS.pop(str(port), None)
