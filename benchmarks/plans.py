"""``python -m benchmarks.plans``: EXPLAIN QUERY PLAN of every hot statement of the SQLite hub.

The hot statements are the ones a worker runs for every work item (lease, checkpoint, activity
result, the idle look) and a client runs for every start. Each must find its rows through an index
(SEARCH … USING INDEX / PRIMARY KEY) or, where it reads rows in an index's order and stops at the
first ones that qualify (LIMIT), scan that order on purpose: those are listed in ``ORDERED_SCANS``
with the reason. The plans are taken on a hub holding a backlog (instances, inbox messages, activity
tasks, history), without and with ANALYZE statistics: both must hold. Prints one JSON object.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from dtctl.client import StartRequest, TaskHubClient
from dtctl.hub import open_hub
from dtctl.hub.sqlite import queries as q

# Statements run per work item or per started instance.
HOT = (
    "INSERT_INSTANCE",
    "SELECT_STATUS",
    "INSERT_EVENT",
    "PICK_INSTANCES",
    "LEASE_INSTANCE",
    "TAKE_MESSAGES",
    "DELETE_MESSAGE",
    "RELEASE_INSTANCE",
    "SELECT_FOR_CHECKPOINT",
    "INSERT_HISTORY",
    "LOAD_HISTORY",
    "UPDATE_AFTER_EPISODE",
    "DELETE_INBOX",
    "DELETE_TASKS_OF",
    "HAS_PENDING_TERMINATE",
    "INSERT_TASK",
    "LEASE_TASKS",
    "DELETE_LEASED_TASK",
    "INSERT_RESULT_IF_LIVE",
    "RENEW_TASK",
    "RENEW_INSTANCE",
    "NEXT_VISIBLE_EVENT",
    "NEXT_VISIBLE_TASK",
)

# Full scans that are deliberate: an ordered walk that stops after the first rows that qualify.
ORDERED_SCANS = {
    "LEASE_TASKS": "FIFO: walks the queue in id order and stops after LIMIT unleased, visible rows",
    "NEXT_VISIBLE_EVENT": "walks new_events_by_visible in time order; LIMIT 1 stops at the first hit",
    "NEXT_VISIBLE_TASK": "walks new_tasks_by_visible in time order; LIMIT 1 stops at the first hit",
}


def _backlog(path: Path, analyze: bool) -> None:
    """A hub with work of every kind: leased and unleased instances, messages, tasks and history."""
    hub = open_hub(str(path), create=True)
    client = TaskHubClient(hub)
    client.start_instances([StartRequest("hello_cities") for _ in range(300)])
    items = hub.lease_orchestrations("planner", None, limit=200, lease_seconds=60)
    from dtctl.core.decision import Decision, ScheduleTask
    from dtctl.core.history import OrchestratorStarted, TaskScheduled

    batch = []
    for item in items:
        at = item.leased_at
        history = (
            OrchestratorStarted(timestamp=at),
            *(m.event for m in item.messages),
            TaskScheduled(timestamp=at, task_id=0, name="say_hello", input='"Tokyo"'),
        )
        actions = (ScheduleTask(task_id=0, name="say_hello", input='"Tokyo"'),)
        batch.append((item, Decision(status="RUNNING", actions=actions, new_history=history)))
    hub.checkpoint(batch)
    hub.lease_activities("planner", None, limit=50, lease_seconds=60)
    client.close()
    if analyze:
        with sqlite3.connect(path) as db:
            db.execute("ANALYZE")


def plans(*, analyze: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dtctl-plans-") as folder:
        path = Path(folder) / "taskhub.db"
        _backlog(path, analyze)
        db = sqlite3.connect(path)
        try:
            out: dict[str, Any] = {}
            for name in HOT:
                sql = getattr(q, name)
                named = re.findall(r":(\w+)", sql)
                params: Any = dict.fromkeys(named, 0) if named else (0,) * sql.count("?")
                steps = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                scans = [step for step in steps if step.startswith("SCAN") and "json_each" not in step]
                note = ORDERED_SCANS.get(name)
                ok = not scans or note is not None
                out[name] = {"plan": steps, "ok": ok, **({"note": note} if note else {})}
            return out
        finally:
            db.close()


def main() -> int:
    report = {"without_statistics": plans(), "after_analyze": plans(analyze=True)}
    print(json.dumps(report, indent=1))
    bad = sorted({name for found in report.values() for name, entry in found.items() if not entry["ok"]})
    if bad:
        print(f"statements without an index path: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
