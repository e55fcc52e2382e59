"""Repairing instances, shared by both hubs: rewind a FAILED instance, purge an instance with its children.

A rewind is one transaction. The failed execution's history is read, its rewound copy is planned
(:func:`dtctl.core.rewind.plan_rewind`), and the instance starts a new execution whose history is that
copy, with an :class:`~dtctl.core.history.ExecutionRewound` message in its inbox; the failed
execution stays stored as the previous one. Its sub-orchestrations without a result are decided here:

- a FAILED child is rewound too (recursively), in the same transaction, and linked to the new execution;
- a live child is linked to the new execution, so its result reaches it;
- a COMPLETED child whose result the parent never recorded (it had failed first) is delivered again;
- a child that is gone (purged) or was terminated is created again by the rewound code.

Nothing here commits: the caller owns the transaction, so a crash anywhere leaves the instance as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dtctl.core.history import ExecutionRewound, SubOrchestrationCreated, decode_event
from dtctl.core.rewind import plan_rewind
from dtctl.core.status import TERMINAL, RuntimeStatus
from dtctl.errors import InstanceAlreadyExists, InvalidState
from dtctl.hub.base import ImportedInstance
from dtctl.hub.sql.dialect import C, Dialect
from dtctl.hub.sql.instances import child_outcome, new_execution_id, not_found
from dtctl.hub.sql.records import EventRow, event_row, failure_to_json

__all__ = ["RepairStatements", "import_instance", "purge_with_descendants", "rewind"]


@dataclass(frozen=True, slots=True)
class RepairStatements:
    """The statements of a rewind, from each backend's ``repair.sql``."""

    select_for_rewind: str  # (instance_id) -> status, execution_id, instance_key, execution_no, output
    select_execution_history: str  # (instance_key, execution_no) -> payload, in sequence order
    update_rewound: str  # (new execution_id, history_length, now, instance_id)
    relink_child: str  # (parent execution_id, child instance_id)
    insert_imported: str  # the instances columns of an imported instance -> instance_key


@dataclass(frozen=True, slots=True)
class _Found:
    """The row of an instance a rewind judges."""

    status: str
    execution_id: str
    instance_key: int
    execution_no: int
    output: str | None

    @classmethod
    def from_row(cls, row: Any) -> _Found:
        return cls(str(row[0]), str(row[1]), int(row[2]), int(row[3]), row[4])


@dataclass(slots=True)
class _Rewind:
    """One rewind transaction's context: what every recursive step shares."""

    d: Dialect[Any]
    conn: Any
    sql: RepairStatements
    now: int
    reason: str | None
    rewound: list[str]


def rewind(
    d: Dialect[C], conn: C, sql: RepairStatements, now: int, instance_id: str, reason: str | None, where: str
) -> list[str]:
    """Rewind the FAILED instance ``instance_id`` (and its failed children); returns the ids rewound."""
    row = conn.execute(sql.select_for_rewind, (instance_id,)).fetchone()
    if row is None:
        raise not_found(instance_id, where)
    found = _Found.from_row(row)
    if found.status != RuntimeStatus.FAILED:
        raise InvalidState(
            f"instance {instance_id!r} is {found.status}; only a FAILED instance can be rewound",
            hint="`dtctl restart ID` starts a finished instance again from the beginning",
        )
    step = _Rewind(d, conn, sql, now, reason, [])
    _rewind_one(step, instance_id, found, parent_execution=None)
    return step.rewound


