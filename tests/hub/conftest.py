"""Fixtures of the hub tests: one ``hub`` per backend, a clock the tests step, and for the SQLite-only
tests ``path`` (where the hub file goes) and ``sqlite_hub`` (a fresh SQLite hub there, on that clock).

A backend is a way to make a fresh, empty hub location and open hubs on it: a SQLite file in the
test's temp dir, or a fresh hub schema on the session's throw-away PostgreSQL server (tests/pgserver.py;
skipped when no server can be started, failed instead when DTCTL_REQUIRE_POSTGRES=1). The PostgreSQL
hub judges time by the server's clock; the injected ``clock`` replaces it for the hub objects a test
opens through its backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.hub.sqlite import SqliteTaskHub

START = 1_700_000_000_000_000  # 2023-11-14, epoch µs: far from "now", so only the stepped clock matters


class StepClock:
    """An injectable hub clock (epoch µs) that moves only when a test says so."""

    def __init__(self, start: int = START) -> None:
        self.value = start

    def __call__(self) -> int:
        return self.value

    def advance(self, seconds: float) -> int:
        self.value += int(seconds * 1_000_000)
        return self.value


@dataclass
class Backend:
    name: str
    location: str  # a path or URL that open_hub understands
    clock: StepClock
    cleanup: Callable[[], None] | None = None

    def open(self, *, create: bool = False, clock: Callable[[], int] | None = None) -> TaskHub:
        return open_hub(self.location, create=create, clock=clock or self.clock)


def _sqlite(tmp_path: Path, clock: StepClock) -> Backend:
    return Backend("sqlite", str(tmp_path / "taskhub.db"), clock)


def _postgres(tmp_path: Path, clock: StepClock) -> Backend:
    from tests import pgserver

    server = pgserver.shared_server()  # skips (or fails when required) without a server
    hub = pgserver.new_hub_name()
    return Backend("postgres", server.url(hub), clock, cleanup=lambda: pgserver.drop_hub(server, hub))


BACKENDS: dict[str, Callable[[Path, StepClock], Backend]] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres() -> Iterator[None]:
    yield
    from tests import pgserver

    pgserver.stop_shared()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock) -> Iterator[Backend]:
    make: Callable[[Path, StepClock], Backend] = BACKENDS[request.param]
    made = make(tmp_path, clock)
    yield made
    if made.cleanup is not None:
        made.cleanup()


@pytest.fixture
def hub(backend: Backend) -> Iterator[TaskHub]:
    opened = backend.open(create=True)
    yield opened
    opened.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where a SQLite-only test's hub file lives."""
    return tmp_path / "taskhub.db"


@pytest.fixture
def sqlite_hub(path: Path, clock: StepClock) -> Iterator[SqliteTaskHub]:
    """A fresh SQLite hub at ``path`` on the stepped clock (for tests of SQLite-only behaviour)."""
    opened = SqliteTaskHub(path, create=True, clock=clock)
    yield opened
    opened.close()
