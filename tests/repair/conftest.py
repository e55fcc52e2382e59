"""Fixtures of the repair tests (rewind, restart, purge, replay-check): a hub on each backend, real
worker processes on it, and the directory where the test apps count their activity runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess

REPAIR_APP = "tests.apps.repair:app"
SDK_APP = "tests.apps.rewind_sdk:app"


@dataclass
class Site:
    """A fresh hub, where the apps count runs, and the workers started on it."""

    location: str
    runs_dir: Path
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def client(self) -> TaskHubClient:
        return TaskHubClient(open_hub(self.location, create=True))

    def worker(self, app: str = REPAIR_APP, **settings: object) -> WorkerProcess:
        started = WorkerProcess(self.location, app, self.logs, **settings)  # type: ignore[arg-type]
        self.workers.append(started)
        return started

    def fail(self, activity: str, on: bool = True) -> None:
        """Turn the fail switch of ``activity`` on or off."""
        switch = self.runs_dir / f"fail.{activity}"
        if on:
            switch.touch()
        else:
            switch.unlink(missing_ok=True)


def _sqlite(tmp_path: Path) -> tuple[str, Callable[[], None] | None]:
    return str(tmp_path / "taskhub.db"), None


def _postgres(tmp_path: Path) -> tuple[str, Callable[[], None] | None]:
    from tests import pgserver

    server = pgserver.shared_server()
    name = pgserver.new_hub_name("r")
    return server.url(name), lambda: pgserver.drop_hub(server, name)


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres() -> Iterator[None]:
    yield
    from tests import pgserver

    pgserver.stop_shared()


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    location, cleanup = (_sqlite if request.param == "sqlite" else _postgres)(tmp_path)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("REPAIR_TEST_DIR", str(runs_dir))  # the workers started below inherit it
    made = Site(location, runs_dir, tmp_path / "logs")
    TaskHubClient(open_hub(location, create=True)).close()
    yield made
    for worker in made.workers:
        worker.stop()
    if cleanup is not None:
        cleanup()
