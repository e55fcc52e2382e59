"""Faults beyond SIGKILL, with real `dtctl worker` processes: a crashing activity, a runaway episode.

An activity that segfaults or calls ``os._exit`` takes its whole worker process down, and an
orchestrator that never yields holds its worker's main thread for good. Neither may be charged to the
work that merely shared the process: the innocent instances complete, and only the culprit ends FAILED
as poison, with a reason naming it, visible in ``dtctl status``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED
from dtctl.hub import open_hub
from dtctl.runtime.dispatcher import POISON_ERROR_TYPE
from dtctl.runtime.watchdog import EXIT_MARGIN
from tests.helpers import (
    REPO,
    WorkerProcess,
    all_terminal,
    check_invariants,
    child_env,
    dtctl,
    json_out,
    wait_until,
)

APP = "tests/apps/faults.py:app"
INNOCENT = 10


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


@pytest.fixture
def workers(hub_path: Path, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`dtctl worker` processes (each a supervisor of real worker processes), stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _dtctl_worker(hub_path: Path, tmp_path: Path, *options: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"dtctl-worker-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "dtctl", "--hub", str(hub_path), "worker", APP, *options],
        cwd=REPO,
        env=child_env(DTCTL_LOG_LEVEL="WARNING"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _status(hub_path: Path, instance_id: str) -> dict[str, object]:
    shown: dict[str, object] = json_out(dtctl("status", instance_id, "--json", hub=hub_path))
    return shown


def _start(hub_path: Path, culprit: str, culprit_input: object) -> None:
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance(culprit, input=culprit_input, instance_id="culprit")
        for i in range(INNOCENT):
            client.start_instance("slow_chain", input=i, instance_id=f"innocent-{i}")


def _check_innocents(hub_path: Path) -> None:
    with TaskHubClient(str(hub_path)) as client:
        for i in range(INNOCENT):
            state = client.get_instance(f"innocent-{i}")
            assert state is not None and state.status == COMPLETED, state
            assert client.decode_output(state) == i + 3


@pytest.mark.parametrize(("how", "cause"), [("segfault", "SIGSEGV"), ("exit", "exit code 1")])
def test_a_crashing_activity_is_failed_alone_and_the_innocent_complete(
    hub_path: Path, tmp_path: Path, workers: list[subprocess.Popen[bytes]], how: str, cause: str
) -> None:
    _start(hub_path, "crasher", how)
    began = time.monotonic()
    workers.append(_dtctl_worker(hub_path, tmp_path, "--concurrency", "1", "--lease-seconds", "2"))
    wait_until(lambda: all_terminal(hub_path, INNOCENT + 1), timeout=120, what="every instance to finish")
    elapsed = time.monotonic() - began
    print(f"\n{how}: all {INNOCENT + 1} instances terminal after {elapsed:.1f}s")
    _check_innocents(hub_path)
    shown = _status(hub_path, "culprit")
    assert shown["status"] == FAILED
    failure = shown["failure"]
    assert isinstance(failure, dict)
    expected = (
        f"activity 'crash' crashed its isolated worker process 5 times ({cause}); it is failed as poison"
    )
    assert expected in failure["message"], failure
    check_invariants(hub_path)


def test_a_spinning_orchestrator_is_stopped_and_failed_alone(
    hub_path: Path, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    bound = 3.0
    _start(hub_path, "spinner", None)
    began = time.monotonic()
    workers.append(
        _dtctl_worker(
            hub_path, tmp_path, "--concurrency", "1", "--lease-seconds", "2", "--stall-timeout", str(bound)
        )
    )
    wait_until(lambda: all_terminal(hub_path, INNOCENT + 1), timeout=120, what="every instance to finish")
    elapsed = time.monotonic() - began
    print(f"\nspinner: all {INNOCENT + 1} instances terminal after {elapsed:.1f}s (stall timeout {bound:g}s)")
    _check_innocents(hub_path)
    shown = _status(hub_path, "culprit")
    assert shown["status"] == FAILED
    failure = shown["failure"]
    assert isinstance(failure, dict) and failure["error_type"] == POISON_ERROR_TYPE
    assert "orchestrator 'spinner'" in failure["message"], failure
    assert f"ran longer than the stall timeout ({bound:g}s)" in failure["message"], failure
    check_invariants(hub_path)


def test_sigterm_ends_a_worker_stuck_in_user_code_after_the_grace(hub_path: Path, tmp_path: Path) -> None:
    grace = 1.0
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance("spinner", instance_id="stuck")
    # A stall timeout far away: only the stop request may end it.
    worker = WorkerProcess(hub_path, APP, tmp_path / "logs", drain_seconds=grace, stall_timeout=600.0)

    def owner() -> str | None:
        with TaskHubClient(str(hub_path)) as client:
            state = client.get_instance("stuck")
            return state.lease_owner if state else None

    wait_until(lambda: f":{worker.pid}:" in (owner() or ""), what="the worker to lease the spinner")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = worker.wait(timeout=grace + EXIT_MARGIN + 10)
    took = time.monotonic() - sent
    print(f"\nSIGTERM to exit: {took:.1f}s (grace {grace:g}s)")
    assert code != 0 and took >= grace
    assert owner() is None, "the worker must give its lease back before it ends"
    assert "giving its leases back" in worker.log()


ENTITIES = [f"i{n}" for n in range(INNOCENT)]
ADDS_EACH = 12  # per wave, to every innocent entity


def _signal_wave(client: TaskHubClient) -> None:
    for _ in range(ADDS_EACH):
        for key in ENTITIES:
            client.signal_entity(f"@tally@{key}", "add", 1)


@pytest.mark.parametrize(("how", "cause"), [("segfault", "SIGSEGV"), ("exit", "exit code 1")])
def test_a_crashing_entity_operation_is_poison_alone_and_innocent_entities_apply_exactly_once(
    hub_path: Path, tmp_path: Path, workers: list[subprocess.Popen[bytes]], how: str, cause: str
) -> None:
    """The crasher's entity is leased in the same steps as ten innocent ones (their signals arrive before
    and while it crashes): every innocent operation is applied once, only the crashing call is poison,
    and the signal queued behind it on the same entity is applied."""
    client = TaskHubClient(str(hub_path))
    client.start_instance("entity_crasher", input=how, instance_id="culprit")
    _signal_wave(client)
    began = time.monotonic()
    workers.append(_dtctl_worker(hub_path, tmp_path, "--concurrency", "1", "--lease-seconds", "2"))

    def culprit_suspect() -> bool:
        entity = client.get_entity("@tally@culprit")
        return entity is not None and entity.dequeue_count >= 2

    # The second wave arrives while the crasher is a suspect: innocents share those steps too.
    wait_until(culprit_suspect, timeout=60, what="the crashing entity to be re-leased after a crash")
    _signal_wave(client)
    client.signal_entity("@tally@culprit", "add", 7)  # behind the crashing call, same entity

    def settled() -> bool:
        state = client.get_instance("culprit")
        entities = [client.get_entity(f"@tally@{key}") for key in [*ENTITIES, "culprit"]]
        drained = all(e is not None and e.backlog == 0 for e in entities)
        return drained and state is not None and state.status == COMPLETED

    wait_until(settled, timeout=120, what="the poisoned call to come back and every inbox to drain")
    elapsed = time.monotonic() - began
    print(f"\nentity {how}: poison reported and every inbox drained after {elapsed:.1f}s")
    states = {key: client.get_entity_state(f"@tally@{key}") for key in ENTITIES}
    assert states == dict.fromkeys(ENTITIES, 2 * ADDS_EACH), states
    assert client.get_entity_state("@tally@culprit") == 7
    message = client.decode_output(client.get_instance("culprit"))
    expected = (
        f"operation 'crash' on entity '@tally@culprit' crashed its isolated worker process 5 times "
        f"({cause}); it is failed as poison"
    )
    assert message == expected, message
    shown = _status(hub_path, "culprit")
    assert shown["status"] == COMPLETED and expected in str(shown["output"]), shown
    check_invariants(hub_path)
    client.close()
