"""A PostgreSQL server that goes down under running workers and comes back: workers ride it out.

A server of the test's own (stopped as a crash would stop it, ``pg_ctl -m immediate``, then started
again on the same port) serves two real worker processes with ten activities in flight. The results
are ready while the server is down. The workers must stay up (same pids), and every instance must
complete with each activity recorded once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests import pgserver
from tests.helpers import WorkerProcess, wait_until

APP = "tests/apps/held.py:app"


@pytest.fixture
def own_server() -> Iterator[pgserver.PgServer]:
    try:
        # Durable: a server stopped as a crash would keeps every acknowledged commit (the shared test
        # server runs with fsync and synchronous_commit off, and would lose the last leases).
        server = pgserver.start_server(durable=True)
    except pgserver.Unavailable as exc:
        if pgserver.required():
            pytest.fail(f"PostgreSQL unavailable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _registered(url: str) -> int:
    hub = open_hub(url)
    try:
        return len(hub.list_workers())
    finally:
        hub.close()


def test_workers_ride_out_a_server_restart(
    own_server: pgserver.PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = own_server.url("outage")
    open_hub(url, create=True).close()
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    ids = [f"held-{i}" for i in range(10)]
    with TaskHubClient(url) as client:
        for instance_id in ids:
            client.start_instance("held_workflow", input=str(gate), instance_id=instance_id)
    monkeypatch.setenv("DTCTL_TEST_RUNS", str(runs))
    workers = [WorkerProcess(url, APP, tmp_path / "logs", heartbeat_seconds=0.5) for _ in range(2)]
    try:
        pids = [w.pid for w in workers]
        wait_until(lambda: len(_runs(runs)) >= 10, what="ten activities in flight")
        wait_until(lambda: _registered(url) == 2, what="both workers to heartbeat")
        own_server.halt()
        wait_until(
            lambda: all("hub unavailable" in w.log() for w in workers),
            timeout=60,
            what="both workers to wait",
        )
        gate.touch()  # the results are ready while the server is down
        own_server.restart()
        with TaskHubClient(url) as client:
            for instance_id in ids:
                final = client.wait_for_completion(instance_id, timeout=90)
                assert final.status == COMPLETED, final.failure
                assert client.decode_output(final) == f"done {instance_id}"
        assert [w.pid for w in workers if w.alive()] == pids
        assert sorted(_runs(runs)) == sorted(ids)  # each held activity ran once: nothing lost or redone
    finally:
        for worker in workers:
            worker.stop()
