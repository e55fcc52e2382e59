"""The numbered schema files of both hubs (``dtctl/hub/schema/<backend>``) and the version rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from dtctl.errors import SchemaVersionMismatch

_MIGRATION_NAME = re.compile(r"^(\d{3})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The numbered SQL files shipped in ``dtctl/hub/schema/<backend>``, in order."""
    folder = resources.files("dtctl.hub").joinpath("schema", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def check_version_range(
    version: int, latest: int, where: str, *, check_schema: bool, migrate_hint: str
) -> None:
    """Refuse a hub newer than this dtctl, and (when ``check_schema``) one that needs migrating."""
    if version > latest:
        raise SchemaVersionMismatch(
            f"hub {where} has schema version {version}, newer than this dtctl understands ({latest})",
            hint="upgrade dtctl to a release that knows this hub",
        )
    if version < latest and check_schema:
        raise SchemaVersionMismatch(
            f"hub {where} has schema version {version}; this dtctl needs version {latest}",
            hint=migrate_hint,
        )
