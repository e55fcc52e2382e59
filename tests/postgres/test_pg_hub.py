"""PostgreSQL-only behaviour: the server's clock, schema versions, transient errors, fault points, NOTIFY."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import psycopg
import pytest

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.errors import HubBusy, HubNotFound, SchemaVersionMismatch
from dtctl.hub import open_hub
from dtctl.hub.postgres import PostgresTaskHub
from dtctl.hub.postgres import conn as pgc
from dtctl.hub.postgres import hub as pg_module
from dtctl.hub.wakeup.listen import PostgresNotifyListener
from tests import pgserver
from tests.helpers import REPO, wait_until
from tests.hub.hub_helpers import decide, lease, start, step


def server_now(server: pgserver.PgServer) -> int:
    with server.admin() as conn:
        row = conn.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").fetchone()
    assert row is not None
    return int(row[0])


def backend_pid(hub: PostgresTaskHub) -> int:
    conn = hub._connection()
    return int(conn.info.backend_pid)


def kill_backend(server: pgserver.PgServer, pid: int) -> None:
    with server.admin() as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


# --- time -----------------------------------------------------------------------------------------------


def test_leases_use_the_server_clock_not_the_local_one(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = server_now(pg_server)
    monkeypatch.setattr(time, "time", lambda: 0.0)  # a worker whose clock is wildly wrong
    start(pg_hub, "a")
    schedule = pg_hub.get_instance("a")
    assert schedule is not None and schedule.created_at >= before
    [item] = pg_hub.lease_orchestrations("w", None, limit=1, lease_seconds=30)
    monkeypatch.undo()
    after = server_now(pg_server)
    assert before <= item.leased_at <= after
    assert item.lease_expires == item.leased_at + 30_000_000
    assert before <= pg_hub.now() <= server_now(pg_server)


def test_a_short_lease_expires_by_the_server_clock(pg_hub: PostgresTaskHub) -> None:
    start(pg_hub, "a")
    [first] = pg_hub.lease_orchestrations("w1", None, limit=1, lease_seconds=0.2)
    assert pg_hub.lease_orchestrations("w2", None, limit=1, lease_seconds=30) == []
    [second] = wait_until(
        lambda: pg_hub.lease_orchestrations("w2", None, limit=1, lease_seconds=30), what="lease expiry"
    )
    assert second.lease_token != first.lease_token
    [refused] = pg_hub.checkpoint([(first, decide(first))])
    assert not refused.committed


# --- schema versions ------------------------------------------------------------------------------------


def test_missing_hub_is_not_found_and_create_is_idempotent(
    pg_server: pgserver.PgServer, hub_name: str
) -> None:
    with pytest.raises(HubNotFound):
        open_hub(pg_server.url(hub_name))
    hub = open_hub(pg_server.url(hub_name), create=True)
    hub.create()
    assert isinstance(hub, PostgresTaskHub) and hub.schema_version() == pgc.latest_version()
    assert hub.migrate() is None
    hub.close()


def test_newer_hub_is_refused(pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub) -> None:
    with pg_server.admin() as conn:
        conn.execute(f"INSERT INTO {pg_hub.schema}.versions VALUES (999, 'future', 0)")
    with pytest.raises(SchemaVersionMismatch, match="newer"):
        open_hub(pg_hub.url.replace("***", pg_server.password))


def test_older_hub_needs_migrate(
    pg_server: pgserver.PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = PostgresTaskHub(pg_url, create=True)
    start(hub, "kept")
    hub.close()
    following = pgc.latest_version() + 1
    extra = pgc.Migration(following, "extra", "ALTER TABLE __SCHEMA__.instances ADD COLUMN test_only text;")
    monkeypatch.setattr(pgc, "MIGRATIONS", [*pgc.MIGRATIONS, extra])
    with pytest.raises(SchemaVersionMismatch) as caught:
        open_hub(pg_url)
    assert caught.value.hint is not None and "dtctl hub migrate" in caught.value.hint
    older = PostgresTaskHub(pg_url, check_schema=False)
    assert older.migrate() is None and older.schema_version() == following
    older.close()
    reopened = open_hub(pg_url)
    assert reopened.get_instance("kept") is not None
    reopened.close()


# --- transient errors ------------------------------------------------------------------------------------


def test_reads_survive_a_lost_connection(pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub) -> None:
    start(pg_hub, "a")
    kill_backend(pg_server, backend_pid(pg_hub))
    state = pg_hub.get_instance("a")  # reconnected and retried
    assert state is not None and state.instance_id == "a"


def test_a_write_on_a_lost_connection_is_busy_and_writes_nothing(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub
) -> None:
    start(pg_hub, "a")
    kill_backend(pg_server, backend_pid(pg_hub))
    with pytest.raises(HubBusy) as caught:
        pg_hub.raise_event("a", "e", None)
    assert pg_server.password not in caught.value.message
    assert len(pg_hub.pending_messages("a")) == 1  # only the start: nothing half-written
    pg_hub.raise_event("a", "e", None)  # the next call reconnects
    assert len(pg_hub.pending_messages("a")) == 2


def test_a_deadlock_victim_transaction_runs_again(
    pg_hub: PostgresTaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(pg_hub, "a")
    item = lease(pg_hub, "a")
    real = pg_module.checkpoint_batch
    calls: list[int] = []

    def flaky(conn: Any, now: int, batch: Any) -> Any:
        calls.append(1)
        result = real(conn, now, batch)
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected (injected)")
        return result

    monkeypatch.setattr(pg_module, "checkpoint_batch", flaky)
    [result] = pg_hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
    assert result.committed and len(calls) == 2
    assert len(pg_hub.get_history("a")) == 3 and len(pg_hub.pending_activities("a")) == 1


def test_a_row_locked_past_the_lock_timeout_is_busy_and_rolled_back(
    pg_server: pgserver.PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pgc, "LOCK_TIMEOUT_MS", 200)
    hub = PostgresTaskHub(pg_url, create=True)
    try:
        start(hub, "a")
        item = lease(hub, "a")
        with pg_server.admin() as blocker, blocker.transaction():
            blocker.execute(f"SELECT 1 FROM {hub.schema}.instances WHERE instance_id = 'a' FOR UPDATE")
            with pytest.raises(HubBusy, match="lock timeout"):
                hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
        assert hub.get_history("a") == [] and hub.pending_activities("a") == []
        [result] = hub.checkpoint([(item, decide(item))])
        assert result.committed
    finally:
        hub.close()


# --- fault points ------------------------------------------------------------------------------------------


def _run_killed(code: str, fault: str) -> int:
    env = dict(os.environ, DTCTL_FAULT=fault, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO, timeout=60
    ).returncode


@pytest.mark.parametrize("fault", ["checkpoint.before_commit", "checkpoint.after_commit"])
def test_killed_checkpoint_is_all_or_nothing(pg_hub: PostgresTaskHub, pg_url: str, fault: str) -> None:
    start(pg_hub, "a")
    code = f"""
        from dtctl.hub import open_hub
        from tests.hub.hub_helpers import decide
        from dtctl.core.decision import ScheduleTask
        hub = open_hub({pg_url!r})
        [item] = hub.lease_orchestrations("victim", None, limit=1, lease_seconds=0.001)
        hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
    """
    assert _run_killed(code, fault) == -9
    written = len(pg_hub.get_history("a"))
    if fault == "checkpoint.before_commit":
        assert (
            written == 0 and pg_hub.pending_activities("a") == [] and len(pg_hub.pending_messages("a")) == 1
        )
    else:
        assert (
            written == 3 and len(pg_hub.pending_activities("a")) == 1 and pg_hub.pending_messages("a") == []
        )


def test_killed_activity_completion_writes_nothing(pg_hub: PostgresTaskHub, pg_url: str) -> None:
    start(pg_hub, "a")
    step(pg_hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    code = f"""
        from dtctl.hub import open_hub
        from dtctl.hub.base import ActivityResult
        from dtctl.core.history import TaskCompleted
        hub = open_hub({pg_url!r})
        [task] = hub.lease_activities("victim", None, limit=1, lease_seconds=0.001)
        hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0))])
    """
    assert _run_killed(code, "activity.before_commit") == -9
    assert pg_hub.pending_messages("a") == [] and len(pg_hub.pending_activities("a")) == 1


# --- wake-up hints ---------------------------------------------------------------------------------------


def test_listener_wakes_on_new_work_and_reconnects(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub
) -> None:
    channel = pg_hub.wake_channel()
    assert channel is not None and channel[1] == pg_hub.schema
    wake = threading.Event()
    listener = PostgresNotifyListener(channel[0], channel[1], wake).start()
    try:
        assert listener.connected.wait(10)
        wake.clear()
        start(pg_hub, "a")  # a new instance: its start message is queued
        assert wake.wait(10)
        assert listener.notifications >= 1
        # The listener's connection dies (a failover): it reconnects and still wakes.
        with pg_server.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'dtctl-listen'"
            )
        wait_until(lambda: listener.connections >= 2 and listener.connected.is_set(), what="a reconnect")
        wake.clear()
        seen = listener.notifications
        pg_hub.raise_event("a", "e", None)
        assert wake.wait(10)
        wait_until(lambda: listener.notifications > seen, what="the second notification")
    finally:
        listener.stop(timeout=5)
    assert not listener.alive()


def test_release_and_abandon_notify(pg_hub: PostgresTaskHub) -> None:
    channel = pg_hub.wake_channel()
    assert channel is not None
    wake = threading.Event()
    listener = PostgresNotifyListener(channel[0], channel[1], wake).start()
    try:
        assert listener.connected.wait(10)
        start(pg_hub, "a")
        item = lease(pg_hub, "a")
        assert wake.wait(10)
        wake.clear()
        pg_hub.abandon_orchestration(item)
        assert wake.wait(10)
    finally:
        listener.stop(timeout=5)


# --- group commit and the idle look ----------------------------------------------------------------------


def test_next_visible_at(pg_hub: PostgresTaskHub) -> None:
    assert pg_hub.next_visible_at(None, None) is None
    start(pg_hub, "a")
    due = pg_hub.next_visible_at(["orch"], ())
    assert due is not None and due <= pg_hub.now()
    assert pg_hub.next_visible_at(["other"], None) is None
    item = lease(pg_hub, "a")
    assert pg_hub.next_visible_at(None, None) is None  # work under a live lease does not count
    fire_at = pg_hub.now() + 3_600_000_000
    pg_hub.checkpoint([(item, decide(item, actions=[CreateTimer(task_id=0, fire_at=fire_at)]))])
    assert pg_hub.next_visible_at(None, None) == fire_at


def test_batch_is_one_transaction(pg_hub: PostgresTaskHub) -> None:
    start(pg_hub, "a", "b")
    item = lease(pg_hub, "a")
    with pytest.raises(RuntimeError, match="boom"), pg_hub.batch():
        [result] = pg_hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
        assert result.committed  # provisional until the block exits
        assert len(pg_hub.lease_activities("w", None, limit=5, lease_seconds=30)) == 1
        raise RuntimeError("boom")
    assert pg_hub.get_history("a") == [] and pg_hub.pending_activities("a") == []
    with pg_hub.batch():
        [result] = pg_hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
        [task] = pg_hub.lease_activities("w", None, limit=5, lease_seconds=30)  # sees the checkpoint
    assert result.committed and task.instance_id == "a"
    with pytest.raises(RuntimeError, match="durable"), pg_hub.batch(durable=False):
        pg_hub.create_instances([])  # nothing to write: fine
        pg_hub.raise_event("b", "e", None)
    assert len(pg_hub.pending_messages("b")) == 1


def test_duplicate_history_refuses_that_item_alone(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub
) -> None:
    start(pg_hub, "a")
    start(pg_hub, "b")
    items = pg_hub.lease_orchestrations("w1", None, limit=2, lease_seconds=30)
    assert sorted(i.instance_id for i in items) == ["a", "b"]
    # Another writer (split brain) already appended sequence 1 of a's execution.
    with pg_server.admin() as admin:
        admin.execute(
            f"INSERT INTO {pg_hub.schema}.history SELECT instance_key, execution_no, 1, %s "
            f"FROM {pg_hub.schema}.instances WHERE instance_id = 'a'",
            ('{"kind":"generic"}',),
        )
    results = pg_hub.checkpoint(
        [(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")])) for item in items]
    )
    by_id = {r.instance_id: r for r in results}
    assert not by_id["a"].committed and by_id["a"].reason and "split brain" in by_id["a"].reason
    assert by_id["b"].committed
    assert pg_hub.pending_activities("a") == [] and len(pg_hub.pending_messages("a")) == 1
    assert len(pg_hub.get_history("b")) == 3 and len(pg_hub.pending_activities("b")) == 1
    state = pg_hub.get_instance("a")
    assert state is not None and state.lease_owner == "w1" and state.history_length == 0
