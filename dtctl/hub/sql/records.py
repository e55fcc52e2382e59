"""Rows of both hubs to records of :mod:`dtctl.hub.base` and back, and the hubs' own row records.

Every row read from a hub becomes a record here, in one ``from_row`` per shape: only these functions
index a row by position. The records that go back into the hub (``EventRow``, ``TaskRow``,
``InstanceRow``) are NamedTuples, so the drivers take them as parameter tuples as they are.

Where a statement returns exactly a record's fields in order, ``from_row`` is ``tuple.__new__(cls, row)``:
the driver's tuple becomes the record without a Python-level constructor call (these run on the hot
path, once per leased message and checkpointed item).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent, decode_event, encode_event
from dtctl.errors import UsageError
from dtctl.hub.base import (
    ActivityWorkItem,
    HistoryRecord,
    InboxMessage,
    InstanceState,
    ScaleMetrics,
    TraceRecord,
    WorkerInfo,
)

# Column order shared by every instance SELECT of both hubs (see ``instance_from_row``).
_INSTANCE_HEAD = (
    "instance_id, execution_id, name, status, created_at, updated_at, completed_at, scheduled_start"
)
_INSTANCE_TAIL = (
    "failure, parent_instance_id, parent_task_id, lease_owner, lease_expires, history_length,"
    " previous_execution_id, version, tags"
)
INSTANCE_COLUMNS = f"{_INSTANCE_HEAD}, input, output, custom_status, {_INSTANCE_TAIL}"
INSTANCE_COLUMNS_NO_PAYLOADS = f"{_INSTANCE_HEAD}, NULL, NULL, NULL, {_INSTANCE_TAIL}"


class EventRow(NamedTuple):
    """A ``new_events`` row: the event encoded whole, plus the columns people and queries filter on."""

    instance_id: str
    execution_id: str | None  # None: for whichever execution is current when it is read
    kind: str
    name: str | None
    task_id: int | None
    payload: str
    visible_at: int
    trace_context: str | None = None  # the sender's traceparent (a client's raise_event)


class TaskRow(NamedTuple):
    """A new ``new_tasks`` row (an activity to run)."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    visible_at: int


class EntityMessageRow(NamedTuple):
    """A new ``entity_inbox`` row, with the name and key that create the entity row if it is new."""

    entity_id: str
    name: str
    key: str
    kind: str
    operation: str | None
    input: str | None
    sender_instance_id: str | None
    sender_execution_id: str | None
    sender_task_id: int | None
    critical_section_id: str | None
    lock_set: str | None  # JSON array
    lock_position: int
    created_at: int
    visible_at: int
    trace_context: str | None = None  # the signaller's traceparent (a client's signal_entity)


class InstanceRow(NamedTuple):
    """The ``instances`` row of a new PENDING instance."""

    instance_id: str
    execution_id: str
    name: str
    input: str | None
    created_at: int
    updated_at: int
    scheduled_start: int | None
    parent_instance_id: str | None
    parent_task_id: int | None
    parent_execution_id: str | None
    version: str | None
    version_key: str  # dtctl.core.versioning.version_key(version): what leases filter on
    tags: str | None  # JSON object


class InstanceStatus(NamedTuple):
    """What a write step judges an instance by (``SELECT_STATUS``)."""

    status: str
    execution_id: str
    lease_expires: int | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> InstanceStatus:
        return tuple.__new__(cls, row)


class ParentRef(NamedTuple):
    """Where a sub-orchestration reports how it ended (all None for a top-level instance)."""

    instance_id: str | None
    task_id: int | None
    execution_id: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ParentRef:
        return tuple.__new__(cls, row)


class MessageRow(NamedTuple):
    """An inbox message as a lease takes it (``TAKE_MESSAGES``, or the tail of a leased row)."""

    id: int
    execution_id: str | None
    kind: str
    payload: str
    dequeue_count: int
    trace_context: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> MessageRow:
        return tuple.__new__(cls, row)

    def is_for(self, execution_id: str) -> bool:
        """Untagged, or tagged with this execution (anything else belongs to an execution that is gone)."""
        return self.execution_id is None or self.execution_id == execution_id

    def sort_key(self) -> tuple[bool, int]:
        # FIFO, except that an execution's start always comes first (after continue-as-new, events
        # raised during the ending episode are older than the new execution's start).
        return (self.kind != "execution_started", self.id)

    def message(self) -> InboxMessage:
        return InboxMessage(self.id, decode_event(self.payload), self.dequeue_count, self.trace_context)


class LeasedInstance(NamedTuple):
    """What a lease returns of an instance row (SQLite's ``LEASE_INSTANCE``)."""

    execution_id: str
    name: str
    status: str
    history_length: int
    version: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LeasedInstance:
        return tuple.__new__(cls, row)


def inbox_message_from_row(row: Sequence[Any]) -> InboxMessage:
    """A row of ``SELECT_INBOX``: (id, payload, dequeue_count, trace_context)."""
    return InboxMessage(row[0], decode_event(row[1]), row[2], row[3])


