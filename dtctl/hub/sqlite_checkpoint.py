"""One checkpoint item of the SQLite hub, inside the batch transaction (rows: dtctl.hub.checkpoint_plan).

Each item runs under its own SAVEPOINT, so an item that turns out to have lost its lease (a stale
token, or a history sequence someone else already wrote: the split-brain guard) is rolled back alone
while the rest of the group commit goes through.
"""

from __future__ import annotations

import sqlite3

from dtctl.core.decision import Decision
from dtctl.hub import sqlite_queries as q
from dtctl.hub.base import CheckpointResult, OrchestrationWorkItem
from dtctl.hub.checkpoint_plan import DUPLICATE_HISTORY, LEASE_LOST, Owner, check_status, write_episode
from dtctl.hub.sqlite_ops import DIALECT


def checkpoint_item(
    conn: sqlite3.Connection, now: int, item: OrchestrationWorkItem, decision: Decision
) -> CheckpointResult:
    check_status(decision)
    row = conn.execute(q.SELECT_FOR_CHECKPOINT, (item.instance_id,)).fetchone()
    if row is None or row[0] != item.lease_token or row[1] != item.execution_id:
        return CheckpointResult(item.instance_id, False, LEASE_LOST)
    owner = Owner(*row)
    conn.execute("SAVEPOINT checkpoint_item")
    try:
        write_episode(DIALECT, conn, now, item, decision, owner)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO checkpoint_item")
        conn.execute("RELEASE checkpoint_item")
        return CheckpointResult(item.instance_id, False, DUPLICATE_HISTORY)
    conn.execute("RELEASE checkpoint_item")
    return CheckpointResult(item.instance_id, True)
