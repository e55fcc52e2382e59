"""The wake source of a SQLite hub on Linux: inotify on the hub file's directory, in the waiter's wait.

A hint reaches a waiter ~0.3 ms after a commit writes the WAL (ctypes, no thread); a busy waiter is not
disturbed at all: events queue up in the kernel and are dropped before it next looks.
"""

from __future__ import annotations

import contextlib
import os
import select
import struct
import sys
import threading
import time
from pathlib import Path

from dtctl.hub.wakeup import TRAILING_LOOKS

# inotify(7)
_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ_SIZE = 64 * 1024


class InotifyWakeup(threading.Event):
    """A wake source for a SQLite hub file on Linux: a waiter also leaves its wait when the file changes.

    ``set`` (a finished activity, a NOTIFY, a stop request) writes to a pipe; ``wait`` selects on that
    pipe and on an inotify descriptor watching the hub's directory, in the waiting thread itself. So a
    hint costs one system call in the waiter's own thread, and nothing while the waiter is busy.
    ``before_look`` drops queued changes: the worker calls it before it looks at the hub, so only changes
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

    def before_look(self) -> None:
        """Forget the changes seen so far (called right before looking at the hub)."""
        if not self._closed:
            _read_all(self._inotify)

    def trailing_looks(self) -> tuple[float, ...]:
        return TRAILING_LOOKS

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
