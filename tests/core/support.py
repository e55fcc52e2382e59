"""Shared pieces of the replay tests: an app with a few activities and the episode helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dtctl.core.app import App
from dtctl.core.context import ActivityContext
from dtctl.core.decision import Decision
from dtctl.core.history import HistoryEvent
from dtctl.core.replay import Orchestrator, execute
from dtctl.testing import HistoryBuilder

START = datetime(2024, 1, 1, 12, 0, 0)

app = App()


@app.activity
def charge(ctx: ActivityContext, amount: int) -> str:
    return f"charged {amount}"


@app.activity
def refund(ctx: ActivityContext, amount: int) -> str:
    return f"refunded {amount}"


def builder(name: str = "orchestrator", instance_id: str = "order-1") -> HistoryBuilder:
    return HistoryBuilder(instance_id=instance_id, name=name, start=START)


def first_episode(h: HistoryBuilder, input: Any = None) -> list[HistoryEvent]:
    """The new events of an instance's first episode."""
    return h.orchestrator_started().started(input).take()


def next_episode(h: HistoryBuilder, seconds: float = 1.0) -> HistoryBuilder:
    h.orchestrator_started(at=timedelta(seconds=seconds))
    return h


def run(orchestrator: Orchestrator, past: Sequence[HistoryEvent], new: Sequence[HistoryEvent]) -> Decision:
    return execute(orchestrator, past, new)


def kinds(events: Sequence[HistoryEvent]) -> list[str]:
    return [event.kind for event in events]
