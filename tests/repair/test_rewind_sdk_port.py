"""The durabletask SDK's tests/durabletask/test_rewind_e2e.py, ported: each scenario under its SDK name.

Changed from the SDK: the client calls are dtctl's (start_instance, wait_for_completion, rewind, purge),
the worker is a real process on a SQLite or PostgreSQL hub, and call counts are read from the files the
activities write (tests/apps/rewind_sdk.py).
"""

from __future__ import annotations

import json

import pytest

from dtctl.errors import InstanceNotFound, InvalidState
from tests.apps.repair import runs
from tests.repair.conftest import SDK_APP, Site


def test_rewind_failed_activity(site: Site) -> None:
    site.fail("failing_activity")
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("orchestrator", input="World")
        state = c.wait_for_completion(instance_id, timeout=30)
        assert state.status == "FAILED"

        # Fix the activity so it now succeeds, then rewind.
        site.fail("failing_activity", on=False)
        c.rewind(instance_id, reason="retry after fix")
        state = c.wait_for_completion(instance_id, timeout=30)

    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == "Hello, World!"
    assert state.failure is None
    assert runs(site.runs_dir, instance_id, "failing_activity") == 2


def test_rewind_preserves_successful_results(site: Site) -> None:
    site.fail("second_activity")
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("two_step_orchestrator", input="test")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"

        site.fail("second_activity", on=False)
        c.rewind(instance_id, reason="retry")
        state = c.wait_for_completion(instance_id, timeout=30)

    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == ["first:test", "second:test"]
    assert state.failure is None
    assert runs(site.runs_dir, instance_id, "first_activity") == 1  # replayed, not re-executed
    assert runs(site.runs_dir, instance_id, "second_activity") >= 2


def test_rewind_not_found(site: Site) -> None:
    with site.client() as c, pytest.raises(InstanceNotFound):
        c.rewind("nonexistent-id")


def test_rewind_non_failed_instance(site: Site) -> None:
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("done_orchestrator")
        assert c.wait_for_completion(instance_id, timeout=30).status == "COMPLETED"
        with pytest.raises(InvalidState) as raised:
            c.rewind(instance_id)
    assert raised.value.exit_code == 4


def test_rewind_with_sub_orchestration(site: Site) -> None:
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("parent_orchestrator", input="data")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"

        rewound = c.rewind(instance_id, reason="sub-orch fix")
        state = c.wait_for_completion(instance_id, timeout=30)

    assert len(rewound) == 2  # the parent and its failed child
    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == "parent:child:data"
    assert runs(site.runs_dir, rewound[1], "child_activity_seen") == 2


def test_rewind_without_reason(site: Site) -> None:
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("flaky_orchestrator")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"
        c.rewind(instance_id)
        state = c.wait_for_completion(instance_id, timeout=30)
    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == "ok"


def test_rewind_purged_sub_orchestration(site: Site) -> None:
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("purging_parent_orchestrator", input="data")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"

        # Purge the sub-orchestration so it must be completely re-run.
        assert c.purge(["sub-orch-to-purge"]) == 1

        c.rewind(instance_id, reason="purge and retry")
        state = c.wait_for_completion(instance_id, timeout=30)

    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == "parent:child:data"
    assert runs(site.runs_dir, "sub-orch-to-purge", "child_activity_seen") == 2


def test_rewind_twice(site: Site) -> None:
    site.worker(SDK_APP)
    with site.client() as c:
        instance_id = c.start_instance("twice_orchestrator", input="World")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"

        c.rewind(instance_id, reason="first rewind")
        assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"

        c.rewind(instance_id, reason="second rewind")
        state = c.wait_for_completion(instance_id, timeout=30)

    assert state.status == "COMPLETED"
    assert json.loads(state.output or "null") == "Hello, World!"
    assert runs(site.runs_dir, instance_id, "twice_flaky_activity") == 3
