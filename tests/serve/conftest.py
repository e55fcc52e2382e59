"""Fixtures of the serve tests: a hub (SQLite file or PostgreSQL), ``dtctl serve`` on it, an SDK worker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgserver
from tests.serve.harness import DTCTL, SdkWorker, Serve

pytest.importorskip("durabletask", reason="the serve tests need the durabletask SDK (test extra)")
pytest.importorskip("grpc", reason="the serve tests need grpcio (serve extra)")


def make_hub(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        hub = str(tmp / "hub.db")
    else:
        server = pgserver.shared_server()
        hub = server.url(pgserver.new_hub_name("serve"))
    subprocess.run([*DTCTL, "--hub", hub, "init"], check=True, capture_output=True)
    return hub


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One serve process and one SDK worker process per backend, shared by a module's scenarios."""
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    hub = make_hub(request.param, tmp)
    serve = Serve(hub, tmp / "logs")
    worker = SdkWorker(serve.port, tmp / "logs", USE_FILTERS=1)
    yield serve
    worker.stop()
    serve.stop()


@pytest.fixture
def sqlite_hub(tmp_path: Path) -> str:
    return make_hub("sqlite", tmp_path)
