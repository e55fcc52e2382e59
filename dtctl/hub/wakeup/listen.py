"""The wake source of a PostgreSQL hub: a LISTEN connection, in a thread, sets it on every NOTIFY."""

from __future__ import annotations

import logging
import threading

from dtctl.hub.wakeup import WakeSource
from dtctl.hub.wakeup.event import ThreadFedWake

log = logging.getLogger("dtctl.hub")


def listen_wake_source(dsn: str, channel: str) -> WakeSource:
    """A source set on each NOTIFY on ``channel`` (and on every (re)connect: notifications were lost)."""
    wake = ThreadFedWake()
    return wake.fed_by(PostgresNotifyListener(dsn, channel, wake).start().stop)


class PostgresNotifyListener:
    """Sets ``wake`` on every NOTIFY on ``channel`` (a PostgreSQL hub's wake-up hint), in a daemon thread.

    The listener has its own connection (LISTEN holds it); when the connection drops it reconnects with
    exponential backoff and sets ``wake`` once connected again, since notifications sent meanwhile are
    lost. ``dsn`` carries the password: it is never logged (errors are logged by type only).
    """

    MIN_BACKOFF = 0.1
    MAX_BACKOFF = 5.0
    POLL = 0.5  # how often the thread looks at the stop flag while no notification comes

    def __init__(self, dsn: str, channel: str, wake: threading.Event) -> None:
        if not channel.replace("_", "").isalnum():
            raise ValueError(f"invalid NOTIFY channel {channel!r}")
        self._dsn = dsn
        self._channel = channel
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dtctl-hub-listen", daemon=True)
        self.connected = threading.Event()  # set while LISTEN is active (tests wait on it)
        self.notifications = 0
        self.connections = 0  # successful LISTENs so far (1 + reconnects)

    def start(self) -> PostgresNotifyListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the thread to end; wait up to ``timeout`` seconds for it (it ends within POLL anyway)."""
        self._stop.set()
        if timeout > 0 and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            import psycopg
        except ImportError:  # a hint, not a requirement
            return
        backoff = self.MIN_BACKOFF
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=10, application_name="dtctl-listen"
                ) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self.connections += 1
                    self.connected.set()
                    backoff = self.MIN_BACKOFF
                    self._wake.set()  # anything sent while we were not listening is lost: look now
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=self.POLL):
                            self.notifications += 1
                            self._wake.set()
                            if self._stop.is_set():
                                break
            except Exception as exc:  # the server went away, a failover: polling covers the gap
                log.debug("hub listener lost its connection (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
            if self._stop.wait(backoff):
                break
            backoff = min(self.MAX_BACKOFF, backoff * 2)
