"""Prometheus metrics of one worker process (the ``metrics`` extra: prometheus-client).

Every worker process serves its own ``/metrics`` (``dtctl worker --metrics-port P``: with
``--concurrency N`` process *i* listens on ``P + i``), so each is one scrape target and its counters
are that process's own; sum them in PromQL. Processes that restart start their counters again from zero,
which ``rate()`` and ``increase()`` handle. (prometheus-client's multiprocess mode was not chosen: it
needs a shared directory cleaned between runs, files per dead process, and it makes every observation
a write to a memory-mapped file.) Hub-wide gauges are not exported here: one designated exporter
serves them (:mod:`dtctl.observe.hubmetrics`, ``dtctl metrics serve``), so many workers never count
the same queue twice.

Labels: ``kind`` is the work item kind (``orchestration``, ``activity``; ``entity`` later), ``name``
the orchestration or activity name (bounded by the names an app registers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dtctl.core.history import FAILED, ExecutionStarted, TaskFailed
from dtctl.observe.hooks import Commit, Observer, SlotGauge

if TYPE_CHECKING:
    from dtctl.core.decision import Decision
    from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem

ORCHESTRATION = "orchestration"
ACTIVITY = "activity"
US = 1_000_000
# From a busy SQLite commit (ms) to a backlog of minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
POISON_CAUSES = ("lease_limit", "crash", "runaway")
VERDICTS = ("done", "gave_up", "crashed", "ran_away")  # dtctl.runtime.isolation.Verdict
HISTORY_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 100000)


class WorkerMetrics(Observer):
    """The per-process metrics; every hook is a few dictionary look-ups and ``inc``/``observe``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._started = Counter(
            "dtctl_work_items_started", "Work items leased and started.", ["kind", "name"], registry=r
        )
        self._completed = Counter(
            "dtctl_work_items_completed",
            "Work items whose result or checkpoint was committed, not failed.",
            ["kind", "name"],
            registry=r,
        )
        self._failed = Counter(
            "dtctl_work_items_failed",
            "Work items committed as failed: task_failed, or an episode that failed its instance.",
            ["kind", "name"],
            registry=r,
        )
        self._schedule_to_start = Histogram(
            "dtctl_schedule_to_start_seconds",
            "From visible (ready to run) to leased by this worker.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._execution = Histogram(
            "dtctl_execution_seconds",
            "Running one work item: an activity body, or an episode (replay and new events).",
            ["kind", "name"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._episodes = Counter(
            "dtctl_episodes", "Episodes run, by how their state was found.", ["cache"], registry=r
        )
        self._replay = Histogram(
            "dtctl_episode_replay_seconds",
            "Episodes: time to rebuild the state and run the new events.",
            ["cache"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._history = Histogram(
            "dtctl_history_events_loaded",
            "History events loaded for an episode that was not in the cache.",
            buckets=HISTORY_BUCKETS,
            registry=r,
        )
        self._commits = Counter("dtctl_commits", "Transactions of the worker loop.", ["durable"], registry=r)
        self._commit_seconds = Histogram(
            "dtctl_commit_seconds",
            "Duration of one commit of the worker loop (group commit).",
            ["durable"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._takeovers = Counter(
            "dtctl_lease_takeovers",
            "Work items leased again after an earlier lease ended without completing (expired, given back).",
            ["kind"],
            registry=r,
        )
        self._stale = Counter(
            "dtctl_stale_completions_refused",
            "Results and checkpoints refused because their lease was lost (fencing).",
            ["kind"],
            registry=r,
        )
        self._poison = Counter(
            "dtctl_poison_failures", "Work items failed as poison.", ["kind", "cause"], registry=r
        )
        self._isolated = Counter(
            "dtctl_isolated_runs", "Suspects run alone, by verdict.", ["kind", "verdict"], registry=r
        )
        self._slots_in_use = Gauge(
            "dtctl_worker_slots_in_use", "Work items this worker runs now.", ["kind"], registry=r
        )
        self._slots_limit = Gauge(
            "dtctl_worker_slots_limit", "Work items this worker runs at most.", ["kind"], registry=r
        )
        self._info = Gauge("dtctl_worker_info", "1 per live worker process.", ["worker_id"], registry=r)
        self._children: dict[tuple[object, ...], Callable[..., None]] = {}
        self._zero_known_series()

    def _zero_known_series(self) -> None:
        """Series whose labels are known up front start at 0, so rates and alerts see them before the
        first event (a series that appears only with its first increment hides that increment)."""
        for kind in (ORCHESTRATION, ACTIVITY):
            self._takeovers.labels(kind)
            self._stale.labels(kind)
            self._schedule_to_start.labels(kind)
            for cause in POISON_CAUSES:
                self._poison.labels(kind, cause)
            for verdict in VERDICTS:
                self._isolated.labels(kind, verdict)
        for durable in ("true", "false"):
            self._commits.labels(durable)
            self._commit_seconds.labels(durable)
        for cache in ("warm", "cold"):
            self._episodes.labels(cache)
            self._replay.labels(cache)

    def _child(self, metric: Counter | Histogram, method: str, *labels: str) -> Callable[..., None]:
        """Cached bound ``inc``/``observe`` of one label set: ``labels()`` is the slow part of a hook."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = getattr(metric.labels(*labels), method)
            self._children[key] = found
        return found

    def attach(self, worker_id: str, slots: SlotGauge, limits: tuple[int, int]) -> None:
        self._info.labels(worker_id).set(1)
        self._slots_in_use.labels(ORCHESTRATION).set_function(slots.orchestration_slots_in_use)
        self._slots_in_use.labels(ACTIVITY).set_function(slots.activity_slots_in_use)
        self._slots_limit.labels(ORCHESTRATION).set(limits[0])
        self._slots_limit.labels(ACTIVITY).set(limits[1])

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        waited = self._child(self._schedule_to_start, "observe", ORCHESTRATION)
        for item in items:
            self._child(self._started, "inc", ORCHESTRATION, item.name)()
            waited(max(0, now - _ready_since(item)) / US)
            if item.dequeue_count > 1:
                self._child(self._takeovers, "inc", ORCHESTRATION)()

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        waited = self._child(self._schedule_to_start, "observe", ACTIVITY)
        for item in items:
            self._child(self._started, "inc", ACTIVITY, item.name)()
            waited(max(0, now - (item.visible_at or now)) / US)
            if item.dequeue_count > 1:
                self._child(self._takeovers, "inc", ACTIVITY)()

    def episode_decided(
        self, item: OrchestrationWorkItem, decision: Decision, started_ns: int, loaded: int | None
    ) -> None:
        seconds = (time.perf_counter_ns() - started_ns) / 1e9
        cache = "warm" if loaded is None else "cold"
        self._child(self._episodes, "inc", cache)()
        self._child(self._replay, "observe", cache)(seconds)
        self._child(self._execution, "observe", ORCHESTRATION, item.name)(seconds)
        if loaded is not None:
            self._history.observe(loaded)

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        started = time.perf_counter()
        result = call()
        self._child(self._execution, "observe", ACTIVITY, item.name)(time.perf_counter() - started)
        return result

    def committed(self, commit: Commit) -> None:
        durable = "true" if commit.durable else "false"
        self._child(self._commits, "inc", durable)()
        self._child(self._commit_seconds, "observe", durable)(commit.seconds)
        for (item, decision), outcome in zip(commit.episodes, commit.outcomes, strict=False):
            if not outcome.committed:
                self._child(self._stale, "inc", ORCHESTRATION)()
            elif decision.status == FAILED:
                self._child(self._failed, "inc", ORCHESTRATION, item.name)()
            else:
                self._child(self._completed, "inc", ORCHESTRATION, item.name)()
        for result, accepted in zip(commit.results, commit.accepted, strict=False):
            if not accepted:
                self._child(self._stale, "inc", ACTIVITY)()
            elif isinstance(result.event, TaskFailed):
                self._child(self._failed, "inc", ACTIVITY, result.item.name)()
            else:
                self._child(self._completed, "inc", ACTIVITY, result.item.name)()

    def poisoned(self, kind: str, name: str, cause: str) -> None:
        self._child(self._poison, "inc", kind, cause)()

    def isolated(self, kind: str, name: str, verdict: str) -> None:
        self._child(self._isolated, "inc", kind, verdict)()


def _ready_since(item: OrchestrationWorkItem) -> int:
    """When the episode's earliest message became visible: its event's time (a timer's fire time, a
    scheduled start's start time), as near as the worker can tell without another read."""
    since = item.leased_at
    for message in item.messages:
        event = message.event
        at = event.timestamp
        if isinstance(event, ExecutionStarted) and event.scheduled_start:
            at = max(at, event.scheduled_start)
        since = min(since, at)
    return since


def serve(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve ``/metrics`` of ``registry`` on a daemon thread (loopback unless ``host`` says otherwise)."""
    start_http_server(port, addr=host, registry=registry)


def start_worker_metrics(host: str, port: int) -> WorkerMetrics:
    metrics = WorkerMetrics()
    serve(metrics.registry, host, port)
    return metrics
