"""history show --limit/--after: pages that join into the whole history, on both hubs, from real
workers; and the output is streamed (the first rows appear before the history has been read)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.cli.conftest import make_hub, run
from tests.helpers import REPO, child_env


@pytest.fixture(params=["sqlite", "postgres"])
def finished(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A hub (path or URL) holding instance `h`, run to completion by a real worker."""
    if request.param == "sqlite":
        location = str(make_hub(tmp_path / "hub.db"))
        cleanup = None
    else:
        from tests import pgserver

        server = pgserver.shared_server()
        name = pgserver.new_hub_name("page")
        location = server.url(name)
        open_hub(location, create=True).close()
        cleanup = (server, name)
    try:
        with TaskHubClient(location) as client:
            client.start_instance("hello_cities", instance_id="h")
        worker = ["worker", "samples/hello_cities.py:app", "--burst"]
        done = subprocess.run(
            [sys.executable, "-m", "dtctl", "--hub", location, *worker],
            cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        with TaskHubClient(location) as client:
            assert client.wait_for_completion("h", timeout=30).status == "COMPLETED"
        yield location
    finally:
        if cleanup is not None:
            from tests import pgserver

            pgserver.drop_hub(*cleanup)


def test_pages_join_into_the_whole_history(finished: str) -> None:
    whole = run("--hub", finished, "history", "show", "h", "--json").json()
    assert len(whole) > 6
    pages: list[dict[str, object]] = []
    after = None
    while True:
        extra = [] if after is None else ["--after", str(after)]
        result = run("--hub", finished, "history", "show", "h", "--json", "--limit", "4", *extra)
        page = result.json()
        pages += page
        assert len(page) <= 4
        if "more events follow" not in result.err:
            break
        assert len(page) == 4 and f"--after {page[-1]['sequence']}" in result.err
        after = page[-1]["sequence"]
    assert pages == whole
    table = run("--hub", finished, "history", "show", "h", "--limit", "2", "--after", "1")
    assert [line.split()[0] for line in table.out.splitlines()] == ["SEQ", "2", "3"]
    assert run("--hub", finished, "history", "show", "h", "--json", "--after", "9999").json() == []


def test_paging_options_refused_where_they_make_no_sense(finished: str) -> None:
    for args in (["--timeline", "--limit", "3"], ["--follow", "--limit", "3"], ["--limit", "-1"]):
        assert run("--hub", finished, "history", "show", "h", *args).code == 2, args
    missing = run("--hub", finished, "history", "show", "h", "--execution", "nope", "--limit", "1")
    assert missing.code == 3
    assert run("--hub", finished, "history", "show", "nope", "--limit", "1").code == 3


def test_follow_after_skips_what_was_seen(finished: str) -> None:
    whole = run("--hub", finished, "history", "show", "h", "--json").json()
    followed = run("--hub", finished, "history", "show", "h", "--follow", "--json", "--after", "3")
    lines = [json.loads(line) for line in followed.out.splitlines()]
    assert lines == [e for e in whole if e["sequence"] > 3]


def test_a_long_history_is_read_page_by_page(tmp_path: Path) -> None:
    """The first event of a 3,000-event history is available after one page read (what the table
    prints at once), and the rest arrives in pages: never the whole history in one read."""
    hub_file = make_hub(tmp_path / "hub.db")
    with TaskHubClient(hub_file) as client:
        client.start_instance("chain", instance_id="big")
    _write_long_history(hub_file, 3_000)
    with TaskHubClient(hub_file) as client:
        reads: list[int] = []
        real = client.hub.get_history

        def counting(*args: object, **kwargs: object) -> object:
            reads.append(1)
            return real(*args, **kwargs)  # type: ignore[arg-type]

        client.hub.get_history = counting  # type: ignore[method-assign]
        records = client.iter_history("big", page_size=500)
        first = next(records)
        assert first.sequence == 0 and len(reads) == 1  # one page read, not six
        assert sum(1 for _ in records) == 2_999 and len(reads) == 7


def _write_long_history(hub_file: Path, length: int) -> None:
    import sqlite3

    from benchmarks.replay import history_of_length
    from dtctl.core.history import encode_event

    events, _ = history_of_length(length)
    with sqlite3.connect(hub_file) as conn:
        key, no = conn.execute("SELECT instance_key, execution_no FROM instances").fetchone()
        rows = [(key, no, n, encode_event(e)) for n, e in enumerate(events)]
        conn.executemany(
            "INSERT INTO history (instance_key, execution_no, sequence, payload) VALUES (?,?,?,?)", rows
        )
    conn.close()
