"""Wake sources built on :class:`threading.Event`: one woken only by ``set`` (no hints), and one that a
helper thread (a file watcher, a LISTEN connection) also sets."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dtctl.hub.wakeup import TRAILING_LOOKS


class EventWake(threading.Event):
    """A :class:`~dtctl.hub.wakeup.WakeSource` that only ``set`` wakes: waiters poll for hub changes."""

    def before_look(self) -> None:
        """Nothing queues up between looks here."""

    def trailing_looks(self) -> tuple[float, ...]:
        return TRAILING_LOOKS

    def close(self) -> None:
        self.set()  # a closed source never blocks


class ThreadFedWake(EventWake):
    """An :class:`EventWake` that a helper thread sets on hints; ``close`` stops that thread."""

    def __init__(self) -> None:
        super().__init__()
        self._stop_feeding: Callable[[], None] = lambda: None

    def fed_by(self, stop: Callable[[], None]) -> ThreadFedWake:
        """Remember how to stop the thread that sets this source."""
        self._stop_feeding = stop
        return self

    def close(self) -> None:
        self._stop_feeding()
        super().close()
