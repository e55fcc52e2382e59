"""Workers on two "hosts" share one PostgreSQL hub; killing every worker of one host loses nothing.

The hosts are two network namespaces made by the test (a veth pair each, the server listening on the
host side of both), or, where namespaces cannot be made (not root, no ``ip``), two groups of worker
processes reaching the server over 127.0.0.1. Workers read the hub URL from a file (``@FILE``), so the
password is not in their command line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, TERMINAL_STATUSES
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.runtime.config import WorkerConfig
from tests import pgserver
from tests.helpers import REPO, all_instances, child_env, wait_until

APP = "dtctl.demo:app"
EXPECTED = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


# --- hosts -------------------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    server_address: str  # where this host reaches the server
    own_address: str  # where the server sees this host's connections come from
    prefix: list[str] = field(default_factory=list)  # runs a command "on" the host
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Namespaces:
    """Two network namespaces, each joined to the root namespace by a veth pair."""

    names: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, subnet: int) -> tuple[Namespaces, list[tuple[str, str]]]:
        made = cls()
        pairs: list[tuple[str, str]] = []  # (namespace, server address seen from it)
        tag = f"{os.getpid() % 100000}"
        try:
            for n, letter in enumerate("ab"):
                ns, outside, inside = f"dtctl{tag}{letter}", f"dv{tag}{letter}0", f"dv{tag}{letter}1"
                host_ip, ns_ip = f"10.251.{subnet}.{4 * n + 1}", f"10.251.{subnet}.{4 * n + 2}"
                _ip("netns", "add", ns)
                made.names.append(ns)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                made.links.append(outside)
                _ip("link", "set", inside, "netns", ns)
                _ip("addr", "add", f"{host_ip}/30", "dev", outside)
                _ip("link", "set", outside, "up")
                _ip("netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", inside)
                _ip("netns", "exec", ns, "ip", "link", "set", inside, "up")
                _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
                pairs.append((ns, host_ip))
        except (OSError, subprocess.SubprocessError):
            made.remove()
            raise
        return made, pairs

    def remove(self) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30, check=False)


@dataclass
class Cluster:
    server: pgserver.PgServer
    hosts: list[Host]
    url: str  # the admin URL over 127.0.0.1 (for the test itself)
    hub: str
    logs: Path

    def start_workers(self, host: Host, count: int, **settings: object) -> None:
        url_file = self.logs / f"url-{host.name}"
        url_file.write_text(self.server.url(self.hub, host=host.server_address) + "\n")
        url_file.chmod(0o600)
        config = WorkerConfig(hub=f"@{url_file}", app=APP, **settings)  # type: ignore[arg-type]
        for n in range(count):
            log = (self.logs / f"worker-{host.name}-{n}.log").open("wb")
            host.workers.append(
                subprocess.Popen(
                    [*host.prefix, sys.executable, "-m", "dtctl.runtime.worker", config.to_json()],
                    cwd=REPO,
                    env=child_env(DTCTL_LOG_LEVEL="WARNING"),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    def stop(self) -> None:
        for host in self.hosts:
            for proc in host.workers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in host.workers:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


@pytest.fixture(params=["netns", "loopback"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    pgserver.shared_server()  # skip (or fail when required) exactly like the rest of the suite
    namespaces: Namespaces | None = None
    hosts: list[Host]
    listen: tuple[str, ...] = ("127.0.0.1",)
    hba: tuple[str, ...] = ()
    if request.param == "netns":
        reason = _netns_unavailable()
        if reason:
            pytest.skip(f"network namespace variant: {reason}")
        subnet = os.getpid() % 250
        try:
            namespaces, pairs = Namespaces.make(subnet)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or str(exc)
            pytest.skip(f"network namespace variant: cannot make namespaces ({detail!r})")
        hosts = [
            Host(
                f"ns-{ns[-1]}", address, address[:-1] + str(int(address[-1]) + 1), ["ip", "netns", "exec", ns]
            )
            for ns, address in pairs
        ]
        listen = ("127.0.0.1", *(h.server_address for h in hosts))
        hba = (f"10.251.{subnet}.0/29",)
    else:
        hosts = [Host("lo-a", "127.0.0.1", "127.0.0.1"), Host("lo-b", "127.0.0.1", "127.0.0.1")]
    server: pgserver.PgServer | None = None
    try:
        server = pgserver.start_server(hosts=listen, hba_networks=hba)
        hub = "multihost"
        made = Cluster(server, hosts, server.url(hub), hub, tmp_path)
        open_hub(made.url, create=True).close()
        yield made
        made.stop()
    finally:
        if server is not None:
            server.stop()
        if namespaces is not None:
            namespaces.remove()


# --- checks ----------------------------------------------------------------------------------------------


def completed(hub: TaskHub) -> int:
    return sum(1 for i in all_instances(hub) if i.status in TERMINAL_STATUSES)


def check_invariants_pg(hub: TaskHub, expected: int) -> None:
    """The crash tests' invariants, through the hub interface (tests/helpers.check_invariants is SQLite's)."""
    instances = all_instances(hub)
    assert len(instances) == expected
    for state in instances:
        assert state.status == COMPLETED, (state.instance_id, state.status, state.failure)
        assert json.loads(state.output or "null") == EXPECTED
        records = hub.get_history(state.instance_id)
        scheduled = Counter(r.event.task_id for r in records if r.event.kind == "task_scheduled")
        ends = ("task_completed", "task_failed")
        finished = Counter(r.event.task_id for r in records if r.event.kind in ends)
        assert all(n == 1 for n in scheduled.values()), f"{state.instance_id}: duplicate schedule {scheduled}"
        assert finished == scheduled, f"{state.instance_id}: completions {finished} != scheduled {scheduled}"
        assert [r.sequence for r in records] == list(range(len(records))), f"{state.instance_id}: gaps"
        assert state.lease_owner is None
        assert hub.pending_activities(state.instance_id) == []
        assert hub.pending_messages(state.instance_id) == []


def run_and_kill_one_host(
    cluster: Cluster, instances: int, per_host: int, deadline: float, *, together: bool
) -> None:
    """Start ``instances`` hello-cities, SIGKILL every worker of the first host while it holds leases.

    ``together``: both hosts work from the start and the kill comes mid-run; otherwise the surviving
    host starts only after the kill (so it must wait for the dead host's leases to expire).
    """
    settings = {"lease_seconds": 2.0, "max_orchestrations": 16, "max_activities": 16}
    victim, survivor = cluster.hosts
    schema = f"dtctl_{cluster.hub}"
    held_sql = (
        f"SELECT lease_owner FROM {schema}.instances WHERE lease_owner IS NOT NULL UNION "
        f"SELECT lease_owner FROM {schema}.new_tasks WHERE lease_owner IS NOT NULL"
    )
    done_sql = f"SELECT count(*) FROM {schema}.instances WHERE status = 'COMPLETED'"
    with TaskHubClient(cluster.url) as client, cluster.server.admin() as admin:

        def done() -> int:
            row = admin.execute(done_sql).fetchone()
            return int(row[0]) if row else 0

        client.start_instances([("hello_cities", None, f"city-{n:05d}") for n in range(instances)])
        cluster.start_workers(victim, per_host, **settings)
        if together:
            cluster.start_workers(survivor, per_host, **settings)
            wait_until(lambda: done() >= instances // 10, timeout=deadline, what="the first completions")
        victim_pids = {p.pid for p in victim.workers}

        def victim_holds_leases() -> bool:  # worker ids are host:pid:random
            owners = [r[0] for r in admin.execute(held_sql).fetchall()]
            return any(int(o.split(":")[1]) in victim_pids for o in owners if o.count(":") == 2)

        wait_until(victim_holds_leases, timeout=deadline, interval=0.001, what="the victim to hold leases")
        for proc in victim.workers:
            proc.send_signal(signal.SIGKILL)
        for proc in victim.workers:
            assert proc.wait(10) == -signal.SIGKILL
        assert done() < instances, "the run ended before the kill"
        if not together:
            cluster.start_workers(survivor, per_host, **settings)
        wait_until(
            lambda: done() == instances,
            timeout=deadline,
            interval=0.05,
            what=f"all {instances} instances to complete on the surviving host",
        )
        assert all(p.poll() is None for p in survivor.workers), "a surviving worker died"
        clients = admin.execute(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE application_name = 'dtctl'"
        ).fetchall()
        assert (survivor.own_address,) in clients, clients  # the survivor really came from its host
        check_invariants_pg(client.hub, instances)


@pytest.mark.slow
def test_thousand_instances_survive_losing_a_host(cluster: Cluster) -> None:
    run_and_kill_one_host(cluster, 1000, per_host=2, deadline=60, together=True)


def test_workers_on_two_hosts_share_the_hub(cluster: Cluster) -> None:
    """A quick version for the default run: a few instances, one worker per host, the kill early."""
    run_and_kill_one_host(cluster, 40, per_host=1, deadline=30, together=False)
