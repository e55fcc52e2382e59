"""Work that keeps killing the SDK workers it is handed to is failed as poison, not handed out for ever.

A native worker counts the leases of an item that never completed and fails it past the limit (and
runs suspects alone first, see ``dtctl.runtime.isolation``). Serve cannot isolate an SDK's code, but it
sees the same count: every lease of an item takes its dequeue count up, and an SDK worker process that
dies while holding the item gives it back (its stream drops) to be leased again. Past ``max_dequeue``
leases serve fails the item the way a native worker does, without handing it out:

- an orchestration episode: the instance FAILED with the reason (its messages consumed);
- an activity: a ``task_failed`` the orchestration sees like any activity failure;
- an entity batch: its first operation fails (the others run on in the next batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dtctl.core.decision import Decision
from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem
from dtctl.hub.entity_records import EntityBatch, EntityWorkItem
from dtctl.runtime.dispatcher import leased_too_often, poison_decision, poison_result
from dtctl.runtime.entities import poison_batch


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


def sort_out_orchestrations(
    items: list[OrchestrationWorkItem], limit: int, poisoned: Poisoned
) -> list[OrchestrationWorkItem]:
    """The items to send; those leased more than ``limit`` times join ``poisoned``."""
    send: list[OrchestrationWorkItem] = []
    for item in items:
        if item.dequeue_count > limit:
            why = leased_too_often("orchestration", item.name, item.dequeue_count, limit)
            poisoned.decisions.append((item, poison_decision(item, why)))
        else:
            send.append(item)
    return send


def sort_out_activities(
    items: list[ActivityWorkItem], limit: int, poisoned: Poisoned
) -> list[ActivityWorkItem]:
    send: list[ActivityWorkItem] = []
    for item in items:
        if item.dequeue_count > limit:
            why = leased_too_often("activity", item.name, item.dequeue_count, limit)
            poisoned.results.append(poison_result(item, why))
        else:
            send.append(item)
    return send


def sort_out_entities(items: list[EntityWorkItem], limit: int, poisoned: Poisoned) -> list[EntityWorkItem]:
    send: list[EntityWorkItem] = []
    for item in items:
        if item.dequeue_count <= limit:
            send.append(item)
            continue
        batch = poison_batch(item, leased_too_often("entity", item.name, item.dequeue_count, limit))
        if batch is None:
            poisoned.given_back.append(item)
        else:
            poisoned.batches.append(batch)
    return send
