"""Settings of one worker process, passed from the supervisor to each child as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from dtctl.core.versioning import VersioningOptions, parse_failure, parse_match
from dtctl.hub.base import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_DEQUEUE

DEFAULT_STALL_TIMEOUT = 2 * DEFAULT_LEASE_SECONDS

# Episodes of a worker run one after another; max_orchestrations is how many it leases and checkpoints
# per transaction (group commit). Bigger batches share the pages every commit rewrites: on 2 cores,
# 1,000 hello-cities-3 (FULL, `python -m benchmarks hello_cities`) went from ~940 to ~1,080 instances/s
# between 8/8 and 32/20 (orchestrations/activities) on a quiet machine, ~350 to ~540 on a busy one.
ORCHESTRATIONS_PER_CPU = 16
MAX_DEFAULT_ORCHESTRATIONS = 64
# Activity threads per worker process: ten per core, as Azure Durable Functions' defaults
# (maxConcurrentActivityFunctions); activities mostly wait on I/O.
ACTIVITIES_PER_CPU = 10
MAX_DEFAULT_ACTIVITIES = 64


# Entities leased (and committed) per step: as orchestrations, since an entity batch is an episode of
# small, in-process user code (durabletask-mssql runs entities as instances).
ENTITIES_PER_CPU = ORCHESTRATIONS_PER_CPU
MAX_DEFAULT_ENTITIES = MAX_DEFAULT_ORCHESTRATIONS


def default_max_entities() -> int:
    return min(MAX_DEFAULT_ENTITIES, ENTITIES_PER_CPU * (os.cpu_count() or 1))


def default_max_orchestrations() -> int:
    return min(MAX_DEFAULT_ORCHESTRATIONS, ORCHESTRATIONS_PER_CPU * (os.cpu_count() or 1))


def default_max_activities() -> int:
    return min(MAX_DEFAULT_ACTIVITIES, ACTIVITIES_PER_CPU * (os.cpu_count() or 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    hub: str
    app: str
    max_orchestrations: int = 0  # 0: the default from the CPU count
    max_activities: int = 0
    max_entities: int = 0
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_dequeue: int = DEFAULT_MAX_DEQUEUE
    burst: bool = False
    synchronous: str = "full"
    drain_seconds: float = 10.0
    heartbeat_seconds: float = 5.0
    idle_poll_max: float = 1.0
    # The longest an episode, or a worker's main loop, may run without coming back (a runaway is stopped
    # and, proved alone, failed as poison): twice the default lease, as a loop that has not come back for
    # two lease periods has lost every lease it held anyway; far above any legitimate step (a busy wait
    # on the SQLite lock, the replay of a 30,000-event history take seconds).
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    isolate_suspects: bool = True  # run items whose process died around them alone (``isolation``)
    progress_fd: int = -1  # the supervisor's progress pipe (set per process by the supervisor)
    # Versioning (`--version`, `--version-match`, `--version-failure`); each one set overrides the
    # app's VersioningOptions field of the same meaning.
    version: str | None = None
    version_match: str | None = None  # none | strict | current-or-older
    version_failure: str | None = None  # reject | fail

    def versioning(self, app_options: VersioningOptions | None) -> VersioningOptions | None:
        """The worker's versioning: the app's, with what the command line set instead."""
        if self.version is None and self.version_match is None and self.version_failure is None:
            return app_options
        base = app_options or VersioningOptions()
        return VersioningOptions(
            version=self.version if self.version is not None else base.version,
            default_version=base.default_version if base.default_version is not None else self.version,
            match_strategy=parse_match(self.version_match) if self.version_match else base.match_strategy,
            failure_strategy=(
                parse_failure(self.version_failure) if self.version_failure else base.failure_strategy
            ),
        )

    # Observability (dtctl.observe): /metrics on metrics_port (0: off; the supervisor gives process i
    # metrics_port + i), logs as text or one JSON object per line, at log_level.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    log_level: str = "WARNING"

    def resolved(self) -> WorkerConfig:
        return WorkerConfig(
            **{
                **asdict(self),
                "max_orchestrations": self.max_orchestrations or default_max_orchestrations(),
                "max_activities": self.max_activities or default_max_activities(),
                "max_entities": self.max_entities or default_max_entities(),
            }
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))
