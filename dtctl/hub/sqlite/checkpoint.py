"""One checkpoint item of the SQLite hub, inside the batch transaction (rows: dtctl.hub.sql.checkpoint).

Each item runs under its own SAVEPOINT, so an item that turns out to have lost its lease (a stale
token, or a history sequence someone else already wrote: the split-brain guard) is rolled back alone
while the rest of the group commit goes through.
"""

from __future__ import annotations

import sqlite3

from dtctl.core.decision import Decision
from dtctl.hub.base import CheckpointResult, OrchestrationWorkItem
from dtctl.hub.sql.checkpoint import DUPLICATE_HISTORY, LEASE_LOST, Owner, check_status, write_episode
from dtctl.hub.sqlite import queries as q
from dtctl.hub.sqlite.ops import DIALECT


def checkpoint_item(
    conn: sqlite3.Connection, now: int, item: OrchestrationWorkItem, decision: Decision
) -> CheckpointResult:
    check_status(decision)
    row = conn.execute(q.SELECT_FOR_CHECKPOINT, (item.instance_id,)).fetchone()
    owner = None if row is None else Owner.from_row(row)
    if owner is None or not owner.holds(item):
        return CheckpointResult(item.instance_id, False, LEASE_LOST)
    conn.execute("SAVEPOINT checkpoint_item")
    try:
        write_episode(DIALECT, conn, now, item, decision, owner)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO checkpoint_item")
        conn.execute("RELEASE checkpoint_item")
        return CheckpointResult(item.instance_id, False, DUPLICATE_HISTORY)
    conn.execute("RELEASE checkpoint_item")
    return CheckpointResult(item.instance_id, True)
