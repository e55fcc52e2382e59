"""The SQLite hub's answers to operators' questions (:class:`dtctl.hub.base.HubInspector`), and its work log.

Everything here is a read, except the work log: the hub appends one ``work_log`` row per committed
activity result and per committed episode, inside the transaction that commits it, and deletes rows
older than :data:`WORK_LOG_RETENTION_SECONDS` every few seconds. ``dtctl top`` reads throughput and
latency from it; workers never read it.

The read statements and the turning of their rows into records are shared with the PostgreSQL hub
(:mod:`dtctl.hub.sql.inspect`). A snapshot is one short read transaction (WAL readers never block
the writer).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dtctl.errors import HubError, UsageError
from dtctl.hub.base import (
    DEFAULT_MAX_DEQUEUE,
    LARGE_HISTORY_EVENTS,
    Finding,
    HubSnapshot,
    LeaseHolder,
    NameBacklog,
    ScaleMetrics,
    StuckWork,
)
from dtctl.hub.sql.inspect import (
    PRUNE_EVERY_US,
    RETENTION_US,
    Fetch,
    WorkLogRow,
    duration_text,
    read_backlog,
    read_clock_findings,
    read_leases,
    read_snapshot,
    read_stuck_work,
    schema_version_finding,
)
from dtctl.hub.sqlite import conn as conn_mod
from dtctl.hub.sqlite import queries as q
from dtctl.hub.sqlite.locks import write_lock_holders
from dtctl.hub.sqlite.parts import SqliteHubParts

# sqlite.org "Write-Ahead Logging", section "The WAL-Reset Bug": present from 3.7.0, fixed in 3.52.0.
WAL_RESET_BUG = ((3, 7, 0), (3, 51, 2))
LARGE_WAL_BYTES = 256 * 1024 * 1024
# The wall clock may drift from the boot clock by NTP slewing (well under a second a day); more than
# this is a step.
CLOCK_STEP_US = 60 * 1_000_000
MIB = 1024 * 1024


def _fetcher(conn: sqlite3.Connection, lease_now: int) -> Fetch:
    """Statements get :lease_now (the lease clock) beside the caller's parameters."""
    return lambda sql, params: conn.execute(sql, {"lease_now": lease_now, **params}).fetchall()


# --- the mixin ----------------------------------------------------------------------------------------


