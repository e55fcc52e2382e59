"""Rewind, restart and recursive purge with real worker processes, on SQLite and PostgreSQL.

Activity runs are counted in files by the activities themselves (tests/apps/repair.py), so a count is
what the worker processes really did. Crash tests SIGKILL a worker (or the process doing the rewind) at
a fault point of dtctl.faults and check that nothing is lost or run twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import ExecutionRewound, TaskFailed
from dtctl.errors import InvalidState
from tests.apps.repair import runs
from tests.helpers import REPO, child_env, wait_until
from tests.repair.conftest import Site


def _failed_three_steps(site: Site, c: TaskHubClient, instance_id: str = "three") -> str:
    site.fail("two")
    c.start_instance("three_steps", instance_id=instance_id)
    assert c.wait_for_completion(instance_id, timeout=30).status == "FAILED"
    site.fail("two", on=False)
    return instance_id


def _assert_clean_history(c: TaskHubClient, instance_id: str) -> None:
    """Each task scheduled once in the current execution, with exactly one result."""
    events = [r.event for r in c.get_history(instance_id)]
    scheduled = Counter(
        e.task_ref for e in events if e.kind in ("task_scheduled", "sub_orchestration_created")
    )
    finished = Counter(
        e.task_ref
        for e in events
        if e.kind
        in ("task_completed", "task_failed", "sub_orchestration_completed", "sub_orchestration_failed")
    )
    assert all(n == 1 for n in scheduled.values()), scheduled
    assert finished == scheduled, (finished, scheduled)


def test_rewind_reruns_only_the_failed_second_of_three_activities(site: Site) -> None:
    site.worker()
    with site.client() as c:
        instance_id = _failed_three_steps(site, c)
        failed = c.get_instance_or_raise(instance_id)
        assert c.rewind(instance_id, reason="fixed the config") == [instance_id]
        state = c.wait_for_completion(instance_id, timeout=30)
        assert state.status == "COMPLETED", state.failure
        assert json.loads(state.output or "null") == ["one:ok", "two:ok", "three:ok"]
        assert [runs(site.runs_dir, instance_id, a) for a in ("one", "two", "three")] == [1, 2, 1]
        # The failed execution is kept as the previous one; the new one records the rewind.
        assert state.previous_execution_id == failed.execution_id
        before = [r.event for r in c.get_history(instance_id, failed.execution_id)]
        assert any(isinstance(e, TaskFailed) for e in before)
        after = [r.event for r in c.get_history(instance_id)]
        rewound = [e for e in after if isinstance(e, ExecutionRewound)]
        assert len(rewound) == 1 and rewound[0].reason == "fixed the config"
        assert rewound[0].previous_execution_id == failed.execution_id
        assert not any(isinstance(e, TaskFailed) for e in after)
        _assert_clean_history(c, instance_id)


def test_rewind_of_a_parent_rewinds_its_failed_child(site: Site) -> None:
    site.fail("inner")
    site.worker()
    with site.client() as c:
        c.start_instance("parent", instance_id="p")
        assert c.wait_for_completion("p", timeout=30).status == "FAILED"
        child_id = next(
            e.instance_id
            for e in (r.event for r in c.get_history("p"))
            if e.kind == "sub_orchestration_created"
        )
        assert c.get_instance_or_raise(child_id).status == "FAILED"
        site.fail("inner", on=False)
        assert c.rewind("p") == ["p", child_id]
        state = c.wait_for_completion("p", timeout=30)
        assert state.status == "COMPLETED", state.failure
        assert json.loads(state.output or "null") == "before:ok|parent:inner:ok"
        assert c.get_instance_or_raise(child_id).status == "COMPLETED"
        assert runs(site.runs_dir, "p", "before") == 1
        assert runs(site.runs_dir, child_id, "inner") == 2
        _assert_clean_history(c, "p")
        _assert_clean_history(c, child_id)


def test_restart_with_the_same_id_and_with_a_new_one(site: Site) -> None:
    site.worker()
    with site.client() as c:
        c.start_instance("echo", input={"n": 1}, instance_id="e")
        first = c.wait_for_completion("e", timeout=30)
        assert first.status == "COMPLETED"
        assert c.restart("e") == "e"
        again = c.wait_for_completion("e", timeout=30)
        assert again.status == "COMPLETED" and again.execution_id != first.execution_id
        assert again.input == first.input and again.output == first.output
        other = c.restart("e", new_instance_id=True)
        assert other != "e"
        fresh = c.wait_for_completion(other, timeout=30)
        assert (fresh.name, fresh.input, fresh.status) == ("echo", first.input, "COMPLETED")
        assert runs(site.runs_dir, "e", "echo") == 2 and runs(site.runs_dir, other, "echo") == 1


def test_restart_and_rewind_refuse_an_instance_that_is_running(site: Site) -> None:
    site.fail("two")  # no worker: the instance stays PENDING
    with site.client() as c:
        c.start_instance("three_steps", instance_id="live")
        for attempt in (lambda: c.restart("live"), lambda: c.restart("live", True), lambda: c.rewind("live")):
            with pytest.raises(InvalidState) as raised:
                attempt()
            assert raised.value.exit_code == 4
        assert c.get_instance_or_raise("live").status == "PENDING"


def test_recursive_purge_leaves_nothing_of_the_children(site: Site) -> None:
    site.worker()
    with site.client() as c:
        for root in ("t1", "t2"):
            c.start_instance("tree", instance_id=root)
            assert c.wait_for_completion(root, timeout=30).status == "COMPLETED"
        children = {
            root: [
                e.instance_id
                for e in (r.event for r in c.get_history(root))
                if e.kind == "sub_orchestration_created"
            ]
            for root in ("t1", "t2")
        }
        assert c.purge(["t1"]) == 3
        for gone in ("t1", *children["t1"]):
            assert c.get_instance(gone) is None
            assert c.hub.pending_messages(gone) == [] and c.hub.pending_activities(gone) == []
        assert c.purge(["t2"], recursive=False) == 1
        assert all(c.get_instance(child) is not None for child in children["t2"])


# --- crashes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["episode.before_checkpoint", "checkpoint.after_commit"])
def test_a_worker_killed_in_the_episode_after_a_rewind_loses_and_repeats_nothing(
    site: Site, fault: str
) -> None:
    first = site.worker()
    with site.client() as c:
        instance_id = _failed_three_steps(site, c)
        first.stop()
        c.rewind(instance_id)
        doomed = site.worker(fault=fault, lease_seconds=1.0)
        assert doomed.wait(30) == -signal.SIGKILL
        site.worker(lease_seconds=1.0)
        state = c.wait_for_completion(instance_id, timeout=60)
        assert state.status == "COMPLETED", state.failure
        assert [runs(site.runs_dir, instance_id, a) for a in ("one", "two", "three")] == [1, 2, 1]
        _assert_clean_history(c, instance_id)


def test_a_worker_killed_in_the_first_episode_of_a_restart_loses_and_repeats_nothing(site: Site) -> None:
    first = site.worker()
    with site.client() as c:
        c.start_instance("three_steps", instance_id="r")
        assert c.wait_for_completion("r", timeout=30).status == "COMPLETED"
        first.stop()
        c.restart("r")
        doomed = site.worker(fault="checkpoint.after_commit", lease_seconds=1.0)
        assert doomed.wait(30) == -signal.SIGKILL
        site.worker(lease_seconds=1.0)
        state = c.wait_for_completion("r", timeout=60)
        assert state.status == "COMPLETED", state.failure
        assert [runs(site.runs_dir, "r", a) for a in ("one", "two", "three")] == [2, 2, 2]
        _assert_clean_history(c, "r")


@pytest.mark.parametrize("fault", ["rewind.before_commit", "rewind.after_commit"])
def test_the_process_doing_the_rewind_killed_leaves_the_instance_whole(site: Site, fault: str) -> None:
    first = site.worker()
    with site.client() as c:
        instance_id = _failed_three_steps(site, c)
        first.stop()
        before = c.get_instance_or_raise(instance_id)
        command = [sys.executable, "-m", "dtctl", "--hub", site.location, "rewind", instance_id]
        done = subprocess.run(
            command, cwd=REPO, env=child_env(DTCTL_FAULT=fault), capture_output=True, timeout=60
        )
        assert done.returncode == -signal.SIGKILL, done.stderr
        after = c.get_instance_or_raise(instance_id)
        if fault == "rewind.before_commit":
            assert (after.status, after.execution_id) == ("FAILED", before.execution_id)
            c.rewind(instance_id)
        else:
            assert after.status == "RUNNING" and after.previous_execution_id == before.execution_id
        site.worker()
        state = c.wait_for_completion(instance_id, timeout=60)
        assert state.status == "COMPLETED", state.failure
        assert [runs(site.runs_dir, instance_id, a) for a in ("one", "two", "three")] == [1, 2, 1]
        _assert_clean_history(c, instance_id)


def test_purge_by_creation_time_on_both_hubs(site: Site) -> None:
    with site.client() as c:
        for instance_id in ("old-1", "old-2"):
            c.start_instance("three_steps", instance_id=instance_id)
        boundary = c.hub.now() + 1
        wait_until(lambda: c.hub.now() > boundary, what="the hub clock to pass the boundary")
        c.start_instance("three_steps", instance_id="new-1")
        for instance_id in ("old-1", "old-2", "new-1"):
            c.terminate(instance_id)  # PENDING and unleased: TERMINATED at once
        assert c.count_purgeable(created_before=boundary) == {"TERMINATED": 2}
        assert c.count_purgeable(created_after=boundary) == {"TERMINATED": 1}
        assert c.purge(created_after=boundary) == 1
        assert c.get_instance("new-1") is None
        assert c.purge(created_before=boundary, statuses=["TERMINATED"]) == 2
        assert c.get_instance("old-1") is None and c.get_instance("old-2") is None
