"""One worker process: lease work, run it, commit it; drain on SIGTERM/SIGINT.

The main thread owns the hub connection and does every read and write; activity threads only compute
and hand results back through a queue. One loop iteration is a *step*: commit finished activity results
(one transaction), lease activities for free slots, lease orchestrations and run their episodes, and
checkpoint all of them (one transaction). A result is acknowledged only by the commit that stores it.

Run as ``python -m dtctl.runtime.worker CONFIG_JSON`` (the supervisor does this for each process).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from types import FrameType

from dtctl.core.app import App
from dtctl.core.decision import Decision
from dtctl.errors import DtctlError, ExitCode, HubError
from dtctl.faults import fault_point
from dtctl.hub import open_hub
from dtctl.hub.base import ActivityResult, OrchestrationWorkItem, TaskHub, WorkerInfo
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.dispatcher import ActivityPool, EpisodeRunner, poison_result
from dtctl.runtime.loader import load_app
from dtctl.runtime.wake import HubFileWatcher

log = logging.getLogger("dtctl.worker")

BUSY_POLL = 0.002


def _monotonic() -> float:
    return time.monotonic()


class Worker:
    def __init__(self, config: WorkerConfig, app: App, hub: TaskHub, *, worker_id: str | None = None) -> None:
        self.config = config.resolved()
        self.app = app
        self.hub = hub
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._results: queue.SimpleQueue[ActivityResult] = queue.SimpleQueue()
        self._episodes = EpisodeRunner(app, hub, max_dequeue=self.config.max_dequeue)
        self._pool = ActivityPool(app, self.config.max_activities, self._activity_done)
        self._orchestration_names = tuple(app.orchestrators)
        self._activity_names = tuple(app.activities)
        self._started_at = hub.now()
        self._next_heartbeat = 0.0
        self._next_renewal = 0.0
        self._watcher: HubFileWatcher | None = None
        self.episodes_run = 0
        self.activities_run = 0

    # --- control ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _activity_done(self, result: ActivityResult) -> None:
        self._results.put(result)
        self._wake.set()

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        path = self.hub.watch_path()
        if path is not None:
            self._watcher = HubFileWatcher(path, self._wake).start()
        idle_rounds = 0
        try:
            while not self._stopping.is_set():
                self._housekeeping()
                if self.step():
                    idle_rounds = 0
                    continue
                if self.config.burst and self._drained():
                    break
                idle_rounds += 1
                self._wait(idle_rounds)
            self._drain()
        finally:
            if self._watcher:
                self._watcher.stop()
            self._pool.shutdown()
        return ExitCode.OK

    def step(self) -> bool:
        """One round of work; True when anything was done."""
        worked = self._commit_activity_results()
        if not self._stopping.is_set():
            worked |= self._lease_activities()
            worked |= self._run_episodes()
        return worked

    def _wait(self, idle_rounds: int) -> None:
        timeout = self.config.idle_poll_max
        if self._pool.inflight():
            timeout = min(timeout, 0.05)
        timeout = min(timeout, BUSY_POLL * (2 ** min(idle_rounds, 12)))
        self._wake.wait(timeout)
        self._wake.clear()

    def _drained(self) -> bool:
        return not self._pool.inflight() and self._results.empty()

    # --- activities ------------------------------------------------------------------------------------

    def _commit_activity_results(self) -> bool:
        results: list[ActivityResult] = []
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                break
        if not results:
            return False
        fault_point("activity.ran")
        accepted = self.hub.complete_activities(results)
        for result, ok in zip(results, accepted, strict=True):
            if not ok:
                log.warning(
                    "result of activity %s (instance %s, task %d) was refused: its lease was lost",
                    result.item.name,
                    result.item.instance_id,
                    result.item.task_id,
                )
        self.activities_run += len(results)
        return True

    def _lease_activities(self) -> bool:
        free = self._pool.free_slots
        if free <= 0 or not self._activity_names:
            return False
        items = self.hub.lease_activities(
            self.worker_id, self._activity_names, limit=free, lease_seconds=self.config.lease_seconds
        )
        fault_point("activity.leased")
        for item in items:
            if item.dequeue_count > self.config.max_dequeue:
                self._results.put(poison_result(item, self.config.max_dequeue))
            else:
                self._pool.submit(item)
        return bool(items)

    # --- orchestrations ----------------------------------------------------------------------------------

    def _run_episodes(self) -> bool:
        if not self._orchestration_names:
            return False
        items = self.hub.lease_orchestrations(
            self.worker_id,
            self._orchestration_names,
            limit=self.config.max_orchestrations,
            lease_seconds=self.config.lease_seconds,
        )
        if not items:
            return False
        fault_point("orchestration.leased")
        batch: list[tuple[OrchestrationWorkItem, Decision]] = []
        for item in items:
            decision = self._decide(item)
            if decision is not None:
                batch.append((item, decision))
        if batch:
            fault_point("episode.before_checkpoint")
            for outcome in self.hub.checkpoint(batch):
                self._episodes.settled(outcome.instance_id, outcome.committed)
                if not outcome.committed:
                    log.warning("checkpoint of %s refused: %s", outcome.instance_id, outcome.reason)
        self.episodes_run += len(batch)
        return True

    def _decide(self, item: OrchestrationWorkItem) -> Decision | None:
        try:
            return self._episodes.decide(item)
        except Exception:
            # An infrastructure error (or a bug) must never write a partial history: give the item
            # back; the dequeue count turns a repeating failure into a poison failure.
            log.exception("episode of %s failed; abandoning the work item", item.instance_id)
            self._episodes.forget(item.instance_id)
            self.hub.abandon_orchestration(item)
            return None

    # --- housekeeping ------------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = _monotonic()
        if now >= self._next_renewal:
            self._next_renewal = now + self.config.lease_seconds / 3
            inflight = self._pool.inflight()
            if inflight:
                _, lost = self.hub.renew_leases([], inflight, self.config.lease_seconds)
                for task_id in lost:
                    log.warning("lease of activity task %s was lost; its result will be refused", task_id)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_seconds
            self.hub.heartbeat(self.info())

    def info(self) -> WorkerInfo:
        inflight = len(self._pool.inflight())
        return WorkerInfo(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=self.hub.now(),
            orchestrations=self._orchestration_names,
            activities=self._activity_names,
            max_orchestrations=self.config.max_orchestrations,
            max_activities=self.config.max_activities,
            inflight_activities=inflight,
        )

    def _drain(self) -> None:
        """Finish in-flight activities within the grace period, then give every lease back at once."""
        deadline = _monotonic() + self.config.drain_seconds
        while self._pool.inflight() and _monotonic() < deadline:
            self._wake.wait(0.05)
            self._wake.clear()
            self._commit_activity_results()
        self._commit_activity_results()
        released = self.hub.release_leases(self.worker_id)
        if released:
            log.info("released %d leases", released)
        self.hub.remove_worker(self.worker_id)


# --- process entry point -------------------------------------------------------------------------------


def _install_signal_handlers(worker: Worker) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        worker.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=os.environ.get("DTCTL_LOG_LEVEL", "WARNING").upper(),
        format=f"%(asctime)s worker[{os.getpid()}] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if len(args) != 1:
        print("usage: python -m dtctl.runtime.worker CONFIG_JSON", file=sys.stderr)
        return ExitCode.USAGE
    config = WorkerConfig.from_json(args[0])
    try:
        app = load_app(config.app)
        hub = open_hub(config.hub, synchronous=config.synchronous)
    except DtctlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    worker = Worker(config, app, hub)
    _install_signal_handlers(worker)
    try:
        return worker.run()
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    finally:
        hub.close()


def _exit_now(code: int) -> None:
    # An activity still running after the drain must not keep the process alive (pool threads are
    # joined at interpreter exit): its lease is already released, so another worker will run it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
