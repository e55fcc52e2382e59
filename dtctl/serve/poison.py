"""Work that keeps killing the SDK workers it is handed to is failed as poison, not handed out for ever.

An SDK worker process that dies while it holds a work item (a segfault in native code, ``os._exit``, the
OOM killer) drops its stream, and serve gives the item back at once, so the next worker gets it and
may die the same way. Serve counts, per piece of work, how many streams dropped while holding it
(:class:`Drops`); at ``max_dequeue`` it fails the work the way a native worker fails poison, without
handing it out again:

- an orchestration episode: the instance FAILED with the reason (its messages consumed);
- an activity: a ``task_failed`` the orchestration sees like any activity failure;
- an entity batch: its first operation fails (the others run on in the next batch).

Only drops count, not the hub's dequeue count: an SDK that gives an item back on purpose (its version
does not match, AbandonTask*WorkItem) is not a crash, and its instance must wait for the right worker.
A piece of work is one episode (an instance at one history length), one activity task, or one entity
batch (its first message); the counts live in this serve process, bounded, oldest forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dtctl.core.decision import Decision
from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem
from dtctl.hub.entity_records import EntityBatch, EntityWorkItem
from dtctl.runtime.dispatcher import poison_decision, poison_result
from dtctl.runtime.entities import poison_batch

REMEMBERED = 10_000  # pieces of work whose drops are counted at once

Key = tuple[object, ...]


def _episode_key(item: OrchestrationWorkItem) -> Key:
    return ("orchestration", item.instance_id, item.execution_id, item.history_length)


def _task_key(item: ActivityWorkItem) -> Key:
    return ("activity", item.id)


def _batch_key(item: EntityWorkItem) -> Key:
    return ("entity", item.entity_id, item.messages[0].id if item.messages else None)


def reason(kind: str, name: str, drops: int, limit: int) -> str:
    return (
        f"{kind} {name!r} was held by {drops} SDK worker(s) that died or disconnected before completing "
        f"it (limit {limit}); it is failed as poison"
    )


class Drops:
    """How many dropped streams held each piece of work."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: OrderedDict[Key, int] = OrderedDict()

    def dropped(
        self,
        episodes: Iterable[OrchestrationWorkItem],
        tasks: Iterable[ActivityWorkItem],
        batches: Iterable[EntityWorkItem],
    ) -> None:
        """A stream dropped while it held these."""
        keys = [
            *(_episode_key(i) for i in episodes),
            *(_task_key(i) for i in tasks),
            *(_batch_key(i) for i in batches),
        ]
        for key in keys:
            self._counts[key] = self._counts.pop(key, 0) + 1
            if len(self._counts) > REMEMBERED:
                self._counts.popitem(last=False)

    def of(self, key: Key) -> int:
        return self._counts.get(key, 0)


@dataclass(slots=True)
class Poisoned:
    """Leased items serve settles itself in the next round instead of sending them."""

    decisions: list[tuple[OrchestrationWorkItem, Decision]] = field(default_factory=list)
    results: list[ActivityResult] = field(default_factory=list)
    batches: list[EntityBatch] = field(default_factory=list)
    given_back: list[EntityWorkItem] = field(default_factory=list)  # no operation at their head

    def __len__(self) -> int:
        return len(self.decisions) + len(self.results) + len(self.batches) + len(self.given_back)

    def take(self) -> Poisoned:
        """What is held now, leaving this one empty."""
        taken = Poisoned(self.decisions, self.results, self.batches, self.given_back)
        self.decisions, self.results, self.batches, self.given_back = [], [], [], []
        return taken

    def sort_orchestrations(
        self, items: list[OrchestrationWorkItem], drops: Drops
    ) -> list[OrchestrationWorkItem]:
        """The items to send; those held by ``drops.limit`` dropped streams are failed here instead."""
        send: list[OrchestrationWorkItem] = []
        for item in items:
            count = drops.of(_episode_key(item))
            if count >= drops.limit:
                why = reason("orchestration", item.name, count, drops.limit)
                self.decisions.append((item, poison_decision(item, why)))
            else:
                send.append(item)
        return send

    def sort_activities(self, items: list[ActivityWorkItem], drops: Drops) -> list[ActivityWorkItem]:
        send: list[ActivityWorkItem] = []
        for item in items:
            count = drops.of(_task_key(item))
            if count >= drops.limit:
                self.results.append(poison_result(item, reason("activity", item.name, count, drops.limit)))
            else:
                send.append(item)
        return send

    def sort_entities(self, items: list[EntityWorkItem], drops: Drops) -> list[EntityWorkItem]:
        send: list[EntityWorkItem] = []
        for item in items:
            count = drops.of(_batch_key(item))
            if count < drops.limit:
                send.append(item)
                continue
            batch = poison_batch(item, reason("entity", item.name, count, drops.limit))
            if batch is None:
                self.given_back.append(item)
            else:
                self.batches.append(batch)
        return send
