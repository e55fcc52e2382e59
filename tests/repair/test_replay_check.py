"""replay-check over a hub of 1,000 instances after a code change, and case files (export, import, replay),
on SQLite and PostgreSQL; the hub is built by a real worker process (benchmarks/replay_check.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.replay_check import V1, V2, build_hub
from dtctl.casefile import read_case
from dtctl.replaycheck import Selection, check_hub
from dtctl.runtime.loader import load_app
from dtctl.testing import replay_case
from tests.helpers import dtctl
from tests.repair.conftest import Site


def test_replay_check_flags_exactly_the_instances_the_change_breaks(site: Site, tmp_path: Path) -> None:
    mix = build_hub(site.location, 1000, tmp_path / "build.log")
    with site.client() as c:
        started = time.perf_counter()
        report = check_hub(c.hub, load_app(V2), Selection())
        seconds = time.perf_counter() - started
        assert report.checked == 1000
        assert sorted(b.instance_id for b in report.broken) == sorted(mix.completed)
        first = report.broken[0].mismatch
        assert first.task_id is not None and "work" in (first.recorded or "") and "ship" in (first.now or "")
        assert check_hub(c.hub, load_app(V1), Selection()).broken == []  # the code that ran replays
        only = check_hub(c.hub, load_app(V2), Selection(statuses=("RUNNING", "SUSPENDED")))
        assert (only.checked, only.broken) == (len(mix.waiting) + len(mix.suspended), [])
        limited = check_hub(c.hub, load_app(V2), Selection(name="stable", limit=7))
        assert (limited.checked, limited.broken) == (7, [])
    backend = "postgres" if site.location.startswith("postgres") else "sqlite"
    print(f"\nreplay-check of 1,000 instances on {backend}: {seconds:.3f} s")

    result = dtctl("--json", "replay-check", V2, hub=site.location)  # type: ignore[arg-type]
    assert result.returncode == 4, result.stderr
    out = json.loads(result.stdout)
    assert (out["checked"], out["would_fail"]) == (1000, 300)
    assert "would fail to replay" in result.stderr
    assert dtctl("replay-check", V1, hub=site.location).returncode == 0  # type: ignore[arg-type]


def test_export_import_into_another_hub_and_replay_from_the_file(site: Site, tmp_path: Path) -> None:
    mix = build_hub(site.location, 20, tmp_path / "build.log")
    broken_id, fine_id = mix.completed[0], mix.waiting[0]
    for instance_id in (broken_id, fine_id):
        exported = dtctl("history", "export", instance_id, hub=site.location)  # type: ignore[arg-type]
        assert exported.returncode == 0, exported.stderr
        (tmp_path / f"{instance_id}.json").write_text(exported.stdout)
    case = read_case(tmp_path / f"{broken_id}.json")
    assert case.state.instance_id == broken_id and case.state.status == "COMPLETED"

    other = tmp_path / "other.db"
    assert dtctl("init", hub=other).returncode == 0
    for instance_id in (broken_id, fine_id):
        done = dtctl("--json", "history", "import", str(tmp_path / f"{instance_id}.json"), hub=other)
        assert json.loads(done.stdout) == {"instance_id": instance_id, "imported": True}, done.stderr
    again = dtctl("history", "import", str(tmp_path / f"{broken_id}.json"), hub=other)
    assert again.returncode == 4 and "already exists" in again.stderr
    with site.client() as source:
        original = [r.event for r in source.get_history(broken_id)]
        state = source.get_instance_or_raise(broken_id)
    shown = dtctl("--json", "status", broken_id, hub=other)
    assert json.loads(shown.stdout)["output"] == json.loads(state.output or "null")
    imported = dtctl("--json", "history", "show", broken_id, hub=other)
    assert len(json.loads(imported.stdout)) == len(original)

    from_file = dtctl("--json", "replay-check", V2, "--from-file", str(tmp_path / f"{broken_id}.json"))
    assert from_file.returncode == 4 and json.loads(from_file.stdout)["would_fail"] == 1
    in_other_hub = dtctl("--json", "replay-check", V2, "--status", "COMPLETED", hub=other)
    assert json.loads(in_other_hub.stdout)["broken"][0]["instance_id"] == broken_id
    assert replay_case(load_app(V2), tmp_path / f"{fine_id}.json").broken == []
    assert len(replay_case(load_app(V2), case).broken) == 1


def test_a_malformed_case_file_is_refused_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    assert dtctl("init", hub=tmp_path / "hub.db").returncode == 0
    result = dtctl("history", "import", str(bad), hub=tmp_path / "hub.db")
    assert result.returncode == 2 and "not a dtctl case file" in result.stderr
