"""Work that kills every SDK worker it is handed to fails as poison instead of killing them for ever.

Each SDK worker process that takes the ``crash`` activity dies holding it; its stream drops, serve gives
the lease back at once and the next SDK worker (started here, as a supervisor would) leases it again.
Once ``--max-dequeue`` SDK workers died holding it, serve fails the work itself, with the reason: an
activity's orchestration sees an ordinary activity failure and finishes; an entity's crashing operation
is consumed and the operations behind it run.
"""

from __future__ import annotations

import json
from pathlib import Path

from durabletask import client
from durabletask.entities import EntityInstanceId

from dtctl.core.history import TaskFailed
from dtctl.hub import open_hub
from tests.helpers import wait_until
from tests.serve.harness import SdkWorker, Serve
from tests.serve.test_serve_stream_drop import LEASE_SECONDS, serve_status

MAX_DEQUEUE = 3


class Supervised:
    """``dtctl serve`` with one SDK worker kept running: a dead one is replaced, as a supervisor would."""

    def __init__(self, hub: str, logs: Path) -> None:
        self.logs = logs
        args = ("--lease-seconds", str(LEASE_SECONDS), "--max-dequeue", str(MAX_DEQUEUE))
        self.serve = Serve(hub, logs, args=args)
        self.client = client.TaskHubGrpcClient(host_address=self.serve.address)
        self.workers: list[SdkWorker] = []

    def keep_one(self) -> None:
        if not self.workers or not self.workers[-1].alive():
            self.workers.append(SdkWorker(self.serve.port, self.logs))

    def crashed(self) -> int:
        return len([w for w in self.workers if not w.alive()])

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.serve.stop()


def _failures(hub_path: str, instance_id: str) -> list[TaskFailed]:
    hub = open_hub(hub_path)
    try:
        return [r.event for r in hub.get_history(instance_id) if isinstance(r.event, TaskFailed)]
    finally:
        hub.close()


def test_an_activity_that_kills_its_sdk_worker_fails_as_poison(sqlite_hub: str, tmp_path: Path) -> None:
    fleet = Supervised(sqlite_hub, tmp_path / "logs")
    c = fleet.client
    try:
        instance_id = c.schedule_new_orchestration("crashing")

        def finished() -> client.OrchestrationState | None:
            fleet.keep_one()
            state = c.get_orchestration_state(instance_id)
            done = state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
            return state if done else None

        state = wait_until(finished, timeout=120, interval=0.1, what="the instance to finish")
        output = json.loads(state.serialized_output or "")
        assert output.startswith(
            "failed: activity 'crash' was held by 3 SDK worker(s) that died or disconnected before "
            "completing it (limit 3)"
        )
        assert fleet.crashed() == MAX_DEQUEUE  # one SDK worker died per lease it was handed, no more
        assert len(_failures(sqlite_hub, instance_id)) == 1
        assert serve_status(fleet.serve)["counters"]["poisoned"] == 1
    finally:
        fleet.stop()


def test_an_entity_operation_that_kills_its_sdk_worker_fails_as_poison(
    sqlite_hub: str, tmp_path: Path
) -> None:
    fleet = Supervised(sqlite_hub, tmp_path / "logs")
    c = fleet.client
    entity = EntityInstanceId("tally", "poisoned")

    def applied() -> bool:
        fleet.keep_one()
        found = c.get_entity(entity)
        raw = None if found is None else found.get_state()
        return bool(raw) and json.loads(raw) == 5  # '' until the entity has state

    try:
        c.signal_entity(entity, "crash")
        c.signal_entity(entity, "add", input=5)
        wait_until(applied, timeout=120, interval=0.1, what="the add behind the crashing operation")
        assert fleet.crashed() == MAX_DEQUEUE
        assert serve_status(fleet.serve)["counters"]["poisoned"] == 1
    finally:
        fleet.stop()
