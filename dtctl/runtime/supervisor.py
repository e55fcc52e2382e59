"""``--concurrency N``: N worker processes, restarted when they crash, drained on SIGTERM/SIGINT.

Each worker is a fresh interpreter (``python -m dtctl.runtime.worker``): nothing, and in particular no
database connection, crosses a fork, and a worker does not import the CLI.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from dtctl.errors import ExitCode
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.supervisor")

# A worker that exits with one of these cannot succeed by being restarted.
FATAL_EXIT_CODES = frozenset(
    {ExitCode.USAGE, ExitCode.NOT_FOUND, ExitCode.SCHEMA_MISMATCH, ExitCode.HUB_UNSAFE}
)
MAX_RESTART_DELAY = 30.0


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float = 0.0
    done: bool = False
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        config: WorkerConfig,
        concurrency: int,
        *,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config
        self.concurrency = concurrency
        self._notify = notify or (lambda message: log.info("%s", message))
        self._stop = threading.Event()
        self._slots = [_Slot(i) for i in range(concurrency)]

    def request_stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():  # a second Ctrl-C: stop waiting for the drain
                self._kill_all()
            self.request_stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process and s.process.poll() is None]

    def run(self) -> int:
        for slot in self._slots:
            self._start(slot)
        fatal: int | None = None
        while not self._stop.is_set():
            fatal = self._reap()
            if fatal is not None or all(s.done for s in self._slots):
                break
            self._stop.wait(0.1)
        self._shutdown()
        if fatal is not None:
            return fatal
        return ExitCode.OK

    def _start(self, slot: _Slot) -> None:
        # The config (with the hub URL, maybe a password) goes through a pipe, not argv: argv is
        # readable by every user of the machine through `ps`.
        command = [sys.executable, "-m", "dtctl.runtime.worker", "-"]
        slot.process = subprocess.Popen(command, stdin=subprocess.PIPE)
        assert slot.process.stdin is not None
        slot.process.stdin.write(self.config.to_json().encode())
        slot.process.stdin.close()
        self._notify(f"worker {slot.index} started (pid {slot.process.pid})")

    def _reap(self) -> int | None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.done:
                continue
            if slot.process is None:
                if now >= slot.restart_at:
                    self._start(slot)
                continue
            code = slot.process.poll()
            if code is None:
                continue
            slot.exit_codes.append(code)
            slot.process = None
            if code in FATAL_EXIT_CODES:
                self._notify(f"worker {slot.index} cannot run (exit {code}); stopping")
                return code
            if code == 0 and self.config.burst:
                slot.done = True
                continue
            delay = min(MAX_RESTART_DELAY, 0.5 * 2**slot.restarts)
            slot.restarts += 1
            slot.restart_at = now + delay
            self._notify(f"worker {slot.index} exited with {code}; restarting in {delay:.1f}s")
        return None

    def _shutdown(self) -> None:
        live = [s.process for s in self._slots if s.process and s.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_seconds + 5
        for process in live:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _kill_all(self) -> None:
        for slot in self._slots:
            if slot.process and slot.process.poll() is None:
                slot.process.kill()
