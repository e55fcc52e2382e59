"""The work path of ``dtctl serve``: one thread owns the work hub and does every lease and commit.

A hub is used from one thread at a time, and commits are cheapest in groups, so RPC threads never touch
the work hub: they hand jobs to the engine thread (completions, abandons, streams opening and closing);
completions are acknowledged once queued (see :meth:`Engine._queue`), the rest wait for the answer.
Each round the engine commits every queued completion in one transaction
(group commit; while many items are out it waits a few milliseconds for more, see ``LINGER_SECONDS``),
leases new work for every stream with free capacity in the same transaction, then sends the leased
items to their streams, one hand-off per stream. Between rounds it renews the leases of the items SDK
workers hold (the protocol has no renew call), keeps each stream's worker row alive, and sleeps until a
job, a hub wake-up or the next visible timer.

Completion tokens are the hub's lease tokens: a completion whose lease was lost (renewal failed, the
item expired and someone else took it) is refused by the hub's fencing, writes nothing, and the item
reappears for its new owner.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from dtctl.core.decision import Decision
from dtctl.core.history import CONTINUED_AS_NEW, TERMINAL_STATUSES, ExecutionResumed, ExecutionSuspended
from dtctl.hub.base import (
    DEFAULT_MAX_DEQUEUE,
    ActivityResult,
    ActivityWorkItem,
    EntityBatch,
    EntityWorkItem,
    OrchestrationWorkItem,
    TaskHub,
)
from dtctl.serve import convert, entitywork
from dtctl.serve.entitywork import EntityEpisode
from dtctl.serve.episode import Episode, is_suspended, new_events
from dtctl.serve.poison import Drops, Poisoned
from dtctl.serve.proto import orchestrator_service_pb2 as pb
from dtctl.serve.streams import Stream, activity_token
from dtctl.serve.tracectx import TraceContexts

log = logging.getLogger("dtctl.serve")

LEASE_BATCH = 64  # work items of one kind leased per stream per round
IDLE_POLL_SECONDS = 1.0  # the longest sleep without a wake-up (expired leases of dead workers, timers)
HEARTBEAT_SECONDS = 5.0
HISTORY_CACHE_SIZE = 4096  # instances whose converted past events are kept between episodes
# Group commit: with at least LINGER_HELD items out, a round waits up to LINGER_SECONDS for up to
# LINGER_BATCH jobs. hello-cities-3 over one SDK worker: ~0.4 rounds per instance instead of ~1, the
# engine's CPU per instance down by a quarter; an episode's latency up by at most the linger.
LINGER_SECONDS = 0.004
LINGER_HELD = 8
LINGER_BATCH = 64
# A round the hub failed (busy past its timeout, a lost connection, a full disk) wrote nothing: its
# completions are tried again this many rounds, RETRY_PAUSE apart, while their items stay held (and
# renewed); then the item is let go, so its lease lapses and it runs again.
ROUND_TRIES = 5
RETRY_PAUSE = 0.5


class Refused(Exception):
    """A completion or abandon the server cannot apply; the message says why (the SDK only logs it)."""


@dataclass(frozen=True, slots=True)
class _Complete:
    """A queued completion: nobody waits for it (see :meth:`Engine._queue`), a refusal is only logged."""

    token: str
    decision: Decision | None  # None for an activity result
    result: ActivityResult | None
    batch: EntityBatch | None = None  # an entity batch's outcome


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[], object]
    done: Future[object]


class _Poke(threading.Event):
    """The wake-up event handed to the hub's wake source: setting it wakes the engine and the waiters."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine

    def set(self) -> None:
        self._engine.poke()


@dataclass(slots=True)
class _Past:
    execution_id: str
    length: int
    events: list[pb.HistoryEvent]
    suspended: bool
    # The new events of the episode out now (by its token), in proto form: a committed episode's
    # history starts with them, so the cache reuses them instead of converting them again.
    sent: tuple[str, list[pb.HistoryEvent]] | None = None


