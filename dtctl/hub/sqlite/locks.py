"""Who holds a SQLite hub's write lock, and what state that process is in (Linux).

In WAL mode a writer holds an exclusive POSIX lock on one byte of the ``-shm`` file, WAL_WRITE_LOCK
(the first of the WAL-index lock bytes, which start at offset 120), from ``BEGIN IMMEDIATE`` to
``COMMIT``. A process stopped inside its transaction (SIGSTOP, a debugger, a frozen container) keeps
that lock, and every other writer waits for it: SQLite cannot break another process's lock. The
kernel lists POSIX locks in ``/proc/locks`` with the holder's pid and the file's device and inode, so
dtctl can name the process that freezes the hub instead of only reporting "busy".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")
# sqlite3.c: WALINDEX_LOCK_OFFSET (120) + WAL_WRITE_LOCK (slot 0).
WAL_WRITE_LOCK_BYTE = 120
_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "waiting for I/O",
    "T": "stopped",
    "t": "stopped by a debugger",
    "Z": "a zombie",
    "X": "dead",
}
STOPPED_STATES = frozenset({"T", "t"})


@dataclass(frozen=True, slots=True)
class LockHolder:
    """A process holding the hub's write lock now."""

    pid: int
    state: str  # the one-letter state of /proc/PID/stat ("T": stopped); "?" when unreadable
    command: str  # its command line, shortened

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED_STATES

    @property
    def state_name(self) -> str:
        return _STATES.get(self.state, f"state {self.state}")

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command or '?'}) holds the hub's write lock and is {self.state_name}"


def _file_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


def _locks_on(key: tuple[int, int, int], byte: int) -> list[int]:
    """Pids with a WRITE (exclusive) POSIX or OFD lock covering ``byte`` of the file ``key``."""
    try:
        lines = PROC_LOCKS.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a waiter, listed under the lock it waits for
            continue
        if len(parts) < 8 or parts[3] != "WRITE":
            continue
        if _device_inode(parts[5]) != key:
            continue
        start, end = parts[6], parts[7]
        if int(start) <= byte and (end == "EOF" or byte <= int(end)):
            pids.append(int(parts[4]))
    return pids


def _device_inode(field: str) -> tuple[int, int, int] | None:
    try:
        major, minor, inode = field.split(":")
        return int(major, 16), int(minor, 16), int(inode)
    except ValueError:
        return None


def process_state(pid: int) -> str:
    """The one-letter state of a process (``/proc/PID/stat``), ``?`` when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return "?"
    # The command name is in parentheses and may hold spaces: the state follows the last ')'.
    rest = stat.rpartition(")")[2].split()
    return rest[0] if rest else "?"


def process_command(pid: int, limit: int = 80) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_lock_holders(hub_path: Path) -> list[LockHolder]:
    """The processes holding the write lock of the SQLite hub at ``hub_path`` (empty: nobody, or not
    Linux)."""
    key = _file_key(Path(f"{hub_path}-shm"))
    if key is None:
        return []
    return [
        LockHolder(pid=pid, state=process_state(pid), command=process_command(pid))
        for pid in sorted(set(_locks_on(key, WAL_WRITE_LOCK_BYTE)))
    ]


def busy_detail(hub_path: Path) -> str:
    """For a "hub busy" error: who holds the lock, or an empty string when nobody is found."""
    holders = write_lock_holders(hub_path)
    if not holders:
        return ""
    first = holders[0]
    advice = (
        f"; resume it (kill -CONT {first.pid}) or end it (kill {first.pid}: its transaction rolls back)"
        if first.stopped
        else ""
    )
    return f": {first.describe()}{advice}"
