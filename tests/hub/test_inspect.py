"""The scale formula and the HubInspector reads on hand-built hub states (every backend), and the SQLite
hub's own storage checks and backup.

The inspector tests build states with the stepped clock, so every count and latency is exact.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Protocol, cast

import pytest

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.core.failure import FailureDetails
from dtctl.core.history import COMPLETED, FAILED, TaskCompleted, TaskFailed
from dtctl.errors import UsageError
from dtctl.hub import open_hub
from dtctl.hub.base import (
    ActivityResult,
    HubInspector,
    TaskHub,
    WorkerInfo,
)
from dtctl.hub.sql.inspect import LATENCY_SAMPLES, RETENTION_US, percentile
from dtctl.hub.sqlite import SqliteTaskHub
from dtctl.hub.sqlite import conn as sqlite_conn
from dtctl.hub.sqlite.inspect import check_sqlite_version
from dtctl.scale import recommend
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import decide, lease, start, step

S = 1_000_000


def workers_needed(hub: TaskHub, n: int = 8, m: int = 8) -> int:
    return recommend(hub.scale_metrics(), n, m).recommended_workers


# --- the formula on hand-built hub states (every backend) -------------------------------------------------


def test_idle_hub_needs_no_worker(hub: TaskHub, clock: StepClock) -> None:
    assert workers_needed(hub) == 0
    start(hub, "done")
    step(hub, "done", COMPLETED)  # finished instances leave nothing behind
    assert workers_needed(hub) == 0


def test_forty_new_instances_need_five_workers_of_eight(hub: TaskHub) -> None:
    start(hub, *[f"i{n}" for n in range(40)])
    rec = recommend(hub.scale_metrics(), 8, 8)
    assert (rec.live_orchestrations, rec.orchestration_workers, rec.recommended_workers) == (40, 5, 5)
    start(hub, "i40")
    assert workers_needed(hub) == 6  # ceil, not round


def test_instance_with_k_events_and_m_tasks_counts_once_and_m_times(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=n, name="act") for n in range(5)])  # m = 5
    for n in range(3):
        hub.raise_event("a", f"e{n}", None)  # k = 3
    rec = recommend(hub.scale_metrics(), 1, 2)
    assert (rec.live_orchestrations, rec.live_activities) == (1, 5)
    assert rec.recommended_workers == 1 + 3  # ceil(1/1) + ceil(5/2)
    hub.lease_activities("w", None, limit=2, lease_seconds=30)  # leased tasks are still live
    assert recommend(hub.scale_metrics(), 1, 2).recommended_workers == 4


def test_future_timers_scheduled_starts_and_backed_off_tasks_do_not_count(
    hub: TaskHub, clock: StepClock
) -> None:
    start(hub, "timer")
    step(hub, "timer", actions=[CreateTimer(task_id=0, fire_at=clock() + 60 * S)])
    start(hub, "later", start_at=clock() + 60 * S)
    start(hub, "retry")
    step(hub, "retry", actions=[ScheduleTask(task_id=0, name="act")])
    [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
    hub.abandon_activity(task)
    assert workers_needed(hub, 1, 1) == 0
    clock.advance(61)  # the timer fires, the start is due, the task is visible again
    rec = recommend(hub.scale_metrics(), 1, 1)
    assert (rec.live_orchestrations, rec.live_activities, rec.recommended_workers) == (2, 1, 3)


def test_leased_instances_count_once(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "busy", "waiting")
    lease(hub, "busy")
    hub.raise_event("busy", "e", None)  # leased and with a visible event: one instance
    rec = recommend(hub.scale_metrics(), 1, 1)
    assert (rec.live_orchestrations, rec.metrics.leased_orchestrations, rec.recommended_workers) == (2, 1, 2)


def test_a_leased_instance_without_visible_events_counts(tmp_path: Path, clock: StepClock) -> None:
    path = tmp_path / "hub.db"
    hub = SqliteTaskHub(path, create=True, clock=clock)
    start(hub, "a")
    lease(hub, "a")
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("DELETE FROM new_events")  # only the lease is left
    assert hub.scale_metrics().visible_inbox_instances == 0
    assert workers_needed(hub, 1, 1) == 1
    hub.close()


# --- the inspector (every backend) ------------------------------------------------------------------------


class InspectedHub(TaskHub, HubInspector, Protocol):
    pass


@pytest.fixture
def ihub(hub: TaskHub) -> InspectedHub:
    """The backend's hub, as an inspector."""
    assert isinstance(hub, HubInspector)
    return cast(InspectedHub, hub)


