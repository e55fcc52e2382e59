"""Prometheus metrics of one worker process (the ``metrics`` extra: prometheus-client).

Every worker process serves its own ``/metrics`` (``dtctl worker --metrics-port P``: with
``--concurrency N`` process *i* listens on ``P + i``), so each is one scrape target and its counters
are that process's own; sum them in PromQL. Processes that restart start their counters again from zero,
which ``rate()`` and ``increase()`` handle. (prometheus-client's multiprocess mode was not chosen: it
needs a shared directory cleaned between runs, files per dead process, and it makes every observation
a write to a memory-mapped file.) Hub-wide gauges are not exported here: one designated exporter
serves them (:mod:`dtctl.observe.hubmetrics`, ``dtctl metrics serve``), so many workers never count
the same queue twice.

Labels: ``kind`` is the work item kind (``orchestration``, ``activity``, ``entity``), ``name`` the
orchestration, activity or entity name (bounded by the names an app registers). An entity's work item is
one batch: the messages of one leased entity, run together and committed in one transaction; its
operations are counted on their own (``dtctl_entity_operations``, see :mod:`dtctl.observe.entityops`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from dtctl.core.history import FAILED, ExecutionStarted, TaskFailed
from dtctl.observe.accumulators import Accumulators
from dtctl.observe.entityops import operation_count, operations
from dtctl.observe.hooks import Commit, Observer, SlotGauge

if TYPE_CHECKING:
    from dtctl.core.decision import Decision
    from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem
    from dtctl.hub.entity_records import EntityBatch, EntityWorkItem

ORCHESTRATION = "orchestration"
ACTIVITY = "activity"
ENTITY = "entity"
KINDS = (ORCHESTRATION, ACTIVITY, ENTITY)
US = 1_000_000
# From a busy SQLite commit (ms) to a backlog of minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
POISON_CAUSES = ("lease_limit", "crash", "runaway")
VERDICTS = ("done", "gave_up", "crashed", "ran_away")  # dtctl.runtime.isolation.Verdict
HISTORY_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 100000)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500)  # ENTITY_BATCH_LIMIT is 500


class _Named:
    """The series of one work item name of one kind, created together once; the hooks update them with
    no look-up but the name's. (A series is shown from its first update: see ``accumulators``.)"""

    __slots__ = ("completed", "execution", "failed", "started")

    def __init__(self, metrics: WorkerMetrics, kind: str, name: str) -> None:
        self.started = metrics.started.child(kind, name)
        self.completed = metrics.completed.child(kind, name)
        self.failed = metrics.failed.child(kind, name)
        self.execution = metrics.execution.child(kind, name)


