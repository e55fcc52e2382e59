"""A crashed worker's row is listed as lost for an hour, then the next heartbeat of any worker deletes
it: the registry does not grow with every crash. On both hubs, judged by the hub's clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub, WorkerInfo
from dtctl.hub.sql.instances import LOST_WORKER_RETENTION_MICROS
from tests.helpers import WorkerProcess, wait_until

START = 1_700_000_000_000_000
SECOND = 1_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def hub_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TaskHub, list[int]]]:
    clock = [START]
    if request.param == "sqlite":
        hub = open_hub(tmp_path / "hub.db", create=True, clock=lambda: clock[0])
        yield hub, clock
        hub.close()
        return
    from tests import pgserver

    server = pgserver.shared_server()
    name = pgserver.new_hub_name("lost")
    hub = open_hub(server.url(name), create=True, clock=lambda: clock[0])
    try:
        yield hub, clock
    finally:
        hub.close()
        pgserver.drop_hub(server, name)


def _worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(worker_id=worker_id, host="h", pid=1, started_at=START)


def test_a_lost_row_is_kept_for_the_retention_then_pruned(hub_at: tuple[TaskHub, list[int]]) -> None:
    hub, clock = hub_at
    hub.heartbeat(_worker("crashed"))
    hub.heartbeat(_worker("alive"))
    clock[0] += LOST_WORKER_RETENTION_MICROS  # exactly the retention: still kept as evidence
    hub.heartbeat(_worker("alive"))
    assert {w.worker_id for w in hub.list_workers()} == {"crashed", "alive"}
    clock[0] += SECOND
    hub.heartbeat(_worker("alive"))
    assert [w.worker_id for w in hub.list_workers()] == ["alive"]
    hub.heartbeat(_worker("newcomer"))  # registering prunes too (nothing left to prune here)
    assert {w.worker_id for w in hub.list_workers()} == {"alive", "newcomer"}


def test_a_killed_worker_process_is_pruned_by_the_next_worker(tmp_path: Path) -> None:
    """Real processes: a worker killed with SIGKILL leaves its row behind; once that row is older than
    the retention, the next worker's registration removes it."""
    path = tmp_path / "hub.db"
    open_hub(path, create=True).close()
    app = "samples/hello_cities.py:app"
    first = WorkerProcess(path, app, tmp_path / "logs")
    with TaskHubClient(path) as client:
        [crashed] = wait_until(client.hub.list_workers, timeout=30, what="the first heartbeat")
        first.kill()
        assert [w.worker_id for w in client.hub.list_workers()] == [crashed.worker_id]  # left behind
    # An hour passes for that row (the hub judges by its own clock, so age the row, not the clock).
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE workers SET heartbeat_at = heartbeat_at - ?", (LOST_WORKER_RETENTION_MICROS,))
    conn.close()
    second = WorkerProcess(path, app, tmp_path / "logs")
    try:
        with TaskHubClient(path) as client:

            def only_the_new_worker() -> bool:
                ids = [w.worker_id for w in client.hub.list_workers()]
                return len(ids) == 1 and ids[0] != crashed.worker_id

            wait_until(only_the_new_worker, timeout=30, what="the lost row pruned by the next worker")
    finally:
        second.stop()