def history_record_from_row(execution_id: str, row: Sequence[Any]) -> HistoryRecord:
    """A row of ``LOAD_HISTORY``: (sequence, payload)."""
    return HistoryRecord(execution_id, row[0], decode_event(row[1]))


def history_event_from_row(row: Sequence[Any]) -> HistoryEvent:
    return decode_event(row[1])


def first_from_row(row: Sequence[Any]) -> Any:
    """The one column of a single-column row (an id, a count, a time)."""
    return row[0]


def trace_record_from_row(row: Sequence[Any]) -> TraceRecord:
    instance_id, execution_id, created_at, trace_context, parent_instance_id, parent_execution_id = row
    return TraceRecord(
        instance_id=instance_id,
        execution_id=execution_id,
        created_at=int(created_at),
        trace_context=trace_context,
        parent_instance_id=parent_instance_id,
        parent_execution_id=parent_execution_id,
    )


def instance_from_row(row: Sequence[Any]) -> InstanceState:
    return InstanceState(
        instance_id=row[0],
        execution_id=row[1],
        name=row[2],
        status=row[3],
        created_at=row[4],
        updated_at=row[5],
        completed_at=row[6],
        scheduled_start=row[7],
        input=row[8],
        output=row[9],
        custom_status=row[10],
        failure=failure_from_json(row[11]),
        parent_instance_id=row[12],
        parent_task_id=row[13],
        lease_owner=row[14],
        lease_expires=row[15],
        history_length=row[16],
        previous_execution_id=row[17],
        version=row[18],
        tags=tags_from_json(row[19]),
    )


def tags_to_json(tags: dict[str, str] | None) -> str | None:
    if not tags:
        return None
    return json.dumps(tags, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def tags_from_json(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    return {str(k): str(v) for k, v in json.loads(text).items()}


def failure_to_json(failure: FailureDetails | None) -> str | None:
    if failure is None:
        return None
    return json.dumps(failure.to_dict(), separators=(",", ":"), ensure_ascii=False)


def failure_from_json(text: str | None) -> FailureDetails | None:
    if text is None:
        return None
    return FailureDetails.from_dict(json.loads(text))


def event_row(
    instance_id: str,
    execution_id: str | None,
    event: HistoryEvent,
    visible_at: int,
    trace_context: str | None = None,
) -> EventRow:
    """A ``new_events`` row: the event encoded whole, plus the columns people and queries filter on."""
    name = getattr(event, "name", None)
    return EventRow(
        instance_id,
        execution_id,
        event.kind,
        name if isinstance(name, str) else None,
        event.task_ref,
        encode_event(event),
        visible_at,
        trace_context,
    )


def activity_from_row(row: Sequence[Any]) -> ActivityWorkItem:
    return ActivityWorkItem(
        id=row[0],
        instance_id=row[1],
        execution_id=row[2],
        task_id=row[3],
        name=row[4],
        input=row[5],
        lease_token=row[6] or "",
        lease_expires=row[7] or 0,
        dequeue_count=row[8],
        lease_owner=row[9],
        visible_at=row[10],
    )


def scale_from_row(row: Sequence[Any]) -> ScaleMetrics:
    return ScaleMetrics(
        live_orchestrations=int(row[0]),
        live_activities=int(row[1]),
        leased_orchestrations=int(row[2]),
        visible_inbox_instances=int(row[3]),
        future_timers=int(row[4]),
        scheduled_activities=int(row[5]),
    )


def worker_params(info: WorkerInfo, now: int | None) -> tuple[Any, ...]:
    return (
        info.worker_id,
        info.host,
        info.pid,
        info.started_at,
        now,  # heartbeats are judged by the hub's clock, like leases
        json.dumps(list(info.orchestrations)),
        json.dumps(list(info.activities)),
        info.max_orchestrations,
        info.max_activities,
        info.inflight_orchestrations,
        info.inflight_activities,
        json.dumps(info.extra, default=str),
    )


def worker_from_row(row: Sequence[Any]) -> WorkerInfo:
    return WorkerInfo(
        worker_id=row[0],
        host=row[1],
        pid=row[2],
        started_at=row[3],
        heartbeat_at=row[4],
        orchestrations=tuple(json.loads(row[5])),
        activities=tuple(json.loads(row[6])),
        max_orchestrations=row[7],
        max_activities=row[8],
        inflight_orchestrations=row[9],
        inflight_activities=row[10],
        extra=dict(json.loads(row[11])),
    )


# --- list paging --------------------------------------------------------------------------------------


def encode_cursor(created_at: int, instance_id: str) -> str:
    raw = json.dumps([created_at, instance_id], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, instance_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise UsageError(f"invalid list cursor {cursor!r}") from None
    if not isinstance(created_at, int) or not isinstance(instance_id, str):
        raise UsageError(f"invalid list cursor {cursor!r}")
    return created_at, instance_id
