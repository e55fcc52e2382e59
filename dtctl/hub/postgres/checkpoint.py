"""The checkpoint of the PostgreSQL hub: a batch of episodes in one transaction, a SAVEPOINT per item.

The batch first locks the instance rows of all its items (``FOR UPDATE``, in instance-id order, so two
batches never deadlock on each other) and checks each item's lease token and execution; an item whose
lease is lost writes nothing. Each remaining item runs under its own SAVEPOINT: a history row that
already exists (the split-brain guard) rolls back that item alone while the rest of the batch commits.

Round trips: the items are first written together in pipeline mode, under one SAVEPOINT for the batch
and none per item, so the server sees them back to back without waiting on each statement (only a
read an action needs, such as a sub-orchestration's status, waits for its answer). When no statement
fails, that is exactly what the per-item SAVEPOINTs would have written. When one fails on a unique
constraint (rare: split brain, or an id created concurrently), the whole pass is rolled back to the
batch SAVEPOINT and the items run again one SAVEPOINT each, so the failing item alone is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from dtctl.core.decision import Decision
from dtctl.hub.base import CheckpointResult, OrchestrationWorkItem
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres.conn import constraint_of
from dtctl.hub.postgres.ops import DIALECT, Conn
from dtctl.hub.sql.checkpoint import DUPLICATE_HISTORY, LEASE_LOST, Owner, check_status, write_episode

SAVEPOINT = "SAVEPOINT dtctl_checkpoint"
RELEASE = "RELEASE SAVEPOINT dtctl_checkpoint"
ROLLBACK = "ROLLBACK TO SAVEPOINT dtctl_checkpoint"
ID_TAKEN = "conflict: another transaction created an instance this episode starts; it will run again"


def checkpoint_batch(
    conn: Conn, now: int, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]
) -> list[CheckpointResult]:
    for _item, decision in batch:
        check_status(decision)
    ids = sorted({item.instance_id for item, _ in batch})
    owners = dict(_owner_from_row(row) for row in conn.execute(q.SELECT_FOR_CHECKPOINT, (ids,)).fetchall())
    fenced = [(item, decision, owners.get(item.instance_id)) for item, decision in batch]
    if _write_together(conn, now, fenced):
        return [
            CheckpointResult(item.instance_id, True)
            if _holds(item, owner)
            else CheckpointResult(item.instance_id, False, LEASE_LOST)
            for item, _decision, owner in fenced
        ]
    return [_checkpoint_item(conn, now, item, decision, owner) for item, decision, owner in fenced]


def _owner_from_row(row: Sequence[Any]) -> tuple[str, Owner]:
    """A row of ``SELECT_FOR_CHECKPOINT``: the instance id, then the columns of :class:`Owner`."""
    return row[0], Owner.from_row(row[1:])


def _holds(item: OrchestrationWorkItem, owner: Owner | None) -> bool:
    return owner is not None and owner.holds(item)


def _write_together(
    conn: Conn, now: int, fenced: Sequence[tuple[OrchestrationWorkItem, Decision, Owner | None]]
) -> bool:
    """Every item that holds its lease, pipelined under one SAVEPOINT; False: rolled back, none written."""
    try:
        # The SAVEPOINT and its RELEASE travel in the pipeline too: one round trip for the whole pass
        # (the pipeline's Sync), plus one per read an action needs.
        with conn.pipeline():
            conn.execute(SAVEPOINT)
            for item, decision, owner in fenced:
                if owner is not None and _holds(item, owner):
                    write_episode(DIALECT, conn, now, item, decision, owner)
            conn.execute(RELEASE)
    except psycopg.errors.UniqueViolation:
        conn.execute(ROLLBACK)  # nothing of the pass is kept: run the items one by one
        return False
    return True


def _checkpoint_item(
    conn: Conn, now: int, item: OrchestrationWorkItem, decision: Decision, owner: Owner | None
) -> CheckpointResult:
    if owner is None or not _holds(item, owner):
        return CheckpointResult(item.instance_id, False, LEASE_LOST)
    try:
        with conn.transaction():  # a SAVEPOINT inside the batch transaction
            write_episode(DIALECT, conn, now, item, decision, owner)
    except psycopg.errors.UniqueViolation as exc:
        if constraint_of(exc) == "history_pkey":
            return CheckpointResult(item.instance_id, False, DUPLICATE_HISTORY)
        return CheckpointResult(item.instance_id, False, ID_TAKEN)
    return CheckpointResult(item.instance_id, True)
