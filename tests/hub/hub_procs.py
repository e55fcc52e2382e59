"""Functions run in spawned processes by the concurrency tests (importable by module name)."""

from __future__ import annotations

from dtctl.hub import open_hub


def lease_all_orchestrations(location: str, owner: str) -> list[str]:
    """Lease until nothing is left; the leases are long, so nothing is handed out twice."""
    hub = open_hub(location)
    leased: list[str] = []
    try:
        while batch := hub.lease_orchestrations(owner, None, limit=3, lease_seconds=600):
            leased.extend(item.instance_id for item in batch)
    finally:
        hub.close()
    return leased


def lease_all_activities(location: str, owner: str) -> list[int]:
    hub = open_hub(location)
    leased: list[int] = []
    try:
        while batch := hub.lease_activities(owner, None, limit=3, lease_seconds=600):
            leased.extend(item.id for item in batch)
    finally:
        hub.close()
    return leased