class SqliteInspector(SqliteHubParts):
    """:class:`~dtctl.hub.base.HubInspector` for :class:`~dtctl.hub.sqlite.SqliteTaskHub` (mixed in),
    plus the hub's work log writer and ``backup``."""

    _conn: sqlite3.Connection
    url: str
    path: Path
    _next_log_prune: int = 0

    if TYPE_CHECKING:  # provided by the hub

        def scale_metrics(self) -> ScaleMetrics:
            raise NotImplementedError

        @property
        def read_only(self) -> str | None:
            raise NotImplementedError

    # --- writing the log (inside the caller's write transaction) ----------------------------------

    def _log_work(self, conn: sqlite3.Connection, now: int, rows: Sequence[WorkLogRow]) -> None:
        if rows:
            conn.executemany(q.LOG_WORK, rows)
        if now >= self._next_log_prune:
            self._next_log_prune = now + PRUNE_EVERY_US
            conn.execute(q.PRUNE_WORK_LOG, {"before": now - RETENTION_US})

    # --- reads -------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise conn_mod.translate(exc, self.url) from exc

    def hub_snapshot(self, window_seconds: float = 60.0) -> HubSnapshot:
        with self._read() as conn:
            snapshot = read_snapshot(
                _fetcher(conn, self.lease_now()), self.now(), window_seconds, self.scale_metrics()
            )
        skew = self.lease_skew()
        workers = tuple(replace(w, heartbeat_at=w.heartbeat_at + skew) for w in snapshot.workers)
        return replace(snapshot, workers=workers, write_lock=self._write_lock_holder())

    def _write_lock_holder(self) -> str | None:
        holders = write_lock_holders(self.path)
        return holders[0].describe() if holders and holders[0].stopped else None

    def backlog_by_name(self) -> list[NameBacklog]:
        with self._read() as conn:
            return read_backlog(_fetcher(conn, self.lease_now()), self.now())

    def lease_holders(self) -> list[LeaseHolder]:
        with self._read() as conn:
            return read_leases(_fetcher(conn, self.lease_now()), self.now())

    def stuck_work(
        self,
        *,
        max_dequeue: int = DEFAULT_MAX_DEQUEUE,
        history_threshold: int = LARGE_HISTORY_EVENTS,
        limit: int = 20,
    ) -> StuckWork:
        with self._read() as conn:
            stuck = read_stuck_work(
                _fetcher(conn, self.lease_now()),
                self.lease_now(),
                max_dequeue=max_dequeue,
                history_threshold=history_threshold,
                limit=limit,
            )
        # Judged in the lease clock; shown in wall-clock terms, as everything else.
        skew = self.lease_skew()
        expired = tuple(replace(e, expired_at=e.expired_at + skew) for e in stuck.expired_leases)
        return replace(stuck, at=stuck.at + skew, expired_leases=expired)

    def storage_findings(self, *, full: bool = False) -> list[Finding]:
        with self._read() as conn:
            found = [
                check_schema_version(conn),
                check_journal_mode(conn, self.read_only),
                check_synchronous(conn),
                check_integrity(conn, full=full),
            ]
            found += read_clock_findings(_fetcher(conn, self.lease_now()), self.now(), self.lease_now())
        found += [
            check_clock_step(self.lease_skew()),
            check_write_lock(self.path),
            check_free_space(self.path),
            check_sqlite_version(sqlite3.sqlite_version_info),
            check_filesystem(self.path),
            check_permissions(self.path, self.read_only),
            check_links(self.path),
            check_wal_size(self.path),
        ]
        return found

    # --- backup ------------------------------------------------------------------------------------

    def backup(self, target: str | Path) -> Path:
        """A consistent copy of the hub at ``target`` (``VACUUM INTO``: safe while workers write).

        The copy is written next to ``target`` first, checked (``quick_check``, schema version), and
        only then renamed into place, so ``target`` is either a good backup or absent. Mode 0600.
        """
        final = Path(target).expanduser().absolute()
        if final.exists():
            raise UsageError(f"backup {final} exists already", hint="choose a new file name")
        if not final.parent.is_dir():
            raise UsageError(f"cannot write backup {final}: directory {final.parent} does not exist")
        if final == self.path or final.name.startswith(self.path.name + "-"):
            raise UsageError(f"backup {final} would overwrite the hub or its -wal/-shm files")
        partial = final.with_name(f".{final.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            try:
                conn_mod.vacuum_into(self._conn, partial)
                version = conn_mod.user_version(self._conn)
            except sqlite3.Error as exc:
                raise conn_mod.translate(exc, self.url) from exc
            _verify_copy(partial, version)
            partial.rename(final)
        finally:
            partial.unlink(missing_ok=True)
        return final


def _verify_copy(path: Path, version: int) -> None:
    check = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = check.execute("PRAGMA quick_check").fetchone()[0]
        copied = int(check.execute("PRAGMA user_version").fetchone()[0])
    finally:
        check.close()
    if result != "ok" or copied != version:
        raise HubError(f"the backup written to {path} does not verify ({result}, version {copied})")


# --- storage checks: each a small function returning one Finding ---------------------------------------


def check_schema_version(conn: sqlite3.Connection) -> Finding:
    return schema_version_finding(
        conn_mod.user_version(conn),
        conn_mod.latest_version(),
        migrate_hint="run `dtctl hub migrate` (it takes a backup first)",
    )


def check_journal_mode(conn: sqlite3.Connection, read_only: str | None = None) -> Finding:
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode == "wal" or read_only is not None:  # read as an immutable file, a WAL hub reports "delete"
        return Finding(check="journal-mode", severity="ok", message="journal mode WAL")
    return Finding(
        check="journal-mode",
        severity="problem",
        message=f"journal mode is {mode}, not WAL: readers and the writer block each other",
        hint="open the hub with dtctl (it sets WAL); a file system without shared memory cannot use WAL",
    )


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def check_synchronous(conn: sqlite3.Connection) -> Finding:
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    name = _SYNCHRONOUS.get(level, str(level))
    if level >= 2:
        return Finding(check="synchronous", severity="ok", message=f"synchronous={name} (durable commits)")
    if level == 1:
        return Finding(
            check="synchronous",
            severity="warning",
            message="synchronous=NORMAL: the last commits may be lost on power loss (never on a crash)",
            hint="drop --synchronous normal for durable commits",
        )
    return Finding(
        check="synchronous",
        severity="problem",
        message="synchronous=OFF: a power loss can corrupt the hub",
        hint="use synchronous=FULL (the default)",
    )


def check_integrity(conn: sqlite3.Connection, *, full: bool) -> Finding:
    pragma = "integrity_check" if full else "quick_check"
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(20)").fetchall()]
    if rows == ["ok"]:
        return Finding(check="integrity", severity="ok", message=f"{pragma}: ok")
    return Finding(
        check="integrity",
        severity="problem",
        message=f"{pragma} found damage: " + "; ".join(rows[:3]) + (" …" if len(rows) > 3 else ""),
        hint="stop the workers, restore a backup (dtctl hub backup makes one) or try sqlite3's .recover",
    )


def check_sqlite_version(version: tuple[int, int, int]) -> Finding:
    text = ".".join(map(str, version))
    low, high = WAL_RESET_BUG
    if version < conn_mod.MIN_SQLITE:
        return Finding(
            check="sqlite-version",
            severity="problem",
            message=f"SQLite {text} is older than dtctl needs ({'.'.join(map(str, conn_mod.MIN_SQLITE))})",
            hint="use a Python build linked against a newer SQLite",
        )
    if low <= version <= high:
        return Finding(
            check="sqlite-version",
            severity="warning",
            message=f"SQLite {text} has the WAL-reset bug (3.7.0-3.51.2): a rare corruption when "
            "several connections write and checkpoint at once",
            hint="use a Python linked against SQLite 3.52.0 or newer; take backups (dtctl hub backup)",
        )
    return Finding(check="sqlite-version", severity="ok", message=f"SQLite {text}")


def check_filesystem(path: Path) -> Finding:
    fstype = conn_mod.filesystem_type(path.parent)
    if fstype is None:
        return Finding(check="filesystem", severity="ok", message="file system type unknown")
    if fstype.lower() in conn_mod.NETWORK_FILESYSTEMS:
        return Finding(
            check="filesystem",
            severity="problem",
            message=f"the hub is on a network file system ({fstype}); SQLite locking is unreliable there",
            hint="move the hub to a local disk or use a PostgreSQL hub",
        )
    return Finding(check="filesystem", severity="ok", message=f"local file system ({fstype})")


def check_permissions(path: Path, read_only: str | None = None) -> Finding:
    if read_only is not None:
        return Finding(
            check="permissions",
            severity="warning",
            message=f"opened read-only: {read_only}; reading works, no worker or command can write here",
            hint="run workers where the hub's file system is mounted read-write",
        )
    loose: list[str] = []
    writable: list[str] = []
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o002:
            writable.append(f"{file.name} ({mode:o})")
        elif mode & 0o077:
            loose.append(f"{file.name} ({mode:o})")
    if not os.access(path.parent, os.W_OK):
        return Finding(
            check="permissions",
            severity="problem",
            message=f"directory {path.parent} is not writable: SQLite cannot create the -wal/-shm files",
            hint="make the directory writable by the user that runs workers",
        )
    if writable:
        return Finding(
            check="permissions",
            severity="problem",
            message="writable by any user: " + ", ".join(writable),
            hint=f"chmod 600 {path}*",
        )
    if loose:
        return Finding(
            check="permissions",
            severity="warning",
            message="readable by other users (payloads may hold secrets): " + ", ".join(loose),
            hint=f"chmod 600 {path}*",
        )
    return Finding(check="permissions", severity="ok", message="hub files are private (0600)")


def check_links(path: Path) -> Finding:
    if path.is_symlink() or path.stat().st_nlink > 1:
        return Finding(
            check="links",
            severity="warning",
            message="the hub file has another name (a symbolic or hard link); a process that opens it "
            "by the other name uses a different -wal file and can corrupt the hub",
            hint="open the hub by one path only",
        )
    return Finding(check="links", severity="ok", message="the hub file has one name")


def check_wal_size(path: Path) -> Finding:
    try:
        size = Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        size = 0
    if size > LARGE_WAL_BYTES:
        return Finding(
            check="wal-size",
            severity="warning",
            message=f"the -wal file is {size // (1024 * 1024)} MiB: long-running readers keep "
            "checkpoints from resetting it",
            hint="look for a process holding a read transaction open (a long query, an idle sqlite3 shell)",
        )
    return Finding(check="wal-size", severity="ok", message=f"-wal file {size // 1024} KiB")


def check_write_lock(path: Path) -> Finding:
    """Who holds the write lock now: a stopped holder freezes every writer of the hub."""
    holders = write_lock_holders(path)
    stopped = [h for h in holders if h.stopped]
    if stopped:
        holder = stopped[0]
        return Finding(
            check="write-lock",
            severity="problem",
            message=f"{holder.describe()}: every writer waits for it (workers pause, commands exit 6)",
            hint=f"resume it with `kill -CONT {holder.pid}`, or end it with `kill {holder.pid}` "
            "(its transaction is rolled back and the hub goes on)",
        )
    if holders:
        return Finding(check="write-lock", severity="ok", message=f"{holders[0].describe()} (writing now)")
    return Finding(check="write-lock", severity="ok", message="no process holds the write lock")


def check_free_space(path: Path) -> Finding:
    free = conn_mod.free_bytes(path.parent)
    if free is None:
        return Finding(check="disk-space", severity="ok", message="free space unknown")
    text = f"{free / MIB:.1f} MiB free on the hub's file system"
    if free < MIB:
        return Finding(
            check="disk-space",
            severity="problem",
            message=f"{text}: writes fail with exit 9 (disk full); workers wait",
            hint="free some space (about 1 MB lets the hub recover); workers carry on by themselves",
        )
    if free < conn_mod.LOW_SPACE_BYTES:
        return Finding(
            check="disk-space",
            severity="warning",
            message=f"{text}: the hub checkpoints its WAL every {conn_mod.LOW_SPACE_WAL_PAGES} pages "
            "to keep room to recover",
            hint="free space on the hub's file system",
        )
    return Finding(check="disk-space", severity="ok", message=text)


def check_clock_step(skew: int) -> Finding:
    """How far the wall clock moved against the lease clock since this boot's first use of the hub."""
    if abs(skew) <= CLOCK_STEP_US:
        return Finding(check="clock-step", severity="ok", message="the wall clock has not stepped")
    way = "forward" if skew > 0 else "back"
    return Finding(
        check="clock-step",
        severity="warning",
        message=f"the wall clock stepped {way} by {duration_text(skew)} since this boot's first use of "
        "the hub; leases and heartbeats are unaffected (judged by the boot clock), timers and scheduled "
        f"starts fire by the wall clock{' (later by the step)' if skew < 0 else ' (early by the step)'}",
        hint="check time synchronisation (timedatectl, chrony)",
    )
