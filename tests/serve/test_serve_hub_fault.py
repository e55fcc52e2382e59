"""The hub fails a commit round of ``dtctl serve`` (busy past its timeout): nothing is lost or held.

A real process holds the SQLite hub's write lock while the SDK completes an episode, so serve's round
fails after the busy timeout and its transaction rolls back. The SDK was already told the completion
was taken, so serve must apply it later: it tries the round's completions again once the hub answers,
and the instance finishes on the same SDK worker, well before the (long) lease could expire and have
the episode run again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from durabletask import client

from tests.helpers import wait_until
from tests.serve.harness import SdkWorker, Serve
from tests.serve.test_serve_stream_drop import LEASE_SECONDS, _tasks

FAILED_ROUND = "commit round of 1 completion(s) failed"


def test_a_failed_commit_round_is_tried_again(sqlite_hub: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", str(LEASE_SECONDS)))
    worker = SdkWorker(serve.port, logs)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    gate = tmp_path / "gate"
    blocker = sqlite3.connect(sqlite_hub, isolation_level=None)
    try:
        instance_id = c.schedule_new_orchestration("held", input=str(gate))
        wait_until(Path(f"{gate}.entered").exists, timeout=60, what="the SDK to hold the episode")
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held past serve's busy timeout
        gate.touch()
        wait_until(lambda: FAILED_ROUND in serve.log(), timeout=60, what="serve's commit round to fail")
        blocker.execute("ROLLBACK")
        started = time.monotonic()
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        assert time.monotonic() - started < 60 < LEASE_SECONDS  # not a rescue by lease expiry
        assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
        assert json.loads(state.serialized_output or "") == "Hello held!"
        assert _tasks(sqlite_hub, instance_id) == ([1], [1])
        assert worker.alive()
    finally:
        blocker.close()
        worker.stop()
        serve.stop()
