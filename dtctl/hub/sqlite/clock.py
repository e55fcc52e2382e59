"""The SQLite hub's lease clock: leases and heartbeats that a wall-clock step cannot move.

A SQLite hub and all its workers live on one machine, so they share one clock that never steps:
CLOCK_BOOTTIME (it also counts suspend). Its readings mean nothing after a reboot, so each boot (named
by ``/proc/sys/kernel/random/boot_id``) gets an *anchor* in the hub, the offset that turns boot time
into microseconds comparable with the wall clock. The first process of a boot to use the hub writes
it: the wall time then, or just past every lease and heartbeat already stored if that is later, so a
lease taken before the reboot (its worker is gone) is expired at once whatever the wall clock did
meanwhile. Every process of the boot reads the same anchor, so they agree to the microsecond.

Lease expiry times and heartbeats are stored in this clock; everything else (timers, scheduled
starts, history timestamps) stays on the wall clock, and a timer fires when the wall clock reaches
its time. Reads convert leases and heartbeats back to wall-clock terms (``to_wall``), so a lease or a
heartbeat shown to people is what it would be had the wall clock not stepped.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from dtctl.hub.base import ActivityWorkItem, InstanceState
from dtctl.hub.entity_records import EntityState

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)

_SELECT_ANCHOR = "SELECT offset_us FROM clock_anchors WHERE boot_id = ?"
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'clock_anchors'"
# Past every lease and heartbeat written so far (by any boot): those are void after a reboot.
_LATEST_STAMP = """
SELECT MAX(COALESCE((SELECT MAX(lease_expires) FROM instances), 0),
           COALESCE((SELECT MAX(lease_expires) FROM new_tasks), 0),
           COALESCE((SELECT MAX(heartbeat_at) FROM workers), 0))
"""


def boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip() or "unknown"
    except OSError:
        return "unknown"


def boot_micros() -> int:
    return time.clock_gettime_ns(_CLOCK) // 1000


def wall_micros() -> int:
    return time.time_ns() // 1000


class LeaseClock:
    """Boot time plus this boot's anchor; falls back to the wall clock where no anchor can be kept."""

    def __init__(self) -> None:
        self.boot_id = boot_id()
        self.offset: int | None = None  # None: not anchored (a hub without the table): wall time

    def __call__(self) -> int:
        offset = self.offset
        return wall_micros() if offset is None else boot_micros() + offset

    def skew(self) -> int:
        """How far the wall clock has moved against the lease clock since the anchor (µs, + ahead)."""
        offset = self.offset
        return 0 if offset is None else wall_micros() - (boot_micros() + offset)

    def anchor(self, conn: sqlite3.Connection, *, writable: bool) -> None:
        """Read this boot's anchor from the hub; the first writer of a boot creates it."""
        if conn.execute(_HAS_TABLE).fetchone() is None:
            return  # a hub older than the clock table (doctor on an old schema): wall time
        row = conn.execute(_SELECT_ANCHOR, (self.boot_id,)).fetchone()
        if row is None and writable:
            row = self._create(conn)
        if row is not None:
            self.offset = int(row[0])

    def _create(self, conn: sqlite3.Connection) -> tuple[int]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(_SELECT_ANCHOR, (self.boot_id,)).fetchone()
            if row is None:  # nobody of this boot was first: we are
                latest = int(conn.execute(_LATEST_STAMP).fetchone()[0] or 0)
                boot = boot_micros()
                offset = max(wall_micros(), latest + 1) - boot
                conn.execute("DELETE FROM clock_anchors")  # earlier boots' anchors mean nothing now
                conn.execute(
                    "INSERT INTO clock_anchors (boot_id, offset_us, anchored_at) VALUES (?, ?, ?)",
                    (self.boot_id, offset, wall_micros()),
                )
                row = (offset,)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return (int(row[0]),)


_Leased = TypeVar("_Leased", InstanceState, ActivityWorkItem, EntityState)


def wall_lease(row: _Leased, skew: int) -> _Leased:
    """An instance, task or entity with its lease expiry (stored by the lease clock) in wall-clock
    terms; ``skew`` is the hub's ``lease_skew()``."""
    if not skew or not row.lease_expires:
        return row
    return replace(row, lease_expires=row.lease_expires + skew)
