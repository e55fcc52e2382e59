"""Opening a SQLite hub file safely, translating driver errors, and the schema migrations.

Everything here runs once per connection (or once per ``dtctl hub migrate``), never on the hot path.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dtctl.errors import (
    DtctlError,
    HubBusy,
    HubDiskFull,
    HubError,
    HubNotFound,
    HubReadOnly,
    HubUnsafe,
    UsageError,
)
from dtctl.hub.sql.migrations import Migration as Migration
from dtctl.hub.sql.migrations import check_version_range, load_migrations

MOUNTS_FILE = Path("/proc/mounts")
# SQLite's locking (and WAL's shared memory) is unreliable on these: refuse them unless overridden.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs",
        "ncpfs", "coda", "davfs", "fuse.davfs2", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph",
        "lustre", "gpfs", "beegfs", "fuse.s3fs", "fuse.rclone", "virtiofs", "vboxsf", "prl_fs",
    }
)  # fmt: skip

SYNCHRONOUS_MODES = ("full", "normal")
# RETURNING (3.35) is used on the hot path; row values and json_each are older than that.
MIN_SQLITE = (3, 35, 0)
DEFAULT_BUSY_TIMEOUT = 10.0
# Checkpoint the WAL into the database every 4000 pages (16 MB) instead of SQLite's 1000: a work queue
# rewrites the same few pages in every commit, so a longer log copies each page once for more commits,
# and a checkpoint's two syncs come a quarter as often (benchmarks: a third of the reads, ~10% of the
# writes and ~30% of the syncs of hello-cities-3 gone).
WAL_AUTOCHECKPOINT_PAGES = 4000
# With little free space the WAL is checkpointed every 100 pages (400 KB) instead. A checkpoint copies
# the log's pages into the database file, which grows by the pages that are new: when the disk fills
# with a 16 MB log of mostly new pages, nothing short of 16 MB of freed space lets the checkpoint (and
# so the hub) go on. Kept short, the log needs well under 1 MB freed to be checkpointed and truncated,
# and the cost of frequent checkpoints is only paid while the disk is nearly full.
LOW_SPACE_WAL_PAGES = 100
LOW_SPACE_BYTES = 64 * 1024 * 1024

# Primary result codes (sqlite3.h); Python reports extended codes, the low byte is the primary one.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


# --- error translation -----------------------------------------------------------------------------


def is_disk_full(exc: sqlite3.Error, path: Path) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    return primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and free_bytes(path.parent) == 0)


def translate(exc: sqlite3.Error, where: str) -> DtctlError:
    """The dtctl error for a driver error raised while using the hub at ``where``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = str(exc)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        from dtctl.hub.sqlite.locks import busy_detail

        holder = busy_detail(Path(where))
        return HubBusy(
            f"hub {where} stayed locked by another writer past the busy timeout ({detail}){holder}"
        )
    if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
        return HubUnsafe(
            f"hub {where} is corrupt or not a SQLite database ({detail})",
            hint="restore a backup (dtctl hub backup) or try sqlite3's .recover",
        )
    if primary == _SQLITE_CANTOPEN:
        return HubNotFound(f"cannot open hub {where} ({detail})")
    if primary == _SQLITE_READONLY:
        why = read_only_reason(Path(where)) or detail
        return HubReadOnly(f"hub {where} cannot be written: {why}")
    if is_disk_full(exc, Path(where)):
        return HubDiskFull(f"hub {where}: the disk is full ({detail})")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in detail:
        return HubError(f"hub {where} is closed")
    return HubError(f"hub {where}: {detail}")


# --- opening the file ------------------------------------------------------------------------------


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (from /proc/mounts), or None when unknown."""
    try:
        lines = MOUNTS_FILE.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def free_bytes(directory: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of ``directory`` (None: unknown)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _mounted_read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_only_reason(path: Path) -> str | None:
    """Why this process can never write the hub at ``path`` (None: it can, as far as we can tell).

    Writing needs the file and its directory: SQLite creates the -wal and -shm files next to the hub.
    ``os.access`` answers for this user (root passes permission bits, not a read-only mount).
    """
    directory = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        if _mounted_read_only(path):
            return f"the file system holding {path} is mounted read-only"
        return f"the hub file {path} is not writable by this user"
    if not os.access(directory, os.W_OK):
        if _mounted_read_only(directory):
            return f"the file system holding {directory} is mounted read-only"
        return f"directory {directory} is not writable (SQLite creates the hub's -wal and -shm files there)"
    return None


def check_local(path: Path, allow_network_fs: bool) -> None:
    if allow_network_fs:
        return
    fstype = filesystem_type(path.parent)
    if fstype is not None and fstype.lower() in NETWORK_FILESYSTEMS:
        raise HubUnsafe(
            f"hub {path} is on a network file system ({fstype}); SQLite locking is unreliable there",
            hint="put the hub on a local disk, use a PostgreSQL hub, or pass --allow-network-fs",
        )


def check_path(path: Path, *, create: bool) -> bool:
    """Refuse what cannot be a hub file; returns whether the file exists already."""
    if path.is_dir():
        raise HubUnsafe(f"hub {path} is a directory, not a hub file")
    if path.exists():
        if not path.is_file():
            raise HubUnsafe(f"hub {path} is not a regular file")
        return True
    if not create:
        raise HubNotFound(f"no hub at {path}")
    if not path.parent.is_dir():
        raise HubNotFound(f"cannot create hub {path}: directory {path.parent} does not exist")
    return False


@contextmanager
def private_files() -> Iterator[None]:
    """Files created inside get mode 0600 (the hub, its -wal and -shm, a backup).

    The umask is process-wide; it is only changed for the few calls that may create a file.
    """
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def connect(path: Path, *, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
    """Open the connection the hub owns and set its pragmas; the first read validates the file."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise UsageError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}")
    where = str(path)
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise HubError(
            f"dtctl needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; "
            f"this Python uses SQLite {sqlite3.sqlite_version}",
            hint="use a Python build linked against a newer SQLite",
        )
    with private_files():
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; the driver must not BEGIN for us.
            conn = sqlite3.connect(
                where,
                isolation_level=None,
                timeout=busy_timeout,
                check_same_thread=False,
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise translate(exc, where) from exc
        try:
            conn.execute("PRAGMA user_version").fetchone()  # "file is not a database" surfaces here
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, where) from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise HubUnsafe(f"hub {where} cannot use WAL mode (journal_mode is {mode})")
    return conn


