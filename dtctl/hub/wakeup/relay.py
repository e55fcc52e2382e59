"""A thread that turns a hub's wake-up hints into a ``threading.Event`` set for code that waits on one.

For servers (``dtctl serve``, ``dtctl dashboard``) whose waiters are threads or an event loop rather than
one loop of their own: the source's wait runs in a daemon thread (on Linux it is that thread's own
inotify wait), and each hint sets ``wake``. Hints only shorten waits; the waiters still poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dtctl.hub.wakeup import WakeSource


def relay(source: WakeSource, wake: threading.Event, *, name: str = "dtctl-wake-relay") -> Callable[[], None]:
    """Start relaying hints from ``source`` into ``wake``; returns the function that stops it."""
    stopped = threading.Event()

    def run() -> None:
        while not stopped.is_set():
            if source.wait(1.0):
                source.clear()
                wake.set()

    threading.Thread(target=run, name=name, daemon=True).start()

    def stop() -> None:
        stopped.set()
        source.close()

    return stop
