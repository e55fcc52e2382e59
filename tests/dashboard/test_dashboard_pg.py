"""The dashboard on a PostgreSQL hub whose URL holds a password: every page works, none shows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests import pgserver
from tests.dashboard.support import DashboardProcess, token_of
from tests.helpers import dtctl, json_out


@pytest.fixture
def pg_url() -> Iterator[str]:
    server = pgserver.shared_server()  # skips, or fails with DTCTL_REQUIRE_POSTGRES=1, without a server
    name = pgserver.new_hub_name("dash")
    yield server.url(name)
    pgserver.drop_hub(server, name)


def test_no_page_shows_the_password(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = pgserver.shared_server().password
    assert password in pg_url
    with TaskHubClient(open_hub(pg_url, create=True)) as client:
        client.start_instance("process_order", instance_id="pg-1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where both processes look
    dashboard = DashboardProcess(pg_url, tmp_path, "--allow-actions")
    try:
        bodies = [dashboard.get(path).text for path in ("/", "/instances", "/instances/pg-1", "/workers")]
        bodies.append(dashboard.get("/instances/missing").text)  # the error page names the hub too
        assert all("pg-1" in body for body in bodies[1:3])
        assert all(password not in body for body in bodies)
        assert "***" in bodies[0]  # the hub is shown, redacted
        token = token_of(bodies[2])
        answer = dashboard.post(
            "/actions/terminate",
            data={"instance_id": "pg-1", "csrf": token, "confirmed": "1"},
            headers={"origin": dashboard.base, "accept": "application/json"},
        )
        assert answer.status_code == 200 and password not in answer.text
        registered = list((tmp_path / "cache").rglob("*.dashboard.json"))
        assert len(registered) == 1 and password not in registered[0].read_text()
        shown = dtctl("--json", "--hub", pg_url, "status", "pg-1")
        assert json_out(shown)["dashboard_url"].endswith("/instances/pg-1")
    finally:
        dashboard.stop()
    assert password not in dashboard.log()