class WorkerMetrics(Observer):
    """The per-process metrics. Hooks run on the worker's main thread and update plain accumulators
    (:mod:`dtctl.observe.accumulators`) without locks: the main thread is their one writer.
    ``run_activity`` runs on the activity pool threads: it only appends (name, seconds) to a deque (an
    atomic append), and the deque is drained under the accumulators' lock, by the main thread at each
    commit and by a scrape before it reads, so the activity execution series have one writer at a time."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        acc = self._acc = Accumulators()
        self.started = acc.counter(
            "dtctl_work_items_started", "Work items leased and started.", ["kind", "name"]
        )
        self.completed = acc.counter(
            "dtctl_work_items_completed",
            "Work items whose result or checkpoint was committed, not failed.",
            ["kind", "name"],
        )
        self.failed = acc.counter(
            "dtctl_work_items_failed",
            "Work items committed as failed: task_failed, or an episode that failed its instance.",
            ["kind", "name"],
        )
        schedule_to_start = acc.histogram(
            "dtctl_schedule_to_start_seconds",
            "From visible (ready to run) to leased by this worker.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
        )
        self.execution = acc.histogram(
            "dtctl_execution_seconds",
            "Running one work item: an activity body, or an episode (replay and new events).",
            ["kind", "name"],
            buckets=LATENCY_BUCKETS,
        )
        episodes = acc.counter("dtctl_episodes", "Episodes run, by how their state was found.", ["cache"])
        replay = acc.histogram(
            "dtctl_episode_replay_seconds",
            "Episodes: time to rebuild the state and run the new events.",
            ["cache"],
            buckets=LATENCY_BUCKETS,
        )
        history = acc.histogram(
            "dtctl_history_events_loaded",
            "History events loaded for an episode that was not in the cache.",
            buckets=HISTORY_BUCKETS,
        )
        commits = acc.counter("dtctl_commits", "Transactions of the worker loop.", ["durable"])
        commit_seconds = acc.histogram(
            "dtctl_commit_seconds",
            "Duration of one commit of the worker loop (group commit).",
            ["durable"],
            buckets=LATENCY_BUCKETS,
        )
        takeovers = acc.counter(
            "dtctl_lease_takeovers",
            "Work items leased again after an earlier lease ended without completing (expired, given back).",
            ["kind"],
        )
        stale = acc.counter(
            "dtctl_stale_completions_refused",
            "Results and checkpoints refused because their lease was lost (fencing).",
            ["kind"],
        )
        self._poison = acc.counter("dtctl_poison_failures", "Work items failed as poison.", ["kind", "cause"])
        self._isolated = acc.counter(
            "dtctl_isolated_runs", "Suspects run alone, by verdict.", ["kind", "verdict"]
        )
        self._entity_operations = acc.counter(
            "dtctl_entity_operations",
            "Entity operations in committed batches, by entity name, message kind (call, signal) and "
            "status (a signal has no outcome to report: completed once its batch committed).",
            ["name", "message", "status"],
        )
        self._batch_operations = acc.histogram(
            "dtctl_entity_batch_operations",
            "Operations per entity batch run (lock and unlock messages not counted).",
            ["name"],
            buckets=BATCH_BUCKETS,
        )
        # Series whose labels are known up front are shown from the start at 0, so rates and alerts see
        # them before the first event (a series that appears only with its first increment hides it).
        # An entity's lease is not observed (it is leased with the episodes): no schedule_to_start.
        self._waited = {kind: schedule_to_start.pin(kind) for kind in (ORCHESTRATION, ACTIVITY)}
        self._takeovers = {kind: takeovers.pin(kind) for kind in KINDS}
        self._stale = {kind: stale.pin(kind) for kind in KINDS}
        for kind in KINDS:
            for cause in POISON_CAUSES:
                self._poison.pin(kind, cause)
            for verdict in VERDICTS:
                self._isolated.pin(kind, verdict)
        self._commits = {
            durable: (commits.pin(str(durable).lower()), commit_seconds.pin(str(durable).lower()))
            for durable in (True, False)
        }
        self._episodes = {cache: (episodes.pin(cache), replay.pin(cache)) for cache in ("warm", "cold")}
        self._history = history.pin()
        self._names: dict[str, dict[str, _Named]] = {kind: {} for kind in KINDS}
        self._ran: deque[tuple[str, float]] = deque()  # (activity name, seconds) from the pool threads
        acc.on_scrape(self._drain_ran)
        self.registry.register(acc)
        self._slots_in_use = Gauge(
            "dtctl_worker_slots_in_use", "Work items this worker runs now.", ["kind"], registry=self.registry
        )
        self._slots_limit = Gauge(
            "dtctl_worker_slots_limit",
            "Work items this worker runs at most.",
            ["kind"],
            registry=self.registry,
        )
        self._info = Gauge(
            "dtctl_worker_info", "1 per live worker process.", ["worker_id"], registry=self.registry
        )

    def _named(self, kind: str, name: str) -> _Named:
        """The series of ``name``, created on first use (under the lock: a scrape or drain may read)."""
        names = self._names[kind]
        found = names.get(name)
        if found is None:
            with self._acc.lock:
                found = names.get(name)
                if found is None:
                    found = names[name] = _Named(self, kind, name)
        return found

    def _drain_ran(self) -> None:
        """Under the lock: the activity executions the pool threads handed over."""
        ran, names = self._ran, self._names[ACTIVITY]
        while ran:
            name, seconds = ran.popleft()
            (names.get(name) or self._named(ACTIVITY, name)).execution.observe(seconds)

    def attach(self, worker_id: str, slots: SlotGauge, limits: tuple[int, int]) -> None:
        self._info.labels(worker_id).set(1)
        self._slots_in_use.labels(ORCHESTRATION).set_function(slots.orchestration_slots_in_use)
        self._slots_in_use.labels(ACTIVITY).set_function(slots.activity_slots_in_use)
        self._slots_limit.labels(ORCHESTRATION).set(limits[0])
        self._slots_limit.labels(ACTIVITY).set(limits[1])

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        waited, takeovers, names = (
            self._waited[ORCHESTRATION],
            self._takeovers[ORCHESTRATION],
            self._names[ORCHESTRATION],
        )
        for item in items:
            (names.get(item.name) or self._named(ORCHESTRATION, item.name)).started.value += 1
            waited.observe(max(0, now - _ready_since(item)) / US)
            if item.dequeue_count > 1:
                takeovers.value += 1

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        waited, takeovers, names = self._waited[ACTIVITY], self._takeovers[ACTIVITY], self._names[ACTIVITY]
        for item in items:
            (names.get(item.name) or self._named(ACTIVITY, item.name)).started.value += 1
            waited.observe(max(0, now - (item.visible_at or now)) / US)
            if item.dequeue_count > 1:
                takeovers.value += 1

    def episode_decided(
        self, item: OrchestrationWorkItem, decision: Decision, started_ns: int, loaded: int | None
    ) -> None:
        seconds = (time.perf_counter_ns() - started_ns) / 1e9
        episodes, replay = self._episodes["warm" if loaded is None else "cold"]
        episodes.value += 1
        replay.observe(seconds)
        (
            self._names[ORCHESTRATION].get(item.name) or self._named(ORCHESTRATION, item.name)
        ).execution.observe(seconds)
        if loaded is not None:
            self._history.observe(loaded)

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        started = time.perf_counter()
        result = call()
        self._ran.append((item.name, time.perf_counter() - started))  # a pool thread: handed over
        return result

    def run_entity(self, item: EntityWorkItem, call: Callable[[], EntityBatch]) -> EntityBatch:
        named = self._named(ENTITY, item.name)
        named.started.value += 1
        if item.dequeue_count > 1:
            self._takeovers[ENTITY].value += 1
        started = time.perf_counter()
        try:
            batch = call()
        except Exception:
            named.failed.value += 1  # a dispatcher bug: given back
            raise
        named.execution.observe(time.perf_counter() - started)
        self._batch_operations.child(item.name).observe(operation_count(batch))
        return batch

    def committed(self, commit: Commit) -> None:
        if self._ran:
            with self._acc.lock:
                self._drain_ran()
        commits, seconds = self._commits[commit.durable]
        commits.value += 1
        seconds.observe(commit.seconds)
        if commit.episodes:
            self._count_outcomes(commit)
        if commit.results:
            self._count_results(commit)
        for batch, stored in zip(commit.batches, commit.stored, strict=False):
            self._entity_committed(batch, stored)

    def _count_outcomes(self, commit: Commit) -> None:
        names, stale = self._names[ORCHESTRATION], self._stale[ORCHESTRATION]
        for (item, decision), outcome in zip(commit.episodes, commit.outcomes, strict=False):
            if not outcome.committed:
                stale.value += 1
                continue
            named = names.get(item.name) or self._named(ORCHESTRATION, item.name)
            if decision.status == FAILED:
                named.failed.value += 1
            else:
                named.completed.value += 1

    def _count_results(self, commit: Commit) -> None:
        names, stale = self._names[ACTIVITY], self._stale[ACTIVITY]
        for result, accepted in zip(commit.results, commit.accepted, strict=False):
            if not accepted:
                stale.value += 1
                continue
            named = names.get(result.item.name) or self._named(ACTIVITY, result.item.name)
            if isinstance(result.event, TaskFailed):
                named.failed.value += 1
            else:
                named.completed.value += 1

    def _entity_committed(self, batch: EntityBatch, stored: bool) -> None:
        name = batch.item.name
        if not stored:
            self._stale[ENTITY].value += 1
            return
        self._named(ENTITY, name).completed.value += 1
        for operation in operations(batch):
            status = "completed" if operation.failure is None else "failed"
            self._entity_operations.child(name, operation.message.kind.value, status).value += 1

    def poisoned(self, kind: str, name: str, cause: str) -> None:
        self._poison.child(kind, cause).value += 1

    def isolated(self, kind: str, name: str, verdict: str) -> None:
        self._isolated.child(kind, verdict).value += 1


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
