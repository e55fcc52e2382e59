"""The runtime role (no DDL, no other hub's schema) and passwords that never show (DESIGN §9, B4)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dtctl.core.decision import ScheduleTask
from dtctl.core.history import COMPLETED, TaskCompleted
from dtctl.errors import DtctlError, HubUnsafe
from dtctl.hub import open_hub, redact
from dtctl.hub.base import ActivityResult, PurgeQuery, WorkerInfo
from dtctl.hub.postgres import PostgresTaskHub
from dtctl.hub.postgres.admin import scram_verifier
from dtctl.hub.postgres.conn import parse_url, redact_url
from tests import pgserver
from tests.helpers import REPO, child_env
from tests.hub.hub_helpers import start, step

ROLE_SECRET = "s3cret-Runtime-pw"


def dtctl_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dtctl", *args],
        cwd=REPO,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def other_hub(pg_server: pgserver.PgServer) -> Iterator[str]:
    name = pgserver.new_hub_name("o")
    PostgresTaskHub(pg_server.url(name), create=True).close()
    yield name
    pgserver.drop_hub(pg_server, name)


@pytest.fixture
def runtime_role(pg_server: pgserver.PgServer, pg_url: str, hub_name: str) -> Iterator[str]:
    role = f"rt_{hub_name}"
    done = dtctl_cli(
        "--json",
        "hub",
        "init",
        "--role",
        role,
        "--password-env",
        "RT_PW",
        DTCTL_HUB=pg_url,
        RT_PW=ROLE_SECRET,
    )
    assert done.returncode == 0, done.stderr
    for secret in (pg_server.password, ROLE_SECRET):
        assert secret not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["hub"] == redact_url(pg_url) and report["schema"] == f"dtctl_{hub_name}"
    assert report["role"]["login"] and report["role"]["usage_on_schema"]
    assert not report["role"]["create_in_schema"] and not report["role"]["create_in_database"]
    assert report["warnings"] == []
    yield role
    with pg_server.admin() as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def as_role(server: pgserver.PgServer, role: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn(user=role, password=ROLE_SECRET), autocommit=True)


def test_runtime_role_cannot_create_anything(
    pg_server: pgserver.PgServer, runtime_role: str, hub_name: str
) -> None:
    with as_role(pg_server, runtime_role) as conn:
        for statement in (
            f"CREATE TABLE dtctl_{hub_name}.intruder (i int)",
            "CREATE TABLE public.intruder (i int)",
            "CREATE SCHEMA intruder",
            f"CREATE FUNCTION dtctl_{hub_name}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            f"ALTER TABLE dtctl_{hub_name}.instances ADD COLUMN x int",
            f"DROP TABLE dtctl_{hub_name}.history",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_runtime_role_cannot_read_another_hub(
    pg_server: pgserver.PgServer, runtime_role: str, other_hub: str
) -> None:
    with as_role(pg_server, runtime_role) as conn:
        for statement in (
            f"SELECT count(*) FROM dtctl_{other_hub}.instances",
            f"SELECT dtctl_{other_hub}.scale_recommendation(8, 8)",
            f"INSERT INTO dtctl_{other_hub}.new_events (instance_id, kind, payload, visible_at) "
            "VALUES ('x', 'generic', '{}', 0)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with pytest.raises(HubUnsafe, match="permission denied") as caught:
        open_hub(pg_server.url(other_hub, user=runtime_role, password=ROLE_SECRET))
    assert ROLE_SECRET not in str(caught.value.message)


def test_runtime_role_runs_the_hub(pg_server: pgserver.PgServer, runtime_role: str, hub_name: str) -> None:
    url = pg_server.url(hub_name, user=runtime_role, password=ROLE_SECRET)
    hub = open_hub(url)
    try:
        start(hub, "a")
        step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
        [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
        assert hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0, result="1"))]) == [True]
        step(hub, "a", COMPLETED, output="1")
        hub.raise_event("a", "late", None, force=True)
        assert hub.scale_metrics().live_orchestrations == 0
        assert hub.scale_recommendation(8, 8) == 0  # EXECUTE on the hub's functions
        hub.heartbeat(WorkerInfo(worker_id="w", host="h", pid=1, started_at=hub.now()))
        assert [w.worker_id for w in hub.list_workers()] == ["w"]
        assert hub.purge(PurgeQuery(statuses=(COMPLETED,))) == 1
    finally:
        hub.close()
    # A new hub needs the right to create a schema, which the runtime role lacks.
    with pytest.raises(HubUnsafe, match="permission denied"):
        open_hub(pg_server.url("nope_" + hub_name, user=runtime_role, password=ROLE_SECRET), create=True)


def test_default_role_is_nologin(pg_server: pgserver.PgServer, pg_url: str, hub_name: str) -> None:
    role = f"nl_{hub_name}"
    done = dtctl_cli("--json", "hub", "init", "--role", role, DTCTL_HUB=pg_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["role"]
    assert report["login"] is False and report["created"] is True
    with pg_server.admin() as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_passwords_never_show(pg_server: pgserver.PgServer, pg_url: str, tmp_path: Path) -> None:
    secret = pg_server.password
    hub = PostgresTaskHub(pg_url, create=True)
    try:
        for shown in (hub.url, repr(hub), redact(pg_url), repr(parse_url(pg_url))):
            assert secret not in shown and "***" in shown
    finally:
        hub.close()
    assert secret not in redact_url(f"postgresql://u@h/db?password={secret}&hub=x")
    # A wrong password, and a server that is not there: errors name the hub without the password.
    wrong = pg_url.replace(secret, "Wrong-Passw0rd")
    with pytest.raises(DtctlError) as caught:
        open_hub(wrong)
    assert "Wrong-Passw0rd" not in caught.value.message and "***" in caught.value.message
    closed = f"postgresql://postgres:{secret}@127.0.0.1:{pgserver.free_port()}/x?hub=a"
    with pytest.raises(DtctlError) as caught:
        open_hub(closed)
    assert secret not in caught.value.message
    # The CLI takes the URL from a file (--hub @FILE) or DTCTL_HUB, and never prints the password.
    url_file = tmp_path / "hub-url"
    url_file.write_text(f"# the hub\n{pg_url}\n")
    for args, env in (
        (["--hub", f"@{url_file}", "hub", "info"], {}),
        (["--json", "hub", "info"], {"DTCTL_HUB": pg_url}),
        (["--hub", f"@{url_file}", "hub", "init"], {}),
        (["--json", "list"], {"DTCTL_HUB": f"@{url_file}"}),
        (["status", "missing"], {"DTCTL_HUB": pg_url}),
        (["--json", "hub", "info"], {"DTCTL_HUB": wrong}),
    ):
        done = dtctl_cli(*args, **env)
        assert secret not in done.stdout + done.stderr, args
        assert "Wrong-Passw0rd" not in done.stdout + done.stderr, args
    info = json.loads(dtctl_cli("--json", "hub", "info", DTCTL_HUB=f"@{url_file}").stdout)
    assert info["exists"] and info["schema_version"] >= 1 and info["hub"] == redact_url(pg_url)


def test_scram_verifier_is_what_the_server_accepts(pg_server: pgserver.PgServer, hub_name: str) -> None:
    role = f"sv_{hub_name}"
    verifier = scram_verifier("pw-1")
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "pw-1" not in verifier
    with pg_server.admin() as conn:
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{verifier}'")
    try:
        with psycopg.connect(pg_server.dsn(user=role, password="pw-1"), autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_server.dsn(user=role, password="pw-2"))
    finally:
        with pg_server.admin() as conn:
            conn.execute(f'DROP ROLE "{role}"')
