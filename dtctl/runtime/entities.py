"""The worker's entity dispatcher: a leased entity's messages become one batch (``run_entity_batch``).

Entity operations are user code, run on the worker's main thread between its two transactions, as
orchestration episodes are. Crash isolation is by shrinking, not by child processes: an entity leased
again without a committed batch in between (``dequeue_count > 1``: its worker died around it) gets one
message per lease from the hub, so the message that kills workers is the only one that runs with it;
past the worker's lease limit that message is consumed as poison — a call gets the failure back, a
signal's failure is logged — and the rest of the inbox flows on. Lock and unlock messages run no user
code and are never poison.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

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
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.worker")

POISON_ERROR_TYPE = "dtctl.errors.PoisonWorkItem"


def _now_us() -> int:
    return time.time_ns() // 1000


class EntityRunner:
    """Leases entities for one worker (inside its step's transaction) and runs their batches."""

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
                batches.append(self.run(item, lease_limit=lease_limit))
            except Exception:
                log.exception("batch of entity %s failed; abandoning it", item.entity_id)
                self._hub.abandon_entity(item)
        return batches

    def run(self, item: EntityWorkItem, *, lease_limit: int) -> EntityBatch:
        """The batch to commit for ``item`` (raises only on a bug: the caller abandons the entity)."""
        poison = _first_operation(item) if item.dequeue_count > lease_limit else None
        if poison is not None:
            return EntityBatch(item, _poisoned(item, poison, lease_limit))
        entity_id = EntityInstanceId(item.name, item.key)
        result = run_entity_batch(
            self._app.get_entity(item.name), entity_id, item.state, item.lock, item.messages, now=_now_us()
        )
        self.batches_run += 1
        self.operations_run += len(result.consumed)
        return EntityBatch(item, result)


def _first_operation(item: EntityWorkItem) -> EntityMessage | None:
    first = item.messages[0] if item.messages else None
    if first is None or first.kind not in (MessageKind.CALL, MessageKind.SIGNAL):
        return None
    return first


def _poisoned(item: EntityWorkItem, message: EntityMessage, limit: int) -> EntityBatchResult:
    reason = (
        f"operation {message.operation!r} on entity {item.entity_id!r} was leased {item.dequeue_count} times "
        f"(limit {limit}) without completing: its worker process died each time; it is dropped as poison"
    )
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
