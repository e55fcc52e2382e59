"""Operating a hub: worker health, backlog nobody can take, and the work checks of ``dtctl doctor``.

Pure functions over the records the hub returns (:mod:`dtctl.hub.base`): no database, no printing;
"now" is always passed in (the hub's clock). Used by ``dtctl workers``, ``top``, ``doctor``, ``list``
and ``status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dtctl.errors import ExitCode
from dtctl.hub.base import (
    LARGE_HISTORY_EVENTS,
    EntityHealth,
    Finding,
    HubSnapshot,
    LeaseHolder,
    NameBacklog,
    StuckWork,
    WorkerInfo,
)
from dtctl.scale import ScaleRecommendation, recommend

HEARTBEAT_SECONDS = 5.0  # how often a worker writes its heartbeat (WorkerConfig.heartbeat_seconds)
# A worker is lost when its heartbeat is older than this (6 heartbeats: slack for a busy host), or than
# 3 x the interval it reports in ``extra["heartbeat_seconds"]`` if that is longer. The same rule as
# :meth:`dtctl.client.TaskHubClient.live_workers`.
DEFAULT_LOST_AFTER = 6 * HEARTBEAT_SECONDS
US = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerHealth:
    """One worker row judged at a moment: live or lost, and the leases it holds now."""

    info: WorkerInfo
    live: bool
    heartbeat_age: float  # seconds since the last heartbeat
    orchestrations: int  # instances it holds a lease on now (the hub's count)
    activities: int  # activity tasks it holds a lease on now (the hub's count)


def lost_threshold(worker: WorkerInfo, lost_after: float | None = None) -> float:
    """Seconds of silence after which ``worker`` counts as lost: ``lost_after`` when given, else the
    default (longer for a worker that reports a longer heartbeat interval)."""
    if lost_after is not None:
        return lost_after
    interval = worker.extra.get("heartbeat_seconds")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
        return max(DEFAULT_LOST_AFTER, 3 * float(interval))
    return DEFAULT_LOST_AFTER


def is_live(worker: WorkerInfo, now: int, lost_after: float | None = None) -> bool:
    return (now - worker.heartbeat_at) <= lost_threshold(worker, lost_after) * US


def live_workers(
    workers: Iterable[WorkerInfo], now: int, lost_after: float | None = None
) -> list[WorkerInfo]:
    """The workers whose heartbeat is recent enough (see :func:`lost_threshold`)."""
    return [w for w in workers if is_live(w, now, lost_after)]


def worker_health(
    workers: Iterable[WorkerInfo],
    leases: Iterable[LeaseHolder],
    now: int,
    lost_after: float | None = None,
) -> list[WorkerHealth]:
    held = {lease.owner: lease for lease in leases}
    result: list[WorkerHealth] = []
    for worker in workers:
        lease = held.get(worker.worker_id)
        result.append(
            WorkerHealth(
                info=worker,
                live=is_live(worker, now, lost_after),
                heartbeat_age=max(0.0, (now - worker.heartbeat_at) / US),
                orchestrations=lease.orchestrations if lease else 0,
                activities=lease.activities if lease else 0,
            )
        )
    return result


def unclaimable_backlog(backlog: Iterable[NameBacklog], live: Sequence[WorkerInfo]) -> list[NameBacklog]:
    """Ready work whose name no live worker registered: it waits until such a worker starts.

    A worker only leases the orchestrations and activities it registered, so with no live
    worker at all every ready item is unclaimable.
    """
    orchestrations = {name for w in live for name in w.orchestrations}
    activities = {name for w in live for name in w.activities}
    return [
        b
        for b in backlog
        if b.count > 0 and b.name not in (orchestrations if b.kind == "orchestration" else activities)
    ]


def describe_backlog(items: Sequence[NameBacklog], limit: int = 3) -> str:
    """``orchestration 'a' (3 instances), activity 'b' (12 tasks)`` for the first ``limit`` items."""
    parts = [
        f"{b.kind} {b.name!r} ({b.count} {'instance' if b.kind == 'orchestration' else 'task'}"
        f"{'' if b.count == 1 else 's'})"
        for b in items[:limit]
    ]
    if len(items) > limit:
        parts.append(f"{len(items) - limit} more")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopView:
    """What ``dtctl top`` shows: a hub snapshot judged (workers live or lost, backlog nobody can take,
    the scale recommendation for the given per-worker limits)."""

    snapshot: HubSnapshot
    recommendation: ScaleRecommendation
    workers: tuple[WorkerHealth, ...]
    unclaimable: tuple[NameBacklog, ...]
    entities: EntityHealth | None = None  # the entity queue (None: not asked)


def top_view(
    snapshot: HubSnapshot,
    max_orchestrations: int,
    max_activities: int,
    lost_after: float | None = None,
    entities: EntityHealth | None = None,
) -> TopView:
    health = worker_health(snapshot.workers, snapshot.leases, snapshot.at, lost_after)
    live = [h.info for h in health if h.live]
    return TopView(
        snapshot=snapshot,
        recommendation=recommend(snapshot.scale, max_orchestrations, max_activities),
        workers=tuple(health),
        unclaimable=tuple(unclaimable_backlog(snapshot.backlog, live)),
        entities=entities,
    )


# --- doctor: the work checks, each a small function returning one Finding ------------------------------


def check_workers(health: Sequence[WorkerHealth]) -> Finding:
    lost = [h for h in health if not h.live]
    live = len(health) - len(lost)
    if not lost:
        return Finding(check="workers", severity="ok", message=f"{live} live worker(s)", area="work")
    names = ", ".join(f"{h.info.worker_id} (silent {h.heartbeat_age:.0f}s)" for h in lost[:3])
    return Finding(
        check="workers",
        severity="warning",
        message=f"{live} live worker(s); {len(lost)} lost: {names}{' …' if len(lost) > 3 else ''}",
        hint="a lost worker stopped without draining (killed, or its host is gone); "
        "`dtctl workers --forget-lost` removes its row",
        area="work",
    )


def check_expired_leases(stuck: StuckWork, health: Sequence[WorkerHealth]) -> Finding:
    if not stuck.expired_lease_count:
        return Finding(check="expired-leases", severity="ok", message="no expired leases", area="work")
    live_ids = {h.info.worker_id for h in health if h.live}
    shown = [
        f"{e.kind} {e.instance_id}"
        + (f" task {e.task_id}" if e.task_id is not None else "")
        + f" held by {e.owner or '?'}{'' if e.owner in live_ids else ' (not live)'}"
        + f" expired {(stuck.at - e.expired_at) / US:.0f}s ago"
        for e in stuck.expired_leases[:3]
    ]
    more = stuck.expired_lease_count - len(shown)
    return Finding(
        check="expired-leases",
        severity="problem",
        message=f"{stuck.expired_lease_count} expired lease(s) nobody took over: "
        + "; ".join(shown)
        + (f"; {more} more" if more > 0 else ""),
        hint="their owner died or stalled; a live worker that registered the name takes the work "
        "over at its next poll (run one if none is running)",
        area="work",
    )


def check_poison(stuck: StuckWork, max_dequeue: int) -> Finding:
    if not stuck.poison_count:
        return Finding(
            check="poison", severity="ok", message=f"no work item leased {max_dequeue} times", area="work"
        )
    shown = [
        f"{p.kind} {p.name!r} of {p.instance_id}"
        + (f" task {p.task_id}" if p.task_id is not None else "")
        + f" ({p.dequeue_count} leases)"
        for p in stuck.poison[:3]
    ]
    more = stuck.poison_count - len(shown)
    return Finding(
        check="poison",
        severity="problem",
        message=f"{stuck.poison_count} work item(s) at the dequeue limit ({max_dequeue}); the next "
        "lease fails them: " + "; ".join(shown) + (f"; {more} more" if more > 0 else ""),
        hint="a worker crashed or stalled on each lease of these items; look at the worker logs",
        area="work",
    )


def check_unclaimable(backlog: Sequence[NameBacklog], live: Sequence[WorkerInfo]) -> Finding:
    stuck = unclaimable_backlog(backlog, live)
    if not stuck:
        return Finding(
            check="unclaimable-backlog",
            severity="ok",
            message="every ready work item has a live worker that can take it",
            area="work",
        )
    who = "no worker is running" if not live else "no live worker registered these names"
    return Finding(
        check="unclaimable-backlog",
        severity="problem",
        message=f"ready work waits and {who}: {describe_backlog(stuck)}",
        hint="start a worker whose app registers them (dtctl worker APP)",
        area="work",
    )


def check_large_histories(stuck: StuckWork, threshold: int = LARGE_HISTORY_EVENTS) -> Finding:
    if not stuck.large_history_count:
        return Finding(
            check="large-histories",
            severity="ok",
            message=f"no live instance has {threshold}+ history events",
            area="work",
        )
    shown = ", ".join(f"{h.instance_id} ({h.history_length})" for h in stuck.large_histories[:3])
    return Finding(
        check="large-histories",
        severity="warning",
        message=f"{stuck.large_history_count} live instance(s) with {threshold}+ history events "
        f"replay slowly: {shown}",
        hint="have long-lived orchestrations call ctx.continue_as_new(...) to start a fresh history",
        area="work",
    )


def work_findings(
    stuck: StuckWork,
    backlog: Sequence[NameBacklog],
    health: Sequence[WorkerHealth],
    *,
    max_dequeue: int,
    history_threshold: int = LARGE_HISTORY_EVENTS,
) -> list[Finding]:
    live = [h.info for h in health if h.live]
    return [
        check_workers(health),
        check_expired_leases(stuck, health),
        check_poison(stuck, max_dequeue),
        check_unclaimable(backlog, live),
        check_large_histories(stuck, history_threshold),
    ]


STUCK_ENTITY_SECONDS = 60.0  # a ready entity message no worker took for this long is stuck


def entity_findings(health: EntityHealth, stuck_after: float = STUCK_ENTITY_SECONDS) -> list[Finding]:
    """Orphaned entity locks (their holder will never unlock) and entity queues nobody works on."""
    findings = [_check_orphaned_locks(health)]
    waited = (health.at - health.oldest_ready_at) / 1_000_000 if health.oldest_ready_at is not None else 0.0
    if waited < stuck_after:
        findings.append(
            Finding(
                check="stuck-entity-queues",
                severity="ok",
                message=f"{health.ready} entit(ies) with ready operations, none waiting long",
                area="work",
            )
        )
    else:
        findings.append(
            Finding(
                check="stuck-entity-queues",
                severity="problem",
                message=f"{health.ready} entit(ies) have ready operations; the oldest has waited "
                f"{waited:.0f} s with no worker taking it",
                hint="start a worker whose app registers those entities (dtctl worker APP)",
                area="work",
            )
        )
    return findings


def _check_orphaned_locks(health: EntityHealth) -> Finding:
    if not health.orphaned_locks:
        return Finding(
            check="orphaned-entity-locks",
            severity="ok",
            message=f"no orphaned entity locks ({health.locked} held)",
            area="work",
        )
    return Finding(
        check="orphaned-entity-locks",
        severity="warning",
        message=f"{health.orphaned_locks} entity lock(s) held by orchestrations that are gone or finished: "
        "operations from others wait on them forever",
        hint="dtctl entity clean releases them",
        area="work",
    )


def doctor_exit_code(findings: Iterable[Finding]) -> int:
    """8 for a problem with the hub itself, else 4 for stuck work, else 0 (warnings do not fail)."""
    problems = [f for f in findings if f.severity == "problem"]
    if any(f.area == "hub" for f in problems):
        return ExitCode.HUB_UNSAFE
    if problems:
        return ExitCode.CONFLICT
    return ExitCode.OK