class Engine:
    def __init__(
        self,
        hub: TaskHub,
        *,
        lease_seconds: float,
        on_change: Callable[[], None],
        max_dequeue: int = DEFAULT_MAX_DEQUEUE,
    ) -> None:
        self.hub = hub
        self.lease_seconds = lease_seconds
        self._on_change = on_change  # wakes the client RPCs waiting for an instance to change
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._streams: list[Stream] = []
        self._held: dict[str, Stream] = {}  # completion token -> the stream holding the item
        self._retrying: list[_Complete] = []  # completions of a failed round, for the next one
        self._tries: dict[str, int] = {}  # completion token -> failed rounds so far
        self._past: OrderedDict[str, _Past] = OrderedDict()
        self.trace_contexts = TraceContexts(hub)  # W3C trace context on work items (dtctl.serve.tracectx)
        self._own_batches: list[EntityBatch] = []  # leased entities with only lock traffic: settled here
        self._poisoned = Poisoned()  # leased items failed as poison, settled by the next round
        self._drops = Drops(max_dequeue)  # work held by streams that dropped (dtctl.serve.poison)
        self._stopping = threading.Event()
        self._leasing = True
        self._thread = threading.Thread(target=self._run, name="dtctl-serve-engine", daemon=True)
        self.wake = _Poke(self)
        self.episodes = 0
        self.activities = 0
        self.entity_batches = 0
        self.refused = 0
        self.poisoned = 0  # work items failed as poison (leased more than max_dequeue times)
        self.commits = 0  # group commits that carried completions
        self.leased = 0  # work items sent to streams
        self.lease_rounds = 0  # rounds that asked the hub for work
        self.cpu_seconds = 0.0  # CPU time of the engine thread so far (the rest of serve's is gRPC's)

    # --- called from RPC threads --------------------------------------------------------------------

    def start(self) -> Engine:
        self._thread.start()
        return self

    def poke(self) -> None:
        self._jobs.put(None)
        self._on_change()

    def open_stream(self, stream: Stream) -> None:
        self._call(lambda: self._opened(stream))

    def close_stream(self, stream: Stream) -> None:
        stream.close()
        if self._thread.is_alive():
            self._call(lambda: self._closed(stream))

    def episode(self, token: str) -> Episode:
        stream = self._held.get(token)
        found = stream.orchestrations.get(token) if stream is not None else None
        if found is None:
            raise Refused(f"unknown or stale completion token {token!r}: the work item is no longer held")
        return found

    def complete_orchestration(self, token: str, decision: Decision) -> None:
        self._queue(_Complete(token, decision, None))

    def complete_activity(self, token: str, result: ActivityResult) -> None:
        self._queue(_Complete(token, None, result))

    def activity(self, token: str) -> ActivityWorkItem:
        stream = self._held.get(token)
        found = stream.activities.get(token) if stream is not None else None
        if found is None:
            raise Refused(f"unknown or stale completion token {token!r}: the work item is no longer held")
        return found

    def entity_episode(self, token: str) -> EntityEpisode:
        stream = self._held.get(token)
        found = stream.entities.get(token) if stream is not None else None
        if found is None:
            raise Refused(f"unknown or stale completion token {token!r}: the work item is no longer held")
        return found

    def complete_entity(self, token: str, batch: EntityBatch) -> None:
        self._queue(_Complete(token, None, None, batch))

    def abandon(self, token: str) -> None:
        self._call(lambda: self._abandon(token))

    def stop_leasing(self) -> None:
        self._call(lambda: setattr(self, "_leasing", False))

    def held(self) -> int:
        return len(self._held)

    def streams(self) -> list[Stream]:
        return list(self._streams)

    def stop(self, timeout: float = 10.0) -> None:
        """Give back every lease still held, remove the streams' worker rows, end the thread."""
        if self._thread.is_alive():
            for stream in list(self._streams):
                self.close_stream(stream)
            self._stopping.set()
            self._jobs.put(None)
            self._thread.join(timeout)

    def _call(self, fn: Callable[[], object]) -> object:
        call = _Call(fn, Future())
        self._jobs.put(call)
        return call.done.result()

    def _queue(self, job: _Complete) -> None:
        """Queue a completion for the next group commit, without waiting for it.

        The SDK does nothing with the answer but log a failure, and a completion refused at commit
        (its lease was lost meanwhile) ends exactly like one refused now: nothing is written and the
        item runs again. So an SDK thread is not held for the fsync; the result is logged here instead.
        A token that is not held at all is refused at once.
        """
        if job.token not in self._held:
            self.refused += 1
            raise Refused(f"unknown or stale completion token {job.token!r}: the work item is no longer held")
        self._jobs.put(job)

    # --- the engine thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_housekeeping = 0.0
        timeout = 0.0
        while not self._stopping.is_set():
            jobs = self._take(timeout)
            calls = [j for j in jobs if isinstance(j, _Call)]
            completions = [*self._retrying, *(j for j in jobs if isinstance(j, _Complete))]
            self._retrying = []
            for call in calls:
                _settle(call.done, call.fn)
            try:
                leased = self._round(completions)
            except Exception:  # the hub failed: the round's transaction, and all it held, rolled back
                log.exception("serve: a commit round of %d completion(s) failed", len(completions))
                self._retry_later(completions)
                leased = 0
            if completions:
                self._on_change()
            self.cpu_seconds = time.thread_time()
            now = time.monotonic()
            if now >= next_housekeeping:
                next_housekeeping = now + min(HEARTBEAT_SECONDS, self.lease_seconds / 3)
                _settle(Future(), self._housekeeping)
            try:
                timeout = RETRY_PAUSE if self._retrying else 0.0 if leased else self._idle_timeout()
            except Exception:  # the hub is unreachable for now: keep the thread, poll again later
                log.exception("serve: cannot read the next visible time")
                timeout = IDLE_POLL_SECONDS
        self._closed_all()

    def _take(self, timeout: float) -> list[object]:
        jobs: list[object] = []
        try:
            jobs.append(self._jobs.get(timeout=timeout) if timeout > 0 else self._jobs.get_nowait())
        except queue.Empty:
            return jobs
        if len(self._held) >= LINGER_HELD:
            # Many items out: more completions are on their way; a moment's wait groups them into one
            # commit and one lease round (the fixed cost of a round is most of the engine's CPU).
            deadline = time.monotonic() + LINGER_SECONDS
            while len(jobs) < LINGER_BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(self._jobs.get(timeout=left))
                except queue.Empty:
                    break
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                return jobs

    def _round(self, completions: Sequence[_Complete]) -> int:
        """Commit the completions and lease new work in one transaction; returns the items leased."""
        episodes, activities, entities = self._sorted(completions)
        own, self._own_batches = self._own_batches, []
        failed = self._poisoned.take()
        wanted = [
            s
            for s in self._streams
            if self._leasing and (s.free_orchestrations or s.free_activities or s.free_entities)
        ]
        writes = bool(episodes or activities or entities or own or failed)
        if not (writes or wanted):
            return 0
        leases: list[tuple[Stream, list[OrchestrationWorkItem], list[ActivityWorkItem], list[EntityWorkItem]]]
        leases = []
        with self.hub.batch(durable=writes):
            decided = [(e.item, j.decision) for j, e in episodes if j.decision]
            checkpoints = self.hub.checkpoint(decided + failed.decisions)[: len(decided)]
            results = [j.result for j in activities if j.result]
            accepted = self.hub.complete_activities(results + failed.results)[: len(results)]
            batches = [j.batch for j in entities if j.batch] + own
            stored = self.hub.complete_entities(batches + failed.batches) if batches or failed.batches else []
            for item in failed.given_back:
                self.hub.abandon_entity(item)
            for stream in wanted:
                leases.append((stream, *self._lease(stream)))
        self.commits += writes
        self.poisoned += len(failed)
        self.lease_rounds += bool(wanted)
        for (job, ep), outcome in zip(episodes, checkpoints, strict=True):
            self._settled_episode(job, ep, outcome.committed, outcome.reason)
        for job, ok in zip(activities, accepted, strict=True):
            self._forget(job.token)
            self.activities += ok
            if not ok:
                self._refuse("the activity's lease was lost; its result was refused")
        self._settled_entities(entities, own, stored[: len(batches)])
        return sum(self._send(stream, o, a, e) for stream, o, a, e in leases)

    def _sorted(
        self, completions: Sequence[_Complete]
    ) -> tuple[list[tuple[_Complete, Episode]], list[_Complete], list[_Complete]]:
        """The completions of items still held, by kind; the others are refused here."""
        episodes: list[tuple[_Complete, Episode]] = []
        activities: list[_Complete] = []
        entities: list[_Complete] = []
        for job in completions:
            stream = self._held.get(job.token)
            if job.decision is not None and stream is not None and job.token in stream.orchestrations:
                episodes.append((job, stream.orchestrations[job.token]))
            elif job.result is not None and stream is not None and job.token in stream.activities:
                activities.append(job)
            elif job.batch is not None and stream is not None and job.token in stream.entities:
                entities.append(job)
            else:
                self._refuse(f"unknown or stale completion token {job.token!r}")
        return episodes, activities, entities

    def _lease(
        self, stream: Stream
    ) -> tuple[list[OrchestrationWorkItem], list[ActivityWorkItem], list[EntityWorkItem]]:
        names = stream.names
        orchestrations = self.hub.lease_orchestrations(
            stream.owner,
            names.orchestrations,
            limit=min(LEASE_BATCH, stream.free_orchestrations),
            lease_seconds=self.lease_seconds,
            versions=names.version_bounds,
        )
        tasks = self.hub.lease_activities(
            stream.owner,
            names.activities,
            limit=min(LEASE_BATCH, stream.free_activities),
            lease_seconds=self.lease_seconds,
        )
        entities = self.hub.lease_entities(
            stream.owner,
            names.entities,
            limit=min(LEASE_BATCH, stream.free_entities),
            lease_seconds=self.lease_seconds,
        )
        return orchestrations, tasks, entities

    def _settled_episode(self, job: _Complete, ep: Episode, committed: bool, reason: str | None) -> None:
        self._forget(job.token)
        item, decision = ep.item, job.decision
        assert decision is not None
        cached = self._past.pop(item.instance_id, None)
        if committed:
            self.episodes += 1
            if cached is not None and decision.status not in TERMINAL_STATUSES | {CONTINUED_AS_NEW}:
                reused: list[pb.HistoryEvent] = []
                if cached.sent is not None and cached.sent[0] == job.token:
                    reused = cached.sent[1]  # decision.new_history starts with exactly these (episode.py)
                cached.events.extend(reused)
                cached.events.extend(convert.event_to_proto(e) for e in decision.new_history[len(reused) :])
                cached.sent = None
                cached.length += len(decision.new_history)
                cached.suspended = is_suspended(cached.suspended, decision.new_history)
                self._remember(item.instance_id, cached)
        if not committed:
            self._refuse(reason or "the instance's lease was lost; the episode was refused")

    def _settled_entities(self, jobs: list[_Complete], own: list[EntityBatch], stored: list[bool]) -> None:
        for job, ok in zip(jobs, stored[: len(jobs)], strict=True):
            self._forget(job.token)
            self.entity_batches += ok
            if not ok:
                self._refuse("the entity's lease was lost; its batch was refused")
        for batch, ok in zip(own, stored[len(jobs) :], strict=True):
            self.entity_batches += ok
            if not ok:
                log.warning(
                    "serve: the lock messages of entity %s were refused: lease lost", batch.item.entity_id
                )

    def _send(
        self,
        stream: Stream,
        items: list[OrchestrationWorkItem],
        tasks: list[ActivityWorkItem],
        entities: list[EntityWorkItem],
    ) -> int:
        poisoned = len(self._poisoned)
        items = self._poisoned.sort_orchestrations(items, self._drops)
        tasks = self._poisoned.sort_activities(tasks, self._drops)
        entities = self._poisoned.sort_entities(entities, self._drops)
        poisoned = len(self._poisoned) - poisoned
        batch: list[pb.WorkItem] = []
        for item in items:
            past = self._past_of(item)
            sent = new_events(item)
            episode = Episode(item, sent, past.suspended)
            stream.orchestrations[item.lease_token] = episode
            self._held[item.lease_token] = stream
            protos = [convert.event_to_proto(e) for e in sent]
            past.sent = (item.lease_token, protos)
            request = pb.OrchestratorRequest(
                instanceId=item.instance_id,
                executionId=convert.text(item.execution_id),
                pastEvents=past.events,
                newEvents=protos,
            )
            self.trace_contexts.annotate_orchestration(request)
            batch.append(pb.WorkItem(orchestratorRequest=request, completionToken=item.lease_token))
        for task in tasks:
            token = activity_token(task)
            stream.activities[token] = task
            self._held[token] = stream
            request = pb.ActivityRequest(
                name=task.name,
                input=convert.text(task.input),
                orchestrationInstance=pb.OrchestrationInstance(
                    instanceId=task.instance_id, executionId=convert.text(task.execution_id)
                ),
                taskId=task.task_id,
            )
            self.trace_contexts.annotate_activity(request)
            batch.append(pb.WorkItem(activityRequest=request, completionToken=token))
        for entity in entities:
            planned = entitywork.plan(entity)
            if not planned.needs_sdk:  # only lock traffic: committed by the next round, never sent
                self._own_batches.append(entitywork.own_batch(planned))
                continue
            stream.entities[entity.lease_token] = planned
            self._held[entity.lease_token] = stream
            batch.append(
                pb.WorkItem(entityRequest=entitywork.request(planned), completionToken=entity.lease_token)
            )
        if batch:
            stream.send(batch)  # one hand-off to the stream's RPC thread per round, not one per item
        self.leased += len(batch)
        return len(items) + len(tasks) + len(entities) + poisoned  # poison: settled by the next round

    def _past_of(self, item: OrchestrationWorkItem) -> _Past:
        """The past events in proto form: from the cache when it saw exactly this history, else loaded."""
        cached = self._past.get(item.instance_id)
        if (
            cached is not None
            and cached.execution_id == item.execution_id
            and cached.length == item.history_length
        ):
            self._past.move_to_end(item.instance_id)
            return cached
        # A fresh execution has no past: no query (one hello-cities episode in four is a first one).
        events = self.hub.load_history(item.instance_id, item.execution_id) if item.history_length else []
        suspended = is_suspended(
            False, (e for e in events if type(e) in (ExecutionSuspended, ExecutionResumed))
        )
        past = _Past(item.execution_id, len(events), [convert.event_to_proto(e) for e in events], suspended)
        self._remember(item.instance_id, past)
        return past

    def _remember(self, instance_id: str, past: _Past) -> None:
        self._past[instance_id] = past
        while len(self._past) > HISTORY_CACHE_SIZE:
            self._past.popitem(last=False)

    def _retry_later(self, completions: list[_Complete]) -> None:
        for job in completions:
            tries = self._tries.get(job.token, 0) + 1
            if job.token not in self._held:
                continue  # its stream dropped meanwhile: the item was given back with the stream's
            if tries < ROUND_TRIES:
                self._tries[job.token] = tries
                self._retrying.append(job)
            else:
                self._refuse(f"the hub failed {tries} commit rounds; the item is let go to run again")
                self._forget(job.token)  # no longer renewed: its lease lapses and it is leased again

    def _forget(self, token: str) -> None:
        self._tries.pop(token, None)
        stream = self._held.pop(token, None)
        if stream is not None:
            stream.orchestrations.pop(token, None)
            stream.activities.pop(token, None)
            stream.entities.pop(token, None)

    def _abandon(self, token: str) -> None:
        stream = self._held.get(token)
        if stream is None:
            return  # already settled, or given back when its stream dropped
        episode = stream.orchestrations.get(token)
        task = stream.activities.get(token)
        entity = stream.entities.get(token)
        self._forget(token)
        if episode is not None:
            self._past.pop(episode.item.instance_id, None)
            self.hub.abandon_orchestration(episode.item)
        elif task is not None:
            self.hub.abandon_activity(task)
        elif entity is not None:
            self.hub.abandon_entity(entity.item)

    def _opened(self, stream: Stream) -> None:
        self._streams.append(stream)
        self.hub.heartbeat(stream.info(self.hub.now()))

    def _closed(self, stream: Stream) -> None:
        """Give back everything the stream held: its items reappear for other streams and workers."""
        if stream in self._streams:
            self._streams.remove(stream)
        for token in [*stream.orchestrations, *stream.activities, *stream.entities]:
            self._held.pop(token, None)
        self._drops.dropped(
            (e.item for e in stream.orchestrations.values()),
            stream.activities.values(),
            (e.item for e in stream.entities.values()),
        )
        for episode in stream.orchestrations.values():
            self._past.pop(episode.item.instance_id, None)
        stream.orchestrations.clear()
        stream.activities.clear()
        stream.entities.clear()
        released = self.hub.release_leases(stream.owner)
        self.hub.remove_worker(stream.owner)
        if released:
            log.info("serve: stream %s dropped; %d lease(s) given back", stream.owner, released)

    def _closed_all(self) -> None:
        for stream in list(self._streams):
            stream.close()
            _settle(Future(), lambda s=stream: self._closed(s))  # type: ignore[misc]
        while True:  # answer whatever is still queued, so no RPC thread waits forever
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Call) and not job.done.done():
                job.done.set_exception(Refused("dtctl serve is shutting down"))
            elif isinstance(job, _Complete):
                self._refuse("dtctl serve is shutting down")

    def _refuse(self, why: str) -> None:
        self.refused += 1
        log.warning("serve: a completion was not applied: %s", why)

    def _housekeeping(self) -> None:
        orchestrations = [e.item for s in self._streams for e in s.orchestrations.values()]
        tasks = [t for s in self._streams for t in s.activities.values()]
        if orchestrations or tasks:
            lost_instances, lost_tasks = self.hub.renew_leases(orchestrations, tasks, self.lease_seconds)
            if lost_instances or lost_tasks:
                log.warning(
                    "serve: leases lost for %d instance(s) and %d activity(ies); their completions will be "
                    "refused",
                    len(lost_instances),
                    len(lost_tasks),
                )
        entities = [e.item for s in self._streams for e in s.entities.values()]
        for entity_id in self.hub.renew_entity_leases(entities, self.lease_seconds) if entities else ():
            log.warning("serve: the lease of entity %s was lost; its batch will be refused", entity_id)
        now = self.hub.now()
        for stream in self._streams:
            self.hub.heartbeat(stream.info(now))

    def _idle_timeout(self) -> float:
        """Sleep until the next timer or scheduled start the streams could take (at most the poll)."""
        if not self._streams or not self._leasing:
            return IDLE_POLL_SECONDS
        # Per stream, only what it could take now (its names, its versions, a kind it has room for):
        # visible work that no stream may take (another version, a full stream) must not make the
        # engine spin; a completion that frees room wakes it anyway.
        nothing: frozenset[str] = frozenset()
        wanted = {
            (
                s.names.orchestrations if s.free_orchestrations else nothing,
                s.names.activities if s.free_activities else nothing,
                s.names.version_bounds,
            )
            for s in self._streams
        }
        found = [self.hub.next_visible_at(o, a, versions=v) for o, a, v in wanted]
        entity_names = {s.names.entities for s in self._streams if s.free_entities}
        found += [self.hub.next_visible_entity(n) for n in entity_names if n is None or n]
        dues = [d for d in found if d is not None]
        if not dues:
            return IDLE_POLL_SECONDS
        due = min(dues)
        wait = (due - self.hub.now()) / 1_000_000
        return min(IDLE_POLL_SECONDS, max(wait, 0.005))


def _settle(done: Future[object] | Future[None], fn: Callable[[], object]) -> None:
    try:
        result = fn()
    except Exception as error:
        log.debug("serve: %s", error, exc_info=True)
        done.set_exception(error)
    else:
        done.set_result(result)  # type: ignore[arg-type]
