"""Administration of a PostgreSQL hub: the runtime role, its grants, and what it can and cannot do.

The identity that creates (and migrates) a hub owns its schema. Workers and clients should use a
*runtime role* instead: USAGE on the hub's schema, SELECT/INSERT/UPDATE/DELETE on its tables, EXECUTE on
its functions, and nothing else. It cannot create objects in the schema (no DDL), and since a hub's
schema grants nothing to PUBLIC, it cannot see another hub's schema unless granted that one too.

A runtime role is NOLOGIN by default, to be granted to login roles (``GRANT <role> TO app_user``), or a
LOGIN role with a password. The password is sent to the server only as a SCRAM-SHA-256 verifier, never in
clear text, so it cannot end up in the server's statement log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from dtctl.errors import UsageError
from dtctl.hub.postgres import conn as pgc

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SCRAM_ITERATIONS = 4096
DML = "SELECT, INSERT, UPDATE, DELETE"


def validate_role_name(name: str) -> str:
    if not _ROLE_NAME.match(name):
        raise UsageError(
            f"invalid role name {name!r}",
            hint="use up to 63 lower-case letters, digits and underscores, not starting with a digit",
        )
    if name.startswith("pg_"):
        raise UsageError(f"role names starting with pg_ are reserved by PostgreSQL: {name!r}")
    return name


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802 / 7677)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True, slots=True)
class RoleReport:
    """What a runtime role may do, as the server sees it after the grants."""

    role: str
    created: bool
    login: bool
    schema: str
    usage_on_schema: bool
    create_in_schema: bool
    create_in_public: bool
    create_in_database: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def warnings(self) -> list[str]:
        found: list[str] = []
        if self.create_in_schema:
            found.append(f"role {self.role} can CREATE in schema {self.schema}")
        if self.create_in_public:
            found.append(
                f"role {self.role} can CREATE in schema public "
                "(PostgreSQL <15 default: REVOKE CREATE ON SCHEMA public FROM PUBLIC)"
            )
        if self.create_in_database:
            found.append(f"role {self.role} can CREATE schemas in this database")
        return found


def ensure_runtime_role(
    conn: psycopg.Connection[Any], schema: str, role: str, *, password: str | None = None
) -> RoleReport:
    """Create (or update) ``role`` and grant it exactly the runtime privileges on ``schema``.

    Idempotent: run it again after a migration, or to set a new password.
    """
    validate_role_name(role)
    ident = sql.Identifier(role)
    target = sql.Identifier(schema)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
        limits = sql.SQL("NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
        if password is not None:
            secret = sql.Literal(scram_verifier(password))
            verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
            conn.execute(sql.SQL("{} {} LOGIN {} PASSWORD {}").format(verb, ident, limits, secret))
        elif not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN {}").format(ident, limits))
        statements = (
            "GRANT USAGE ON SCHEMA {schema} TO {role}",
            f"GRANT {DML} ON ALL TABLES IN SCHEMA {{schema}} TO {{role}}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}",
            # Objects a later migration (run by this same admin role) creates get the same grants.
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {{schema}} GRANT {DML} ON TABLES TO {{role}}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT EXECUTE ON FUNCTIONS TO {role}",
        )
        for text in statements:
            conn.execute(sql.SQL(text).format(schema=target, role=ident))
        return _report(conn, schema, role, created=not exists)


def _report(conn: psycopg.Connection[Any], schema: str, role: str, *, created: bool) -> RoleReport:
    row = conn.execute(
        """
        SELECT r.rolcanlogin,
               has_schema_privilege(r.oid, %s, 'USAGE'),
               has_schema_privilege(r.oid, %s, 'CREATE'),
               has_schema_privilege(r.oid, 'public', 'CREATE'),
               has_database_privilege(r.oid, current_database(), 'CREATE')
        FROM pg_roles AS r WHERE r.rolname = %s
        """,
        (schema, schema, role),
    ).fetchone()
    assert row is not None
    return RoleReport(
        role=role,
        created=created,
        login=bool(row[0]),
        schema=schema,
        usage_on_schema=bool(row[1]),
        create_in_schema=bool(row[2]),
        create_in_public=bool(row[3]),
        create_in_database=bool(row[4]),
    )


def hub_info(location: pgc.HubLocation) -> dict[str, Any]:
    """Schema, version, channel and the roles that can use the hub (for ``dtctl hub info``)."""
    conn = pgc.connect(location, search_path=False)
    try:
        version = pgc.schema_version(conn, location.schema)
        roles = (
            conn.execute(
                """
            SELECT r.rolname FROM pg_roles AS r
            WHERE has_schema_privilege(r.oid, %s, 'USAGE') AND NOT r.rolsuper
              AND r.rolname NOT LIKE 'pg\\_%%'
            ORDER BY r.rolname
            """,
                (location.schema,),
            ).fetchall()
            if version is not None
            else []
        )
    except psycopg.Error as exc:
        raise pgc.translate(exc, location) from exc
    finally:
        conn.close()
    return {
        "hub": location.url,
        "name": location.hub,
        "schema": location.schema,
        "exists": version is not None,
        "schema_version": version,
        "code_schema_version": pgc.latest_version(),
        "channel": location.channel,
        "roles": [r[0] for r in roles],
        "scale_query": f"SELECT {location.schema}.scale_recommendation(8, 8)",
    }
