"""A throw-away PostgreSQL server for the tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temp dir.

The binaries are looked up on PATH, then under ``/usr/lib/postgresql/*/bin`` (Debian). Run as root, the
server runs as the ``postgres`` OS user (``runuser``, else ``su``), in a directory it owns. The superuser
``postgres`` logs in over TCP with a password (SCRAM), so the tests handle a real secret.

Missing binaries (or psycopg) skip the PostgreSQL tests with the reason, unless
``DTCTL_REQUIRE_POSTGRES=1``: then they fail.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_USER = "postgres"
DATABASE = "dtctl_test"
REQUIRE_ENV = "DTCTL_REQUIRE_POSTGRES"


class Unavailable(Exception):
    """No PostgreSQL server can be started here (the message says why)."""


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running server; ``url(hub)`` gives a hub URL with the superuser's password in it."""

    root: Path
    port: int
    password: str
    hosts: tuple[str, ...] = ("127.0.0.1",)
    database: str = DATABASE
    user: str = SERVER_USER
    _as_user: list[str] = field(default_factory=list)
    _pg_ctl: str = ""
    _options: str = ""
    _stopped: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(
        self,
        *,
        host: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
    ) -> str:
        secret = self.password if password is None else password
        who = user or self.user
        return f"postgresql://{who}:{secret}@{host or self.hosts[0]}:{self.port}/{database or self.database}"

    def url(self, hub: str, **kwargs: Any) -> str:
        return f"{self.dsn(**kwargs)}?hub={hub}"

    def admin(self) -> Any:
        """An autocommit superuser connection to the test database."""
        import psycopg

        return psycopg.connect(self.dsn(), autocommit=True)

    def halt(self) -> None:
        """Stop the server as a crash would (``-m immediate``), keeping its data for :meth:`restart`."""
        done = _run_as(self._as_user, [self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        if done.returncode != 0:
            raise Unavailable(f"pg_ctl stop failed: {done.stderr.strip()}")

    def restart(self) -> None:
        """Start a halted server again, on the same port with the same settings."""
        log = str(self.root / "server.log")
        argv = [self._pg_ctl, "-D", str(self.data), "-l", log, "-o", self._options, "-w", "-t", "60", "start"]
        done = _run_as(self._as_user, argv, timeout=90)
        if done.returncode != 0:
            raise Unavailable(f"pg_ctl start failed: {done.stderr.strip()}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            subprocess.run(
                [*self._as_user, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _runner() -> tuple[list[str], int | None]:
    """The command prefix to run as the server's OS user, and that user's uid (None: ourselves)."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam(SERVER_USER).pw_uid
    except KeyError:
        raise Unavailable(
            f"running as root and there is no {SERVER_USER!r} OS user to run the server"
        ) from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SERVER_USER, "--"], uid
    su = shutil.which("su")
    if su:
        return ["__su__"], uid
    raise Unavailable("running as root and neither runuser nor su is available")


def _run_as(prefix: list[str], argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    if prefix == ["__su__"]:
        command = [shutil.which("su") or "su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]
    else:
        command = [*prefix, *argv]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def start_server(
    *,
    hosts: tuple[str, ...] = ("127.0.0.1",),
    hba_networks: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
    durable: bool = False,
) -> PgServer:
    """initdb + pg_ctl start on a free port; creates the test database. Raises Unavailable."""
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise Unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
        )
    try:
        import psycopg
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install 'dtctl[postgres]')") from None
    prefix, uid = _runner()
    root = Path(tempfile.mkdtemp(prefix="dtctl-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    root.chmod(0o700)
    password = secrets.token_urlsafe(12)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if uid is not None:
        os.chown(pwfile, uid, -1)
    data = root / "data"
    done = _run_as(
        prefix,
        [
            initdb,
            "-D",
            str(data),
            "-U",
            SERVER_USER,
            "--pwfile",
            str(pwfile),
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        timeout=120,
    )
    pwfile.unlink()
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    if hba_networks:
        with (data / "pg_hba.conf").open("a") as hba:
            for network in hba_networks:
                hba.write(f"host all all {network} scram-sha-256\n")
    port = free_port(hosts[0])
    options = {
        "port": str(port),
        "listen_addresses": ",".join(hosts),
        "unix_socket_directories": str(root),
        "max_connections": "200",
        "shared_buffers": "128MB",
        **({} if durable else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
        **(settings or {}),
    }
    opts = " ".join(f"-c {k}={v}" for k, v in options.items())
    server = PgServer(root, port, password, hosts, _as_user=prefix, _pg_ctl=pg_ctl, _options=opts)
    started = _run_as(
        prefix,
        [pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", opts, "-w", "-t", "60", "start"],
        timeout=90,
    )
    if started.returncode != 0:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        server.stop()
        raise Unavailable(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
    try:
        import psycopg

        with psycopg.connect(server.dsn(database="postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    except Exception:
        server.stop()
        raise
    return server


# --- one shared server per test process -----------------------------------------------------------

_shared: PgServer | None = None
_shared_error: str | None = None
_lock = threading.Lock()


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def shared_server() -> PgServer:
    """The process-wide test server (started on first use, stopped at exit); skips or fails if none."""
    global _shared, _shared_error
    import pytest

    with _lock:
        if _shared is None and _shared_error is None:
            try:
                _shared = start_server()
                atexit.register(_shared.stop)
            except Unavailable as exc:
                _shared_error = str(exc)
    if _shared is None:
        reason = f"PostgreSQL unavailable: {_shared_error}"
        if required():
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    return _shared


def stop_shared() -> None:
    if _shared is not None:
        _shared.stop()


_counter = iter(range(1, 1 << 30))


def new_hub_name(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}_{next(_counter)}"


def drop_hub(server: PgServer, hub: str) -> None:
    with server.admin() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "dtctl_{hub}" CASCADE')