def work_log_rows(hub: TaskHub) -> int:
    """Rows in the work log, expired or not."""
    if isinstance(hub, SqliteTaskHub):
        return int(hub._conn.execute("SELECT COUNT(*) FROM work_log").fetchone()[0])
    from dtctl.hub.postgres import PostgresTaskHub

    assert isinstance(hub, PostgresTaskHub)
    return hub._read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM work_log").fetchone()[0]))


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_every_hub_is_an_inspector(ihub: InspectedHub) -> None:
    assert isinstance(ihub, HubInspector)


def test_snapshot_of_an_idle_hub(ihub: InspectedHub, clock: StepClock) -> None:
    snap = ihub.hub_snapshot()
    assert snap.at == clock()
    assert (snap.inbox.visible, snap.inbox.later, snap.inbox.oldest) == (0, 0, None)
    assert (snap.activity_queue.visible, snap.activity_queue.oldest) == (0, None)
    assert snap.orchestration_work.finished == snap.activity_work.finished == 0
    assert snap.activity_work.schedule_to_start_p50 is None
    assert (snap.workers, snap.leases, snap.backlog, snap.failures) == ((), (), (), ())


def test_snapshot_queues_backlog_and_leases(ihub: InspectedHub, clock: StepClock) -> None:
    start(ihub, "a", "b", name="orders")
    start(ihub, "c", name="reports")
    clock.advance(1)
    step(ihub, "a", actions=[ScheduleTask(task_id=n, name="charge") for n in range(3)])
    step(ihub, "b", actions=[CreateTimer(task_id=0, fire_at=clock() + 60 * S)])
    ihub.raise_event("b", "go", None)
    lease(ihub, "b", owner="w-orch")
    ihub.lease_activities("w-act", None, limit=1, lease_seconds=30)
    clock.advance(2)
    snap = ihub.hub_snapshot()
    # inbox: c's start (unleased) and b's event (b is leased); b's timer is for later
    assert (snap.inbox.visible, snap.inbox.leased, snap.inbox.later) == (2, 1, 1)
    assert snap.inbox.oldest is not None
    assert (snap.inbox.oldest.instance_id, snap.inbox.oldest.name) == ("c", "reports")
    assert snap.inbox.oldest.visible_at == clock() - 3 * S
    assert (snap.activity_queue.visible, snap.activity_queue.leased, snap.activity_queue.later) == (3, 1, 0)
    assert snap.activity_queue.oldest is not None and snap.activity_queue.oldest.name == "charge"
    assert (snap.instances.pending, snap.instances.running) == (1, 2)
    backlog = {(b.kind, b.name): b.count for b in snap.backlog}
    assert backlog == {("orchestration", "reports"): 1, ("activity", "charge"): 2}
    assert {(h.owner, h.orchestrations, h.activities) for h in snap.leases} == {
        ("w-orch", 1, 0),
        ("w-act", 0, 1),
    }
    assert snap.scale.live_orchestrations == 2
    assert ihub.backlog_by_name() == list(snap.backlog)
    assert ihub.lease_holders() == list(snap.leases)


def test_work_log_gives_throughput_latency_and_failures(ihub: InspectedHub, clock: StepClock) -> None:
    start(ihub, "a", name="orders")
    clock.advance(2)  # the start waits 2 s for a worker
    item = lease(ihub, "a")
    clock.advance(0.5)  # the episode takes 0.5 s
    decision = decide(item, actions=[ScheduleTask(task_id=n, name="charge") for n in range(2)])
    assert ihub.checkpoint([(item, decision)])[0].committed
    clock.advance(1)  # tasks wait 1 s
    ok, bad = ihub.lease_activities("w", None, limit=2, lease_seconds=30)
    clock.advance(3)  # and run 3 s
    failure = FailureDetails(message="boom", error_type="ValueError")
    ihub.complete_activities(
        [
            ActivityResult(ok, TaskCompleted(task_id=ok.task_id, result="1")),
            ActivityResult(bad, TaskFailed(task_id=bad.task_id, failure=failure)),
        ]
    )
    snap = ihub.hub_snapshot(60)
    orch, act = snap.orchestration_work, snap.activity_work
    assert (orch.finished, orch.failed, orch.samples) == (1, 0, 1)
    assert (orch.schedule_to_start_p50, orch.start_to_complete_p95) == (2 * S, S // 2)
    assert (act.finished, act.failed, act.samples) == (2, 1, 2)
    assert (act.schedule_to_start_p50, act.schedule_to_start_p95) == (S, S)
    assert (act.start_to_complete_p50, act.start_to_complete_p95) == (3 * S, 3 * S)
    assert [(f.kind, f.name, f.count) for f in snap.failures] == [("activity", "charge", 1)]
    # the failed activity fails the instance: an episode that fails counts as a failure
    item = lease(ihub, "a")
    ihub.checkpoint([(item, decide(item, FAILED, failure=failure))])
    snap = ihub.hub_snapshot(60)
    assert (snap.orchestration_work.failed, snap.instances.failed, snap.instances.running) == (1, 1, 0)
    # outside the window, nothing is counted; past the retention the writer deletes the rows
    clock.advance(61)
    assert ihub.hub_snapshot(60).activity_work.finished == 0
    assert ihub.hub_snapshot(120).activity_work.finished == 2
    clock.advance(RETENTION_US / S)
    start(ihub, "b")
    step(ihub, "b", COMPLETED)  # a write after the retention prunes the old rows
    assert work_log_rows(ihub) == 1


def test_latency_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50, 95, 100)
    assert (percentile([7], 95), percentile([], 50)) == (7, None)
    assert LATENCY_SAMPLES >= 1000


