"""``dtctl top`` and ``dtctl doctor`` on a PostgreSQL hub: real worker processes, the work log under the
runtime role, the migration to schema version 2, and the server's storage findings.

Every wait polls with a deadline (tests/helpers.py ``wait_until``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.decision import ScheduleTask
from dtctl.core.history import COMPLETED, TaskCompleted
from dtctl.hub.base import ActivityResult, HubInspector
from dtctl.hub.postgres import PostgresTaskHub
from dtctl.hub.postgres import conn as postgres_conn
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres.admin import ensure_runtime_role
from tests import pgserver
from tests.helpers import REPO, WorkerProcess, all_instances, child_env, dtctl, json_out, wait_until
from tests.hub.hub_helpers import start, step

GATED = "tests/apps/gated.py:app"
HELLO = "samples/hello_cities.py:app"
ROLE_SECRET = "Inspect-role-pw-7"


@pytest.fixture(scope="module")
def durable_server() -> Iterator[pgserver.PgServer]:
    """A server with fsync and full_page_writes on (the shared one runs without them, which doctor
    rightly reports as a problem of the hub)."""
    pgserver.shared_server()  # skips, or fails with DTCTL_REQUIRE_POSTGRES=1, without a server
    server = pgserver.start_server(durable=True)
    yield server
    server.stop()


@pytest.fixture
def durable_url(durable_server: pgserver.PgServer) -> Iterator[str]:
    """A new hub on the durable server."""
    name = pgserver.new_hub_name("d")
    url = durable_server.url(name)
    PostgresTaskHub(url, create=True).close()
    yield url
    pgserver.drop_hub(durable_server, name)


def on(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dtctl("--hub", url, *args)


def findings(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def worker(url: str, app: str, tmp_path: Path, **settings: Any) -> WorkerProcess:
    return WorkerProcess(url, app, tmp_path / "logs", **settings)  # type: ignore[arg-type]


def test_pg_hub_is_an_inspector(pg_hub: PostgresTaskHub) -> None:
    assert isinstance(pg_hub, HubInspector)


def test_top_and_doctor_after_a_real_worker_did_work(
    durable_url: str, durable_server: pgserver.PgServer, tmp_path: Path
) -> None:
    pg_url = durable_url
    with TaskHubClient(pg_url) as client:
        client.start_instances([StartRequest("hello_cities", None, f"h{n}") for n in range(6)])
    w = worker(pg_url, HELLO, tmp_path, heartbeat_seconds=0.2)
    hub = PostgresTaskHub(pg_url)
    try:
        wait_until(
            lambda: all(i.status == COMPLETED for i in all_instances(hub)),
            timeout=60,
            what="the instances to complete",
        )
        top = json_out(on(pg_url, "top", "--once", "--json"))
        doctor = on(pg_url, "doctor", "--json")
        text = on(pg_url, "top", "--once")
    finally:
        hub.close()
        w.stop()
    rates = top["throughput_per_second"]
    assert rates["orchestrations_completed"] > 0 and rates["episodes"] > 0 and rates["activities"] > 0
    assert top["instances"]["finished_in_window"]["completed"] == 6
    assert top["latency"]["activities"]["samples"] == 6 * 3  # hello_cities: three activities each
    assert top["latency"]["orchestration_episodes"]["samples"] >= 6
    assert top["latency"]["activities"]["start_to_complete_ms"]["p50"] is not None
    assert top["workers"]["live"] == 1
    assert top["queues"]["activity_queue"]["visible"] == 0
    assert durable_server.password not in top["hub"] and "***" in top["hub"]

    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    found = findings(doctor)
    assert {"schema-version", "server-version", "durability", "privileges", "connection"} <= set(found)
    assert not {"journal-mode", "integrity", "permissions", "wal-size"} & set(found)  # no SQLite file checks
    assert found["schema-version"]["severity"] == "ok"
    assert found["privileges"]["severity"] == "warning"  # the superuser can create objects
    assert "hub init --role" in found["privileges"]["hint"]
    assert {"workers", "expired-leases", "poison"} <= set(found)
    assert durable_server.password not in doctor.stdout + doctor.stderr
    assert text.returncode == 0, text.stderr
    for heading in ("orchestration inbox", "activity queue", "throughput", "LATENCY", "workers:", "scale"):
        assert heading in text.stdout


def test_doctor_reports_the_expired_leases_of_a_killed_worker(durable_url: str, tmp_path: Path) -> None:
    pg_url = durable_url
    gate = tmp_path / "gate"
    client = TaskHubClient(pg_url)
    client.start_instance("gated_workflow", input=str(gate), instance_id="held")
    settings: dict[str, Any] = {"heartbeat_seconds": 0.2, "lease_seconds": 2.0}
    doomed = worker(pg_url, GATED, tmp_path, max_orchestrations=3, max_activities=4, **settings)
    rescuer: WorkerProcess | None = None
    hub = PostgresTaskHub(pg_url)
    try:
        wait_until(
            lambda: any(f":{doomed.pid}:" in (t.lease_owner or "") for t in hub.pending_activities("held")),
            what="the worker to lease the gated activity",
        )
        [row] = json_out(on(pg_url, "workers", "--json"))["workers"]
        worker_id = row["worker_id"]
        healthy = on(pg_url, "doctor", "--json")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr

        doomed.kill()  # SIGKILL: no drain, the heartbeat row and the activity lease stay behind
        wait_until(lambda: hub.stuck_work().expired_lease_count, what="the lease to expire")
        wait_until(
            lambda: hub.now() - hub.list_workers()[0].heartbeat_at > 1_200_000,
            what="the killed worker's heartbeat to age",
        )
        stuck = on(pg_url, "doctor", "--lost-after", "1", "--json")
        assert stuck.returncode == 4, stuck.stdout + stuck.stderr
        found = findings(stuck)
        assert found["expired-leases"]["severity"] == "problem"
        assert worker_id in found["expired-leases"]["message"]
        assert found["workers"]["severity"] == "warning" and worker_id in found["workers"]["message"]
        assert json.loads(stuck.stdout)["exit_code"] == 4
        [expired] = hub.stuck_work().expired_leases
        assert (expired.kind, expired.instance_id, expired.owner) == ("activity", "held", worker_id)
        top = json_out(on(pg_url, "top", "--once", "--json", "--lost-after", "1"))
        assert (top["workers"]["live"], top["workers"]["lost"]) == (0, 1)

        rescuer = worker(pg_url, GATED, tmp_path, **settings)
        gate.touch()
        assert client.wait_for_completion("held", timeout=30).status == COMPLETED
        after = on(pg_url, "doctor", "--lost-after", "1", "--json")
        assert after.returncode == 0, after.stdout  # the lost worker is only a warning now
        assert findings(after)["expired-leases"]["severity"] == "ok"
    finally:
        hub.close()
        client.close()
        doomed.stop()
        if rescuer is not None:
            rescuer.stop()


# --- the runtime role, the migration, the storage findings ----------------------------------------------


def init_role(pg_url: str, role: str) -> None:
    """``dtctl hub init --role`` (which also brings the hub to the latest schema)."""
    done = subprocess.run(
        [sys.executable, "-m", "dtctl", "--json", "hub", "init", "--role", role, "--password-env", "RT_PW"],
        cwd=REPO,
        env=child_env(DTCTL_HUB=pg_url, RT_PW=ROLE_SECRET),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warnings"] == []


def drop_role(pg_server: pgserver.PgServer, role: str) -> None:
    with pg_server.admin() as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def use_the_hub(hub: PostgresTaskHub) -> None:
    """One episode and one activity result: both write the work log."""
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
    assert hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0, result="1"))]) == [True]


def _without_versions(patch: pytest.MonkeyPatch) -> None:
    """The statements a worker runs, as dtctl wrote them before instances had versions and tags."""
    insert = q.INSERT_INSTANCES.replace(",\n                       version, version_key, tags)", ")")
    patch.setattr(q, "INSERT_INSTANCES", insert.replace(",\n       u.version, u.version_key, u.tags", ""))
    lease = q.LEASE_ORCHESTRATIONS.replace("c.version_key", "''::text")
    patch.setattr(q, "LEASE_ORCHESTRATIONS", lease.replace(", i.version\n", ", NULL::text AS version\n"))


def _without_message_trace(patch: pytest.MonkeyPatch) -> None:
    """The statements a worker runs, as dtctl wrote them before messages carried a trace context."""
    insert = q.INSERT_EVENTS.replace("visible_at, trace_context)\n", "visible_at)\n")
    patch.setattr(q, "INSERT_EVENTS", insert.replace("u.visible_at, u.trace_context\n", "u.visible_at\n"))
    lease = q.LEASE_ORCHESTRATIONS.replace("e.dequeue_count, e.trace_context", "e.dequeue_count, NULL::text")
    patch.setattr(q, "LEASE_ORCHESTRATIONS", lease.replace("NULL::text\n", "NULL::text AS trace_context\n"))


def test_a_version_1_hub_migrates_and_its_runtime_role_writes_the_work_log(
    pg_server: pgserver.PgServer, pg_url: str, hub_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = f"wl_{hub_name}"
    with monkeypatch.context() as patch:
        # A version 1 hub, written by a version 1 dtctl: no work log, no leased_at.
        patch.setattr(postgres_conn, "MIGRATIONS", [m for m in postgres_conn.MIGRATIONS if m.version == 1])
        patch.setattr(PostgresTaskHub, "_log_work", lambda *args: None)
        patch.setattr(q, "LEASE_ACTIVITIES", q.LEASE_ACTIVITIES.replace(", leased_at = clock.now", ""))
        _without_versions(patch)  # nor the columns of version 3
        _without_message_trace(patch)  # nor those of the message trace context
        old = PostgresTaskHub(pg_url, create=True)
        start(old, "leased-before")
        step(old, "leased-before", actions=[ScheduleTask(task_id=0, name="act")])
        [leased] = old.lease_activities("w", None, limit=1, lease_seconds=30)  # no leased_at column yet
        old.close()
        with pg_server.admin() as conn:  # granted on a version 1 hub: no work_log table yet
            ensure_runtime_role(conn, f"dtctl_{hub_name}", role, password=ROLE_SECRET)
    try:
        stale = PostgresTaskHub(pg_url, check_schema=False)
        found = {f.check: f for f in stale.storage_findings()}["schema-version"]
        assert found.severity == "problem" and found.hint and "hub migrate" in found.hint
        stale.close()
        old_doctor = on(pg_url, "doctor", "--json")
        assert old_doctor.returncode == 8 and findings(old_doctor)["schema-version"]["severity"] == "problem"

        admin = PostgresTaskHub(pg_url, check_schema=False)
        admin.migrate()
        assert admin.schema_version() == postgres_conn.latest_version() >= 2
        admin.close()

        as_role = PostgresTaskHub(pg_server.url(hub_name, user=role, password=ROLE_SECRET))
        try:
            # The task leased before the migration completes (no leased_at: its start is its completion).
            result = ActivityResult(leased, TaskCompleted(task_id=0, result="1"))
            assert as_role.complete_activities([result]) == [True]
            step(as_role, "leased-before", COMPLETED)
            use_the_hub(as_role)
            as_role.signal_entity("@counter@granted", "add", "1")  # the entity tables are granted too
            entity = as_role.get_entity("@counter@granted")
            assert entity is not None and entity.backlog == 1
            snap = as_role.hub_snapshot()
            assert (snap.activity_work.finished, snap.orchestration_work.finished) == (2, 2)
            assert snap.instances.completed == 1
            storage = {f.check: f for f in as_role.storage_findings()}
            assert storage["privileges"].severity == "ok", storage["privileges"]
            assert all(f.severity == "ok" for c, f in storage.items() if c != "durability"), storage
            # the shared test server runs without fsync and full_page_writes: doctor says so
            assert storage["durability"].severity == "problem"
            assert "fsync and full_page_writes off" in storage["durability"].message
            assert ROLE_SECRET not in repr(storage)
        finally:
            as_role.close()
        role_url = pg_server.url(hub_name, user=role, password=ROLE_SECRET)
        doctor = on(role_url, "doctor", "--json")
        assert doctor.returncode == 8, doctor.stdout + doctor.stderr  # fsync off (see above)
        hub_findings = {c: f for c, f in findings(doctor).items() if f["area"] == "hub"}
        assert [c for c, f in hub_findings.items() if f["severity"] != "ok"] == ["durability"]
        assert ROLE_SECRET not in doctor.stdout + doctor.stderr
        assert json_out(on(role_url, "top", "--once", "--json"))["throughput_per_second"]["activities"] > 0

        with pg_server.admin() as conn:  # a role without its grants on a table is a problem of the hub
            conn.execute(f'REVOKE INSERT ON "dtctl_{hub_name}".work_log FROM "{role}"')
        broken = on(role_url, "doctor", "--json")
        assert broken.returncode == 8, broken.stdout
        assert findings(broken)["privileges"]["severity"] == "problem"
        assert "work_log" in findings(broken)["privileges"]["message"]
    finally:
        drop_role(pg_server, role)


def test_a_new_runtime_role_can_write_and_prune_the_work_log(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub, hub_name: str, pg_url: str
) -> None:
    role = f"wn_{hub_name}"
    init_role(pg_url, role)
    try:
        clock = [pg_hub.now()]
        hub = PostgresTaskHub(
            pg_server.url(hub_name, user=role, password=ROLE_SECRET), clock=lambda: clock[0]
        )
        try:
            use_the_hub(hub)
            assert hub.hub_snapshot().activity_work.finished == 1
            clock[0] += 400_000_000  # past the retention: the next write prunes the log
            start(hub, "b")
            step(hub, "b", COMPLETED)
            assert hub._read(lambda conn: conn.execute("SELECT count(*) FROM work_log").fetchone()) == (1,)
        finally:
            hub.close()
    finally:
        drop_role(pg_server, role)


def test_snapshot_reads_use_their_indexes(pg_hub: PostgresTaskHub) -> None:
    from dtctl.hub.sql import inspect as common
    from dtctl.hub.sql.inspect import pyformat

    params = {"now": 0, "lease_now": 0, "since": 0, "kind": "activity", "limit": 5}
    expected = {
        "EXPIRED_INSTANCE_LEASES": "instances_leased",
        "EXPIRED_TASK_LEASES": "new_tasks_leased",
        "WORK_COUNTS": "work_log_by_kind",
        "LEASED_TASKS": "new_tasks_leased",
    }

    def plans(conn: Any) -> dict[str, str]:
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask whether an index can serve
            return {
                name: "\n".join(
                    r[0]
                    for r in conn.execute("EXPLAIN " + pyformat(getattr(common, name)), params).fetchall()
                )
                for name in expected
            }

    found = pg_hub._run(plans)
    for name, index in expected.items():
        assert index in found[name], found[name]
