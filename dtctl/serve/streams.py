"""One GetWorkItems stream: an SDK worker connected through serve, with what it holds and may take.

A stream is a worker as far as the hub can tell: it has its own lease owner (``host:pid:random``, the
form ``dtctl workers`` and ``release_leases`` know), registers in the worker registry with the names
the SDK declared, and when it drops every lease it held is given back at once.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from dtctl.core.versioning import version_key
from dtctl.hub.base import NO_BOUNDS, ActivityWorkItem, VersionBounds, WorkerInfo
from dtctl.serve.entitywork import EntityEpisode
from dtctl.serve.episode import Episode
from dtctl.serve.proto import orchestrator_service_pb2 as pb

RUNTIME = "durabletask-sdk"  # WorkerInfo.extra["runtime"] of a stream (native workers have none)
_CLOSED = None


@dataclass(frozen=True, slots=True)
class Names:
    """The names a stream runs, from the SDK's work item filters; None: any name (no filters sent).

    ``versions``: the orchestration versions its filters list (the SDK lists its own version when it
    matches strictly), leased as the range of version keys from the lowest to the highest; an empty
    list on any filter means any version. Activities are not filtered by version (the hub's activity
    queue has none; an activity runs for whichever orchestration version scheduled it). Entity names
    are lower-cased, as entity ids store them.
    """

    orchestrations: frozenset[str] | None
    activities: frozenset[str] | None
    versions: frozenset[str] = frozenset()
    entities: frozenset[str] | None = None

    @classmethod
    def from_request(cls, request: pb.GetWorkItemsRequest) -> Names:
        if not request.HasField("workItemFilters"):
            return cls(None, None)
        filters = request.workItemFilters
        listed = [frozenset(f.versions) for f in filters.orchestrations]
        versions = frozenset().union(*listed) if listed and all(listed) else frozenset()
        return cls(
            frozenset(f.name for f in filters.orchestrations),
            frozenset(f.name for f in filters.activities),
            versions,
            frozenset(f.name.lower() for f in filters.entities),
        )

    @property
    def version_bounds(self) -> VersionBounds:
        if not self.versions:
            return NO_BOUNDS
        keys = sorted(version_key(v) for v in self.versions)
        return keys[0], keys[-1]


@dataclass(eq=False)
class Stream:
    names: Names
    max_orchestrations: int
    max_activities: int
    peer: str
    max_entities: int = 0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}")
    started_at: int = field(default_factory=lambda: time.time_ns() // 1000)
    orchestrations: dict[str, Episode] = field(default_factory=dict)  # by completion token
    activities: dict[str, ActivityWorkItem] = field(default_factory=dict)
    entities: dict[str, EntityEpisode] = field(default_factory=dict)
    # Batches from the engine thread, one per round; the stream's RPC thread takes them apart.
    outbox: queue.SimpleQueue[list[pb.WorkItem] | None] = field(default_factory=queue.SimpleQueue)
    closed: threading.Event = field(default_factory=threading.Event)
    _taken: deque[pb.WorkItem] = field(default_factory=deque)

    @property
    def free_orchestrations(self) -> int:
        return 0 if self.closed.is_set() else max(0, self.max_orchestrations - len(self.orchestrations))

    @property
    def free_activities(self) -> int:
        return 0 if self.closed.is_set() else max(0, self.max_activities - len(self.activities))

    @property
    def free_entities(self) -> int:
        return 0 if self.closed.is_set() else max(0, self.max_entities - len(self.entities))

    def send(self, items: list[pb.WorkItem]) -> None:
        self.outbox.put(items)

    def close(self) -> None:
        self.closed.set()
        self.outbox.put(_CLOSED)

    def next_item(self, timeout: float) -> pb.WorkItem | None:
        """The next work item; a health ping when nothing came for ``timeout`` s; None once closed."""
        if self._taken:
            return None if self.closed.is_set() else self._taken.popleft()
        try:
            items = self.outbox.get(timeout=timeout)
        except queue.Empty:
            return pb.WorkItem(healthPing=pb.HealthPing())
        if items is None:
            return None
        self._taken.extend(items)
        return self._taken.popleft()

    def info(self, now: int) -> WorkerInfo:
        return WorkerInfo(
            worker_id=self.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            heartbeat_at=now,
            orchestrations=tuple(sorted(self.names.orchestrations or ("*",))),
            activities=tuple(sorted(self.names.activities or ("*",))),
            max_orchestrations=self.max_orchestrations,
            max_activities=self.max_activities,
            inflight_orchestrations=len(self.orchestrations),
            inflight_activities=len(self.activities),
            extra={"runtime": RUNTIME, "peer": self.peer, **_versions(self.names), **_entities(self.names)},
        )


def _versions(names: Names) -> dict[str, str]:
    return {"versions": ", ".join(sorted(names.versions))} if names.versions else {}


def _entities(names: Names) -> dict[str, object]:
    return {} if names.entities == frozenset() else {"entities": sorted(names.entities or ("*",))}


def activity_token(item: ActivityWorkItem) -> str:
    # A hub hands one lease token to every row of one lease call; the row id makes it unique.
    return f"{item.lease_token}.{item.id}"
