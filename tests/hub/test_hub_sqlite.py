"""SQLite-only behaviour: the hub file, schema versions, driver error translation, query plans."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dtctl.core.decision import ScheduleTask
from dtctl.core.history import COMPLETED, TaskCompleted
from dtctl.errors import (
    ExitCode,
    HubBusy,
    HubError,
    HubNotFound,
    HubUnsafe,
    SchemaVersionMismatch,
    UsageError,
)
from dtctl.hub import open_hub
from dtctl.hub.base import ActivityResult
from dtctl.hub.sqlite import SqliteTaskHub
from dtctl.hub.sqlite import conn as sqlite_conn
from dtctl.hub.sqlite import queries as sqlite_queries
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import decide, lease, start, step

REPO = Path(__file__).resolve().parents[2]


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# --- the file ------------------------------------------------------------------------------------------


def test_new_hub_files_are_private(path: Path, sqlite_hub: SqliteTaskHub) -> None:
    start(sqlite_hub, "a")
    for name in ("taskhub.db", "taskhub.db-wal", "taskhub.db-shm"):
        mode = stat.S_IMODE((path.parent / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_pragmas(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    conn = sqlite_hub._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    fast = SqliteTaskHub(path, synchronous="normal")
    assert fast._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    fast.close()
    with pytest.raises(UsageError):
        SqliteTaskHub(path, synchronous="off")


def test_missing_hub_is_not_found_and_not_created(path: Path) -> None:
    with pytest.raises(HubNotFound) as caught:
        open_hub(path)
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert not path.exists()
    with pytest.raises(HubNotFound):
        open_hub(path.parent / "no-such-dir" / "hub.db", create=True)


def test_empty_file_without_create_is_not_found(path: Path) -> None:
    path.touch()
    with pytest.raises(HubNotFound):
        open_hub(path)
    open_hub(path, create=True).close()


def test_directory_is_unsafe(tmp_path: Path) -> None:
    with pytest.raises(HubUnsafe, match="directory") as caught:
        open_hub(tmp_path, create=True)
    assert caught.value.exit_code == ExitCode.HUB_UNSAFE


def test_garbage_file_is_unsafe(path: Path) -> None:
    path.write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(HubUnsafe, match=r"not a SQLite database|corrupt") as caught:
        open_hub(path)
    assert "\n" not in caught.value.message


def test_corrupt_database_is_unsafe(path: Path) -> None:
    open_hub(path, create=True).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(HubUnsafe):
        open_hub(path)


def test_foreign_sqlite_database_is_unsafe(path: Path) -> None:
    conn = raw(path)
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    with pytest.raises(HubUnsafe, match="not a dtctl hub"):
        open_hub(path, create=True)


def test_network_file_system_is_refused(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"rootfs / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n")
    monkeypatch.setattr(sqlite_conn, "MOUNTS_FILE", mounts)
    with pytest.raises(HubUnsafe, match="network file system"):
        open_hub(path, create=True)
    open_hub(path, create=True, allow_network_fs=True).close()


def test_urls(path: Path) -> None:
    with pytest.raises(UsageError, match="hub name"):  # refused before anything connects
        open_hub("postgresql://user@localhost/db?hub=Bad-Name")
    with pytest.raises(UsageError):
        open_hub("redis://localhost")
    open_hub(f"sqlite://{path}", create=True).close()
    assert path.exists()


def test_busy_past_the_timeout_is_hub_busy(path: Path, clock: StepClock) -> None:
    SqliteTaskHub(path, create=True).close()
    hub = SqliteTaskHub(path, busy_timeout=0.05, clock=clock)
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(HubBusy) as caught:
            start(hub, "a")
        assert caught.value.exit_code == ExitCode.TIMEOUT
        assert hub.get_instance("a") is None  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    start(hub, "a")
    hub.close()


def test_closed_hub_raises_a_hub_error(sqlite_hub: SqliteTaskHub) -> None:
    sqlite_hub.close()
    with pytest.raises(HubError, match="closed"):
        sqlite_hub.get_instance("a")


# --- schema versions -------------------------------------------------------------------------------------


def test_schema_is_recorded(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    latest = sqlite_conn.latest_version()
    assert latest >= 1 and sqlite_hub.schema_version() == latest
    rows = raw(path).execute("SELECT version, name FROM schema_migrations").fetchall()
    assert rows[0] == (1, "initial")
    sqlite_hub.create()  # idempotent
    assert sqlite_hub.migrate() is None  # nothing to do


def test_newer_hub_is_refused(path: Path) -> None:
    open_hub(path, create=True).close()
    raw(path).execute("PRAGMA user_version = 999")
    with pytest.raises(SchemaVersionMismatch, match="newer") as caught:
        open_hub(path)
    assert caught.value.exit_code == ExitCode.SCHEMA_MISMATCH


def test_older_hub_needs_migrate_which_backs_up_first(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_hub(path, create=True).close()
    start(SqliteTaskHub(path), "kept")
    latest = sqlite_conn.latest_version()
    extra = sqlite_conn.Migration(
        latest + 1, "test_column", "ALTER TABLE instances ADD COLUMN test_only_column TEXT;\n"
    )
    monkeypatch.setattr(sqlite_conn, "MIGRATIONS", [*sqlite_conn.MIGRATIONS, extra])
    with pytest.raises(SchemaVersionMismatch) as caught:
        open_hub(path)
    assert caught.value.hint is not None and "dtctl hub migrate" in caught.value.hint
    hub = SqliteTaskHub(path, check_schema=False)
    backup = hub.migrate()
    assert backup is not None and backup.exists()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert hub.schema_version() == latest + 1
    hub.close()
    assert raw(backup).execute("PRAGMA user_version").fetchone()[0] == latest
    reopened = open_hub(path)
    assert reopened.get_instance("kept") is not None
    reopened.close()


# --- protocol details only visible in the rows ------------------------------------------------------------


def test_duplicate_history_sequence_refuses_the_item(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    start(sqlite_hub, "a")
    item = lease(sqlite_hub, "a")
    # Another writer (split brain) already appended sequence 1 of this execution.
    raw(path).execute(
        "INSERT INTO history SELECT instance_key, execution_no, 1, ? FROM instances WHERE instance_id = 'a'",
        ('{"kind":"generic"}',),
    )
    [result] = sqlite_hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
    assert not result.committed and result.reason and "split brain" in result.reason
    assert len(sqlite_hub.get_history("a")) == 1
    assert sqlite_hub.pending_activities("a") == []
    assert len(sqlite_hub.pending_messages("a")) == 1
    state = sqlite_hub.get_instance("a")
    assert state is not None and state.lease_owner == "w1" and state.history_length == 0


def test_completion_for_a_finished_execution_is_discarded_and_the_row_deleted(
    sqlite_hub: SqliteTaskHub, path: Path
) -> None:
    start(sqlite_hub, "a")
    step(sqlite_hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    [task] = sqlite_hub.lease_activities("w", None, limit=1, lease_seconds=30)
    raw(path).execute("UPDATE instances SET status = 'TERMINATED' WHERE instance_id = 'a'")
    assert sqlite_hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0))]) == [True]
    assert sqlite_hub.pending_activities("a") == []
    assert sqlite_hub.pending_messages("a") == []


def test_stale_inbox_rows_are_deleted_at_lease(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    start(sqlite_hub, "a")
    raw(path).execute(
        "INSERT INTO new_events (instance_id, execution_id, kind, task_id, payload, visible_at) "
        "VALUES ('a', 'old-execution', 'task_completed', 0, '{\"kind\":\"task_completed\",\"task_id\":0}', 0)"
    )
    item = lease(sqlite_hub, "a")
    assert [m.event.kind for m in item.messages] == ["execution_started"]
    assert len(sqlite_hub.pending_messages("a")) == 1


def test_history_view_spells_out_the_rows(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    start(sqlite_hub, "a")
    item = step(sqlite_hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    columns = "instance_id, execution_id, sequence, kind, task_id, name"
    rows = raw(path).execute(f"SELECT {columns} FROM history_view ORDER BY sequence").fetchall()
    assert rows == [
        ("a", item.execution_id, 0, "orchestrator_started", None, None),
        ("a", item.execution_id, 1, "execution_started", None, "orch"),
        ("a", item.execution_id, 2, "task_scheduled", 0, "act"),
    ]


def test_integrity_after_a_workload(sqlite_hub: SqliteTaskHub, path: Path) -> None:
    start(sqlite_hub, *[f"i{n}" for n in range(20)])
    for n in range(20):
        step(sqlite_hub, f"i{n}", COMPLETED if n % 2 else "RUNNING")
    assert raw(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (sqlite_queries.PICK_INSTANCES, "USING COVERING INDEX new_events_by_visible"),
        (sqlite_queries.TAKE_MESSAGES, "INDEX new_events_by_instance"),
        (sqlite_queries.LEASE_TASKS, "SCAN new_tasks"),  # in primary-key (FIFO) order, stops at LIMIT
        (sqlite_queries.LOAD_HISTORY, "USING PRIMARY KEY"),
        (sqlite_queries.SELECT_FOR_CHECKPOINT, "sqlite_autoindex_instances_1"),
        (sqlite_queries.DELETE_LEASED_TASK, "INTEGER PRIMARY KEY"),
        (sqlite_queries.HAS_PENDING_TERMINATE, "INDEX new_events_by_instance"),
    ],
)
def test_hot_queries_use_their_indexes(sqlite_hub: SqliteTaskHub, statement: str, expected: str) -> None:
    names = {
        "now": 0,
        "names": None,
        "owner": "w",
        "expires": 0,
        "token": "t",
        "limit": 1,
        "vmin": None,
        "vmax": None,
    }
    names |= {"instance_id": "a", "execution_id": "e"}
    params: object = names if ":" in statement else (None,) * statement.count("?")
    plan = " | ".join(r[3] for r in sqlite_hub._conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))
    assert expected in plan
    assert "TEMP B-TREE" not in plan


def test_scale_metrics_plan_has_no_full_scans_of_the_inbox(sqlite_hub: SqliteTaskHub) -> None:
    plan = [
        r[3]
        for r in sqlite_hub._conn.execute(f"EXPLAIN QUERY PLAN {sqlite_queries.SCALE_METRICS}", {"now": 0})
    ]
    assert not [p for p in plan if p.startswith("SCAN new_events") and "COVERING" not in p]


# --- fault points -----------------------------------------------------------------------------------------


def _run_killed(code: str, fault: str) -> int:
    env = dict(os.environ, DTCTL_FAULT=fault, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO, timeout=60)
    return done.returncode


@pytest.mark.parametrize("fault", ["checkpoint.before_commit", "checkpoint.after_commit"])
def test_killed_checkpoint_is_all_or_nothing(path: Path, fault: str) -> None:
    hub = open_hub(path, create=True)
    start(hub, "a")
    code = f"""
        from dtctl.hub import open_hub
        from tests.hub.hub_helpers import decide
        from dtctl.core.decision import ScheduleTask
        hub = open_hub({str(path)!r})
        [item] = hub.lease_orchestrations("victim", None, limit=1, lease_seconds=0.001)
        hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
    """
    assert _run_killed(code, fault) == -9
    written = len(hub.get_history("a"))
    if fault == "checkpoint.before_commit":
        assert written == 0 and hub.pending_activities("a") == [] and len(hub.pending_messages("a")) == 1
    else:
        assert written == 3 and len(hub.pending_activities("a")) == 1 and hub.pending_messages("a") == []
    assert raw(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    hub.close()


def test_killed_activity_completion_writes_nothing(path: Path) -> None:
    hub = open_hub(path, create=True)
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    code = f"""
        from dtctl.hub import open_hub
        from dtctl.hub.base import ActivityResult
        from dtctl.core.history import TaskCompleted
        hub = open_hub({str(path)!r})
        [task] = hub.lease_activities("victim", None, limit=1, lease_seconds=0.001)
        hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0))])
    """
    assert _run_killed(code, "activity.before_commit") == -9
    assert hub.pending_messages("a") == [] and len(hub.pending_activities("a")) == 1
    hub.close()
