"""Entities are exactly-once under crashes: real worker processes SIGKILLed at random and at the entity
fault points while operations flow.

- A counter gets ``add 1`` from client signals and from orchestration calls, interleaved, while workers
  die: its final state is exactly the number of operations sent.
- Transfers between accounts run under ``lock_entities`` while workers die: the total balance does not
  change, every transfer completes, and no lock is left held.

The full-size runs (2,000 operations, 200 transfers) are ``slow``; smaller ones always run.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, all_instances, check_invariants, wait_until

APP = "tests/apps/entities.py:app"
ENTITY_FAULTS = ["entity.leased", "entity.ran", "entity.before_commit", "entity.after_commit"]
LEASE = 1.0


class KillingPool:
    """Two worker processes; :meth:`churn` SIGKILLs one at random (or one armed at an entity fault point
    dies by itself) and starts a replacement, so work is always taken over after a lease expires."""

    def __init__(self, hub: Path, logs: Path, seed: int) -> None:
        self.hub, self.logs = hub, logs
        self.random = random.Random(seed)
        self.killed = 0
        self.fault_deaths = 0
        self.workers = [self._start(None), self._start(self._fault())]

    def _fault(self) -> str:
        return f"{self.random.choice(ENTITY_FAULTS)}@{self.random.randint(1, 6)}"

    def _start(self, fault: str | None) -> WorkerProcess:
        return WorkerProcess(self.hub, APP, self.logs, fault=fault, lease_seconds=LEASE, max_dequeue=50)

    def churn(self) -> None:
        for n, worker in enumerate(self.workers):
            if not worker.alive():
                code = worker.wait()
                assert code == -signal.SIGKILL, worker.log()  # only fault points end a worker here
                self.fault_deaths += 1
                self.workers[n] = self._start(self._fault())
        if self.random.random() < 0.5:
            n = self.random.randrange(len(self.workers))
            self.workers[n].kill()
            self.killed += 1
            self.workers[n] = self._start(self._fault() if self.random.random() < 0.5 else None)

    def calm(self) -> None:
        """Replace every worker by a clean one that is left alone to finish the work."""
        for worker in self.workers:
            worker.kill()
        self.workers = [self._start(None), self._start(None)]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _run_with_kills(pool: KillingPool, feed: Callable[[int], bool], rounds_min: int) -> None:
    """Call ``feed(round)`` until it says it is done (and at least ``rounds_min`` rounds), killing
    workers between rounds; then let clean workers finish."""
    round_no = 0
    while feed(round_no) or round_no < rounds_min:
        pool.churn()
        time.sleep(pool.random.uniform(0.05, 0.4))  # the kill schedule, not synchronisation
        round_no += 1
    pool.calm()


def _counter_exactly_once(tmp_path: Path, total: int, orchestrations: int, seed: int) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    calls_each = total // 2 // orchestrations
    signals = total - calls_each * orchestrations
    pool = KillingPool(hub, tmp_path / "logs", seed)
    client = TaskHubClient(str(hub))
    started = 0
    sent = 0
    per_round = max(1, signals // 10)

    def feed(_round: int) -> bool:
        nonlocal started, sent
        if started < orchestrations:
            job = {"key": "c", "count": calls_each}
            client.start_instance("add_calls", input=job, instance_id=f"calls-{started}")
            started += 1
        batch = min(per_round, signals - sent)
        for _ in range(batch):
            client.signal_entity("@counter@c", "add", 1)
        sent += batch
        return started < orchestrations or sent < signals

    try:
        _run_with_kills(pool, feed, rounds_min=6)

        def settled() -> bool:
            entity = client.get_entity("@counter@c")
            done = all(i.status == COMPLETED for i in all_instances(client.hub))
            return done and entity is not None and entity.backlog == 0

        wait_until(settled, timeout=120, what="every call and signal to be applied")
    finally:
        pool.stop()
    assert client.get_entity_state("@counter@c") == total
    assert pool.killed + pool.fault_deaths >= 3, "the test must actually kill workers"
    check_invariants(hub)
    client.close()


def _transfers_keep_the_total(tmp_path: Path, accounts: int, transfers: int, seed: int) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    rng = random.Random(seed)
    client = TaskHubClient(str(hub))
    for n in range(accounts):
        client.signal_entity(f"@account@a{n}", "deposit", 1000)
    pool = KillingPool(hub, tmp_path / "logs", seed)
    started = 0
    per_round = max(1, transfers // 8)

    def feed(_round: int) -> bool:
        nonlocal started
        for _ in range(min(per_round, transfers - started)):
            source, target = rng.sample(range(accounts), 2)
            order = {"source": f"a{source}", "target": f"a{target}", "amount": rng.randint(1, 400)}
            client.start_instance("transfer", input=order, instance_id=f"t-{started}")
            started += 1
        return started < transfers

    try:
        _run_with_kills(pool, feed, rounds_min=6)

        def settled() -> bool:
            if not all(i.status == COMPLETED for i in all_instances(client.hub)):
                return False
            return all(e.lock is None and e.backlog == 0 for e in client.iter_entities())

        wait_until(settled, timeout=180, what="every transfer to finish and every lock to be released")
    finally:
        pool.stop()
    balances = [client.get_entity_state(f"@account@a{n}") for n in range(accounts)]
    assert sum(balances) == 1000 * accounts, balances
    assert all(b >= 0 for b in balances), balances
    outputs = {client.decode_output(i) for i in all_instances(client.hub)}
    assert outputs <= {"moved", "refused"} and "moved" in outputs
    check_invariants(hub)
    client.close()


def test_counter_exactly_once_small(tmp_path: Path) -> None:
    _counter_exactly_once(tmp_path, total=300, orchestrations=5, seed=1)


def test_transfers_keep_the_total_small(tmp_path: Path) -> None:
    _transfers_keep_the_total(tmp_path, accounts=4, transfers=30, seed=2)


@pytest.mark.slow
def test_counter_exactly_once_2000(tmp_path: Path) -> None:
    _counter_exactly_once(tmp_path, total=2000, orchestrations=20, seed=3)


@pytest.mark.slow
def test_transfers_keep_the_total_200(tmp_path: Path) -> None:
    _transfers_keep_the_total(tmp_path, accounts=10, transfers=200, seed=4)


@pytest.mark.parametrize("isolate", [True, False])
def test_an_operation_that_kills_its_worker_becomes_poison_and_the_rest_flows(
    tmp_path: Path, isolate: bool
) -> None:
    """The first lease of the entity dies with its worker; re-leased, it gets one message at a time.
    With isolation that message runs in a child and its crash is judged there (the worker lives on);
    without, each lease dies with its worker and past the lease limit the call is consumed. Either way
    the killing call becomes poison: its caller gets the failure, the signals queued behind it apply."""
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    client = TaskHubClient(str(hub))
    client.signal_entity("@counter@p", "add", 1)
    client.start_instance("call_crash", input="p", instance_id="crash")
    deaths = 0

    def start() -> WorkerProcess:
        return WorkerProcess(
            hub, APP, tmp_path / "logs", lease_seconds=LEASE, max_dequeue=1, isolate_suspects=isolate
        )

    worker = start()
    try:
        wait_until(lambda: client.get_entity("@counter@p") is not None, what="the call to reach the entity")
        client.signal_entity("@counter@p", "add", 10)  # behind the crashing call

        def finished() -> bool:
            nonlocal worker, deaths
            if not worker.alive():
                assert worker.wait() == 3, worker.log()  # os._exit(3) in the entity operation
                deaths += 1
                worker = start()
            state = client.get_instance("crash")
            return state is not None and state.status == COMPLETED

        wait_until(finished, timeout=120, what="the poisoned call to come back")
    finally:
        worker.stop()
    message = client.decode_output(client.get_instance("crash"))
    assert "poison" in message and "operation 'crash' on entity '@counter@p'" in message, message
    if isolate:
        assert "crashed its isolated worker process 1 times (exit code 3)" in message, message
        assert deaths == 1  # only the unisolated first lease took the worker down
    else:
        assert "was leased 2 times (limit 1)" in message, message
        assert deaths == 1
    wait_until(lambda: client.get_entity_state("@counter@p") == 11, what="the signals around it")
    client.close()
