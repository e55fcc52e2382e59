"""Wake-up hints for idle workers: a change to the hub file means new work may be visible.

Hints only shorten waits. Correctness never depends on them: the worker polls with backoff anyway,
so a missed or spurious hint costs at most one poll interval.

On Linux the worker's own wait watches the hub file's directory with inotify (:class:`InotifyWakeup`,
ctypes, no thread): a hint reaches a waiting worker ~0.3 ms after a commit writes the WAL, and a busy
worker is not disturbed at all (events queue up in the kernel and are dropped before it next looks).
Elsewhere a watchfiles thread sets the worker's event (:class:`HubFileWatcher`); its polling loop
(``step``) adds 2-10 ms per hint, half of the 10 ms start-to-complete latency budget (DESIGN §10).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import struct
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("dtctl.worker")

# inotify(7)
_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ_SIZE = 64 * 1024


class InotifyWakeup(threading.Event):
    """The worker's wake-up event, which a waiting worker also leaves when the hub file changes.

    ``set`` (a finished activity, a NOTIFY, a stop request) writes to a pipe; ``wait`` selects on that
    pipe and on an inotify descriptor watching the hub's directory, in the waiting thread itself. So a
    hint costs one system call in the worker's own thread, and nothing while the worker is busy.
    ``drain`` drops queued changes: the worker calls it before it looks at the hub, so only changes
    after its look wake it. Create it with :meth:`for_hub_file` (None where inotify is unavailable).
    """

    def __init__(self, inotify_fd: int, prefix: bytes) -> None:
        super().__init__()
        self._inotify = inotify_fd
        self._prefix = prefix
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._read_end, False)
        os.set_blocking(self._write_end, False)
        # Reentrant: a signal handler (request_stop) may call set() while the main thread is in clear().
        self._lock = threading.RLock()
        self._flag = False
        self._closed = False
        self.hints = 0

    @classmethod
    def for_hub_file(cls, path: Path) -> InotifyWakeup | None:
        path = path.resolve()
        fd = _inotify(path.parent)
        return None if fd is None else cls(fd, os.fsencode(path.name))

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._lock:
            if not self._flag and not self._closed:
                self._flag = True
                with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
                    os.write(self._write_end, b"\0")

    def clear(self) -> None:
        with self._lock:
            if not self._closed:
                self._flag = False
                _read_all(self._read_end)

    def drain(self) -> None:
        """Forget the changes seen so far (called right before looking at the hub)."""
        if not self._closed:
            _read_all(self._inotify)

    def wait(self, timeout: float | None = None) -> bool:
        """Until ``set``, a change of the hub file, or ``timeout``; True unless it timed out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._flag:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = _readable([self._read_end, self._inotify], left)
            if self._inotify in ready and _names_match(_read_all(self._inotify), self._prefix):
                self.hints += 1
                return True
            if not ready:
                return self._flag
        return True

    def close(self) -> None:
        # Under the lock: an activity thread finishing late must never write to a reused descriptor.
        with self._lock:
            self._closed = True
            self._flag = True  # a closed wake-up never blocks
            for fd in (self._inotify, self._read_end, self._write_end):
                with contextlib.suppress(OSError):
                    os.close(fd)


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


def _inotify(directory: Path) -> int | None:
    """A non-blocking inotify descriptor watching ``directory`` for writes, or None (not Linux, limits)."""
    if not sys.platform.startswith("linux") or os.environ.get("DTCTL_WATCHFILES"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (ImportError, OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    fd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        return None
    if add(fd, os.fsencode(directory), _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO) < 0:
        os.close(fd)
        return None
    return fd


def _readable(fds: list[int], timeout: float | None) -> list[int]:
    """The descriptors readable within ``timeout`` seconds: select() for its microsecond timeouts (the
    trailing looks are sub-millisecond), poll() for descriptors select() cannot take (>= FD_SETSIZE)."""
    if max(fds) < 1024:
        return list(select.select(fds, [], [], timeout)[0])
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]


def _read_all(fd: int) -> bytes:
    """Whatever a non-blocking descriptor holds now (b"" when nothing)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, _READ_SIZE)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        if len(chunk) < _READ_SIZE:
            break
    return b"".join(chunks)


def _names_match(data: bytes, prefix: bytes) -> bool:
    """Whether a buffer of inotify events names a file starting with ``prefix`` (or overflowed)."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        if mask & _IN_Q_OVERFLOW or data[start : start + length].startswith(prefix):
            return True
        offset = start + length
    return False


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
