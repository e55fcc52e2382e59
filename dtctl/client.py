"""TaskHubClient: start, signal, inspect and purge orchestration instances.

The client encodes every user payload (inputs, event data) before anything reaches the hub, so a
value that is not JSON fails at the call site and nothing is stored. It returns data and never prints.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from dtctl.client_entities import EntityClient, EntityDetails
from dtctl.client_purge import PurgeClient
from dtctl.client_views import (
    InboxEvent,
    PendingActivity,
    PendingSubOrchestration,
    PendingTimer,
    Span,
    Timeline,
    Unclaimed,
    WaitingFor,
    build_timeline,
    derive_waiting_for,
    replace_waiting,
    takes_version,
    with_child_status,
)
from dtctl.core import names, payload
from dtctl.core.app import function_name
from dtctl.core.history import TERMINAL_STATUSES, ContinuedAsNew, HistoryEvent
from dtctl.core.tags import check_tags, check_version
from dtctl.core.times import Time, to_micros
from dtctl.errors import InstanceNotFound, UsageError, WaitTimeout
from dtctl.hub import DEFAULT_HUB, open_hub
from dtctl.hub.base import (
    CreateOutcome,
    HistoryRecord,
    IfExists,
    ImportedInstance,
    InstancePage,
    InstanceQuery,
    InstanceState,
    NewInstance,
    ScaleMetrics,
    TaskHub,
    TerminateOutcome,
    WakeSource,
    WorkerInfo,
)
from dtctl.hub.wakeup import HintedWait
from dtctl.observe.tracecontext import current_traceparent

__all__ = [
    "EntityDetails",
    "InboxEvent",
    "PendingActivity",
    "PendingSubOrchestration",
    "PendingTimer",
    "Span",
    "StartRequest",
    "TaskHubClient",
    "Timeline",
    "Unclaimed",
    "WaitingFor",
]

HUB_ENV = "DTCTL_HUB"
_FIRST_POLL = 0.002  # seconds; doubles up to _MAX_POLL while waiting for an instance
_MAX_POLL = 0.1
HISTORY_PAGE = 1000  # events per read of a paged history: one page is what is held in memory


@dataclass(frozen=True, slots=True)
class StartRequest:
    """One instance of a batch start (:meth:`TaskHubClient.start_instances`)."""

    name: str | Callable[..., Any]
    input: Any = None
    instance_id: str | None = None
    start_at: datetime | None = None
    version: str | None = None  # the orchestration version (ctx.version); the client's default if None
    tags: Mapping[str, str] | None = None


class TaskHubClient(EntityClient, PurgeClient):
    """A client of one task hub: a hub object, a path or URL, or ``$DTCTL_HUB`` / ``./taskhub.db``."""

    def __init__(
        self,
        hub: TaskHub | str | Path | None = None,
        *,
        data_converter: payload.DataConverter | None = None,
        default_version: str | None = None,
    ) -> None:
        if hub is None:
            hub = os.environ.get(HUB_ENV) or DEFAULT_HUB
        self.hub: TaskHub = open_hub(hub) if isinstance(hub, (str, Path)) else hub
        # Encodes inputs and event data, decodes outputs: the same converter as the app's workers.
        self.data_converter = data_converter
        # The version of instances started without one (the SDK client's default_version).
        self.default_version = check_version(default_version)
        self._wake: WakeSource | None = None  # made by the first wait, kept for the next ones

    def close(self) -> None:
        """Close the hub (also one that was handed in: the client is its last user)."""
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        self.hub.close()

    def __enter__(self) -> TaskHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- starting instances -----------------------------------------------------------------------

    def start_instance(
        self,
        name_or_fn: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        if_exists: IfExists = "fail",
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Schedule a new instance; returns its id (the existing one's with ``if_exists="skip"``).

        ``version`` is the orchestration version the instance runs at (``ctx.version``; by default
        the client's ``default_version``); ``tags`` label it (``dtctl list --tag k=v``).
        """
        request = StartRequest(name_or_fn, input, instance_id, start_at, version, tags)
        return self.hub.create_instances([self._new_instance(request)], if_exists=if_exists)[0].instance_id

    def start_instances(
        self,
        requests: Sequence[StartRequest | tuple[Any, ...]],
        *,
        if_exists: IfExists = "fail",
    ) -> list[str]:
        """Schedule many instances in one transaction (all or nothing with ``fail``).

        Each request is a :class:`StartRequest` or a tuple ``(name, input[, instance_id[, start_at]])``.
        """
        instances = [self._new_instance(_as_request(r)) for r in requests]
        self.hub.create_instances(instances, if_exists=if_exists)
        return [i.instance_id for i in instances]

    def create_instance(
        self,
        name_or_fn: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        if_exists: IfExists = "fail",
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> CreateOutcome:
        """Like :meth:`start_instance`, but says whether it was created (False: skipped, it exists)."""
        new = self._new_instance(StartRequest(name_or_fn, input, instance_id, start_at, version, tags))
        return self.hub.create_instances([new], if_exists=if_exists)[0]

    def _new_instance(self, request: StartRequest) -> NewInstance:
        new = _new_instance(request, self.data_converter)
        if new.version is None and self.default_version is not None:
            return replace(new, version=self.default_version)
        return new

    # --- messages to instances --------------------------------------------------------------------

    def raise_event(self, instance_id: str, name: str, data: Any = None, *, force: bool = False) -> None:
        names.instance_ref(instance_id)
        names.task_name(name, "event name")
        encoded = payload.encode(data, what=f"the data of event {name!r}", converter=self.data_converter)
        self.hub.raise_event(instance_id, name, encoded, force=force, trace_context=current_traceparent())

    def terminate(
        self, instance_id: str, reason: str | None = None, *, recursive: bool = True
    ) -> TerminateOutcome:
        names.instance_ref(instance_id)
        return self.hub.terminate(instance_id, reason, recursive=recursive)

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        names.instance_ref(instance_id)
        self.hub.suspend(instance_id, reason)

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        names.instance_ref(instance_id)
        self.hub.resume(instance_id, reason)

    # --- reading ----------------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceState | None:
        names.instance_ref(instance_id)
        return self.hub.get_instance(instance_id, include_payloads=True)

    def get_instance_or_raise(self, instance_id: str) -> InstanceState:
        names.instance_ref(instance_id)
        state = self.hub.get_instance(instance_id, include_payloads=True)
        if state is None:
            raise _not_found(instance_id, self.hub)
        return state

    def list_instances(
        self,
        query: InstanceQuery | None = None,
        *,
        statuses: Sequence[str] = (),
        name: str | None = None,
        prefix: str | None = None,
        created_after: Time | None = None,
        created_before: Time | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_payloads: bool = False,
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> InstancePage:
        """One page of instances, newest first: pass an :class:`InstanceQuery` or the filters."""
        if query is not None:
            return self.hub.list_instances(query)
        query = InstanceQuery(
            statuses=tuple(statuses),
            name=name,
            prefix=prefix,
            created_after=to_micros(created_after),
            created_before=to_micros(created_before),
            limit=limit,
            cursor=cursor,
            include_payloads=include_payloads,
            version=version,
            tags=tuple(sorted((check_tags(tags) or {}).items())),
        )
        return self.hub.list_instances(query)

    def decode_output(self, state: InstanceState, type_hint: Any = None) -> Any:
        """The instance's result as Python data (dataclasses or the converter's types from ``type_hint``)."""
        return payload.decode(state.output, type_hint, converter=self.data_converter)

    def decode_input(self, state: InstanceState, type_hint: Any = None) -> Any:
        return payload.decode(state.input, type_hint, converter=self.data_converter)

    def decode_custom_status(self, state: InstanceState, type_hint: Any = None) -> Any:
        return payload.decode(state.custom_status, type_hint, converter=self.data_converter)

    def get_history(self, instance_id: str, execution_id: str | None = None) -> list[HistoryRecord]:
        names.instance_ref(instance_id)
        return self.hub.get_history(instance_id, execution_id)

    def scale_metrics(self) -> ScaleMetrics:
        return self.hub.scale_metrics()

    # --- workers and what they claim ------------------------------------------------------------------

    def live_workers(self, *, stale_after: float | None = None) -> list[WorkerInfo]:
        """Workers whose last heartbeat (by the hub's clock) is recent: within ``stale_after`` seconds,
        by default 30 s (3 x a longer heartbeat interval a worker reports). The rule is
        :func:`dtctl.ops.is_live`, shared with ``dtctl workers`` and ``dtctl doctor``."""
        from dtctl import ops

        return ops.live_workers(self.hub.list_workers(), self.hub.now(), stale_after)

    def unclaimed_names(
        self, orchestrations: Iterable[str] = (), activities: Iterable[str] = ()
    ) -> Unclaimed:
        """Which of these names no live worker has registered (workers only lease names they know)."""
        return _unclaimed(self.live_workers(), orchestrations, activities)

    # --- diagnosis ----------------------------------------------------------------------------------

    def waiting_for(self, instance_id: str) -> WaitingFor:
        """What the instance waits for now: the question asked about a "stuck" instance.

        Derived from the hub alone (no app code): open activities with their queue state and lease
        holder, timers with their due time, running sub-orchestrations, inbox messages not processed
        yet, external events received, and names no live worker has registered.
        """
        state = self.get_instance_or_raise(instance_id)
        now = self.hub.now()
        if state.status in TERMINAL_STATUSES:
            return WaitingFor(instance_id=instance_id, status=state.status, now=now)
        records = self.hub.get_history(instance_id, state.execution_id)
        inbox = self.hub.pending_messages(instance_id)
        queue = [t for t in self.hub.pending_activities(instance_id) if t.execution_id == state.execution_id]
        found = derive_waiting_for(state, records, inbox, queue, now)
        children = tuple(
            with_child_status(child, self.hub.get_instance(child.instance_id, include_payloads=False))
            for child in found.sub_orchestrations
        )
        workers = self.live_workers()
        unclaimed = _unclaimed(
            workers, [state.name], [a.name for a in found.activities if a.state == "queued"]
        )
        if not unclaimed.orchestrations:
            # Registered somewhere: does any of those workers take this version?
            runners = [w for w in workers if state.name in w.orchestrations]
            if runners and not any(takes_version(w, state.version) for w in runners):
                unclaimed = replace(unclaimed, version_refused=True, version=state.version)
        requests = tuple(self._with_lock_holders(r) for r in found.entity_requests)
        return replace_waiting(
            found, sub_orchestrations=children, unclaimed=unclaimed, entity_requests=requests
        )

    def timeline(self, instance_id: str, execution_id: str | None = None) -> Timeline:
        """The execution as bars from scheduled to completed: where the time went."""
        state = self.get_instance_or_raise(instance_id)
        records = self.get_history_or_raise(instance_id, execution_id)
        return build_timeline(state, records, self.hub.now())

    def get_history_or_raise(self, instance_id: str, execution_id: str | None = None) -> list[HistoryRecord]:
        """:meth:`get_history`, but an execution id that is not stored raises InstanceNotFound."""
        state = self.get_instance_or_raise(instance_id)
        records = self.hub.get_history(instance_id, execution_id)
        if execution_id is not None and execution_id != state.execution_id and not records:
            raise self._no_execution(instance_id, execution_id)
        return records

    def _no_execution(self, instance_id: str, execution_id: str) -> InstanceNotFound:
        return InstanceNotFound(
            f"instance {instance_id!r} has no stored execution {execution_id!r} in hub {self.hub.url}",
            hint="the current execution and the one before it are kept; "
            "`dtctl status ID` shows the current execution id",
        )

    def iter_history(
        self,
        instance_id: str,
        execution_id: str | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
        page_size: int = HISTORY_PAGE,
    ) -> Iterator[HistoryRecord]:
        """The history read page by page (events after sequence ``after``, at most ``limit``), so a
        caller can print each page as it arrives and memory stays one page however long it is.

        Checks the instance and the execution first (InstanceNotFound before anything is yielded), then
        pins the execution: a continue-as-new while paging cannot mix two executions.
        """
        if (limit is not None and limit < 0) or (after is not None and after < -1):
            raise UsageError("--limit must be at least 0 and --after at least -1")
        state = self.get_instance_or_raise(instance_id)
        execution = execution_id or state.execution_id
        if execution != state.execution_id and not self.hub.get_history(instance_id, execution, limit=1):
            raise self._no_execution(instance_id, execution)
        return self._pages(instance_id, execution, after, limit, max(1, page_size))

    def _pages(
        self, instance_id: str, execution: str, after: int | None, limit: int | None, page_size: int
    ) -> Iterator[HistoryRecord]:
        last = -1 if after is None else after
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page = self.hub.get_history(instance_id, execution, after=last, limit=size)
            yield from page
            if len(page) < size:
                return
            last = page[-1].sequence
            left = None if left is None else left - len(page)

    def follow_history(
        self,
        instance_id: str,
        execution_id: str | None = None,
        *,
        poll_seconds: float = 1.0,
        after: int | None = None,
    ) -> Generator[HistoryRecord, None, None]:
        """Yield the history, then each new event as it is committed, until the instance finishes.

        Follows continue-as-new into the new execution (unless ``execution_id`` pins one); ``after``
        skips the first execution's events up to that sequence. Each poll reads only the new events.
        The hub's wake source wakes the loop early; polling every ``poll_seconds`` is the guarantee.
        """
        first = self.get_instance_or_raise(instance_id)
        current = execution_id or first.execution_id
        pinned = execution_id is not None
        last = -1 if after is None else after  # the last sequence yielded in the current execution
        ended: HistoryEvent | None = None
        waiting = HintedWait(self.hub.wake_source())
        try:
            while True:
                waiting.source.before_look()
                state = self.hub.get_instance(instance_id, include_payloads=False)
                if state is None:
                    return  # purged (or replaced and purged) while followed
                # The state is read before the history: if it says the execution ended, the history
                # read next holds every event of it.
                records = self.hub.get_history(instance_id, current, after=last)
                yield from records
                if records:
                    last = records[-1].sequence
                    ended = records[-1].event
                if state.execution_id != current:
                    if pinned:
                        return  # an earlier execution: complete
                    if not records:
                        tail = self.hub.get_history(instance_id, current, after=last - 1, limit=1)
                        ended = tail[-1].event if tail and last >= 0 else None
                    follow = ended.new_execution_id if isinstance(ended, ContinuedAsNew) else None
                    current, last = follow or state.execution_id, -1
                    continue
                if state.status in TERMINAL_STATUSES:
                    return
                waiting.wait(poll_seconds)
        finally:
            waiting.source.close()

    def wait_for_completion(self, instance_id: str, timeout: float | None = None) -> InstanceState:
        """Wait until the instance is COMPLETED, FAILED or TERMINATED; returns its final state.

        Wakes on the hub's wake source (a commit to the hub: inotify, NOTIFY), looks again shortly after
        (a hint can come before the commit is visible), and polls with backoff as the guarantee.
        Raises :class:`InstanceNotFound` if it does not exist, :class:`WaitTimeout` after ``timeout`` s.
        """
        names.instance_ref(instance_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._wake is None:
            self._wake = self.hub.wake_source()
        waiting = HintedWait(self._wake)
        delay = _FIRST_POLL
        while True:
            self._wake.before_look()
            state = self.hub.get_instance(instance_id, include_payloads=True)
            if state is None:
                raise _not_found(instance_id, self.hub)
            if state.status in TERMINAL_STATUSES:
                return state
            pause = delay
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(
                        f"instance {instance_id!r} is still {state.status} after {timeout:g} s",
                        hint="is a worker running on this hub? (dtctl worker APP)",
                    )
                pause = min(delay, left)
            delay = _FIRST_POLL if waiting.wait(pause) else min(delay * 2, _MAX_POLL)

    # --- repairing instances --------------------------------------------------------------------------

    def rewind(self, instance_id: str, reason: str | None = None) -> list[str]:
        """Run a FAILED instance again from where it failed (see ``dtctl.core.rewind``): its failed
        activities and sub-orchestrations run again, recursively, and what succeeded is kept. Returns the
        ids rewound (the instance first, then its failed sub-orchestrations). One transaction; a worker
        carries it on. Raises InvalidState (exit 4) when the instance is not FAILED."""
        names.instance_ref(instance_id)
        return self.hub.rewind(instance_id, reason)

    def restart(self, instance_id: str, new_instance_id: bool = False) -> str:
        """Start a finished instance again as a fresh execution: the same name, input and version, with
        the same id (replacing it) or a new one. Returns the id started. Raises InvalidState (exit 4)
        when the instance has not finished."""
        from dtctl import repair

        return repair.restart(self.hub, instance_id, new_instance_id=new_instance_id)

    def export_case(self, instance_id: str) -> Iterator[str]:
        """The instance as a case file (``dtctl.casefile``), in text chunks written as they are read."""
        from dtctl import casefile

        names.instance_ref(instance_id)
        return casefile.export_chunks(self.hub, instance_id)

    def import_case(self, case: ImportedInstance | str | Path) -> str:
        """Store an exported instance (a case file's path, or one read) in this hub; returns its id.
        Refuses an id the hub has already (InstanceAlreadyExists, exit 4)."""
        from dtctl import casefile

        found = case if isinstance(case, ImportedInstance) else casefile.read_case(case)
        self.hub.import_instance(found)
        return found.state.instance_id


def _unclaimed(
    workers: Sequence[WorkerInfo], orchestrations: Iterable[str], activities: Iterable[str]
) -> Unclaimed:
    known_orchestrations = {n for w in workers for n in w.orchestrations}
    known_activities = {n for w in workers for n in w.activities}
    return Unclaimed(
        orchestrations=tuple(n for n in dict.fromkeys(orchestrations) if n not in known_orchestrations),
        activities=tuple(n for n in dict.fromkeys(activities) if n not in known_activities),
        live_workers=len(workers),
    )


def _not_found(instance_id: str, hub: TaskHub) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {hub.url}")


def _as_request(item: StartRequest | tuple[Any, ...]) -> StartRequest:
    if isinstance(item, StartRequest):
        return item
    if not 1 <= len(item) <= 6:
        raise TypeError(
            "a start request tuple is (name, input[, instance_id[, start_at[, version[, tags]]]])"
        )
    return StartRequest(*item)


def _new_instance(request: StartRequest, converter: payload.DataConverter | None = None) -> NewInstance:
    name = names.task_name(function_name(request.name), "orchestration name")
    if request.instance_id is not None:
        names.new_instance_id(request.instance_id)
    return NewInstance(
        instance_id=request.instance_id or uuid.uuid4().hex,
        name=name,
        input=payload.encode(request.input, what=f"the input of {name!r}", converter=converter),
        start_at=to_micros(request.start_at),
        version=check_version(request.version),
        tags=check_tags(request.tags),
        trace_context=current_traceparent(),
    )
