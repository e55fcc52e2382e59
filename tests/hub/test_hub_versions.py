"""Conformance: orchestration versions and instance tags (stored, leased by version, listed, purged)."""

from __future__ import annotations

from dtctl.core.decision import ContinueAsNew, StartSubOrchestration
from dtctl.core.history import CONTINUED_AS_NEW, ExecutionStarted
from dtctl.core.versioning import (
    VersionFailureStrategy,
    VersioningOptions,
    VersionMatchStrategy,
    lease_bounds,
)
from dtctl.hub.base import InstanceQuery, NewInstance, PurgeQuery, TaskHub
from tests.hub.hub_helpers import ORCH, finish_all, lease, step

STRICT = VersionMatchStrategy.STRICT
OLDER = VersionMatchStrategy.CURRENT_OR_OLDER


def create(hub: TaskHub, instance_id: str, version: str | None = None, **tags: str) -> None:
    new = NewInstance(instance_id=instance_id, name=ORCH, version=version, tags=tags or None)
    hub.create_instances([new])


def leased_ids(hub: TaskHub, options: VersioningOptions | None) -> list[str]:
    items = hub.lease_orchestrations("w", None, limit=100, lease_seconds=30, versions=lease_bounds(options))
    for item in items:
        hub.abandon_orchestration(item)
    return sorted(i.instance_id for i in items)


def test_version_and_tags_are_stored_and_start_the_history(hub: TaskHub) -> None:
    create(hub, "a", "1.2", tenant="acme", region="eu")
    state = hub.get_instance("a")
    assert state is not None and state.version == "1.2"
    assert state.tags == {"region": "eu", "tenant": "acme"}
    [started] = [m.event for m in hub.pending_messages("a")]
    assert isinstance(started, ExecutionStarted) and started.version == "1.2"
    assert started.tags == {"region": "eu", "tenant": "acme"}
    item = lease(hub, "a")
    assert item.version == "1.2"
    create(hub, "plain")
    plain = hub.get_instance("plain")
    assert plain is not None and plain.version is None and plain.tags is None


def test_strict_and_current_or_older_workers_lease_only_their_versions(hub: TaskHub) -> None:
    for instance_id, version in (
        ("none", None),
        ("v1", "1.0"),
        ("v1b", "1.0.0"),
        ("v2", "2.0"),
        ("v10", "10"),
    ):
        create(hub, instance_id, version)
    everything = ["none", "v1", "v10", "v1b", "v2"]
    assert leased_ids(hub, None) == everything
    assert leased_ids(hub, VersioningOptions(version="1.0", match_strategy=STRICT)) == ["v1", "v1b"]
    assert leased_ids(hub, VersioningOptions(version="2", match_strategy=OLDER)) == [
        "none",
        "v1",
        "v1b",
        "v2",
    ]
    assert leased_ids(hub, VersioningOptions(match_strategy=STRICT)) == ["none"]  # unversioned worker
    # A worker that fails mismatches leases them all (to fail them); one that matches none, too.
    fails = VersioningOptions(
        version="1.0", match_strategy=STRICT, failure_strategy=VersionFailureStrategy.FAIL
    )
    assert leased_ids(hub, fails) == everything
    assert leased_ids(hub, VersioningOptions(version="1.0")) == everything


def test_next_visible_at_sees_only_leasable_versions(hub: TaskHub) -> None:
    create(hub, "v2", "2.0")
    v1 = lease_bounds(VersioningOptions(version="1.0", match_strategy=STRICT))
    assert hub.next_visible_at(None, (), versions=v1) is None
    assert hub.next_visible_at(None, ()) is not None
    create(hub, "v1", "1.0")
    assert hub.next_visible_at(None, (), versions=v1) is not None


def test_continue_as_new_moves_the_instance_to_its_new_version(hub: TaskHub) -> None:
    create(hub, "c", "1.0")
    spec = ContinueAsNew(execution_id="e2", input="1", version="2.0")
    step(hub, "c", CONTINUED_AS_NEW, continue_as_new=spec)
    state = hub.get_instance("c")
    assert state is not None and state.version == "2.0" and state.execution_id == "e2"
    started = [m.event for m in hub.pending_messages("c") if isinstance(m.event, ExecutionStarted)]
    assert [s.version for s in started] == ["2.0"]
    assert leased_ids(hub, VersioningOptions(version="1.0", match_strategy=STRICT)) == []
    assert leased_ids(hub, VersioningOptions(version="2.0", match_strategy=STRICT)) == ["c"]


def test_a_sub_orchestration_starts_at_the_version_its_parent_asked_for(hub: TaskHub) -> None:
    create(hub, "p", "1.0")
    step(hub, "p", actions=[StartSubOrchestration(task_id=0, name=ORCH, instance_id="p:0", version="3.1")])
    child = hub.get_instance("p:0")
    assert child is not None and child.version == "3.1" and child.parent_instance_id == "p"


def test_list_filters_by_version_and_by_every_tag(hub: TaskHub) -> None:
    create(hub, "a", "1.0", tenant="acme", region="eu")
    create(hub, "b", "1.0", tenant="acme", region="us")
    create(hub, "c", "2.0", tenant="globex", region="eu")
    create(hub, "d")

    def ids(**filters: object) -> list[str]:
        page = hub.list_instances(InstanceQuery(**filters))  # type: ignore[arg-type]
        return sorted(s.instance_id for s in page.instances)

    assert ids(version="1.0") == ["a", "b"]
    assert ids(version="") == ["d"]  # instances started without a version
    assert ids(tags={"tenant": "acme"}) == ["a", "b"]
    assert ids(tags={"tenant": "acme", "region": "eu"}) == ["a"]
    assert ids(tags=(("region", "eu"),), version="2.0") == ["c"]
    assert ids(tags={"tenant": "nobody"}) == []
    [shown] = hub.list_instances(InstanceQuery(tags={"region": "us"})).instances
    assert shown.version == "1.0" and shown.tags == {"region": "us", "tenant": "acme"}


def test_tags_go_with_the_instance_when_it_is_purged_or_replaced(hub: TaskHub) -> None:
    create(hub, "a", tenant="acme")
    create(hub, "b", tenant="acme")
    finish_all(hub, "a", "b")
    assert hub.purge(PurgeQuery(instance_ids=("a",))) == 1
    assert [s.instance_id for s in hub.list_instances(InstanceQuery(tags={"tenant": "acme"})).instances] == [
        "b"
    ]
    hub.create_instances(
        [NewInstance(instance_id="b", name=ORCH, tags={"tenant": "new"})], if_exists="replace"
    )
    assert hub.list_instances(InstanceQuery(tags={"tenant": "acme"})).instances == []
    [b] = hub.list_instances(InstanceQuery(tags={"tenant": "new"})).instances
    assert b.tags == {"tenant": "new"}
    # A skipped start leaves the existing instance's tags alone.
    hub.create_instances([NewInstance(instance_id="b", name=ORCH, tags={"tenant": "x"})], if_exists="skip")
    assert hub.list_instances(InstanceQuery(tags={"tenant": "x"})).instances == []
