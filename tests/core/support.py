"""Plain helpers of the replay tests (fixtures live in conftest.py): activities to call, episode steps.

Histories are built with :class:`dtctl.testing.HistoryBuilder` (the ``make_history`` fixture) and
replayed through the public API (``execute`` / ``OrchestrationExecutor``), as users test theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from dtctl.core.context import ActivityContext
from dtctl.core.history import HistoryEvent
from dtctl.testing import HistoryBuilder

START = datetime(2024, 1, 1, 12, 0, 0)  # the builders' clock at the start of every test


class MakeHistory(Protocol):
    """The ``make_history`` fixture: a fresh builder for one execution, its clock at :data:`START`."""

    def __call__(self, name: str = "orchestrator", instance_id: str = "order-1") -> HistoryBuilder: ...


def charge(ctx: ActivityContext, amount: int) -> str:
    return f"charged {amount}"


def refund(ctx: ActivityContext, amount: int) -> str:
    return f"refunded {amount}"


def first_episode(h: HistoryBuilder, input: Any = None) -> list[HistoryEvent]:
    """The new events of an instance's first episode."""
    return h.orchestrator_started().started(input).take()


def next_episode(h: HistoryBuilder, seconds: float = 1.0) -> HistoryBuilder:
    """Start the next episode ``seconds`` after the builder's clock."""
    h.orchestrator_started(at=timedelta(seconds=seconds))
    return h


def kinds(events: Sequence[HistoryEvent]) -> list[str]:
    return [event.kind for event in events]
