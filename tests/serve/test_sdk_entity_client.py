"""The SDK's entity client over serve: it signals and reads the entities of a native dtctl app.

A native dtctl worker (``tests.apps.entities``) runs the entities; the unmodified durabletask client
signals them, reads them, queries and cleans entity storage through ``dtctl serve``, on both hubs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from durabletask import client
from durabletask.entities import EntityInstanceId

from tests.helpers import WorkerProcess, wait_until
from tests.serve.conftest import make_hub
from tests.serve.harness import Serve


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def entity_served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[client.TaskHubGrpcClient]:
    tmp = tmp_path_factory.mktemp(f"entities-{request.param}")
    hub = make_hub(request.param, tmp)
    serve = Serve(hub, tmp / "logs")
    native = WorkerProcess(
        Path(hub) if request.param == "sqlite" else hub, "tests.apps.entities:app", tmp / "logs"
    )  # type: ignore[arg-type]
    yield client.TaskHubGrpcClient(host_address=serve.address)
    native.stop()
    serve.stop()


def _state(c: client.TaskHubGrpcClient, entity: EntityInstanceId) -> object:
    found = c.get_entity(entity)
    raw = None if found is None else found.get_state()  # the serialized state, "" when it has none
    return json.loads(raw) if raw else None


def test_signal_then_read_an_entity_run_by_a_native_worker(entity_served: client.TaskHubGrpcClient) -> None:
    c = entity_served
    entity = EntityInstanceId("counter", "signal-read")
    assert c.get_entity(entity) is None
    c.signal_entity(entity, "add", input=5)
    c.signal_entity(entity, "add", input=2)
    wait_until(lambda: _state(c, entity) == 7, timeout=60, what="both signals applied")
    found = c.get_entity(entity, include_state=False)
    assert found is not None and found.id == entity and not found.includes_state


def test_a_scheduled_signal_waits_for_its_time(entity_served: client.TaskHubGrpcClient) -> None:
    c = entity_served
    entity = EntityInstanceId("counter", "later")
    c.signal_entity(entity, "add", input=1, signal_time=datetime.now(UTC) + timedelta(hours=1))
    c.signal_entity(entity, "add", input=10)
    wait_until(lambda: _state(c, entity) == 10, timeout=60, what="the immediate signal")
    found = c.get_entity(entity)
    assert found is not None and found.backlog_queue_size == 1  # the scheduled one still waits


def test_query_and_clean_entity_storage(entity_served: client.TaskHubGrpcClient) -> None:
    c = entity_served
    for key in ("q1", "q2"):
        c.signal_entity(EntityInstanceId("counter", key), "add", input=1)
    gone = EntityInstanceId("counter", "q-deleted")
    c.signal_entity(gone, "add", input=1)
    c.signal_entity(gone, "delete")

    def listed() -> list[str]:
        query = client.EntityQuery(instance_id_starts_with="@counter@q")
        return sorted(str(e.id) for e in c.get_all_entities(query) if e.get_state())

    wait_until(lambda: listed() == ["@counter@q1", "@counter@q2"], timeout=60, what="the two counters")
    wait_until(lambda: c.get_entity(gone) is None or c.get_entity(gone).backlog_queue_size == 0, timeout=60)  # type: ignore[union-attr]
    result = c.clean_entity_storage()
    assert result.empty_entities_removed >= 1
    assert c.get_entity(gone) is None
