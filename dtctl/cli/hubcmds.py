"""``dtctl hub init`` and ``dtctl hub info``: set up and inspect a PostgreSQL hub (and any hub).

The hub comes from the global ``--hub`` / ``DTCTL_HUB``; ``--hub @FILE`` reads it from a file so a URL
with a password never appears in ``ps``. Hub URLs are only ever printed with the password redacted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dtctl.cli import render, state
from dtctl.errors import UsageError


def hub_init(
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="PostgreSQL only: create (or update) this runtime role with USAGE on the hub's schema, "
            "DML on its tables and EXECUTE on its functions, and nothing else (no DDL, no other hub). "
            "NOLOGIN unless a password is given: grant it to login roles (GRANT role TO app_user).",
            metavar="NAME",
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env",
            help="Make the role LOGIN with the password in this environment variable "
            "(sent to the server as a SCRAM verifier, never in clear text).",
            metavar="VAR",
        ),
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="Make the role LOGIN with the password on the first line of this file.",
            metavar="PATH",
        ),
    ] = None,
) -> None:
    """Create the hub (for PostgreSQL: its schema dtctl_NAME) and optionally its runtime role.

    Run it as a role allowed to create schemas (the hub's owner); workers and clients then connect as
    the runtime role. Run it again after `dtctl hub migrate`, or to change the role's password.
    Prints the hub, its schema, and what the role may do; warns if the role can create objects.

    Example: DTCTL_HUB=@/etc/dtctl/admin-url dtctl hub init --role orders_runtime
    """
    from dtctl.hub import open_hub, redact, resolve_location

    location = resolve_location(state.current.hub)
    password = _password(password_env, password_file)
    if role is None and password is not None:
        raise UsageError("--password-env/--password-file need --role")
    postgres = location.startswith(("postgresql://", "postgres://"))
    if role is not None and not postgres:
        raise UsageError("--role is for PostgreSQL hubs; a SQLite hub is a private file")
    hub = open_hub(location, create=True)
    hub.close()
    result: dict[str, Any] = {"hub": redact(location), "created": True}
    if postgres:
        result.update(_postgres_setup(location, role, password))
    if state.current.json:
        render.emit_json(result)
        return
    render.message(f"task hub ready: {result['hub']}")
    if postgres:
        render.message(f"schema {result['schema']} (version {result['schema_version']})")
        render.message(f"KEDA query: {result['scale_query']}")
    report = result.get("role")
    if isinstance(report, dict):
        kind = "LOGIN" if report["login"] else "NOLOGIN"
        verb = "created" if report["created"] else "updated"
        grants = f"DML and EXECUTE in {report['schema']}"
        render.message(f"runtime role {report['role']} {verb} ({kind}): {grants}")
    for warning in result.get("warnings", []):
        render.error(f"warning: {warning}")


def hub_info() -> None:
    """Show a hub: its schema, schema version, NOTIFY channel and the roles that can use it.

    Example: dtctl --hub @./hub-url hub info --json
    """
    from dtctl.hub import redact, resolve_location

    location = resolve_location(state.current.hub)
    if location.startswith(("postgresql://", "postgres://")):
        from dtctl.hub.postgres import admin as postgres_admin
        from dtctl.hub.postgres import conn as postgres_conn

        info = postgres_admin.hub_info(postgres_conn.parse_url(location))
    else:
        from dtctl.hub import open_hub

        hub = open_hub(location)
        try:
            info = {"hub": redact(location), "exists": True, "schema_version": _version(hub)}
        finally:
            hub.close()
    if state.current.json:
        render.emit_json(info)
        return
    for key, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        render.message(f"{key}: {shown if shown not in (None, '') else '-'}")


def _version(hub: Any) -> int | None:
    getter = getattr(hub, "schema_version", None)
    return None if getter is None else int(getter())


def _password(env: str | None, file: Path | None) -> str | None:
    if env is not None and file is not None:
        raise UsageError("give --password-env or --password-file, not both")
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise UsageError(f"environment variable {env} is not set or empty")
        return value
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read the password file {file}: {exc.strerror or exc}") from None
        if not lines or not lines[0]:
            raise UsageError(f"the password file {file} is empty")
        return lines[0]
    return None


def _postgres_setup(location: str, role: str | None, password: str | None) -> dict[str, Any]:
    import psycopg

    from dtctl.hub.postgres import admin as postgres_admin
    from dtctl.hub.postgres import conn as postgres_conn

    where = postgres_conn.parse_url(location)
    result: dict[str, Any] = {
        "schema": where.schema,
        "schema_version": postgres_conn.latest_version(),
        "channel": where.channel,
        "scale_query": f"SELECT {where.schema}.scale_recommendation(8, 8)",
    }
    if role is None:
        return result
    conn = postgres_conn.connect(where, search_path=False)
    try:
        report = postgres_admin.ensure_runtime_role(conn, where.schema, role, password=password)
    except psycopg.Error as exc:
        raise postgres_conn.translate(exc, where) from exc
    finally:
        conn.close()
    result["role"] = report.as_dict()
    result["warnings"] = report.warnings()
    return result


def register(hub_app: typer.Typer) -> None:
    hub_app.command("init")(hub_init)
    hub_app.command("info")(hub_info)
