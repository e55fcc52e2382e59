"""The worker's entity dispatcher: a leased entity's messages become one batch (``run_entity_batch``).

Entity operations are user code, run on the worker's main thread between its two transactions, as
orchestration episodes are, and the entities of one step commit together. An operation that kills its
process therefore takes every entity of that step with it; so crashes are charged the way suspect
episodes' are (:mod:`dtctl.runtime.isolation`). An entity leased again without a committed batch in
between (``dequeue_count >= 2``: its worker died around it) is a suspect: the hub gives it one message
per lease, and the worker runs that batch alone in an isolation child (:mod:`dtctl.runtime.isolated`),
one entity per child, which commits it with the same lease token. Only the child's death counts: a
message whose isolated runs crash ``--max-dequeue`` times, or one run past the stall timeout, is
consumed as poison with a reason naming the operation and the entity (a call gets the failure back, a
signal's failure is logged), and the rest of the inbox flows on. An innocent entity that shared the
crasher's step is re-run alone, succeeds, and is never charged. Lock and unlock messages run no user
code and are never poison. The lease-count backstop (``max_dequeue * UNJUDGED_LEASE_FACTOR`` leases
without a verdict) still applies, as it does to episodes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from dtctl.core.app import App
from dtctl.core.entity_exec import (
    EntityBatchResult,
    EntityMessage,
    MessageKind,
    OperationResponse,
    Outgoing,
    run_entity_batch,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.faults import fault_point
from dtctl.hub.entity_records import EntityBatch, EntityWorkItem
from dtctl.hub.roles import EntityOperations
from dtctl.observe.hooks import NOOP, Observer
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.worker")

POISON_ERROR_TYPE = "dtctl.errors.PoisonWorkItem"


def _now_us() -> int:
    return time.time_ns() // 1000


class EntityRunner:
    """Leases entities for one worker (inside its step's transaction) and runs their batches."""

    observer: Observer = NOOP  # the worker's (dtctl.observe): it wraps each batch

    def __init__(self, app: App, hub: EntityOperations, worker_id: str, config: WorkerConfig) -> None:
        self._app = app
        self._hub = hub
        self._worker_id = worker_id
        self._names = tuple(app.entities)  # lower-cased, as entity ids store them
        self._limit = config.max_entities
        self._lease_seconds = config.lease_seconds
        self.batches_run = 0
        self.operations_run = 0

    def lease(self) -> list[EntityWorkItem]:
        if not self._names:
            return []
        return self._hub.lease_entities(
            self._worker_id, self._names, limit=self._limit, lease_seconds=self._lease_seconds
        )

    def run_all(
        self, items: list[EntityWorkItem], *, lease_limit: int, progress: Callable[[str | None], None]
    ) -> list[EntityBatch]:
        """Each leased entity's messages as one batch; a bug in the dispatcher gives the entity back."""
        if items:
            fault_point("entity.leased")
        batches: list[EntityBatch] = []
        for item in items:
            progress(f"entity {item.entity_id!r}")
            try:
                run = partial(self.run, item, lease_limit=lease_limit)
                batches.append(self.observer.run_entity(item, run))
            except Exception:
                log.exception("batch of entity %s failed; abandoning it", item.entity_id)
                self._hub.abandon_entity(item)
        return batches

    def run(self, item: EntityWorkItem, *, lease_limit: int) -> EntityBatch:
        """The batch to commit for ``item`` (raises only on a bug: the caller abandons the entity)."""
        poison = _first_operation(item) if item.dequeue_count > lease_limit else None
        if poison is not None:
            self.observer.poisoned("entity", item.name, "lease_limit")
            reason = (
                f"operation {poison.operation!r} on entity {item.entity_id!r} was leased "
                f"{item.dequeue_count} times (limit {lease_limit}) without completing: its worker process "
                "died each time; it is dropped as poison"
            )
            return EntityBatch(item, _poisoned(item, poison, reason))
        batch = execute_batch(self._app, item)
        self.count(batch)
        return batch

    def count(self, batch: EntityBatch) -> None:
        """Counts a batch this process ran (an isolation child counts its own)."""
        self.batches_run += 1
        self.operations_run += len(batch.result.consumed)


def execute_batch(app: App, item: EntityWorkItem) -> EntityBatch:
    """Run the leased entity's messages (user code): the batch to commit."""
    entity_id = EntityInstanceId(item.name, item.key)
    result = run_entity_batch(
        app.get_entity(item.name), entity_id, item.state, item.lock, item.messages, now=_now_us()
    )
    return EntityBatch(item, result)


def poison_batch(item: EntityWorkItem, reason: str) -> EntityBatch | None:
    """The batch that consumes a suspect's operation as poison, or None when its first message runs no
    user code (a lock or unlock cannot be the culprit)."""
    first = _first_operation(item)
    if first is None:
        return None
    return EntityBatch(item, _poisoned(item, first, reason))


def _first_operation(item: EntityWorkItem) -> EntityMessage | None:
    first = item.messages[0] if item.messages else None
    if first is None or first.kind not in (MessageKind.CALL, MessageKind.SIGNAL):
        return None
    return first


def _poisoned(item: EntityWorkItem, message: EntityMessage, reason: str) -> EntityBatchResult:
    log.error("%s", reason)
    outgoing: tuple[Outgoing, ...] = ()
    if message.kind is MessageKind.CALL and message.sender_instance_id is not None:
        failure = FailureDetails(message=reason, error_type=POISON_ERROR_TYPE)
        response = OperationResponse(
            instance_id=message.sender_instance_id,
            execution_id=message.sender_execution_id,
            task_id=message.sender_task_id if message.sender_task_id is not None else -1,
            failure=failure,
        )
        outgoing = (response,)
    return EntityBatchResult(state=item.state, lock=item.lock, consumed=(message.id,), outgoing=outgoing)