def _rewind_one(step: _Rewind, instance_id: str, found: _Found, parent_execution: str | None) -> None:
    d, conn, sql = step.d, step.conn, step.sql
    rows = conn.execute(sql.select_execution_history, (found.instance_key, found.execution_no)).fetchall()
    plan = plan_rewind([decode_event(r[0]) for r in rows])
    execution = new_execution_id()
    step.rewound.append(instance_id)
    recreate: set[int] = set()
    messages: list[EventRow] = []
    for created in plan.open_children:
        if not _keep_child(step, instance_id, created, execution, messages):
            recreate.add(created.task_id)
    copy = plan.history(recreate)
    conn.execute(sql.update_rewound, (execution, len(copy), step.now, instance_id))
    conn.execute(d.sql.delete_older_history, (found.instance_key, found.execution_no))
    if copy:
        d.insert_history(conn, found.instance_key, found.execution_no + 1, 0, copy)
    conn.execute(d.sql.delete_tasks_of, (instance_id,))  # the failed execution's: their results are void
    conn.execute(d.sql.delete_other_execution_events, (instance_id, execution))
    if parent_execution is not None:
        conn.execute(sql.relink_child, (parent_execution, instance_id))
    marker = ExecutionRewound(
        timestamp=step.now, reason=step.reason, previous_execution_id=found.execution_id
    )
    d.enqueue(conn, [event_row(instance_id, execution, marker, step.now), *messages])


def _keep_child(
    step: _Rewind, parent_id: str, created: SubOrchestrationCreated, execution: str, out: list[EventRow]
) -> bool:
    """Decide an open child of a rewound execution; False: the rewound code creates it again."""
    row = step.conn.execute(step.sql.select_for_rewind, (created.instance_id,)).fetchone()
    if row is None:
        return False  # purged: create it again
    child = _Found.from_row(row)
    if child.status == RuntimeStatus.FAILED:
        _rewind_one(step, created.instance_id, child, parent_execution=execution)
        return True
    if child.status in TERMINAL and child.status != RuntimeStatus.COMPLETED:
        step.d.remove_instance(step.conn, created.instance_id)  # terminated: a fresh child in its place
        return False
    step.conn.execute(step.sql.relink_child, (execution, created.instance_id))
    if child.status == RuntimeStatus.COMPLETED:  # its result reached a parent that had already failed
        outcome = child_outcome(
            step.now, created.instance_id, created.task_id, child.status, child.output, None
        )
        out.append(event_row(parent_id, execution, outcome, step.now))
    return True


def purge_with_descendants(
    d: Dialect[C], conn: C, instance_ids: Iterable[str], *, recursive: bool
) -> list[str]:
    """These (terminal) instances and, with ``recursive``, their finished descendants: what to remove.

    A descendant that is still running is left alone (only finished instances are purged); it keeps a
    parent link to an instance that is gone, as a non-recursive purge leaves every child.
    """
    found = list(dict.fromkeys(instance_ids))
    if not recursive:
        return found
    chosen = dict.fromkeys(found)
    for instance_id in found:
        for (child_id,) in conn.execute(d.sql.select_descendants, (instance_id,)).fetchall():
            child = d.status_of(conn, child_id, "update")
            if child is not None and child.status in TERMINAL:
                chosen[child_id] = None
    return list(chosen)


def import_instance(
    d: Dialect[C], conn: C, sql: RepairStatements, case: ImportedInstance, where: str
) -> None:
    """Store an exported instance as it was: its row and every execution's history (oldest first)."""
    state = case.state
    if d.status_of(conn, state.instance_id, "update") is not None:
        raise InstanceAlreadyExists(
            f"instance {state.instance_id!r} already exists in hub {where}; an import never overwrites",
            hint="purge it first (dtctl purge ID), or import into another hub",
        )
    executions = case.executions
    current = len(executions) - 1
    previous = executions[-2][0] if len(executions) > 1 else None
    row = (
        state.instance_id,
        state.execution_id,
        current,
        previous,
        state.name,
        state.status,
        state.input,
        state.output,
        state.custom_status,
        failure_to_json(state.failure),
        state.created_at,
        state.updated_at,
        state.completed_at,
        state.scheduled_start,
        state.parent_instance_id,
        state.parent_task_id,
        len(executions[-1][1]) if executions else 0,
    )
    key = int(conn.execute(sql.insert_imported, row).fetchone()[0])
    for number, (_, events) in enumerate(executions):
        if events:
            d.insert_history(conn, key, number, 0, events)
