"""The checkpoint of the PostgreSQL hub: a batch of episodes in one transaction, a SAVEPOINT per item.

The batch first locks the instance rows of all its items (``FOR UPDATE``, in instance-id order, so two
batches never deadlock on each other) and checks each item's lease token and execution; an item whose
lease is lost writes nothing. Each remaining item runs under its own SAVEPOINT: a history row that
already exists (the split-brain guard) rolls back that item alone while the rest of the batch commits.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from dtctl.core.decision import Decision
from dtctl.hub import postgres_queries as q
from dtctl.hub.base import CheckpointResult, OrchestrationWorkItem
from dtctl.hub.checkpoint_plan import DUPLICATE_HISTORY, LEASE_LOST, Owner, check_status, write_episode
from dtctl.hub.postgres_conn import constraint_of
from dtctl.hub.postgres_ops import DIALECT, Conn

ID_TAKEN = "conflict: another transaction created an instance this episode starts; it will run again"


def checkpoint_batch(
    conn: Conn, now: int, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]
) -> list[CheckpointResult]:
    for _item, decision in batch:
        check_status(decision)
    ids = sorted({item.instance_id for item, _ in batch})
    owners = {row[0]: Owner(*row[1:]) for row in conn.execute(q.SELECT_FOR_CHECKPOINT, (ids,)).fetchall()}
    return [
        _checkpoint_item(conn, now, item, decision, owners.get(item.instance_id)) for item, decision in batch
    ]


def _checkpoint_item(
    conn: Conn, now: int, item: OrchestrationWorkItem, decision: Decision, owner: Owner | None
) -> CheckpointResult:
    if owner is None or owner.lease_token != item.lease_token or owner.execution_id != item.execution_id:
        return CheckpointResult(item.instance_id, False, LEASE_LOST)
    try:
        with conn.transaction():  # a SAVEPOINT inside the batch transaction
            write_episode(DIALECT, conn, now, item, decision, owner)
    except psycopg.errors.UniqueViolation as exc:
        if constraint_of(exc) == "history_pkey":
            return CheckpointResult(item.instance_id, False, DUPLICATE_HISTORY)
        return CheckpointResult(item.instance_id, False, ID_TAKEN)
    return CheckpointResult(item.instance_id, True)
