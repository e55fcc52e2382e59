"""The wake source of a SQLite hub where inotify is not available: a watchfiles thread.

Its polling loop (``step``) adds 2-10 ms per hint, half of the 10 ms start-to-complete latency budget.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from dtctl.hub.wakeup import WakeSource
from dtctl.hub.wakeup.event import ThreadFedWake

log = logging.getLogger("dtctl.hub")


def file_wake_source(path: Path) -> WakeSource:
    """inotify in the waiter's own wait where it works (Linux), else a watchfiles thread."""
    from dtctl.hub.wakeup.inotify import InotifyWakeup

    wakeup = InotifyWakeup.for_hub_file(path)
    if wakeup is not None:
        return wakeup
    wake = ThreadFedWake()
    return wake.fed_by(HubFileWatcher(path, wake).start().stop)


class HubFileWatcher:
    """Sets ``wake`` whenever the hub file or its -wal changes (watchfiles, in a daemon thread)."""

    def __init__(self, path: Path, wake: threading.Event) -> None:
        self._path = path.resolve()
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dtctl-hub-watch", daemon=True)

    def start(self) -> HubFileWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            import watchfiles
        except ImportError:  # a hint, not a requirement
            return
        prefix = self._path.name

        def interesting(_change: object, changed: str) -> bool:
            return Path(changed).name.startswith(prefix)

        try:
            for _ in watchfiles.watch(
                self._path.parent,
                watch_filter=interesting,
                stop_event=self._stop,
                debounce=1,
                step=5,
                yield_on_timeout=False,
                recursive=False,
                raise_interrupt=False,
            ):
                self._wake.set()
        except Exception as exc:  # the directory vanished, inotify limits: fall back to polling
            log.debug("hub watcher stopped: %s", exc)
