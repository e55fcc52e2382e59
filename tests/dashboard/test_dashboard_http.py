"""The dashboard over HTTP, served by a real ``dtctl dashboard`` process on a real SQLite hub.

Pages and their content, the instance list's filters and keyset paging, the guards on actions
(read-only by default, POST only, CSRF token, Origin and Host checks), and the links that
``dtctl status`` / ``dtctl list`` print while a dashboard runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.hub import open_hub
from tests.dashboard.support import DashboardProcess, orders, token_of
from tests.helpers import dtctl, json_out


@pytest.fixture(scope="module")
def hub_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub with 6 finished orders (one cancelled after a failed child) and one waiting to start."""
    path = tmp_path_factory.mktemp("dash") / "hub.db"
    with TaskHubClient(open_hub(path, create=True)) as client:
        client.start_instances([StartRequest(n, i, d) for n, i, d in orders(6, bad_every=3)])
    done = dtctl("worker", "samples/order_processing.py:app", "--burst", hub=path, timeout=120)
    assert done.returncode == 0, done.stderr
    with TaskHubClient(path) as client:
        later = datetime.now(UTC) + timedelta(hours=1)
        client.start_instance(
            "process_order",
            input=orders(1)[0][1],
            instance_id="later",
            start_at=later,
            version="2.0",
            tags={"tier": "gold"},
        )
    return path