def test_stuck_work(ihub: InspectedHub, clock: StepClock) -> None:
    start(ihub, "dead")
    step(ihub, "dead", actions=[ScheduleTask(task_id=0, name="slow")])
    ihub.raise_event("dead", "e", None)
    lease(ihub, "dead", owner="gone:1:a", lease_seconds=1)  # its owner dies with both leases
    [task] = ihub.lease_activities("gone:1:a", ["slow"], limit=1, lease_seconds=1)
    start(ihub, "long")
    for n in range(3):  # a long history: 3 episodes of 2 events each
        if n:
            ihub.raise_event("long", "next", None)
        step(ihub, "long")
    start(ihub, "poison")
    for _ in range(5):  # leased 5 times without a checkpoint: at the dequeue limit
        ihub.abandon_orchestration(lease(ihub, "poison"))
    assert ihub.stuck_work().expired_lease_count == 0
    clock.advance(2)
    stuck = ihub.stuck_work(max_dequeue=5, history_threshold=6, limit=10)
    assert stuck.at == clock()
    assert stuck.expired_lease_count == 2
    assert {(e.kind, e.instance_id, e.owner, e.task_id) for e in stuck.expired_leases} == {
        ("orchestration", "dead", "gone:1:a", None),
        ("activity", "dead", "gone:1:a", task.task_id),
    }
    assert all(e.expired_at == clock() - S for e in stuck.expired_leases)
    assert stuck.poison_count == 1
    assert [(p.kind, p.instance_id, p.dequeue_count) for p in stuck.poison] == [
        ("orchestration", "poison", 5)
    ]
    assert [(h.instance_id, h.history_length) for h in stuck.large_histories] == [("long", 6)]
    assert stuck.large_history_count == 1
    limited = ihub.stuck_work(limit=1)
    assert (len(limited.expired_leases), limited.expired_lease_count) == (1, 2)


def test_poison_activity_tasks(ihub: InspectedHub, clock: StepClock) -> None:
    start(ihub, "a")
    step(ihub, "a", actions=[ScheduleTask(task_id=0, name="crashy")])
    for _ in range(3):
        [task] = ihub.lease_activities("w", None, limit=1, lease_seconds=30)
        ihub.abandon_activity(task)
        clock.advance(60)
    stuck = ihub.stuck_work(max_dequeue=3)
    assert [(p.kind, p.name, p.task_id, p.dequeue_count) for p in stuck.poison] == [
        ("activity", "crashy", 0, 3)
    ]


# --- the SQLite hub's storage checks, backup, migration and query plans ------------------------------------


def test_storage_findings_of_a_healthy_hub(sqlite_hub: SqliteTaskHub) -> None:
    start(sqlite_hub, "a")
    findings = {f.check: f for f in sqlite_hub.storage_findings()}
    assert set(findings) >= {
        "schema-version",
        "journal-mode",
        "synchronous",
        "integrity",
        "sqlite-version",
        "filesystem",
        "permissions",
        "links",
        "wal-size",
    }
    assert all(f.area == "hub" for f in findings.values())
    assert all(f.severity == "ok" for c, f in findings.items() if c != "sqlite-version")
    assert "quick_check" in findings["integrity"].message
    assert (
        "integrity_check" in {f.check: f for f in sqlite_hub.storage_findings(full=True)}["integrity"].message
    )


