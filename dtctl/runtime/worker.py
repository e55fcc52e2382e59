"""One worker process: lease work, run it, commit it; drain on SIGTERM/SIGINT.

The main thread owns the hub connection and does every read and write; activity threads only compute
and hand results back through a queue. One loop iteration is a *step* of at most two transactions
(``TaskHub.batch``, group commit): the first commits the finished activity results and leases
activities for the free slots and orchestrations; the leased orchestrations' episodes run; the second
checkpoints all of them together with the results that finished meanwhile, and (in the run loop) leases
the activities they scheduled, so a chain of activities stays on the worker that caches its instance.
A result is acknowledged only after the commit that stores it; a transaction that only leases does not
wait for stable storage (``batch(durable=False)``: a lease lost to a power failure is a lease expired).
When its last lease found nothing, a step with nothing to commit first asks the hub with a read
(``next_visible_at``) whether anything can be leased, so idle workers do not take the write lock to
find nothing. An idle worker sleeps until a hint (hub file changed, activity done), the earliest
visible time of waiting work (timers), or its backoff poll.

Run as ``python -m dtctl.runtime.worker CONFIG_JSON`` or ``… -`` with the JSON on stdin (the supervisor
does the latter for each process, so the hub URL stays out of `ps`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from dtctl.core.app import App
from dtctl.core.decision import Decision
from dtctl.core.failure import FailureDetails
from dtctl.core.versioning import VersionFailureStrategy, lease_bounds, version_failure
from dtctl.errors import DtctlError, ExitCode
from dtctl.faults import fault_point
from dtctl.hub.base import (
    ActivityResult,
    ActivityWorkItem,
    CheckpointResult,
    EntityBatch,
    EntityWorkItem,
    OrchestrationWorkItem,
    TaskHub,
    WakeSource,
    WorkerInfo,
)
from dtctl.hub.wakeup.event import EventWake
from dtctl.observe import NOOP, Commit, Observer, build_observer
from dtctl.observe.logs import configure_logging, item_extra
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.dispatcher import (
    ActivityPool,
    EpisodeRunner,
    failed_decision,
    leased_too_often,
    poison_decision,
    poison_result,
)
from dtctl.runtime.entities import EntityRunner, poison_batch
from dtctl.runtime.isolation import (
    UNJUDGED_LEASE_FACTOR,
    IsolatedOutcome,
    Isolator,
    Verdict,
    crash_poison_message,
    describe,
    is_suspect,
    item_key,
    kind_of,
    runaway_poison_message,
)
from dtctl.runtime.loader import load_app
from dtctl.runtime.patience import TRANSIENT_HUB_ERRORS, Outage, open_hub_patiently
from dtctl.runtime.watchdog import Watchdog
from dtctl.runtime.worker_process import exit_now, give_leases_back, serve

log = logging.getLogger("dtctl.worker")

BUSY_POLL = 0.002
# After a wake-up the worker looks again at its wake source's trailing delays (a hint can come before
# the commit is visible), then polls with backoff from BUSY_POLL * 2**HINTED_ROUNDS.
HINTED_ROUNDS = 1


def _monotonic() -> float:
    return time.monotonic()


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        app: App,
        hub: TaskHub,
        *,
        worker_id: str | None = None,
        progress: Callable[[str | None], None] | None = None,
        observer: Observer = NOOP,
    ) -> None:
        self.config = config.resolved()
        self.app = app
        self.hub = hub
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # Woken by finished activities and stop requests; run() swaps in the hub's source, which hints too.
        self._wake: WakeSource = EventWake()
        self._stopping = threading.Event()
        self._results: queue.SimpleQueue[ActivityResult] = queue.SimpleQueue()
        self._versioning = self.config.versioning(app.versioning)
        self._version_bounds = lease_bounds(self._versioning)
        default_version = self._versioning.default_version if self._versioning else None
        self._episodes = EpisodeRunner(app, hub, default_version=default_version)
        self._observe = observer
        self._pool = ActivityPool(app, self.config.max_activities, self._activity_done, observer)
        self._orchestration_names = tuple(app.orchestrators)
        self._activity_names = tuple(app.activities)
        self._entity_names = tuple(app.entities)  # lower-cased, as entity ids store them
        self._entities = EntityRunner(app, hub, self.worker_id, self.config)
        self._entities.observer = observer
        self._started_at = hub.now()
        self._next_heartbeat = 0.0
        self._next_renewal = 0.0
        self._next_due: int | None = None  # when the last look found work becoming visible (hub clock)
        self._look_first = True  # the last lease found nothing: ask next_visible_at before leasing again
        self._trailing = len(self._wake.trailing_looks())  # the next trailing look after a wake-up
        self._batch = hub.batch
        self.episodes_run = 0
        self.activities_run = 0
        # Suspects (leased before, never completed) run in child processes of their own.
        self._outcomes: queue.SimpleQueue[IsolatedOutcome] = queue.SimpleQueue()
        self._isolated_crashes: dict[tuple[str, int], int] = {}
        self._poisoned_batches: list[EntityBatch] = []  # suspect entities' poison, for the next commit
        self._isolator = (
            Isolator(self.config, self._isolated_done, at_once=2 * (os.cpu_count() or 1))
            if self.config.isolate_suspects
            else None
        )
        self._progress = progress or _no_progress
        self._running_orchestrations = 0
        observer.attach(self.worker_id, self, (self.config.max_orchestrations, self.config.max_activities))
        self._outage = Outage(self._progress, self._pause)  # transient hub faults: waited out in place

    # --- control ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def has_inflight_activities(self) -> bool:
        return bool(self._pool.inflight()) or not self._results.empty() or self._isolated_busy()

    def _isolated_busy(self) -> bool:
        return (self._isolator is not None and self._isolator.busy()) or not self._outcomes.empty()

    def wait_for_activity(self, timeout: float) -> None:
        """Block until an activity finishes (or ``timeout``): for callers that step the loop themselves."""
        if self._results.empty():
            self._wake.wait(timeout)
        self._wake.clear()

    def activity_slots_in_use(self) -> int:
        isolated = len(self._isolator.activities()) if self._isolator is not None else 0
        return len(self._pool.inflight()) + isolated

    def orchestration_slots_in_use(self) -> int:
        isolated = len(self._isolator.orchestrations()) if self._isolator is not None else 0
        return self._running_orchestrations + isolated

    def _activity_done(self, result: ActivityResult) -> None:
        self._results.put(result)
        self._wake.set()

    def _isolated_done(self, outcome: IsolatedOutcome) -> None:
        self._outcomes.put(outcome)
        self._wake.set()

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        self._wake = self.hub.wake_source()
        try:
            self._loop()
            self._drain()
        finally:
            self._pool.shutdown()
            self._wake.close()
            self._observe.close()
            log.info(
                "worker %s ran %d episodes (%d from the cache, %d loaded history) and %d activities",
                self.worker_id,
                self.episodes_run,
                self._episodes.warm,
                self._episodes.loaded,
                self.activities_run,
            )
        return ExitCode.OK

    def _loop(self) -> None:
        idle_rounds = 0
        while not self._stopping.is_set():
            try:
                self._housekeeping()
                if self._step(follow_up=True):
                    idle_rounds = 0
                elif self.config.burst and self._drained():
                    return
                else:
                    idle_rounds += 1
                    if self._wait(idle_rounds):
                        idle_rounds = min(idle_rounds, HINTED_ROUNDS)
                self._outage.over()
            except TRANSIENT_HUB_ERRORS as exc:
                self._outage.ride_out(exc)

    # --- transient hub faults (``patience``): leases are kept, renewed when the hub answers again ------

    def _pause(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _keep_leases(self, results: list[ActivityResult]) -> None:
        """Between tries of a commit: renew leases (those of results in hand too) and heartbeat, if the
        hub lets us; the next try of the commit waits again if not."""
        with contextlib.suppress(*TRANSIENT_HUB_ERRORS):
            if results:
                self.hub.renew_leases([], [r.item for r in results], self.config.lease_seconds)
            self._housekeeping()

    def step(self) -> bool:
        """One round of work (at most two transactions); True when anything was done."""
        return self._step(follow_up=False)

    def _step(self, *, follow_up: bool) -> bool:
        """``follow_up``: the checkpoint's transaction also leases activities for the free slots."""
        self._next_due = None
        poisoned = self._settle_isolated()
        has_results = not self._results.empty() or bool(self._poisoned_batches)
        leasing = not self._stopping.is_set()
        # Look before leasing only when the last lease found nothing: a busy worker goes straight on.
        if not (poisoned or has_results) and not (leasing and (not self._look_first or self._work_visible())):
            return False
        done = self._commit(poisoned, lease_activities=leasing, lease_orchestrations=leasing)
        self._look_first = not (done.activities or done.orchestrations or done.entities)
        self._run_leased(done.orchestrations, done.entities, follow_up=follow_up)
        return bool(poisoned or done.results or done.activities or done.orchestrations or done.entities)

    def _work_visible(self) -> bool:
        """Whether a lease would find something now: one read, no write lock. Remembers the next due time."""
        self._wake.before_look()  # changes before this look are in its answer: only later ones wake us
        activities = self._activity_names if self._pool.free_slots > 0 else ()
        due = self.hub.next_visible_at(self._orchestration_names, activities, versions=self._version_bounds)
        if self._entity_names:
            entity_due = self.hub.next_visible_entity(self._entity_names)
            if entity_due is not None and (due is None or entity_due < due):
                due = entity_due
        if due is not None and due <= self.hub.now():
            return True
        self._next_due = due
        return False

    def _wait(self, idle_rounds: int) -> bool:
        """Sleep until a hint, a finished activity, work due to become visible, or the backoff poll.

        Returns whether something woke it before the timeout.
        """
        timeout = min(self.config.idle_poll_max, BUSY_POLL * (2 ** min(idle_rounds, 12)))
        if self._pool.inflight():
            timeout = min(timeout, 0.05)
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, (self._next_due - self.hub.now()) / 1_000_000))
        looks = self._wake.trailing_looks()
        if self._trailing < len(looks):
            timeout = min(timeout, looks[self._trailing])
            self._trailing += 1
        woken = self._wake.wait(timeout)
        self._wake.clear()
        if woken:
            self._trailing = 0
        return woken

    def _drained(self) -> bool:
        return not self._pool.inflight() and self._results.empty() and not self._isolated_busy()

    # --- activities ------------------------------------------------------------------------------------

    def _take_results(self) -> list[ActivityResult]:
        results: list[ActivityResult] = []
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                return results

    def _settle_results(self, results: list[ActivityResult], accepted: list[bool]) -> None:
        """After the commit: a refused result (lost lease) is only reported; nothing was written for it."""
        for result, ok in zip(results, accepted, strict=True):
            if not ok:
                log.warning(
                    "result of activity %s (instance %s, task %d) was refused: its lease was lost",
                    result.item.name,
                    result.item.instance_id,
                    result.item.task_id,
                    extra=item_extra(result.item.instance_id, result.item.name, result.item.task_id),
                )
        self.activities_run += len(results)

    def _lease_activities(self) -> list[ActivityWorkItem]:
        free = self._pool.free_slots - (len(self._isolator.activities()) if self._isolator else 0)
        if free <= 0 or not self._activity_names:
            return []
        return self.hub.lease_activities(
            self.worker_id, self._activity_names, limit=free, lease_seconds=self.config.lease_seconds
        )

    def _start_activities(self, items: list[ActivityWorkItem]) -> None:
        """After the lease committed: run them (a poisoned one fails instead)."""
        if not items:
            return
        fault_point("activity.leased")
        for item in items:
            if self._leased_too_often(item):
                message = leased_too_often("activity", item.name, item.dequeue_count, self._lease_limit)
                self._observe.poisoned("activity", item.name, "lease_limit")
                self._results.put(poison_result(item, message))
            elif self._isolator is not None and is_suspect(item):
                self._isolator.submit(item)
            else:
                self._pool.submit(item)

    def _leased_too_often(self, item: ActivityWorkItem | OrchestrationWorkItem) -> bool:
        """The backstop when no isolated run reached a verdict: its worker kept dying around it."""
        return item.dequeue_count > self._lease_limit

    @property
    def _lease_limit(self) -> int:
        # With isolation, a lease that ends without a verdict is mostly not the item's doing (its worker
        # was killed while the item ran alone, its child could not reach the hub): allow more of them.
        factor = UNJUDGED_LEASE_FACTOR if self._isolator is not None else 1
        return self.config.max_dequeue * factor

    # --- orchestrations ----------------------------------------------------------------------------------

    def _lease_orchestrations(self) -> list[OrchestrationWorkItem]:
        if not self._orchestration_names:
            return []
        return self.hub.lease_orchestrations(
            self.worker_id,
            self._orchestration_names,
            limit=self.config.max_orchestrations,
            lease_seconds=self.config.lease_seconds,
            versions=self._version_bounds,
        )

    def _run_leased(
        self, items: list[OrchestrationWorkItem], entities: list[EntityWorkItem], *, follow_up: bool
    ) -> None:
        """Run the episodes of leased instances; checkpoint them all in one transaction.

        The results of activities that finished meanwhile join that transaction, and with
        ``follow_up`` it leases activities for the free slots: most likely the ones these episodes
        just scheduled, so their results come back to this worker, which has the instances cached.
        """
        entities = self._isolate_suspect_entities(entities)
        batches = self._entities.run_all(entities, lease_limit=self._lease_limit, progress=self._progress)
        if not items and not batches:
            return
        if items:
            fault_point("orchestration.leased")
        episodes: list[tuple[OrchestrationWorkItem, Decision]] = []
        self._running_orchestrations = len(items)
        for item in items:
            mismatch = version_failure(self._versioning, item.version)
            if mismatch is not None:
                self._refuse_version(item, mismatch, episodes)
                continue
            if self._isolator is not None and is_suspect(item) and not self._leased_too_often(item):
                self._episodes.forget(item.instance_id)  # the child's checkpoint moves its history on
                self._isolator.submit(item)
                continue
            self._progress(f"orchestrator {item.name!r}, instance {item.instance_id!r}")
            decision = self._decide(item)
            if decision is not None:
                episodes.append((item, decision))
        if not episodes and not batches:
            self._running_orchestrations = 0
            return
        fault_point("entity.ran" if batches else "episode.before_checkpoint")
        if batches and episodes:
            fault_point("episode.before_checkpoint")
        self._commit(episodes, batches, lease_activities=follow_up and not self._stopping.is_set())
        self._running_orchestrations = 0
        self.episodes_run += len(episodes)

    def _refuse_version(
        self,
        item: OrchestrationWorkItem,
        mismatch: FailureDetails,
        episodes: list[tuple[OrchestrationWorkItem, Decision]],
    ) -> None:
        """An instance at a version this worker must not run. With the fail strategy it was leased to be
        failed; with reject only a race gets here (the lease filters those versions out): give it back."""
        self._episodes.forget(item.instance_id)
        if self._versioning is not None and self._versioning.failure is VersionFailureStrategy.FAIL:
            log.warning("failing instance %s: %s", item.instance_id, mismatch.message)
            episodes.append((item, failed_decision(item, mismatch)))
        else:
            self.hub.abandon_orchestration(item)

    # --- the commit path ----------------------------------------------------------------------------------

    def _commit(
        self,
        episodes: Sequence[tuple[OrchestrationWorkItem, Decision]],
        batches: Sequence[EntityBatch] = (),
        *,
        lease_activities: bool,
        lease_orchestrations: bool = False,
    ) -> _Committed:
        """The one transaction every step ends with, and what follows it once it has committed.

        Checkpoints ``episodes``, stores the activity results that finished meanwhile and leases new
        work, all in one group commit; only after the block has exited are its answers acted on
        (refused results reported, the episode cache updated, leased activities started). A
        transaction that only leases need not wait for stable storage.
        """
        results = self._take_results()
        if self._poisoned_batches:
            batches, self._poisoned_batches = [*batches, *self._poisoned_batches], []
        if not (episodes or batches or results or lease_activities or lease_orchestrations):
            return _Committed([], [], [], [])  # no transaction for nothing (a drain with no results)
        if results:
            fault_point("activity.ran")
        durable = bool(episodes or batches or results)
        started = time.perf_counter()
        leases = {"lease_activities": lease_activities, "lease_orchestrations": lease_orchestrations}
        done = self._transact(episodes, batches, results, **leases)
        seconds = time.perf_counter() - started
        answered = (done.outcomes, results, done.accepted, batches, done.stored)
        commit = Commit(seconds, durable, episodes, *answered)
        self._observe.committed(commit)
        self._observe_leased(done.activities, done.orchestrations)
        for batch, ok in zip(batches, done.stored, strict=True):
            if not ok:
                log.warning("batch of entity %s refused: its lease was lost", batch.item.entity_id)
        outcomes, accepted, activities, orchestrations, entities = done[:5]
        for outcome in outcomes:
            self._episodes.settled(outcome.instance_id, outcome.committed)
            if not outcome.committed:
                log.warning("checkpoint of %s refused: %s", outcome.instance_id, outcome.reason)
        self._settle_results(results, accepted)
        self._start_activities(activities)
        return _Committed(results, activities, orchestrations, entities)

    def _observe_leased(
        self, activities: list[ActivityWorkItem], orchestrations: list[OrchestrationWorkItem]
    ) -> None:
        if activities or orchestrations:
            now = self.hub.now()
            if activities:
                self._observe.activities_leased(activities, now)
            if orchestrations:
                self._observe.orchestrations_leased(orchestrations, now)

    def _transact(
        self,
        episodes: Sequence[tuple[OrchestrationWorkItem, Decision]],
        batches: Sequence[EntityBatch],
        results: list[ActivityResult],
        *,
        lease_activities: bool,
        lease_orchestrations: bool,
    ) -> _Transacted:
        """The commit's one transaction. Decided episodes, entity batches and finished results are not
        dropped on a transient hub fault: nothing of the failed try was kept, so the same transaction is
        tried again in place until the hub takes it (a lease that expired meanwhile is refused, as
        always). Results that finish meanwhile join it (``results`` grows), and the leases of every
        result in hand are renewed between tries: otherwise the try that finally succeeds could lease
        those very tasks again, their leases having run out while their results waited."""
        while True:
            leasing = not self._stopping.is_set()
            try:
                with self._batch(durable=bool(episodes or batches or results)):
                    outcomes = self.hub.checkpoint(episodes) if episodes else []
                    stored = self.hub.complete_entities(batches) if batches else []
                    accepted = self.hub.complete_activities(results) if results else []
                    activities = self._lease_activities() if lease_activities and leasing else []
                    leases_more = lease_orchestrations and leasing
                    orchestrations = self._lease_orchestrations() if leases_more else []
                    entities = self._entities.lease() if leases_more else []
                self._outage.over()
                return _Transacted(outcomes, accepted, activities, orchestrations, entities, stored)
            except TRANSIENT_HUB_ERRORS as exc:
                if not (episodes or batches or results):
                    raise  # it only leased: nothing to keep; the loop waits
                self._outage.ride_out(exc)
                results.extend(self._take_results())
                self._keep_leases(results)

    def _decide(self, item: OrchestrationWorkItem) -> Decision | None:
        if self._leased_too_often(item):
            count, limit = item.dequeue_count, self._lease_limit
            self._observe.poisoned("orchestration", item.name, "lease_limit")
            return poison_decision(item, leased_too_often("orchestrator", item.name, count, limit))
        try:
            started = time.perf_counter_ns()
            decision = self._episodes.decide(item)
            self._observe.episode_decided(item, decision, started, self._episodes.last_loaded)
            return decision
        except Exception:
            # An infrastructure error (or a bug) must never write a partial history: give the item
            # back; the dequeue count turns a repeating failure into a poison failure.
            log.exception(
                "episode of %s failed; abandoning the work item",
                item.instance_id,
                extra=item_extra(item.instance_id, item.name),
            )
            self._episodes.forget(item.instance_id)
            try:
                self.hub.abandon_orchestration(item)
            except TRANSIENT_HUB_ERRORS as exc:
                log.warning("could not give %s back (%s); its lease expires", item.instance_id, exc.message)
            return None

    # --- suspects, run in isolation ----------------------------------------------------------------------

    def _isolate_suspect_entities(self, items: list[EntityWorkItem]) -> list[EntityWorkItem]:
        """Hands suspect entities to the isolator, one per child; returns the ones to run here (the
        backstop's poison is decided here too)."""
        if self._isolator is None:
            return items
        here: list[EntityWorkItem] = []
        for item in items:
            if is_suspect(item) and item.dequeue_count <= self._lease_limit:
                self._isolator.submit(item)
            else:
                here.append(item)
        return here

    def _settle_isolated(self) -> list[tuple[OrchestrationWorkItem, Decision]]:
        """Act on the isolated runs that ended: poisoned activities join the results, poisoned episodes
        are returned for the next checkpoint, a crash below the limit runs the item alone again."""
        poisoned: list[tuple[OrchestrationWorkItem, Decision]] = []
        while True:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return poisoned
            message = self._judge(outcome)
            if message is None:
                continue
            item = outcome.item
            if isinstance(item, EntityWorkItem):
                self._poison_entity(item, message)
                continue
            log.error("%s", message, extra=item_extra(item.instance_id, item.name))
            if isinstance(item, ActivityWorkItem):
                self._results.put(poison_result(item, message))
            else:
                poisoned.append((item, poison_decision(item, message)))

    def _judge(self, outcome: IsolatedOutcome) -> str | None:
        """The poison reason this outcome earns its item, or None (settled, given back, or retried)."""
        item = outcome.item
        kind = kind_of(item)
        self._observe.isolated(kind, item.name, outcome.verdict.value)
        key = item_key(item)
        if outcome.verdict is Verdict.DONE:
            self._isolated_crashes.pop(key, None)
            self._count_run(item)
            return None
        if outcome.verdict is Verdict.GAVE_UP:
            self._isolated_crashes.pop(key, None)
            log.warning("isolated run of %s gave up (%s); giving it back", describe(item), outcome.detail)
            self._abandon(item)
            return None
        if outcome.verdict is Verdict.RAN_AWAY:
            self._isolated_crashes.pop(key, None)
            self._observe.poisoned(kind, item.name, "runaway")
            return runaway_poison_message(item, outcome.detail)
        crashes = self._isolated_crashes.pop(key, 0) + 1
        if crashes >= self.config.max_dequeue:
            self._observe.poisoned(kind, item.name, "crash")
            return crash_poison_message(item, crashes, outcome.detail)
        if self._stopping.is_set():
            return None  # the drain gives it back; the next worker starts counting again
        self._isolated_crashes[key] = crashes
        log.warning(
            "%s crashed its isolated process (%s); running it alone again",
            describe(item),
            outcome.detail,
        )
        assert self._isolator is not None
        self._isolator.submit(item)
        return None

    def _poison_entity(self, item: EntityWorkItem, message: str) -> None:
        """The suspect's one operation is consumed as poison by the next commit (its lease is held)."""
        batch = poison_batch(item, message)
        if batch is None:  # no operation at its head: nothing of the user's to blame
            self._abandon(item)
        else:
            self._poisoned_batches.append(batch)

    def _count_run(self, item: ActivityWorkItem | OrchestrationWorkItem | EntityWorkItem) -> None:
        if isinstance(item, ActivityWorkItem):
            self.activities_run += 1
        elif isinstance(item, OrchestrationWorkItem):
            self.episodes_run += 1

    def _abandon(self, item: ActivityWorkItem | OrchestrationWorkItem | EntityWorkItem) -> None:
        if isinstance(item, ActivityWorkItem):
            self.hub.abandon_activity(item)
        elif isinstance(item, EntityWorkItem):
            self.hub.abandon_entity(item)
        else:
            self.hub.abandon_orchestration(item)

    # --- housekeeping ------------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Renew leases and heartbeat when due; after a transient hub error, again at the next call."""
        self._progress(None)
        now = _monotonic()
        if now >= self._next_renewal:
            self._renew_leases()
            self._next_renewal = now + self.config.lease_seconds / 3
        if now >= self._next_heartbeat:
            self.hub.heartbeat(self.info())
            self._next_heartbeat = now + self.config.heartbeat_seconds

    def _renew_leases(self) -> None:
        inflight = self._pool.inflight()
        episodes: list[OrchestrationWorkItem] = []
        if self._isolator is not None:  # the children run under this worker's leases
            inflight += self._isolator.activities()
            episodes = self._isolator.orchestrations()
        if inflight or episodes:
            lost_instances, lost = self.hub.renew_leases(episodes, inflight, self.config.lease_seconds)
            for task_id in lost:
                log.warning("lease of activity task %s was lost; its result will be refused", task_id)
            for instance_id in lost_instances:
                log.warning("lease of instance %s was lost; its checkpoint will be refused", instance_id)
        entities = self._isolator.entities() if self._isolator is not None else []
        for entity_id in self.hub.renew_entity_leases(entities, self.config.lease_seconds):
            log.warning("lease of entity %s was lost; its batch will be refused", entity_id)

    def info(self) -> WorkerInfo:
        inflight = len(self._pool.inflight())
        return WorkerInfo(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=self.hub.now(),
            orchestrations=self._orchestration_names,
            activities=self._activity_names,
            max_orchestrations=self.config.max_orchestrations,
            max_activities=self.config.max_activities,
            inflight_activities=inflight,
            extra=self._registry_extra(),
        )

    def _registry_extra(self) -> dict[str, object]:
        """What the heartbeat reports beyond names and limits: versioning, entities."""
        extra: dict[str, object] = dict(self._versioning.describe()) if self._versioning is not None else {}
        if self._entity_names:
            extra |= {"entities": list(self._entity_names), "max_entities": self.config.max_entities}
        return extra

    def _drain(self) -> None:
        """Finish in-flight activities within the grace period, then give every lease back at once."""
        deadline = _monotonic() + self.config.drain_seconds
        while (self._pool.inflight() or self._isolated_busy()) and _monotonic() < deadline:
            self._progress(None)
            self._wake.wait(0.05)
            self._wake.clear()
            self._commit(self._settle_isolated(), lease_activities=False)
        if self._isolator is not None:
            self._isolator.stop()  # what is still running in isolation is given back with the rest
        self._commit(self._settle_isolated(), lease_activities=False)
        while True:  # through a transient fault until it works or the watchdog's grace is over
            try:
                released = self.hub.release_leases(self.worker_id)
                self.hub.remove_worker(self.worker_id)
                break
            except TRANSIENT_HUB_ERRORS as exc:
                self._outage.ride_out(exc)
        if released:
            log.info("released %d leases", released)


