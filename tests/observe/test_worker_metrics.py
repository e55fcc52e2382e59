"""/metrics of real worker processes during a known workload: the counts are the workload's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import FAILED
from tests.helpers import REPO, wait_until
from tests.observe.support import (
    APP,
    Dtctl,
    Samples,
    dashboard,
    free_ports,
    metric_names_in,
    new_hub,
    scrape_all,
    total,
    wait_terminal,
)

HELLOS, FLAKIES, BOOMS = 6, 2, 2
GRAFANA = REPO / "docs" / "grafana" / "dtctl.json"


@dataclass
class Workload:
    workers: Samples  # both worker processes' samples
    hub: Samples  # `dtctl metrics serve`'s samples
    ports: tuple[int, int]


def _counted(found: Samples) -> bool:
    """Counters move just after the commit the client sees: wait for the last ones."""
    return (
        total(found, "dtctl_work_items_completed_total", kind="activity", name="greet") == 3 * HELLOS
        and total(found, "dtctl_work_items_failed_total", kind="orchestration", name="boom") == BOOMS
        and total(found, "dtctl_work_items_completed_total", kind="orchestration", name="flaky_once")
        >= FLAKIES
        and total(found, "dtctl_entity_operations_total", message="signal") == 1
    )


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    tmp = tmp_path_factory.mktemp("metrics")
    hub = new_hub(tmp)
    with TaskHubClient(str(hub)) as client:
        ids = [client.start_instance("hello") for _ in range(HELLOS)]
        ids += [client.start_instance("flaky_once") for _ in range(FLAKIES)]
        ids += [client.start_instance("boom") for _ in range(BOOMS)]
        ids.append(client.start_instance("tally_up", input="metrics"))  # entity series for the dashboard
    port, hub_port = free_ports(2), free_ports(1)
    worker = Dtctl(
        hub,
        tmp / "worker.log",
        "worker",
        f"{APP}:app",
        "-c",
        "2",
        "--metrics-port",
        str(port),
        "--max-activities",
        "4",
    )
    exporter = Dtctl(hub, tmp / "exporter.log", "metrics", "serve", "--port", str(hub_port))
    try:
        states = wait_terminal(hub, ids)
        assert sorted(states.values()).count(FAILED) == BOOMS
        found = wait_until(
            lambda: (s := scrape_all((port, port + 1))) and _counted(s) and s, what="the counters to settle"
        )
        # A worker can serve /metrics a moment before its first heartbeat registers it in the hub.
        hub_found = wait_until(
            lambda: (s := scrape_all((hub_port,))) and total(s, "dtctl_hub_workers", state="live") == 2 and s,
            what="both workers registered",
        )
        yield Workload(found, hub_found, (port, port + 1))
    finally:
        assert worker.stop() == 0, worker.log()
        exporter.stop()


def test_work_items_are_counted_by_kind_and_name(workload: Workload) -> None:
    found = workload.workers
    activities = 3 * HELLOS + 2 * FLAKIES + BOOMS  # flaky runs twice (a retry), explode once
    assert total(found, "dtctl_work_items_started_total", kind="activity") == activities
    assert total(found, "dtctl_work_items_completed_total", kind="activity", name="greet") == 3 * HELLOS
    assert total(found, "dtctl_work_items_failed_total", kind="activity", name="greet") == 0
    assert total(found, "dtctl_work_items_completed_total", kind="activity", name="flaky") == FLAKIES
    assert total(found, "dtctl_work_items_failed_total", kind="activity", name="flaky") == FLAKIES
    assert total(found, "dtctl_work_items_failed_total", kind="activity", name="explode") == BOOMS
    assert total(found, "dtctl_work_items_failed_total", kind="orchestration", name="boom") == BOOMS
    assert total(found, "dtctl_work_items_failed_total", kind="orchestration", name="hello") == 0
    # Every episode started was committed: nothing refused, nothing taken over, nothing poisoned.
    episodes = total(found, "dtctl_work_items_started_total", kind="orchestration")
    finished = total(found, "dtctl_work_items_completed_total", kind="orchestration") + total(
        found, "dtctl_work_items_failed_total", kind="orchestration"
    )
    assert episodes == finished == total(found, "dtctl_episodes_total")
    assert episodes >= 2 * HELLOS + 2 * FLAKIES + 2 * BOOMS  # at least start and last result each
    for name in (
        "dtctl_stale_completions_refused_total",
        "dtctl_lease_takeovers_total",
        "dtctl_poison_failures_total",
    ):
        assert total(found, name) == 0


def test_histograms_observe_every_work_item(workload: Workload) -> None:
    found = workload.workers
    started = total(found, "dtctl_work_items_started_total", kind="activity")
    assert total(found, "dtctl_schedule_to_start_seconds_count", kind="activity") == started
    assert total(found, "dtctl_execution_seconds_count", kind="activity", name="greet") == 3 * HELLOS
    episodes = total(found, "dtctl_episodes_total")
    assert total(found, "dtctl_episode_replay_seconds_count") == episodes
    assert total(found, "dtctl_schedule_to_start_seconds_count", kind="orchestration") == episodes
    assert total(found, "dtctl_history_events_loaded_count") == total(
        found, "dtctl_episodes_total", cache="cold"
    )
    assert total(found, "dtctl_commits_total") == total(found, "dtctl_commit_seconds_count") > 0
    durable = total(found, "dtctl_commits_total", durable="true")
    assert 0 < durable <= total(found, "dtctl_commits_total")


def test_each_process_serves_its_own_port(workload: Workload) -> None:
    workers = {labels["worker_id"] for name, labels, _ in workload.workers if name == "dtctl_worker_info"}
    assert len(workers) == 2  # ports P and P+1: two processes, two ids
    assert total(workload.workers, "dtctl_worker_slots_limit", kind="activity") == 2 * 4
    assert total(workload.workers, "dtctl_worker_slots_in_use", kind="activity") == 0  # idle now


def test_hub_gauges_come_from_the_exporter_only(workload: Workload) -> None:
    assert not [n for n, _, _ in workload.workers if n.startswith("dtctl_hub_")]
    hubs = {labels["hub"] for name, labels, _ in workload.hub if name == "dtctl_hub_queue_depth"}
    assert len(hubs) == 1 and hubs.pop().endswith("hub.db")
    assert total(workload.hub, "dtctl_hub_workers", state="live") == 2
    assert total(workload.hub, "dtctl_hub_instances") == 0  # everything finished
    assert total(workload.hub, "dtctl_hub_queue_depth") == 0


def _exprs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _exprs(value)]
    return []


def test_every_metric_of_the_grafana_dashboard_is_exported(workload: Workload) -> None:
    board = dashboard(GRAFANA)
    exprs = _exprs(board)
    assert len(exprs) >= 10
    exported = {name for name, _, _ in workload.workers + workload.hub}
    named = set().union(*(metric_names_in(e) for e in exprs))
    missing = sorted(named - exported)
    assert not missing, f"the dashboard queries metrics no process exports: {missing}"
    titles = " ".join(p.get("title", "") for p in board["panels"]).lower()
    for topic in ("queue", "throughput", "latency", "fail", "worker", "scale"):
        assert topic in titles
