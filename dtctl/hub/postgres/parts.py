"""What the mixins of :class:`~dtctl.hub.postgres.PostgresTaskHub` use of the hub itself, declared once.

The hub is one class built from mixins (inspection, entities, client-side instance operations); each
mixin runs its work through the hub's retrying transactions and reads the server's clock, which
:mod:`dtctl.hub.postgres.hub` defines. The declarations exist for the type checker only: at run time
this class is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from dtctl.hub.postgres.ops import Conn
    from dtctl.hub.sql.inspect import WorkLogRow

T = TypeVar("T")


class PostgresHubParts:
    url: str

    if TYPE_CHECKING:  # provided by PostgresTaskHub (and _log_work by PostgresInspector)

        def now(self) -> int:
            raise NotImplementedError

        def _run(
            self,
            work: Callable[[Conn], T],
            *,
            transaction: bool = False,
            idempotent: bool = False,
            fault: str | None = None,
            durable: bool = False,
        ) -> T:
            raise NotImplementedError

        def _read(self, work: Callable[[Conn], T]) -> T:
            raise NotImplementedError

        def _write(self, work: Callable[[Conn], T], *, fault: str | None = None) -> T:
            raise NotImplementedError

        def _now_in(self, conn: Conn) -> int:
            raise NotImplementedError

        def _now_param(self) -> int | None:
            raise NotImplementedError

        def _log_work(self, conn: Conn, now: int, rows: Sequence[WorkLogRow]) -> None:
            raise NotImplementedError
