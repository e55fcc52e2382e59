"""Worker health, unclaimable backlog and the doctor's work checks (pure functions)."""

from __future__ import annotations

from dtctl.errors import ExitCode
from dtctl.hub.base import (
    ExpiredLease,
    Finding,
    LargeHistory,
    LeaseHolder,
    NameBacklog,
    PoisonCandidate,
    StuckWork,
    WorkerInfo,
)
from dtctl.ops import (
    DEFAULT_LOST_AFTER,
    check_expired_leases,
    check_large_histories,
    check_poison,
    check_unclaimable,
    check_workers,
    describe_backlog,
    doctor_exit_code,
    live_workers,
    unclaimable_backlog,
    work_findings,
    worker_health,
)

S = 1_000_000
NOW = 1_700_000_000 * S


def worker(
    wid: str, age: float, *, orch: tuple[str, ...] = (), act: tuple[str, ...] = (), **kw: object
) -> WorkerInfo:
    return WorkerInfo(
        worker_id=wid,
        host="h",
        pid=1,
        started_at=NOW - 100 * S,
        heartbeat_at=NOW - int(age * S),
        orchestrations=orch,
        activities=act,
        max_orchestrations=8,
        max_activities=8,
        **kw,  # type: ignore[arg-type]
    )


def backlog(kind: str, name: str, count: int = 1) -> NameBacklog:
    return NameBacklog(kind=kind, name=name, count=count, oldest_visible_at=NOW - S)  # type: ignore[arg-type]


def test_live_and_lost_workers() -> None:
    fresh, stale = worker("a", 1), worker("b", DEFAULT_LOST_AFTER + 1)
    assert live_workers([fresh, stale], NOW) == [fresh]
    assert live_workers([fresh, stale], NOW, lost_after=0.5) == []
    slow = worker("c", DEFAULT_LOST_AFTER + 1, extra={"heartbeat_seconds": 60})
    assert live_workers([slow], NOW) == [slow]  # 3 x its own interval
    assert live_workers([slow], NOW, lost_after=5) == []  # an explicit threshold wins


def test_worker_health_uses_the_hubs_lease_counts() -> None:
    a, b = worker("a", 1, inflight_activities=5), worker("b", 100)
    leases = [LeaseHolder(owner="a", orchestrations=2, activities=3)]
    ha, hb = worker_health([a, b], leases, NOW)
    assert (ha.live, ha.orchestrations, ha.activities, round(ha.heartbeat_age)) == (True, 2, 3, 1)
    assert (hb.live, hb.orchestrations, hb.activities) == (False, 0, 0)


def test_unclaimable_backlog_is_what_no_live_worker_registered() -> None:
    live = [worker("a", 1, orch=("orders",), act=("charge",))]
    items = [backlog("orchestration", "orders"), backlog("activity", "charge"), backlog("activity", "orders")]
    assert unclaimable_backlog(items, live) == [items[2]]  # a name registered for the other kind
    assert unclaimable_backlog(items, []) == items
    assert (
        describe_backlog(items, limit=2)
        == "orchestration 'orders' (1 instance), activity 'charge' (1 task), 1 more"
    )


def stuck(**kw: object) -> StuckWork:
    return StuckWork(at=NOW, **kw)  # type: ignore[arg-type]


def test_work_checks() -> None:
    health = worker_health([worker("a", 1), worker("gone", 100)], [], NOW)
    assert check_workers(health).severity == "warning"
    assert check_workers(health[:1]).severity == "ok"
    expired = ExpiredLease(
        kind="activity", instance_id="i", name="slow", owner="gone", expired_at=NOW - 3 * S, task_id=4
    )
    finding = check_expired_leases(stuck(expired_leases=(expired,), expired_lease_count=1), health)
    assert (
        finding.severity == "problem" and "gone (not live)" in finding.message and "3s ago" in finding.message
    )
    assert check_expired_leases(stuck(), health).severity == "ok"
    poison = PoisonCandidate(kind="orchestration", instance_id="p", name="n", dequeue_count=5)
    assert check_poison(stuck(poison=(poison,), poison_count=1), 5).severity == "problem"
    assert check_unclaimable([backlog("orchestration", "x")], []).severity == "problem"
    large = LargeHistory(instance_id="l", name="n", status="RUNNING", history_length=20_000)
    finding = check_large_histories(stuck(large_histories=(large,), large_history_count=1))
    assert finding.severity == "warning" and "continue_as_new" in (finding.hint or "")
    everything = work_findings(stuck(), [], health, max_dequeue=5)
    assert all(f.area == "work" for f in everything)


def test_doctor_exit_codes() -> None:
    ok = Finding(check="a", severity="ok", message="")
    warning = Finding(check="b", severity="warning", message="")
    work = Finding(check="c", severity="problem", message="", area="work")
    hub = Finding(check="d", severity="problem", message="", area="hub")
    assert doctor_exit_code([ok, warning]) == ExitCode.OK
    assert doctor_exit_code([ok, work]) == ExitCode.CONFLICT == 4
    assert doctor_exit_code([work, hub]) == ExitCode.HUB_UNSAFE == 8
