"""The entity client RPCs (SignalEntity, GetEntity, QueryEntities, CleanEntityStorage) over the hub.

Entity ids are the SDKs' ``@name@key`` form, which is dtctl's own. The hub runs the operations on
whichever worker registered the entity: a native dtctl worker, or an SDK worker through serve
(:mod:`dtctl.serve.entitywork`).
"""

from __future__ import annotations

from dtctl.hub.base import EntityQuery, EntityState, TaskHub
from dtctl.serve import convert
from dtctl.serve.clientops import MAX_PAGE, require_id
from dtctl.serve.proto import orchestrator_service_pb2 as pb

DEFAULT_PAGE = 100


def signal_entity(hub: TaskHub, request: pb.SignalEntityRequest) -> pb.SignalEntityResponse:
    fire_at = convert.micros(request.scheduledTime) if request.HasField("scheduledTime") else None
    hub.signal_entity(
        require_id(request.instanceId), request.name, convert.optional_text(request, "input"), fire_at=fire_at
    )
    return pb.SignalEntityResponse()


def get_entity(hub: TaskHub, request: pb.GetEntityRequest) -> pb.GetEntityResponse:
    found = hub.get_entity(require_id(request.instanceId), include_state=request.includeState)
    if found is None:
        return pb.GetEntityResponse(exists=False)
    return pb.GetEntityResponse(exists=True, entity=metadata(found, request.includeState))


def query_entities(hub: TaskHub, request: pb.QueryEntitiesRequest) -> pb.QueryEntitiesResponse:
    q = request.query
    size = q.pageSize.value if q.HasField("pageSize") and q.pageSize.value > 0 else DEFAULT_PAGE
    page = hub.query_entities(
        EntityQuery(
            prefix=convert.optional_text(q, "instanceIdStartsWith") or None,
            modified_after=convert.micros(q.lastModifiedFrom) if q.HasField("lastModifiedFrom") else None,
            modified_before=convert.micros(q.lastModifiedTo) if q.HasField("lastModifiedTo") else None,
            include_state=q.includeState,
            include_empty=q.includeTransient,
            limit=min(size, MAX_PAGE),
            cursor=convert.optional_text(q, "continuationToken") or None,
        )
    )
    return pb.QueryEntitiesResponse(
        entities=[metadata(e, q.includeState) for e in page.entities],
        continuationToken=convert.text(page.next_cursor),
    )


def clean_entity_storage(
    hub: TaskHub, request: pb.CleanEntityStorageRequest
) -> pb.CleanEntityStorageResponse:
    # One pass cleans everything, so there is never a continuation token.
    done = hub.clean_entity_storage(
        remove_empty=request.removeEmptyEntities, release_orphaned_locks=request.releaseOrphanedLocks
    )
    return pb.CleanEntityStorageResponse(
        emptyEntitiesRemoved=done.empty_entities_removed, orphanedLocksReleased=done.orphaned_locks_released
    )


def metadata(entity: EntityState, include_state: bool) -> pb.EntityMetadata:
    return pb.EntityMetadata(
        instanceId=entity.entity_id,
        lastModifiedTime=convert.timestamp(entity.last_modified),
        backlogQueueSize=entity.backlog,
        lockedBy=convert.text(entity.lock.instance_id if entity.lock is not None else None),
        serializedState=convert.text(entity.state if include_state else None),
    )
