"""Versioned workers as real processes, on SQLite and PostgreSQL.

Strict and current-or-older workers run the versions they match and leave the others (PENDING, and
``dtctl status`` says why) for a worker that matches them; the fail strategy fails a mismatched
instance; versions flow through sub-orchestrations and continue-as-new; tags round-trip. The SDK's
``version_aware_orchestrator`` example and the scenarios of its ``test_orchestration_versioning_e2e.py``
run here as ported in tests/apps/versioned.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED, PENDING
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, dtctl, json_out, wait_until

APP = "tests/apps/versioned.py:app"
SDK_APP = "tests/apps/versioned.py:sdk_app"


@pytest.fixture(params=["sqlite", "postgres"])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = str(tmp_path / "hub.db")
        open_hub(url, create=True).close()
        yield url
        return
    from tests import pgserver

    server = pgserver.shared_server()
    name = pgserver.new_hub_name("ver")
    url = server.url(name)
    open_hub(url, create=True).close()
    yield url
    pgserver.drop_hub(server, name)


class Workers:
    """Worker processes started by a test, stopped at its end."""

    def __init__(self, hub_url: str, log_dir: Path) -> None:
        self.hub_url = hub_url
        self.log_dir = log_dir
        self.running: list[WorkerProcess] = []

    def start(self, app: str = APP, **settings: Any) -> WorkerProcess:
        worker = WorkerProcess(self.hub_url, app, self.log_dir, **settings)  # type: ignore[arg-type]
        self.running.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.running:
            worker.stop()


@pytest.fixture
def workers(hub_url: str, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(hub_url, tmp_path / "logs")
    yield started
    started.stop_all()


def wait_done(client: TaskHubClient, instance_id: str) -> Any:
    return client.wait_for_completion(instance_id, timeout=60)


def live_worker_count(client: TaskHubClient, expected: int) -> bool:
    return len(client.live_workers()) >= expected


def test_strict_worker_leaves_a_newer_instance_for_a_newer_worker(hub_url: str, workers: Workers) -> None:
    with TaskHubClient(hub_url) as client:
        client.start_instance("versioned_chain", input=2, instance_id="old", version="1.0")
        client.start_instance("versioned_chain", input=2, instance_id="new", version="2.0")
        workers.start(version="1.0", version_match="strict")
        old = wait_done(client, "old")
        assert old.status == COMPLETED and client.decode_output(old)["path"] == "old"
        wait_until(lambda: live_worker_count(client, 1), what="the v1 worker's heartbeat")
        pending = client.get_instance_or_raise("new")
        assert pending.status == PENDING and pending.lease_owner is None
        waiting = client.waiting_for("new")
        assert waiting.unclaimed.version_refused and waiting.unclaimed.version == "2.0"
        shown = dtctl("--hub", hub_url, "status", "new")
        assert shown.returncode == 0 and "no live worker accepts version '2.0'" in shown.stdout
        listed = json_out(dtctl("--hub", hub_url, "workers", "--json"))["workers"]
        assert [w["versioning"] for w in listed] == [
            {"version": "1.0", "version_match": "strict", "version_failure": "reject"}
        ]
        workers.start(version="2.0", version_match="strict")
        new = wait_done(client, "new")
        assert new.status == COMPLETED and client.decode_output(new) == {
            "version": "2.0",
            "path": "new",
            "steps": ["new-0", "new-1"],
        }
        assert [s.instance_id for s in client.list_instances(version="2.0").instances] == ["new"]


def test_current_or_older_runs_its_version_and_older_ones_only(hub_url: str, workers: Workers) -> None:
    with TaskHubClient(hub_url) as client:
        for instance_id, version in (("none", None), ("v1", "1.0"), ("v2", "2.0"), ("v3", "3.0")):
            client.start_instance("versioned_chain", input=1, instance_id=instance_id, version=version)
        workers.start(version="2.0", version_match="current-or-older")
        done = [wait_done(client, i) for i in ("none", "v1", "v2")]
        assert [s.status for s in done] == [COMPLETED] * 3
        assert [client.decode_output(s)["path"] for s in done] == ["old", "old", "new"]
        wait_until(lambda: client.waiting_for("v3").unclaimed.version_refused, what="v3 to be refused")
        assert client.get_instance_or_raise("v3").status == PENDING


def test_fail_strategy_fails_a_mismatched_instance_with_the_reason(hub_url: str, workers: Workers) -> None:
    with TaskHubClient(hub_url) as client:
        client.start_instance("versioned_chain", input=1, instance_id="newer", version="2.0")
        client.start_instance("versioned_chain", input=1, instance_id="match", version="1.0")
        workers.start(version="1.0", version_match="strict", version_failure="fail")
        failed = wait_done(client, "newer")
        assert failed.status == FAILED and failed.failure is not None
        assert failed.failure.error_type == "VersionMismatch"
        assert "does not match the worker version '1.0'" in failed.failure.message
        assert wait_done(client, "match").status == COMPLETED


def test_versions_flow_through_sub_orchestrations_and_continue_as_new(hub_url: str, workers: Workers) -> None:
    with TaskHubClient(hub_url) as client:
        client.start_instance("parent", instance_id="p", version="1.0")
        client.start_instance("upgrading", input=2, instance_id="u", version="1.0")
        workers.start(version="1.0")  # match none: runs everything; its version is the default for children
        assert client.decode_output(wait_done(client, "p")) == ["1.0", "1.5", "1.0"]
        assert client.get_instance_or_raise("p:0000").version == "1.5"
        upgraded = wait_done(client, "u")
        assert upgraded.version == "2.0" and client.decode_output(upgraded) == "2.0"
        history = json_out(dtctl("--hub", hub_url, "history", "show", "u", "--json"))
        started = [e for e in history if e["kind"] == "execution_started"]
        assert [e.get("version") for e in started] == ["2.0"]


def test_tags_round_trip_and_filter(hub_url: str, workers: Workers) -> None:
    started = dtctl(
        "--hub", hub_url, "start-instance", "versioned_chain", "--input", "1", "--id", "t1",
        "--version", "2.0", "--tag", "tenant=acme", "--tag", "region=eu",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    with TaskHubClient(hub_url) as client:
        client.start_instance("versioned_chain", input=1, instance_id="t2", tags={"tenant": "acme"})
        workers.start()
        wait_done(client, "t1")
        wait_done(client, "t2")
    listed = json_out(dtctl("--hub", hub_url, "list", "--tag", "tenant=acme", "--json"))["instances"]
    assert sorted(i["instance_id"] for i in listed) == ["t1", "t2"]
    both = json_out(dtctl("--hub", hub_url, "list", "--tag", "tenant=acme", "--tag", "region=eu", "--json"))
    assert [(i["instance_id"], i["version"], i["tags"]) for i in both["instances"]] == [
        ("t1", "2.0", {"region": "eu", "tenant": "acme"})
    ]
    status = json_out(dtctl("--hub", hub_url, "status", "t1", "--json"))
    assert status["version"] == "2.0" and status["tags"] == {"region": "eu", "tenant": "acme"}
    history = json_out(dtctl("--hub", hub_url, "history", "show", "t1", "--json"))
    assert [e.get("tags") for e in history if e["kind"] == "task_scheduled"] == [{"path": "new"}]
    text = dtctl("--hub", hub_url, "history", "show", "t1").stdout
    assert "tags path=new" in text and "version 2.0" in text


# --- the durabletask SDK's example and end-to-end scenarios, ported -----------------------------------


def test_sdk_version_aware_orchestrator_example(hub_url: str, workers: Workers) -> None:
    workers.start(SDK_APP)
    with TaskHubClient(hub_url, default_version="2.0.0") as c:
        instance_id_v1 = c.start_instance("orchestrator", version="1.0.0")
        state_v1 = wait_done(c, instance_id_v1)
        assert state_v1.status == COMPLETED
        assert json.loads(state_v1.output or "null") == {"result": "Success from activity v1"}
        instance_id = c.start_instance("orchestrator")  # the client's default version
        state = wait_done(c, instance_id)
        assert state.status == COMPLETED and state.version == "2.0.0"
        assert json.loads(state.output or "null") == {"result": "Success from activity v2"}


def test_sdk_version_flows_through_to_orchestration_context(hub_url: str, workers: Workers) -> None:
    workers.start(SDK_APP, version="2.5.0")  # the SDK test's use_versioning(version="2.5.0", ...)
    with TaskHubClient(hub_url) as task_hub_client:
        id = task_hub_client.start_instance("return_version", version="2.5.0")
        state = wait_done(task_hub_client, id)
    assert state is not None
    assert state.status == COMPLETED
    assert state.failure is None
    assert state.output == json.dumps("2.5.0")


def test_sdk_strict_version_mismatch_fails(hub_url: str, workers: Workers) -> None:
    workers.start(SDK_APP, version="1.0.0", version_match="strict", version_failure="fail")
    with TaskHubClient(hub_url) as task_hub_client:
        id = task_hub_client.start_instance("simple", version="2.0.0")
        state = wait_done(task_hub_client, id)
    assert state is not None
    assert state.status == FAILED
    assert state.failure is not None
    assert "does not match the worker version" in state.failure.message


def test_sdk_newer_orchestration_version_fails_current_or_older(hub_url: str, workers: Workers) -> None:
    workers.start(SDK_APP, version="1.0.0", version_match="current-or-older", version_failure="fail")
    with TaskHubClient(hub_url) as task_hub_client:
        id = task_hub_client.start_instance("simple", version="1.1.0")
        state = wait_done(task_hub_client, id)
    assert state is not None
    assert state.status == FAILED
    assert state.failure is not None
    assert "is greater than the worker version" in state.failure.message


def test_the_versioning_sample_runs_old_and_new_instances_on_one_new_worker(
    hub_url: str, workers: Workers
) -> None:
    with TaskHubClient(hub_url) as client:
        client.start_instance("process_order", input="o-1", instance_id="old", version="1.0")
        client.start_instance("process_order", input="o-2", instance_id="new", version="2.0")
        workers.start("samples/versioning.py:app", version="2.0", version_match="current-or-older")
        assert client.decode_output(wait_done(client, "old")) == ["charged o-1", "shipped o-1"]
        assert client.decode_output(wait_done(client, "new")) == [
            "reserved o-2",
            "charged o-2",
            "shipped o-2",
        ]
