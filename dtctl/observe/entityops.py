"""The entity operations a committed batch applied, and how each ended (for metrics and spans).

A batch (:class:`~dtctl.hub.entity_records.EntityBatch`) says which inbox messages it consumed and what
it sends; an operation is a consumed ``call`` or ``signal`` (lock and unlock messages run no user code).
A call's outcome is its :class:`~dtctl.core.entity_exec.OperationResponse`; the executor reports no
outcome for a signal (nobody waits for it), so a signal counts as completed once its batch committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dtctl.core.entity_exec import MessageKind, OperationResponse

if TYPE_CHECKING:
    from dtctl.core.entity_exec import EntityMessage
    from dtctl.core.failure import FailureDetails
    from dtctl.hub.entity_records import EntityBatch

OPERATION_KINDS = (MessageKind.CALL, MessageKind.SIGNAL)


@dataclass(frozen=True, slots=True)
class Operation:
    message: EntityMessage
    failure: FailureDetails | None


def operations(batch: EntityBatch) -> list[Operation]:
    """The operations ``batch`` applied, in inbox order."""
    consumed = set(batch.result.consumed)
    failures = {
        (o.instance_id, o.task_id): o.failure
        for o in batch.result.outgoing
        if isinstance(o, OperationResponse) and o.failure is not None
    }
    found: list[Operation] = []
    for message in batch.item.messages:
        if message.id not in consumed or message.kind not in OPERATION_KINDS:
            continue
        failure = None
        if message.kind is MessageKind.CALL and message.sender_task_id is not None:
            failure = failures.get((message.sender_instance_id or "", message.sender_task_id))
        found.append(Operation(message, failure))
    return found


def operation_count(batch: EntityBatch) -> int:
    consumed = set(batch.result.consumed)
    return sum(1 for m in batch.item.messages if m.id in consumed and m.kind in OPERATION_KINDS)
