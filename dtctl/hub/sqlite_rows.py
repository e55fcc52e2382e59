"""Rows of the SQLite hub to records of :mod:`dtctl.hub.base` and back."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent, decode_event, encode_event
from dtctl.errors import UsageError
from dtctl.hub.base import ActivityWorkItem, InstanceState, WorkerInfo

# Column order shared by every instance SELECT (see ``instance_from_row``).
_INSTANCE_HEAD = (
    "instance_id, execution_id, name, status, created_at, updated_at, completed_at, scheduled_start"
)
_INSTANCE_TAIL = (
    "failure, parent_instance_id, parent_task_id, lease_owner, lease_expires, history_length,"
    " previous_execution_id"
)
INSTANCE_COLUMNS = f"{_INSTANCE_HEAD}, input, output, custom_status, {_INSTANCE_TAIL}"
INSTANCE_COLUMNS_NO_PAYLOADS = f"{_INSTANCE_HEAD}, NULL, NULL, NULL, {_INSTANCE_TAIL}"

EventRow = tuple[str, str | None, str, str | None, int | None, str, int]


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
    )


def failure_to_json(failure: FailureDetails | None) -> str | None:
    if failure is None:
        return None
    return json.dumps(failure.to_dict(), separators=(",", ":"), ensure_ascii=False)


def failure_from_json(text: str | None) -> FailureDetails | None:
    if text is None:
        return None
    return FailureDetails.from_dict(json.loads(text))


def event_row(instance_id: str, execution_id: str | None, event: HistoryEvent, visible_at: int) -> EventRow:
    """A ``new_events`` row: the event encoded whole, plus the columns people and queries filter on."""
    name = getattr(event, "name", None)
    return (
        instance_id,
        execution_id,
        event.kind,
        name if isinstance(name, str) else None,
        event.task_ref,
        encode_event(event),
        visible_at,
    )


def decode(payload: str) -> HistoryEvent:
    return decode_event(payload)


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


def worker_params(info: WorkerInfo, now: int) -> tuple[Any, ...]:
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
