"""Fixtures of the PostgreSQL-only tests: the session's throw-away server and fresh hubs on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dtctl.hub.postgres import PostgresTaskHub
from tests import pgserver


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    yield pgserver.shared_server()  # skips, or fails with DTCTL_REQUIRE_POSTGRES=1, without a server
    pgserver.stop_shared()


@pytest.fixture
def hub_name(pg_server: pgserver.PgServer) -> Iterator[str]:
    name = pgserver.new_hub_name("p")
    yield name
    pgserver.drop_hub(pg_server, name)


@pytest.fixture
def pg_url(pg_server: pgserver.PgServer, hub_name: str) -> str:
    return pg_server.url(hub_name)


@pytest.fixture
def pg_hub(pg_url: str) -> Iterator[PostgresTaskHub]:
    """A fresh hub judged by the server's clock (no injected clock)."""
    hub = PostgresTaskHub(pg_url, create=True)
    yield hub
    hub.close()