@pytest.fixture(scope="module")
def readonly(hub_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    server = DashboardProcess(str(hub_file), tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def acting(hub_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    server = DashboardProcess(str(hub_file), tmp_path_factory.mktemp("logs"), "--allow-actions")
    yield server
    server.stop()


def test_every_page_answers_and_shows_the_hub(readonly: DashboardProcess, hub_file: Path) -> None:
    for path in ("/", "/instances", "/workers", "/instances/order-2"):
        page = readonly.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert str(hub_file) in page.text
        assert "read-only" in page.text
    assert readonly.get("/static/dashboard.js").status_code == 200
    assert readonly.get("/instances/no-such-id").status_code == 404


def test_instance_page_shows_failure_tree_history_and_timeline(readonly: DashboardProcess) -> None:
    page = readonly.get("/instances/order-2").text  # the third order: its second line has no SKU
    assert "process_order" in page and "COMPLETED" in page
    assert "order-2:0001" in page and "FAILED" in page  # the failed child in the tree
    assert '"kind": "sub_orchestration"' in page  # timeline data for the browser
    assert "sub_orchestration_failed" in page  # the history table
    child = readonly.get("/instances/order-2:0001").text
    assert "no such product: nope" in child and "Traceback" in child  # failure with its stack
    assert 'href="/instances/order-2"' in child  # the parent link


def test_pending_instance_says_what_it_waits_for(readonly: DashboardProcess) -> None:
    page = readonly.get("/instances/later").text
    assert "Waiting for" in page and "its scheduled start" in page
    assert "actions-off" in page  # read-only: actions exist but are not offered


def test_instances_filters_and_keyset_paging(readonly: DashboardProcess) -> None:
    def ids(text: str) -> list[str]:
        return [part.split('"', 1)[0] for part in text.split('data-instance="')[1:]]

    first = readonly.get("/instances", params={"status": "COMPLETED", "name": "process_order", "limit": 25})
    assert sorted(ids(first.text)) == sorted(f"order-{n}" for n in range(6))
    assert ids(readonly.get("/instances", params={"status": "PENDING"}).text) == ["later"]
    found = sorted(ids(readonly.get("/instances", params={"prefix": "order-5"}).text))
    assert found == ["order-5", "order-5:0000", "order-5:0001"]
    # Keyset paging: pages of 4 over the 6 orders and their 12 children, newest first, no overlap.
    seen: list[str] = []
    text = readonly.get("/instances", params={"status": "COMPLETED", "limit": "4"}).text
    while True:
        seen.extend(ids(text))
        if 'id="next-page"' not in text:
            break
        link = text.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
        text = readonly.get(link.replace("&amp;", "&")).text
    assert len(seen) == len(set(seen)) == 6 + 12 - 2  # two children failed
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ids(readonly.get("/instances", params={"completed_after": future}).text) == []
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert len(ids(readonly.get("/instances", params={"completed_after": past, "limit": 50}).text)) == 18
    assert readonly.get("/instances", params={"status": "NOPE"}).status_code == 400


def test_instances_filter_by_version_and_tag(readonly: DashboardProcess) -> None:
    def ids(text: str) -> list[str]:
        return [part.split('"', 1)[0] for part in text.split('data-instance="')[1:]]

    form = readonly.get("/instances").text
    assert 'name="version"' in form and 'name="tag"' in form
    assert ids(readonly.get("/instances", params={"version": "2.0"}).text) == ["later"]
    assert ids(readonly.get("/instances", params={"tag": "tier=gold"}).text) == ["later"]
    assert ids(readonly.get("/instances", params={"tag": "tier=silver"}).text) == []
    page = readonly.get("/instances/later").text
    assert "2.0" in page and "tier=gold" in page


def test_actions_are_refused_without_the_flag(readonly: DashboardProcess) -> None:
    page = readonly.get("/instances/later")
    token = token_of(page.text)
    assert token == ""  # no token is even handed out
    answer = readonly.post(
        "/actions/terminate",
        data={"instance_id": "later", "csrf": "x", "confirmed": "1"},
        headers={"origin": readonly.base},
    )
    assert answer.status_code == 403
    assert readonly.get("/actions/terminate").status_code == 405


def test_actions_need_token_origin_and_confirmation(acting: DashboardProcess, hub_file: Path) -> None:
    page = acting.get("/instances/later").text
    token = token_of(page)
    assert len(token) > 20 and 'data-action="terminate"' in page
    form = {"instance_id": "later", "csrf": token, "confirmed": "1", "reason": "test"}
    json_accept = {"accept": "application/json"}
    # Another site's page posting to the dashboard: refused, whatever it sends.
    evil = acting.post(
        "/actions/terminate", data=form, headers={"origin": "http://evil.example", **json_accept}
    )
    assert evil.status_code == 403
    no_origin = acting.post("/actions/terminate", data=form, headers=json_accept)
    assert no_origin.status_code == 403
    wrong_token = acting.post(
        "/actions/terminate", data={**form, "csrf": "guess"}, headers={"origin": acting.base, **json_accept}
    )
    assert wrong_token.status_code == 403
    # DNS rebinding: a foreign host name is refused on every request.
    assert acting.get("/", headers={"host": f"evil.example:{acting.port}"}).status_code == 400
    # Without the confirmation step, a plain form post gets the confirmation page, and nothing happens.
    unconfirmed = acting.post(
        "/actions/terminate", data={**form, "confirmed": ""}, headers={"origin": acting.base}
    )
    assert unconfirmed.status_code == 200 and 'name="confirmed" value="1"' in unconfirmed.text
    with TaskHubClient(hub_file) as client:
        assert client.get_instance_or_raise("later").status == "PENDING"
    done = acting.post("/actions/terminate", data=form, headers={"origin": acting.base, **json_accept})
    assert done.status_code == 200, done.text
    assert done.json()["ok"] is True
    with TaskHubClient(hub_file) as client:
        assert client.get_instance_or_raise("later").status == "TERMINATED"
    purge = acting.post(
        "/actions/purge",
        data={"instance_id": "later", "csrf": token, "confirmed": "1"},
        headers={"origin": acting.base, **json_accept},
    )
    assert purge.json()["redirect"] == "/instances"
    assert acting.get("/instances/later").status_code == 404


def test_status_and_list_print_the_dashboard_link(readonly: DashboardProcess, hub_file: Path) -> None:
    shown = json_out(dtctl("--json", "status", "order-1", hub=hub_file))
    assert shown["dashboard_url"].startswith("http://127.0.0.1:")
    assert shown["dashboard_url"].endswith("/instances/order-1")
    listed = json_out(
        dtctl("--json", "list", "--prefix", "order-1", "--url", "http://dash.example/", hub=hub_file)
    )
    assert {i["dashboard_url"] for i in listed["instances"]} >= {"http://dash.example/instances/order-1"}
    text = dtctl("status", "order-1", hub=hub_file).stdout
    assert "/instances/order-1" in text


def test_a_stopped_dashboard_is_no_longer_linked(hub_file: Path, tmp_path: Path) -> None:
    other = hub_file.with_name("other.db")
    TaskHubClient(open_hub(other, create=True)).close()
    with TaskHubClient(other) as client:
        client.start_instance("process_order", instance_id="x")
    dashboard = DashboardProcess(str(other), tmp_path)
    assert json_out(dtctl("--json", "status", "x", hub=other)).get("dashboard_url")
    assert dashboard.stop() == 0
    assert not other.with_name("other.db.dashboard.json").exists()
    assert "dashboard_url" not in json_out(dtctl("--json", "status", "x", hub=other))