class _Transacted(NamedTuple):
    """What the commit's transaction answered."""

    outcomes: list[CheckpointResult]
    accepted: list[bool]
    activities: list[ActivityWorkItem]
    orchestrations: list[OrchestrationWorkItem]
    entities: list[EntityWorkItem]
    stored: list[bool]  # per entity batch: committed (its lease still held)


@dataclass(frozen=True, slots=True)
class _Committed:
    """What one commit stored and leased."""

    results: list[ActivityResult]
    activities: list[ActivityWorkItem]
    orchestrations: list[OrchestrationWorkItem]
    entities: list[EntityWorkItem]


def _no_progress(_doing: str | None) -> None:
    pass


# --- process entry point -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dtctl.runtime.worker CONFIG_JSON|-", file=sys.stderr)
        return ExitCode.USAGE
    # "-": the config comes on stdin, so a hub URL with a password never shows in `ps`.
    config = WorkerConfig.from_json(sys.stdin.read() if args[0] == "-" else args[0])
    configure_logging(config.log_format, os.environ.get("DTCTL_LOG_LEVEL", config.log_level))
    holder: list[Worker] = []
    watchdog = Watchdog(
        stall_timeout=config.stall_timeout,
        grace=config.drain_seconds,
        give_up=lambda: give_leases_back(config, holder[0].worker_id),
        progress_fd=config.progress_fd if config.progress_fd >= 0 else None,
    )
    try:
        app = load_app(config.app)
        hub = open_hub_patiently(config, watchdog.beat)
    except DtctlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    try:
        observer = build_observer(config, hub)
        holder.append(Worker(config, app, hub, progress=watchdog.beat, observer=observer))
    except DtctlError as exc:
        hub.close()
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return serve(config, holder[0], watchdog, hub)


if __name__ == "__main__":
    exit_now(main())
