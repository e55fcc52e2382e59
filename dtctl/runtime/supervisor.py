"""``--concurrency N``: N worker processes, restarted when they crash, drained on SIGTERM/SIGINT.

Each worker is a fresh interpreter (``python -m dtctl.runtime.worker``): nothing, and in particular no
database connection, crosses a fork, and a worker does not import the CLI.

Each worker also gets the write end of a progress pipe, where its main loop writes a byte now and then.
A worker whose pipe stays silent for the stall timeout (plus a margin, so the worker's own watchdog can
first give its leases back) is stuck where no thread of its own can act, and is SIGKILLed; its items
come back as suspects and are run alone (``isolation``). A crashed worker is restarted after a delay
that doubles with each short-lived run and starts again from the shortest after a healthy one.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType

from dtctl.errors import ExitCode
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.supervisor")

# A worker that exits with one of these cannot succeed by being restarted.
FATAL_EXIT_CODES = frozenset(
    {ExitCode.USAGE, ExitCode.NOT_FOUND, ExitCode.SCHEMA_MISMATCH, ExitCode.HUB_UNSAFE}
)
MIN_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
# A run at least this long was healthy: the next crash is restarted after MIN_RESTART_DELAY again. As
# long as the longest delay: a crash loop (runs of a few seconds) keeps backing off, while workers that
# crash now and then (an activity taking its process down) always come back quickly.
HEALTHY_RUN_SECONDS = MAX_RESTART_DELAY
# The worker's own watchdog acts at the stall timeout; the supervisor kills after this margin more.
STALL_KILL_MARGIN = 5.0
# Before its first beat a worker imports the app and opens the hub: allow this much more for that.
STARTUP_ALLOWANCE = 30.0


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float = 0.0
    started_at: float = 0.0
    progress_fd: int | None = None  # the read end of this worker's progress pipe
    progress_at: float | None = None  # when its last beat arrived (None: none yet)
    done: bool = False
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        config: WorkerConfig,
        concurrency: int,
        *,
        notify: Callable[[str], None] | None = None,
        healthy_after: float = HEALTHY_RUN_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config
        self.concurrency = concurrency
        self._notify = notify or (lambda message: log.info("%s", message))
        self._healthy_after = healthy_after
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
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)  # a worker never waits for the supervisor to read
        try:
            slot.process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(write_end,))
        finally:
            os.close(write_end)
        slot.progress_fd, slot.progress_at = read_end, None
        slot.started_at = time.monotonic()
        assert slot.process.stdin is not None
        # Each process serves its own /metrics: process i on metrics_port + i (dtctl.observe.metrics).
        metrics_port = self.config.metrics_port and self.config.metrics_port + slot.index
        own = replace(self.config, progress_fd=write_end, metrics_port=metrics_port)
        slot.process.stdin.write(own.to_json().encode())
        slot.process.stdin.close()
        self._notify(f"worker {slot.index} started (pid {slot.process.pid})")

    def _check_progress(self, slot: _Slot, now: float) -> None:
        """SIGKILL a worker whose main loop has been silent past the stall timeout."""
        assert slot.process is not None and slot.progress_fd is not None
        try:
            while os.read(slot.progress_fd, 4096):
                slot.progress_at = now
        except BlockingIOError:
            pass
        bound = self.config.stall_timeout + STALL_KILL_MARGIN
        since = slot.progress_at if slot.progress_at is not None else slot.started_at + STARTUP_ALLOWANCE
        if now - since > bound and slot.process.poll() is None:
            self._notify(
                f"worker {slot.index} (pid {slot.process.pid}) made no progress for {now - since:.0f}s "
                f"(stall timeout {self.config.stall_timeout:g}s); killing it"
            )
            slot.process.kill()

    def _close_progress(self, slot: _Slot) -> None:
        if slot.progress_fd is not None:
            os.close(slot.progress_fd)
            slot.progress_fd = None

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
                self._check_progress(slot, now)
                continue
            slot.exit_codes.append(code)
            slot.process = None
            self._close_progress(slot)
            if code in FATAL_EXIT_CODES:
                self._notify(f"worker {slot.index} cannot run (exit {code}); stopping")
                return code
            if code == 0 and self.config.burst:
                slot.done = True
                continue
            if now - slot.started_at >= self._healthy_after:
                slot.restarts = 0  # a healthy run: this crash is not part of a crash loop
            delay = min(MAX_RESTART_DELAY, MIN_RESTART_DELAY * 2**slot.restarts)
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
        for slot in self._slots:
            self._close_progress(slot)

    def _kill_all(self) -> None:
        for slot in self._slots:
            if slot.process and slot.process.poll() is None:
                slot.process.kill()
