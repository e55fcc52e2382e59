"""Wake-up sources: what a hub hands out (``TaskHub.wake_source()``) so that a waiter leaves its wait
when work may have become visible, instead of polling faster.

Hints only shorten waits. Correctness never depends on them: every waiter also polls with backoff, so
a missed or spurious hint costs at most one poll interval.

- SQLite on Linux: the waiter's own wait watches the hub file's directory with inotify
  (:mod:`~dtctl.hub.wakeup.inotify`, ctypes, no thread): a hint arrives ~0.3 ms after a commit writes
  the WAL, and a busy waiter is not disturbed at all.
- SQLite elsewhere: a watchfiles thread sets the source (:mod:`~dtctl.hub.wakeup.filewatch`); its
  polling loop adds 2-10 ms per hint.
- PostgreSQL: a LISTEN connection in a thread sets the source on NOTIFY
  (:mod:`~dtctl.hub.wakeup.listen`).

This module only defines the protocol and the trailing-look schedule; it imports no thread machinery
(the implementations are imported when a hub hands a source out).
"""

from __future__ import annotations

from typing import Protocol

# A file hint comes when a commit writes the WAL, before it is synced (0.2-2 ms with synchronous=FULL)
# and visible. After a wake-up a waiter looks again at these delays (seconds); a look while nobody
# commits costs a few µs.
TRAILING_LOOKS = (0.0003, 0.0003, 0.0004, 0.0005, 0.001)


class WakeSource(Protocol):
    """An event a waiter sleeps on; ``set`` by its own threads, and by the hub when work may be visible.

    ``set`` may be called from any thread and from a signal handler. ``before_look`` is called right
    before the waiter reads the hub: changes seen so far are in that read, so only later ones wake it.
    ``trailing_looks`` are the delays at which a woken waiter that found nothing looks again (a hint
    can precede the commit's visibility). After ``close`` the source never blocks.
    """

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool:
        """Until ``set``, a hint, or ``timeout`` seconds; True unless it timed out."""
        ...

    def before_look(self) -> None: ...

    def trailing_looks(self) -> tuple[float, ...]: ...

    def close(self) -> None: ...


class HintedWait:
    """Waits on a source, looking again at its trailing delays after each wake-up.

    For a loop that reads the hub, and while the answer is "not yet", calls :meth:`wait` with its
    backoff poll interval.
    """

    def __init__(self, source: WakeSource) -> None:
        self.source = source
        self._looks = source.trailing_looks()
        self._next = len(self._looks)  # no wake-up yet: no trailing look

    def wait(self, timeout: float) -> bool:
        """Sleep at most ``timeout`` (less while trailing looks are due); True when woken early."""
        if self._next < len(self._looks):
            timeout = min(timeout, self._looks[self._next])
            self._next += 1
        woken = self.source.wait(timeout)
        self.source.clear()
        if woken:
            self._next = 0
        return woken