def connect_read_only(path: Path, *, busy_timeout: float, reason: str) -> sqlite3.Connection:
    """A read-only connection to a hub this process cannot write (``reason`` says why).

    ``mode=ro`` reads the -wal through an existing -shm; when there is no -wal (a hub closed cleanly)
    and no -shm can be created, ``immutable=1`` reads the database file alone, which then holds
    every commit. A -wal without a usable -shm cannot be read consistently: refused.
    """
    where = str(path)
    try:
        conn = _open_uri(path.as_uri() + "?mode=ro", busy_timeout)
    except sqlite3.Error as exc:
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise HubReadOnly(
                f"hub {where} cannot be read here: {reason}, and its -wal file holds commits that "
                "need a -shm file this process cannot create",
                hint="read it where the file system is writable, or after the workers stopped cleanly",
            ) from exc
        try:
            conn = _open_uri(path.as_uri() + "?mode=ro&immutable=1", busy_timeout)
        except sqlite3.Error as again:
            raise translate(again, where) from again
    return conn


def _open_uri(uri: str, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout, check_same_thread=False)
    try:
        conn.execute("PRAGMA user_version").fetchone()
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


# --- schema versions and migrations -----------------------------------------------------------------


MIGRATIONS: list[Migration] = load_migrations("sqlite")


def latest_version() -> int:
    return MIGRATIONS[-1].version if MIGRATIONS else 0


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def table_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    return [str(r[0]) for r in rows]


def check_version(conn: sqlite3.Connection, where: str, *, create: bool, check_schema: bool) -> int:
    """Validate the hub's schema version; returns it (0: an empty file that ``create`` will fill)."""
    version = user_version(conn)
    latest = latest_version()
    if version == 0:
        foreign = [t for t in table_names(conn) if not t.startswith("sqlite_")]
        if foreign:
            raise HubUnsafe(
                f"{where} is a SQLite database but not a dtctl hub (tables: {', '.join(foreign[:5])})"
            )
        if not create:
            raise HubNotFound(f"{where} holds no hub yet")
        return 0
    check_version_range(
        version,
        latest,
        where,
        check_schema=check_schema,
        migrate_hint="run `dtctl hub migrate` (it takes a backup first)",
    )
    return version


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (``executescript`` would COMMIT our transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in pending.splitlines()
    ):
        raise HubError(f"incomplete SQL statement in a migration: {pending.strip()[:60]!r}")
    return statements


def apply_migrations(conn: sqlite3.Connection, now_us: int) -> int:
    """Bring the schema to the latest version in one IMMEDIATE transaction; returns the new version.

    The version is read again under the write lock, so two processes creating one hub at once apply
    each migration exactly once. sqlite-utils does the schema work inside that transaction (its
    ``atomic()`` becomes a SAVEPOINT there).
    """
    import sqlite_utils  # slow to import; only schema work needs it

    conn.execute("BEGIN IMMEDIATE")
    try:
        db = sqlite_utils.Database(conn, execute_plugins=False, recursive_triggers=False)
        with db.atomic():
            db.table("schema_migrations").create(
                {"version": int, "name": str, "applied_at": int}, pk="version", if_not_exists=True
            )
            current = user_version(conn)
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in split_statements(migration.sql):
                    db.execute(statement)
                db.table("schema_migrations").insert(
                    {"version": migration.version, "name": migration.name, "applied_at": now_us}
                )
                conn.execute(f"PRAGMA user_version = {migration.version}")
                current = migration.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return current


def backup_path(path: Path, version: int) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return path.with_name(f"{path.name}.v{version}-{stamp}.bak")


def vacuum_into(conn: sqlite3.Connection, target: Path) -> None:
    """A consistent copy of the hub (never copy the file itself while it may be written)."""
    if target.exists():
        raise UsageError(f"backup {target} exists already")
    with private_files():
        conn.execute("VACUUM INTO ?", (str(target),))
