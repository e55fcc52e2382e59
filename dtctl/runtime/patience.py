"""Waiting out transient hub faults in place, instead of exiting (a worker's patience).

A lock held past the busy timeout (or by a stopped process someone resumes), a PostgreSQL server that
restarts or cannot be reached, a full disk: each passes by itself, and a worker that exited for it
would only be restarted into the same fault, its work waiting out every lease meanwhile. The worker
retries instead, from RIDE_OUT_FIRST doubling to RIDE_OUT_MAX seconds between tries, and beats all
the while: the watchdog and the supervisor must see a worker that waits for its hub, not one that hangs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dtctl.errors import HubBusy, HubDiskFull, HubError
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.worker")

TRANSIENT_HUB_ERRORS = (HubBusy, HubDiskFull)
RIDE_OUT_FIRST = 0.1
RIDE_OUT_MAX = 5.0
BEAT_EVERY = 0.25
Beat = Callable[[str | None], None]


def pause_after(tries: int) -> float:
    return float(min(RIDE_OUT_MAX, RIDE_OUT_FIRST * 2 ** (tries - 1)))


class Outage:
    """Transient hub errors in a row, and the waits between tries.

    ``wait(seconds)`` sleeps but may return early (a wake-up); ``beat`` reports progress.
    """

    def __init__(self, beat: Beat, wait: Callable[[float], None]) -> None:
        self._beat = beat
        self._wait = wait
        self.tries = 0  # 0: the hub answers

    def ride_out(self, exc: HubError) -> None:
        """Wait before the next try, beating; logs the first failure and every 20th."""
        self.tries += 1
        if self.tries == 1 or self.tries % 20 == 0:
            log.warning("hub unavailable (%s); waiting for it (try %d)", exc.message, self.tries)
        deadline = time.monotonic() + pause_after(self.tries)
        while (left := deadline - time.monotonic()) > 0:
            self._beat(None)
            self._wait(min(left, BEAT_EVERY))

    def over(self) -> None:
        """The hub answered."""
        if self.tries:
            log.warning("hub answers again after %d tries; carrying on", self.tries)
            self.tries = 0


def open_hub_patiently(config: WorkerConfig, beat: Beat) -> TaskHub:
    """Open the hub, waiting out a transient fault (a server restarting, a lock held, a full disk)."""
    outage = Outage(beat, time.sleep)
    while True:
        try:
            hub = open_hub(config.hub, synchronous=config.synchronous)
        except TRANSIENT_HUB_ERRORS as exc:
            outage.ride_out(exc)
            continue
        outage.over()
        return hub
