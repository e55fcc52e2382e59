"""Kill a process while an SDK entity batch is in flight: every operation is applied exactly once.

A ``tally`` counter receives N increments; the first, ``add_slow``, holds its batch in the SDK worker
until a gate file exists. Then the SDK worker (its stream drops: serve gives the entity's lease back at
once) or ``dtctl serve`` itself (its lease expires) is SIGKILLed. The batch runs again on the next
owner, and the counter ends at exactly N: the first run's results were never committed, the second run's
were committed once, fenced by its lease token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from durabletask import client
from durabletask.entities import EntityInstanceId

from tests.helpers import dtctl, json_out, wait_until
from tests.serve.conftest import make_hub
from tests.serve.harness import SdkWorker, Serve

LEASE = "2"
N = 12

pytestmark = pytest.mark.timeout(240)


def _settled(hub: str, entity: EntityInstanceId) -> dict[str, object]:
    return dict(json_out(dtctl("--hub", hub, "entity", "show", str(entity), "--json")))


def _signal_all(c: client.TaskHubGrpcClient, entity: EntityInstanceId, gate: Path) -> None:
    c.signal_entity(entity, "add_slow", input=str(gate))
    for _ in range(N - 1):
        c.signal_entity(entity, "add", input=1)


def _check_exactly_once(hub: str, entity: EntityInstanceId, runs: Path) -> None:
    def done() -> bool:
        shown = _settled(hub, entity)
        return shown["backlog"] == 0 and shown["lease_owner"] is None

    wait_until(done, timeout=120, interval=0.3, what="the counter's inbox to drain")
    assert _settled(hub, entity)["state"] == N
    slow_runs = len(list(runs.glob("op.add_slow.*")))
    assert slow_runs >= 2, "the held batch was never run again"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_sdk_worker_holding_an_entity_batch(backend: str, tmp_path: Path) -> None:
    hub = make_hub(backend, tmp_path)
    logs, runs, gate = tmp_path / "logs", tmp_path / "runs", tmp_path / "gate"
    runs.mkdir()
    serve = Serve(hub, logs, args=("--lease-seconds", LEASE))
    first = SdkWorker(serve.port, logs, COUNT_DIR=runs)
    second = None
    c = client.TaskHubGrpcClient(host_address=serve.address)
    entity = EntityInstanceId("tally", "crash-worker")
    try:
        _signal_all(c, entity, gate)
        wait_until(lambda: Path(f"{gate}.entered").exists(), timeout=60, what="the batch held by the SDK")
        first.kill()
        gate.touch()
        second = SdkWorker(serve.port, logs, COUNT_DIR=runs)
        _check_exactly_once(hub, entity, runs)
        found = c.get_entity(entity)
        assert found is not None and json.loads(found.get_state() or "null") == N
    finally:
        if second is not None:
            second.stop()
        first.stop()
        serve.stop()


def test_sigkill_serve_mid_entity_batch(sqlite_hub: str, tmp_path: Path) -> None:
    logs, runs, gate = tmp_path / "logs", tmp_path / "runs", tmp_path / "gate"
    runs.mkdir()
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", LEASE))
    worker = SdkWorker(serve.port, logs, COUNT_DIR=runs)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    entity = EntityInstanceId("tally", "crash-serve")
    restarted = None
    try:
        _signal_all(c, entity, gate)
        wait_until(lambda: Path(f"{gate}.entered").exists(), timeout=60, what="the batch held by the SDK")
        serve.kill()
        restarted = Serve(sqlite_hub, logs, port=serve.port, args=("--lease-seconds", LEASE))
        gate.touch()  # the first run finishes now; its completion reaches a serve that never leased it
        _check_exactly_once(sqlite_hub, entity, runs)
    finally:
        worker.stop()
        if restarted is not None:
            restarted.stop()
        serve.stop()
