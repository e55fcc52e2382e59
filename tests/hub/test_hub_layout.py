"""The shape of the hub package: named SQL blocks, the enums written into SQL, and who imports whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dtctl.core.status import LIVE, TERMINAL, RuntimeStatus, WorkItemKind, sql_list
from dtctl.hub.sql.named import NamedQueries, load_queries, parse_blocks

HUB = Path(__file__).resolve().parents[2] / "dtctl" / "hub"


def test_blocks_are_split_at_headers_and_lose_their_comments() -> None:
    text = (
        "-- file comment\n\n-- first --\n-- why\nSELECT 1\n  -- indented note\nFROM t\n\n"
        "-- second --\nSELECT 2\n"
    )
    assert parse_blocks(text, "t.sql", {}) == {"first": "SELECT 1\nFROM t", "second": "SELECT 2"}


def test_fragments_are_filled_and_an_unknown_one_is_refused() -> None:
    text = "-- live --\nSELECT 1 WHERE status IN {live}\n"
    assert parse_blocks(text, "t.sql", {"live": "('A')"}) == {"live": "SELECT 1 WHERE status IN ('A')"}
    with pytest.raises(ValueError, match="unknown fragment"):
        parse_blocks(text, "t.sql", {})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SELECT 1\n", "before the first"),
        ("-- a --\nSELECT 1\n-- a --\nSELECT 2\n", "defined twice"),
        ("-- a --\n-- only a comment\n", "is empty"),
    ],
)
def test_malformed_files_fail_at_import(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_blocks(text, "t.sql", {})


def test_a_block_nobody_takes_is_an_error() -> None:
    queries = NamedQueries("t.sql", {"used": "SELECT 1", "dead": "SELECT 2"})
    assert queries.take("used") == "SELECT 1"
    with pytest.raises(LookupError, match="dead"):
        queries.check_all_taken()
    with pytest.raises(LookupError, match="missing"):
        queries.take("missing")


@pytest.mark.parametrize(
    ("package", "resource"),
    [
        ("dtctl.hub.sqlite", "queries.sql"),
        ("dtctl.hub.postgres", "queries.sql"),
        ("dtctl.hub.sql", "inspect.sql"),
    ],
)
def test_shipped_sql_files_parse_and_every_statement_has_text(package: str, resource: str) -> None:
    fragments = {"live": "x", "work_kinds": "x", "server_now": "x", "hub_now": "x", "token": "x"}
    queries = load_queries(package, resource, fragments)
    assert len(queries.names()) > 10
    assert all(queries.take(name).strip() for name in queries.names())


def test_status_lists_in_sql_come_from_the_enums() -> None:
    assert sql_list(LIVE) == "('PENDING', 'RUNNING', 'SUSPENDED')"
    assert sql_list(TERMINAL) == "('COMPLETED', 'FAILED', 'TERMINATED')"
    assert sql_list(WorkItemKind) == "('activity', 'entity', 'orchestration')"
    with pytest.raises(ValueError):
        sql_list(["PENDING') OR ('1"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        sql_list([])


def test_a_status_read_back_as_text_equals_its_member() -> None:
    assert RuntimeStatus("PENDING") is RuntimeStatus.PENDING
    assert "RUNNING" in LIVE and "activity" in set(WorkItemKind)
    assert f"{RuntimeStatus.FAILED}" == "FAILED"


def _hub_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("postgres", ("dtctl.hub.sqlite", "sqlite3")),
        ("sqlite", ("dtctl.hub.postgres", "psycopg")),
        ("sql", ("dtctl.hub.sqlite", "dtctl.hub.postgres", "sqlite3", "psycopg")),
    ],
)
def test_backends_import_only_the_shared_subpackage(package: str, forbidden: tuple[str, ...]) -> None:
    bad = {
        path.name: hits
        for path in sorted((HUB / package).glob("*.py"))
        if (
            hits := sorted(
                m for m in _hub_imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden)
            )
        )
    }
    assert bad == {}
