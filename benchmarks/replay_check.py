"""How long ``dtctl replay-check`` takes over a hub of N instances (default 1,000), after a code change.

``python -m benchmarks.replay_check [N] [--postgres URL]`` builds a hub with a real worker process
running ``benchmarks.replay_check_apps:app_v1`` (a mix: 35 % waiting for an event, 10 % suspended,
30 % completed past the changed call, 5 % failed, 20 % of an unchanged orchestrator), then times the
check against ``app_v2`` in process (the API) and as the CLI a CI job runs, and prints one JSON object.
The check must flag exactly the completed ``order`` instances.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dtctl.client import StartRequest, TaskHubClient
from dtctl.hub import open_hub
from dtctl.replaycheck import Selection, check_hub
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.loader import load_app

V1 = "benchmarks.replay_check_apps:app_v1"
V2 = "benchmarks.replay_check_apps:app_v2"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mix:
    """The instance ids of each kind in a built hub."""

    waiting: list[str]
    suspended: list[str]
    completed: list[str]  # past the changed call: these must be flagged
    failed: list[str]
    stable: list[str]

    @property
    def total(self) -> int:
        return sum(map(len, (self.waiting, self.suspended, self.completed, self.failed, self.stable)))


def plan(n: int) -> Mix:
    def ids(kind: str, share: float) -> list[str]:
        return [f"{kind}-{i:05d}" for i in range(int(n * share))]

    return Mix(
        ids("wait", 0.35), ids("susp", 0.10), ids("done", 0.30), ids("fail", 0.05), ids("stable", 0.20)
    )


def build_hub(location: str, n: int, log: Path) -> Mix:
    """Run the mix to its resting state with a real worker on ``app_v1``."""
    mix = plan(n)
    with TaskHubClient(open_hub(location, create=True)) as client:
        requests = [StartRequest("order", 1, i) for i in (*mix.waiting, *mix.suspended, *mix.completed)]
        requests += [StartRequest("order", -1, i) for i in mix.failed]
        requests += [StartRequest("stable", 1, i) for i in mix.stable]
        client.start_instances(requests)
        for instance_id in mix.completed:
            client.raise_event(instance_id, "go")
        for instance_id in mix.suspended:
            client.suspend(instance_id)
        config = WorkerConfig(hub=location, app=V1, max_orchestrations=64, max_activities=64)
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "dtctl.runtime.worker", config.to_json()],
                cwd=REPO,
                stdout=out,
                stderr=out,
            )
            try:
                _wait_settled(client, mix)
            finally:
                worker.terminate()
                worker.wait(30)
    return mix


def _wait_settled(client: TaskHubClient, mix: Mix, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = {s: _count(client, s) for s in ("COMPLETED", "FAILED", "SUSPENDED")}
        metrics = client.scale_metrics()
        settled = counts["COMPLETED"] == len(mix.completed) + len(mix.stable)
        settled = (
            settled and counts["FAILED"] == len(mix.failed) and counts["SUSPENDED"] == len(mix.suspended)
        )
        if settled and metrics.live_orchestrations == 0 and metrics.scheduled_activities == 0:
            return
        time.sleep(0.05)
    raise TimeoutError("the benchmark hub did not settle")


def _count(client: TaskHubClient, status: str) -> int:
    total, cursor = 0, None
    while True:
        page = client.list_instances(statuses=[status], limit=1000, cursor=cursor)
        total += len(page.instances)
        if not page.next_cursor:
            return total
        cursor = page.next_cursor


def measure(location: str, mix: Mix) -> dict[str, object]:
    app = load_app(V2)
    with TaskHubClient(open_hub(location)) as client:
        started = time.perf_counter()
        report = check_hub(client.hub, app, Selection(recent_seconds=7 * 86_400))
        api_seconds = time.perf_counter() - started
    flagged = sorted(b.instance_id for b in report.broken)
    command = [
        sys.executable,
        "-m",
        "dtctl",
        "--hub",
        location,
        "--json",
        "replay-check",
        V2,
        "--since",
        "7d",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    cli_seconds = time.perf_counter() - started
    return {
        "instances": mix.total,
        "checked": report.checked,
        "flagged": len(flagged),
        "flagged_exactly_the_changed": flagged == sorted(mix.completed),
        "api_seconds": round(api_seconds, 3),
        "api_instances_per_second": round(report.checked / api_seconds),
        "cli_seconds": round(cli_seconds, 3),
        "cli_exit_code": done.returncode,
    }


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv and argv[0].isdigit() else 1000
    postgres = argv[argv.index("--postgres") + 1] if "--postgres" in argv else None
    with tempfile.TemporaryDirectory() as folder:
        location = postgres or str(Path(folder) / "taskhub.db")
        started = time.perf_counter()
        mix = build_hub(location, n, Path(folder) / "worker.log")
        built = time.perf_counter() - started
        result = {"backend": "postgres" if postgres else "sqlite", "build_seconds": round(built, 1)}
        result |= measure(location, mix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
