"""The records of the hub's entity queue: a leased entity, what reading entities returns.

Times are integers, microseconds since the Unix epoch, UTC. The messages in an entity's inbox are
:class:`~dtctl.core.entity_exec.EntityMessage`; a batch's outcome is the pure executor's
:class:`~dtctl.core.entity_exec.EntityBatchResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtctl.core.entity_exec import EntityBatchResult, EntityMessage, LockHolder

# Messages one entity episode takes at most (an unlocked entity: the oldest ones; a locked entity takes
# every visible message, since the holder's may be queued behind any number of waiting ones).
ENTITY_BATCH_LIMIT = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityWorkItem:
    """A leased entity and the visible messages of its inbox, in FIFO order."""

    entity_id: str  # @name@key
    name: str
    key: str
    state: str | None
    lock: LockHolder | None
    lease_token: str
    lease_expires: int
    leased_at: int
    dequeue_count: int  # leases since its last committed batch, this one included
    messages: tuple[EntityMessage, ...]


@dataclass(frozen=True, slots=True)
class EntityBatch:
    """What a worker commits for one leased entity: the executor's result for ``item``."""

    item: EntityWorkItem
    result: EntityBatchResult


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityState:
    """One entity as a client reads it."""

    entity_id: str
    name: str
    key: str
    state: str | None  # encoded JSON; None when it has none, or when read without state
    created_at: int
    last_modified: int
    lock: LockHolder | None
    backlog: int  # messages waiting in its inbox (visible or not)
    lease_owner: str | None = None
    lease_expires: int | None = None
    dequeue_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityQuery:
    """``query_entities``: by entity name or id prefix, last-modified range, a page at a time."""

    name: str | None = None  # entity name (case-insensitive)
    prefix: str | None = None  # of the entity id, as in ``@counter@a``
    modified_after: int | None = None
    modified_before: int | None = None
    include_state: bool = True
    include_empty: bool = False  # entities with no state, no lock and no backlog
    limit: int = 100
    cursor: str | None = None  # the previous page's ``next_cursor`` (the last entity id)


@dataclass(frozen=True, slots=True)
class EntityPage:
    entities: list[EntityState]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class EntityCleanup:
    """What ``clean_entity_storage`` removed (or, with ``dry_run``, would remove)."""

    empty_entities_removed: int
    orphaned_locks_released: int


@dataclass(frozen=True, slots=True)
class EntityMessageInfo:
    """One message waiting in an entity's inbox (``dtctl entity show``)."""

    message: EntityMessage
    visible_at: int
    parked: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityHealth:
    """``dtctl doctor`` and ``top``: the entity queue at a glance (one consistent read)."""

    at: int
    entities: int
    ready: int  # entities with a message that can run now
    leased: int
    locked: int
    orphaned_locks: int  # held by an orchestration that is gone, finished or on another execution
    oldest_ready_at: int | None  # visible time of the oldest ready message of an unleased entity
    max_dequeue_count: int
