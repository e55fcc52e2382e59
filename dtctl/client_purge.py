"""What :class:`~dtctl.client.TaskHubClient` does to remove finished instances, mixed into it: purge
by id or by filter, in batches, and the read-only questions a purge asks first (``--dry-run``)."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace

from dtctl.core import names
from dtctl.core.history import TERMINAL_STATUSES
from dtctl.core.times import Time, to_micros
from dtctl.errors import UsageError
from dtctl.hub.base import InstanceQuery, InstanceState, PurgeQuery, TaskHub
from dtctl.hub.sql.instances import purge_statuses as _purge_statuses


class PurgeClient:
    """Purge operations of the client; ``hub`` is the client's hub."""

    hub: TaskHub

    def purge(
        self,
        instance_ids: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        completed_before: Time | None = None,
        created_before: Time | None = None,
        created_after: Time | None = None,
        recursive: bool = True,
        batch_size: int = 500,
    ) -> int:
        """Delete finished instances (by id, or by status / completion / creation time) and, unless
        ``recursive=False``, their finished sub-orchestrations; returns how many instances went."""
        _check_refs(instance_ids)
        query = PurgeQuery(
            instance_ids=tuple(instance_ids),
            statuses=tuple(statuses),
            completed_before=to_micros(completed_before),
            created_before=to_micros(created_before),
            created_after=to_micros(created_after),
            recursive=recursive,
            batch_size=batch_size,
        )
        return self.hub.purge(query)

    def purge_targets(
        self,
        instance_ids: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        completed_before: Time | None = None,
        created_before: Time | None = None,
        created_after: Time | None = None,
        page_size: int = 500,
    ) -> Iterator[InstanceState]:
        """The finished instances a purge with these arguments selects (read only; their
        sub-orchestrations, which a recursive purge deletes with them, are not listed)."""
        _check_refs(instance_ids)
        wanted = _purge_statuses(statuses)
        window = _TimeWindow(to_micros(completed_before), to_micros(created_before), to_micros(created_after))

        def matches(state: InstanceState) -> bool:
            return state.status in wanted and window.admits(state)

        if instance_ids:
            for instance_id in dict.fromkeys(instance_ids):
                state = self.hub.get_instance(instance_id, include_payloads=False)
                if state is not None and matches(state):
                    yield state
            return
        cursor: str | None = None
        while True:
            page = self.hub.list_instances(InstanceQuery(statuses=wanted, limit=page_size, cursor=cursor))
            yield from (s for s in page.instances if matches(s))
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def count_purgeable(
        self,
        instance_ids: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        completed_before: Time | None = None,
        created_before: Time | None = None,
        created_after: Time | None = None,
    ) -> dict[str, int]:
        """How many instances a purge selects, per status (``--dry-run``; children not counted)."""
        counts: dict[str, int] = {}
        targets = self.purge_targets(
            instance_ids,
            statuses=statuses,
            completed_before=completed_before,
            created_before=created_before,
            created_after=created_after,
        )
        for state in targets:
            counts[state.status] = counts.get(state.status, 0) + 1
        return counts

    def purge_batches(
        self,
        instance_ids: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        completed_before: Time | None = None,
        created_before: Time | None = None,
        created_after: Time | None = None,
        recursive: bool = True,
        batch_size: int = 500,
    ) -> Generator[int, None, None]:
        """Purge in batches, one transaction each, yielding how many each batch deleted.

        Stopping between batches (Ctrl-C, a crash) leaves a consistent hub; running the same purge
        again carries on with what is left. The hub checks status and age again inside each batch.
        """
        batch = max(1, batch_size)
        query = PurgeQuery(
            statuses=_purge_statuses(statuses),
            completed_before=to_micros(completed_before),
            created_before=to_micros(created_before),
            created_after=to_micros(created_after),
            recursive=recursive,
        )
        chunk: list[str] = []
        targets = self.purge_targets(
            instance_ids,
            statuses=query.statuses,
            completed_before=query.completed_before,
            created_before=query.created_before,
            created_after=query.created_after,
            page_size=batch,
        )
        for state in targets:
            chunk.append(state.instance_id)
            if len(chunk) >= batch:
                yield self.hub.purge(replace(query, instance_ids=tuple(chunk), batch_size=len(chunk)))
                chunk = []
        if chunk:
            yield self.hub.purge(replace(query, instance_ids=tuple(chunk), batch_size=len(chunk)))

    def unpurgeable(self, instance_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """Of these ids: (those that do not exist, those that have not finished)."""
        _check_refs(instance_ids)
        missing: list[str] = []
        live: list[str] = []
        for instance_id in dict.fromkeys(instance_ids):
            state = self.hub.get_instance(instance_id, include_payloads=False)
            if state is None:
                missing.append(instance_id)
            elif state.status not in TERMINAL_STATUSES:
                live.append(instance_id)
        return missing, live


@dataclass(frozen=True, slots=True)
class _TimeWindow:
    """The time filters of a purge, as the client checks them before the hub checks them again."""

    completed_before: int | None
    created_before: int | None
    created_after: int | None

    def admits(self, state: InstanceState) -> bool:
        done = self.completed_before
        if done is not None and (state.completed_at is None or state.completed_at >= done):
            return False
        if self.created_before is not None and state.created_at >= self.created_before:
            return False
        return self.created_after is None or state.created_at > self.created_after


def _check_refs(instance_ids: Sequence[str]) -> None:
    if isinstance(instance_ids, str):
        raise UsageError("instance ids must be a sequence of ids, not one string")
    for instance_id in instance_ids:
        names.instance_ref(instance_id)
