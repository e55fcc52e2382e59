"""``dtctl replay-check``: would the app's current code still replay the stored instances?

Each selected instance's current history is read page by page and replayed in this process with the
pure engine (:func:`dtctl.core.check.first_mismatch`); nothing is written to the hub and no activity
runs. Instances are listed a page at a time and histories are streamed, so memory stays one page of
instances plus one page of events however many there are.

What is checked by default: every live instance (PENDING, RUNNING, SUSPENDED) and the finished ones
created within ``recent`` (the new code replays those when a rewind or a late message wakes them, and
they are the best sample of what the code does now). ``statuses`` replaces that choice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dtctl.core.app import App
from dtctl.core.check import Mismatch, first_mismatch
from dtctl.core.history import HistoryEvent
from dtctl.core.status import LIVE, TERMINAL
from dtctl.hub.base import ImportedInstance, InstanceQuery, InstanceState, TaskHub

__all__ = ["Broken", "CheckReport", "check_case", "check_hub"]

PAGE = 500  # instances per list page
EVENTS_PAGE = 1000  # history events per read
DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Broken:
    """An instance whose replay would fail with NonDeterminismError, and where."""

    instance_id: str
    execution_id: str
    name: str
    status: str
    mismatch: Mismatch

    def as_dict(self) -> dict[str, object]:
        m = self.mismatch
        return {
            "instance_id": self.instance_id,
            "execution_id": self.execution_id,
            "name": self.name,
            "status": self.status,
            "task_id": m.task_id,
            "recorded": m.recorded,
            "now": m.now,
            "message": m.message,
        }


@dataclass(slots=True)
class CheckReport:
    """What a check found: how many replayed, which would break, which names the app does not have."""

    checked: int = 0
    broken: list[Broken] = field(default_factory=list)
    not_registered: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "would_fail": len(self.broken),
            "broken": [b.as_dict() for b in self.broken],
            "not_registered": self.not_registered,
            "seconds": round(self.seconds, 3),
        }

    def add(
        self, app: App, state: InstanceState, events: Iterator[HistoryEvent] | Sequence[HistoryEvent]
    ) -> None:
        definition = app.get_orchestrator(state.name)
        if definition is None:
            self.not_registered[state.name] = self.not_registered.get(state.name, 0) + 1
            return
        self.checked += 1
        found = first_mismatch(definition, events)
        if found is not None:
            self.broken.append(Broken(state.instance_id, state.execution_id, state.name, state.status, found))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which stored instances a check replays."""

    name: str | None = None
    statuses: tuple[str, ...] = ()  # empty: live ones, and finished ones created within ``recent``
    limit: int | None = None
    recent_seconds: float = DAY_SECONDS


def check_hub(hub: TaskHub, app: App, selection: Selection = Selection()) -> CheckReport:
    """Replay the selected instances of ``hub`` against ``app``; writes nothing."""
    started = time.perf_counter()
    report = CheckReport()
    for seen, state in enumerate(_selected(hub, selection)):
        if selection.limit is not None and seen >= selection.limit:
            break
        report.add(app, state, _history(hub, state))
    report.seconds = time.perf_counter() - started
    return report


def check_case(app: App, case: ImportedInstance) -> CheckReport:
    """Replay every execution of an exported case file against ``app``."""
    started = time.perf_counter()
    report = CheckReport()
    for execution_id, events in case.executions:
        state = case.state
        if execution_id != state.execution_id:
            state = InstanceState(
                instance_id=state.instance_id,
                execution_id=execution_id,
                name=state.name,
                status="CONTINUED_AS_NEW",
                created_at=state.created_at,
                updated_at=state.updated_at,
            )
        report.add(app, state, events)
    report.seconds = time.perf_counter() - started
    return report


def _selected(hub: TaskHub, selection: Selection) -> Iterator[InstanceState]:
    if selection.statuses:
        yield from _listed(hub, InstanceQuery(statuses=selection.statuses, name=selection.name, limit=PAGE))
        return
    yield from _listed(hub, InstanceQuery(statuses=tuple(sorted(LIVE)), name=selection.name, limit=PAGE))
    since = hub.now() - int(selection.recent_seconds * 1_000_000)
    finished = InstanceQuery(
        statuses=tuple(sorted(TERMINAL)), name=selection.name, created_after=since, limit=PAGE
    )
    yield from _listed(hub, finished)


def _listed(hub: TaskHub, query: InstanceQuery) -> Iterator[InstanceState]:
    cursor: str | None = None
    while True:
        page = hub.list_instances(
            InstanceQuery(
                statuses=query.statuses,
                name=query.name,
                created_after=query.created_after,
                limit=query.limit,
                cursor=cursor,
            )
        )
        yield from page.instances
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _history(hub: TaskHub, state: InstanceState) -> Iterator[HistoryEvent]:
    after = -1
    while True:
        page = hub.get_history(state.instance_id, state.execution_id, after=after, limit=EVENTS_PAGE)
        for record in page:
            yield record.event
        if len(page) < EVENTS_PAGE:
            return
        after = page[-1].sequence
