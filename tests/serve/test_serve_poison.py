"""Work that kills every SDK worker it is handed to fails as poison instead of killing them for ever.

Each SDK worker process that takes the ``crash`` activity dies holding it; its stream drops, serve gives
the lease back at once and the next SDK worker (started here, as a supervisor would) leases it again.
Once ``--max-dequeue`` SDK workers died holding it, serve fails the work itself, with the reason: an
activity's orchestration sees an ordinary activity failure and finishes; an entity's crashing operation
is consumed and the operations behind it run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from durabletask import client
from durabletask.entities import EntityInstanceId

from dtctl.core.history import TaskFailed
from dtctl.hub import open_hub
from tests.helpers import wait_until
from tests.serve.harness import SdkWorker, Serve
from tests.serve.test_serve_stream_drop import LEASE_SECONDS, serve_status

MAX_DEQUEUE = 3


def _failures(hub_path: str, instance_id: str) -> list[TaskFailed]:
    hub = open_hub(hub_path)
    try:
        return [r.event for r in hub.get_history(instance_id) if isinstance(r.event, TaskFailed)]
    finally:
        hub.close()


def test_an_activity_that_kills_its_sdk_worker_fails_as_poison(sqlite_hub: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    args = ("--lease-seconds", str(LEASE_SECONDS), "--max-dequeue", str(MAX_DEQUEUE))
    serve = Serve(sqlite_hub, logs, args=args)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    workers: list[SdkWorker] = []
    try:
        instance_id = c.schedule_new_orchestration("crashing")
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline:
            if not workers or not workers[-1].alive():
                workers.append(SdkWorker(serve.port, logs))  # a supervisor's restart
            state = c.get_orchestration_state(instance_id)
            if state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED:
                break
            time.sleep(0.1)
        assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED, serve.log()
        output = json.loads(state.serialized_output or "")
        assert output.startswith(
            "failed: activity 'crash' was held by 3 SDK worker(s) that died or disconnected before "
            "completing it (limit 3)"
        )
        crashed = [w for w in workers if not w.alive()]
        assert len(crashed) == MAX_DEQUEUE  # one SDK worker died per lease it was handed, no more
        assert len(_failures(sqlite_hub, instance_id)) == 1
        assert serve_status(serve)["counters"]["poisoned"] == 1
    finally:
        for worker in workers:
            worker.stop()
        serve.stop()


def test_an_entity_operation_that_kills_its_sdk_worker_fails_as_poison(
    sqlite_hub: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    args = ("--lease-seconds", str(LEASE_SECONDS), "--max-dequeue", str(MAX_DEQUEUE))
    serve = Serve(sqlite_hub, logs, args=args)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    workers: list[SdkWorker] = []
    entity = EntityInstanceId("tally", "poisoned")

    def applied() -> bool:
        if not workers or not workers[-1].alive():
            workers.append(SdkWorker(serve.port, logs))  # a supervisor's restart
        found = c.get_entity(entity)
        raw = None if found is None else found.get_state()
        return bool(raw) and json.loads(raw) == 5  # '' until the entity has state

    try:
        c.signal_entity(entity, "crash")
        c.signal_entity(entity, "add", input=5)
        wait_until(applied, timeout=120, interval=0.1, what="the add behind the crashing operation")
        assert len([w for w in workers if not w.alive()]) == MAX_DEQUEUE
        assert serve_status(serve)["counters"]["poisoned"] == 1
    finally:
        for worker in workers:
            worker.stop()
        serve.stop()
