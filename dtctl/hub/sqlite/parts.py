"""What the mixins of :class:`~dtctl.hub.sqlite.SqliteTaskHub` use of the hub itself, declared once.

The hub is one class built from mixins (inspection, entities, client-side instance operations); each
mixin calls the hub's clocks and transactions, which :mod:`dtctl.hub.sqlite.hub` defines. The
declarations exist for the type checker only: at run time this class is empty.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtctl.hub.sql.inspect import WorkLogRow


class SqliteHubParts:
    url: str

    if TYPE_CHECKING:  # provided by SqliteTaskHub (and _log_work by SqliteInspector)

        def now(self) -> int:
            raise NotImplementedError

        def lease_now(self) -> int:
            raise NotImplementedError

        def lease_skew(self) -> int:
            raise NotImplementedError

        def _visibility(self, now: int) -> dict[str, int]:
            raise NotImplementedError

        def _edge(self) -> AbstractContextManager[sqlite3.Connection]:
            raise NotImplementedError

        def _write(
            self, fault: str | None = None, *, durable: bool = True
        ) -> AbstractContextManager[sqlite3.Connection]:
            raise NotImplementedError

        def _log_work(self, conn: sqlite3.Connection, now: int, rows: Sequence[WorkLogRow]) -> None:
            raise NotImplementedError
