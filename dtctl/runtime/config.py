"""Settings of one worker process, passed from the supervisor to each child as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from dtctl.hub.base import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_DEQUEUE


def default_max_orchestrations() -> int:
    return 4 * (os.cpu_count() or 1)


def default_max_activities() -> int:
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    hub: str
    app: str
    max_orchestrations: int = 0  # 0: the default from the CPU count
    max_activities: int = 0
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_dequeue: int = DEFAULT_MAX_DEQUEUE
    burst: bool = False
    synchronous: str = "full"
    drain_seconds: float = 10.0
    heartbeat_seconds: float = 5.0
    idle_poll_max: float = 1.0

    def resolved(self) -> WorkerConfig:
        return WorkerConfig(
            **{
                **asdict(self),
                "max_orchestrations": self.max_orchestrations or default_max_orchestrations(),
                "max_activities": self.max_activities or default_max_activities(),
            }
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))
