"""A worker process's life around its loop: signal handlers, the run and its exits, and giving the
leases back when the process ends in a way it controls (:func:`dtctl.runtime.worker.main` uses these)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Protocol

from dtctl.errors import DtctlError, ExitCode
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.watchdog import Watchdog

log = logging.getLogger("dtctl.worker")


class Worker(Protocol):
    """What the process needs of :class:`dtctl.runtime.worker.Worker`."""

    worker_id: str

    def run(self) -> int: ...

    def request_stop(self) -> None: ...


def install_signal_handlers(worker: Worker, watchdog: Watchdog) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        watchdog.stopping()  # whatever the main thread is running, the process ends after the grace
        worker.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def serve(config: WorkerConfig, worker: Worker, watchdog: Watchdog, hub: TaskHub) -> int:
    install_signal_handlers(worker, watchdog)
    watchdog.start()
    try:
        return worker.run()
    except DtctlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        give_back_on_exit(config, worker.worker_id)
        return exc.exit_code
    except Exception:
        log.exception("worker %s failed; giving its leases back", worker.worker_id)
        give_back_on_exit(config, worker.worker_id)
        return ExitCode.INTERNAL
    finally:
        watchdog.close()
        hub.close()


def give_leases_back(config: WorkerConfig, worker_id: str) -> None:
    """From the watchdog thread: a connection of its own (the main thread's is busy in user code)."""
    hub = open_hub(config.hub, synchronous=config.synchronous)
    try:
        released = hub.release_leases(worker_id)
        hub.remove_worker(worker_id)
        log.error("released %d leases", released)
    finally:
        hub.close()


def give_back_on_exit(config: WorkerConfig, worker_id: str) -> None:
    """An exit the worker controls gives its leases back, so its work need not wait out the lease."""
    try:
        give_leases_back(config, worker_id)
    except DtctlError as exc:
        log.warning("could not give the leases back (%s); they expire on their own", exc.message)


def exit_now(code: int) -> None:
    # An activity still running after the drain must not keep the process alive (pool threads are
    # joined at interpreter exit): its lease is already released, so another worker will run it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