def test_storage_findings_report_loose_permissions_and_links(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    path.chmod(0o644)
    assert {f.check: f for f in sqlite_hub.storage_findings()}["permissions"].severity == "warning"
    path.chmod(0o666)
    assert {f.check: f for f in sqlite_hub.storage_findings()}["permissions"].severity == "problem"
    path.chmod(0o600)
    os.link(path, path.with_name("other-name.db"))
    assert {f.check: f for f in sqlite_hub.storage_findings()}["links"].severity == "warning"


def test_storage_findings_report_an_old_schema(path: Path, clock: StepClock) -> None:
    SqliteTaskHub(path, create=True, clock=clock).close()
    raw(path).execute("PRAGMA user_version = 1")
    hub = SqliteTaskHub(path, clock=clock, check_schema=False)
    finding = {f.check: f for f in hub.storage_findings()}["schema-version"]
    hub.close()
    assert finding.severity == "problem" and finding.hint and "hub migrate" in finding.hint


def test_sqlite_version_check_knows_the_wal_reset_bug_range() -> None:
    assert check_sqlite_version((3, 40, 1)).severity == "warning"
    assert check_sqlite_version((3, 51, 2)).severity == "warning"
    assert check_sqlite_version((3, 52, 0)).severity == "ok"
    assert check_sqlite_version((3, 30, 0)).severity == "problem"  # older than dtctl needs


def test_backup_is_a_verified_private_copy(sqlite_hub: SqliteTaskHub, path: Path, tmp_path: Path) -> None:
    start(sqlite_hub, "kept")
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    written = sqlite_hub.backup(target)
    assert written == target and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not list(target.parent.glob("*.partial"))
    copy = open_hub(target)
    assert copy.get_instance("kept") is not None
    copy.close()
    with pytest.raises(UsageError, match="exists"):
        sqlite_hub.backup(target)
    with pytest.raises(UsageError):
        sqlite_hub.backup(path)


def test_a_version_1_hub_migrates_and_keeps_working(
    path: Path, clock: StepClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [m for m in sqlite_conn.MIGRATIONS if m.version == 1]
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_conn, "MIGRATIONS", first)
        SqliteTaskHub(path, create=True, clock=clock).close()
    with sqlite3.connect(path) as db:  # a task leased by a version-1 worker: no leased_at column yet
        # An instance a version-1 hub created (today's insert names columns version 1 lacks).
        db.execute(
            "INSERT INTO instances (instance_id, execution_id, name, status, created_at, updated_at) "
            "VALUES ('a', 'e1', 'orch', 'RUNNING', ?, ?)",
            (clock(), clock()),
        )
        db.execute(
            "INSERT INTO new_tasks (instance_id, execution_id, task_id, name, visible_at, lease_owner, "
            "lease_token, lease_expires) SELECT instance_id, execution_id, 0, 'act', ?, 'w', 't', ? "
            "FROM instances",
            (clock(), clock() + S),
        )
    hub = SqliteTaskHub(path, clock=clock, check_schema=False)
    assert hub.migrate() is not None and hub.schema_version() == sqlite_conn.latest_version()
    state = hub.get_instance("a")  # created before versions: none (the oldest), no tags
    assert state is not None and state.version is None and state.tags is None
    [task] = hub.pending_activities("a")
    assert hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0, result="1"))]) == [True]
    assert hub.hub_snapshot().activity_work.finished == 1
    hub.close()


def test_snapshot_counts_workers(ihub: InspectedHub, clock: StepClock) -> None:
    ihub.heartbeat(WorkerInfo(worker_id="h:1:a", host="h", pid=1, started_at=clock(), activities=("x",)))
    assert [w.worker_id for w in ihub.hub_snapshot().workers] == ["h:1:a"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("INBOX_DEPTH", "new_events_by_visible"),
        ("TASK_DEPTH", "new_tasks_leased"),
        ("OLDEST_MESSAGE", "COVERING INDEX new_events_by_visible"),
        ("OLDEST_TASK", "INDEX new_tasks_by_visible"),
        ("FINISHED_INSTANCES", "INDEX instances_by_completed"),
        ("WORK_COUNTS", "INDEX work_log_by_kind"),
        ("WORK_SAMPLES", "INDEX work_log_by_kind"),
        ("BACKLOG_ORCHESTRATIONS", "COVERING INDEX new_events_by_visible"),
        ("LEASED_INSTANCES", "INDEX instances_leased"),
        ("LEASED_TASKS", "INDEX new_tasks_leased"),
        ("PRUNE_WORK_LOG", "INDEX work_log_by_kind"),
        ("EXPIRED_INSTANCE_LEASES", "INDEX instances_leased"),
        ("EXPIRED_TASK_LEASES", "INDEX new_tasks_leased"),
    ],
)
def test_snapshot_reads_use_their_indexes(sqlite_hub: SqliteTaskHub, name: str, expected: str) -> None:
    from dtctl.hub.sql import inspect as shared_reads
    from dtctl.hub.sqlite import queries

    params = {"now": 0, "since": 0, "kind": "activity", "limit": 5, "before": 0}
    sql = getattr(shared_reads, name, None) or getattr(queries, name)
    plan = " | ".join(r[3] for r in sqlite_hub._conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert expected in plan
    assert "SCAN new_events" not in plan and "SCAN new_tasks" not in plan and "SCAN instances" not in plan
