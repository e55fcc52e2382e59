"""A worker process that stops making progress, or ignores a stop request, ends itself.

The worker's main thread runs every episode, so an orchestrator that never yields (``while True:
pass``) holds it for good: no lease renewed, no heartbeat, no drain on SIGTERM. The main loop calls
:meth:`Watchdog.beat` as it goes; a watchdog thread gives the worker's leases back over a connection of
its own (so the work is leasable at once) and exits the process when the main thread has not beaten for
the stall timeout, or when a requested stop has not finished within the grace period. A thread cannot
run while native code holds the GIL: for that case each beat also writes a byte to the supervisor's
progress pipe, and the supervisor kills a worker whose pipe stays silent (``supervisor``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from dtctl.errors import ExitCode

log = logging.getLogger("dtctl.worker")

# A beat reaches the supervisor's pipe at most this often (the loop may beat 10,000 times a second).
PIPE_INTERVAL = 0.5
# After the grace period, the release of the leases gets this long before the process exits anyway.
EXIT_MARGIN = 2.0


class Watchdog:
    def __init__(
        self,
        *,
        stall_timeout: float,
        grace: float,
        give_up: Callable[[], None],
        progress_fd: int | None = None,
        exit: Callable[[int], None] = os._exit,
    ) -> None:
        self._stall_timeout = stall_timeout
        self._grace = grace
        self._give_up = give_up
        self._progress_fd = progress_fd
        self._exit = exit
        self._last = time.monotonic()
        self._last_written = 0.0
        self._doing: str | None = None
        self._stop_by: float | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dtctl-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()

    def beat(self, doing: str | None = None) -> None:
        """The main loop made progress; ``doing`` names what it runs next (for the stall report)."""
        now = time.monotonic()
        self._last = now
        self._doing = doing
        if self._progress_fd is not None and now - self._last_written >= PIPE_INTERVAL:
            self._last_written = now
            # A full pipe already says "alive"; a closed one has no reader left to tell.
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(self._progress_fd, b".")

    def stopping(self) -> None:
        """A stop was requested: it must be over within the grace period, whatever the code does."""
        if self._stop_by is None:
            self._stop_by = time.monotonic() + self._grace + EXIT_MARGIN

    def _watch(self) -> None:
        tick = min(0.5, self._stall_timeout / 4)
        while not self._closed.wait(tick):
            now = time.monotonic()
            if now - self._last > self._stall_timeout:
                doing = f" ({self._doing})" if self._doing else ""
                self._end(f"no progress for {now - self._last:.1f}s{doing}, over the stall timeout")
            elif self._stop_by is not None and now > self._stop_by:
                self._end("still running after the grace period of the stop request")

    def _end(self, why: str) -> None:
        log.error("worker process ends itself: %s; giving its leases back", why)
        try:
            self._give_up()
        except Exception:
            log.exception("could not give the leases back; they expire on their own")
        self._exit(ExitCode.INTERNAL)
