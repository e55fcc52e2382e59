"""What differs between the SQLite and PostgreSQL hubs, as seen by the shared write steps.

The shared steps (:mod:`dtctl.hub.sql.instances`, :mod:`dtctl.hub.sql.checkpoint`) decide *what* to
write; a :class:`Dialect` says *how* on one backend: the text of the statements both run with the same
parameters in the same order, and the writes whose shape differs (SQLite runs ``executemany``,
PostgreSQL sends one array per column). Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from dtctl.core.history import HistoryEvent
from dtctl.hub.base import InboxMessage
from dtctl.hub.sql.records import EntityMessageRow, EventRow, InstanceStatus, TaskRow

# "" reads without a row lock; PostgreSQL takes FOR SHARE / FOR UPDATE (SQLite has one writer anyway).
RowLock = Literal["", "share", "update"]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    """What the shared steps use of a driver connection (``sqlite3`` and ``psycopg`` both have it)."""

    def execute(self, sql: str, params: Any, /) -> Cursor: ...


C = TypeVar("C", bound=Connection)
C_contra = TypeVar("C_contra", bound=Connection, contravariant=True)


@dataclass(frozen=True, slots=True)
class Statements:
    """Statements the shared steps run as they are; each takes the same parameters on both backends."""

    select_parent: str  # (instance_id) -> ParentRef
    insert_child: str  # InstanceRow; a plain INSERT (a concurrent creator fails the checkpoint item)
    select_descendants: str  # (instance_id) -> ids of every descendant
    terminate_at_once: str  # (output, completed_at, updated_at, instance_id)
    has_pending_terminate: str  # (instance_id) -> a row when an ExecutionTerminated is queued
    delete_inbox: str  # (instance_id)
    delete_timer_fired: str  # (instance_id, execution_id, task_id): a cancelled timer's timer_fired
    delete_tasks_of: str  # (instance_id)
    update_after_episode: str  # (status, custom_status, output, failure, completed_at, now, added, id)
    update_continue_as_new: str  # (new execution_id, input, custom_status, now, instance_id)
    delete_older_history: str  # (instance_key, execution_no)
    delete_other_execution_events: str  # (instance_id, execution_id to keep)
    select_pending_events: str  # (instance_id) -> EventRow-shaped rows of its inbox, oldest first


class Dialect(Protocol[C_contra]):
    """One backend's half of the shared write steps; ``conn`` is that backend's connection."""

    @property
    def sql(self) -> Statements: ...

    def status_of(self, conn: C_contra, instance_id: str, lock: RowLock = "") -> InstanceStatus | None:
        """The instance's status, execution and lease expiry, or None when there is no such instance."""
        ...

    def enqueue(self, conn: C_contra, rows: Sequence[EventRow]) -> None:
        """Add messages to inboxes (``rows`` may be empty)."""
        ...

    def remove_instance(self, conn: C_contra, instance_id: str) -> None:
        """Every trace of one instance: history (all executions), inbox, activity tasks and row."""
        ...

    def insert_history(
        self, conn: C_contra, instance_key: int, execution_no: int, first: int, events: Sequence[HistoryEvent]
    ) -> None:
        """Append ``events`` (never empty) to an execution's history from sequence number ``first``."""
        ...

    def delete_messages(self, conn: C_contra, instance_id: str, messages: Sequence[InboxMessage]) -> None:
        """Remove the messages an episode consumed (never empty)."""
        ...

    def insert_tasks(self, conn: C_contra, tasks: Sequence[TaskRow]) -> None:
        """Queue one episode's activity tasks (never empty)."""
        ...

    def send_entity_messages(self, conn: C_contra, rows: Sequence[EntityMessageRow]) -> None:
        """Create the entity rows that do not exist yet, then append ``rows`` (in order) to entity inboxes."""
        ...
