"""The entities pages over HTTP, served by a real ``dtctl dashboard`` process on a real SQLite hub.

A real worker ran counter entities and an orchestration that still holds a counter's lock (it waits
for an event inside its critical section), so the pages have states, a lock holder and a backlog.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.dashboard.support import DashboardProcess, token_of
from tests.helpers import dtctl


@pytest.fixture(scope="module")
def hub_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("entities") / "hub.db"
    with TaskHubClient(open_hub(path, create=True)) as client:
        client.signal_entity("@counter@c1", "add", 5)
        client.signal_entity("@counter@c2", "add", 1)
        client.start_instance("hold_lock", input="c2", instance_id="holder")
    done = dtctl("worker", "tests/apps/entities.py:app", "--burst", hub=path, timeout=120)
    assert done.returncode == 0, done.stderr
    with TaskHubClient(path) as client:
        held = client.get_entity("@counter@c2")
        assert held is not None and held.lock is not None and held.lock.instance_id == "holder"
        client.signal_entity("@counter@c2", "add", 10)  # waits behind the lock: a backlog of one
    return path


@pytest.fixture(scope="module")
def readonly(hub_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    server = DashboardProcess(str(hub_file), tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


def _ids(text: str) -> list[str]:
    return [part.split('"', 1)[0] for part in text.split('data-entity="')[1:]]


def _row(text: str, entity_id: str) -> str:
    return text.split(f'data-entity="{entity_id}"', 1)[1].split("</tr>", 1)[0]


def test_list_shows_state_lock_holder_and_backlog(readonly: DashboardProcess) -> None:
    page = readonly.get("/entities")
    assert page.status_code == 200 and 'href="/entities"' in page.text
    assert _ids(page.text) == ["@counter@c1", "@counter@c2"]
    first, second = _row(page.text, "@counter@c1"), _row(page.text, "@counter@c2")
    assert "<code>5</code>" in first and ">0</td>" in first
    assert "<code>1</code>" in second and 'href="/instances/holder"' in second and ">1</td>" in second


def test_list_filters_and_pages(readonly: DashboardProcess) -> None:
    assert _ids(readonly.get("/entities", params={"prefix": "@counter@c1"}).text) == ["@counter@c1"]
    assert _ids(readonly.get("/entities", params={"name": "account"}).text) == []
    assert len(_ids(readonly.get("/entities", params={"name": "COUNTER"}).text)) == 2
    first = readonly.get("/entities", params={"limit": 1}).text
    assert _ids(first) == ["@counter@c1"]
    link = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = readonly.get(link).text
    assert _ids(second) == ["@counter@c2"] and 'id="first-page"' in second
    assert readonly.get("/entities", params={"limit": "x"}).status_code == 400


def test_entity_page_shows_state_lock_and_inbox(readonly: DashboardProcess) -> None:
    page = readonly.get("/entities/@counter@c2")
    assert page.status_code == 200
    text = page.text
    assert 'id="lock-holder"><a class="iid" href="/instances/holder">holder</a>' in text
    assert 'id="backlog">1<' in text
    inbox = text.split('id="inbox"', 1)[1]
    assert "<td>add</td>" in inbox and "<code>10</code>" in inbox and "<td>client</td>" in inbox
    assert 'data-payload="state"' in text and "actions-off" in text
    assert readonly.get("/entities/@counter@nope").status_code == 404
    assert readonly.get("/entities/not-an-entity-id").status_code == 400


def test_signal_entity_needs_the_flag_token_and_origin(hub_file: Path, tmp_path: Path) -> None:
    off = DashboardProcess(str(hub_file), tmp_path / "off")
    try:
        refused = off.post(
            "/actions/signal-entity",
            data={
                "entity_id": "@counter@c1",
                "operation": "add",
                "input": "2",
                "csrf": "x",
                "confirmed": "1",
            },
            headers={"origin": off.base},
        )
        assert refused.status_code == 403
    finally:
        off.stop()
    acting = DashboardProcess(str(hub_file), tmp_path / "on", "--allow-actions")
    try:
        page = acting.get("/entities/@counter@c1").text
        assert 'data-action="signal-entity"' in page
        form = {"entity_id": "@counter@c1", "operation": "add", "input": "2", "csrf": token_of(page)}
        json_accept = {"accept": "application/json"}
        evil = acting.post(
            "/actions/signal-entity",
            data={**form, "confirmed": "1"},
            headers={"origin": "http://evil.example", **json_accept},
        )
        assert evil.status_code == 403
        unconfirmed = acting.post("/actions/signal-entity", data=form, headers={"origin": acting.base})
        assert unconfirmed.status_code == 200 and 'name="confirmed" value="1"' in unconfirmed.text
        bad = acting.post(
            "/actions/signal-entity",
            data={**form, "input": "{nope", "confirmed": "1"},
            headers={"origin": acting.base, **json_accept},
        )
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
        with TaskHubClient(hub_file) as client:
            before = client.get_entity("@counter@c1")
            assert before is not None and before.backlog == 0
        done = acting.post(
            "/actions/signal-entity",
            data={**form, "confirmed": "1"},
            headers={"origin": acting.base, **json_accept},
        )
        assert done.status_code == 200, done.text
        assert done.json()["message"] == "signalled 'add' to @counter@c1"
        with TaskHubClient(hub_file) as client:
            after = client.get_entity("@counter@c1")
            assert after is not None and after.backlog == 1  # no worker runs: the signal waits
        plain = acting.post(
            "/actions/signal-entity", data={**form, "confirmed": "1"}, headers={"origin": acting.base}
        )
        assert plain.status_code == 303 and plain.headers["location"] == "/entities/%40counter%40c1"
    finally:
        acting.stop()


def test_the_lock_holders_page_draws_its_entity_spans(readonly: DashboardProcess, hub_file: Path) -> None:
    """An orchestration that called and locked entities has a timeline (it used to fail on them)."""
    page = readonly.get("/instances/holder")
    assert page.status_code == 200, page.text[-2000:]
    assert "RUNNING" in page.text
    assert '"kind": "entity_lock", "name": "lock @counter@c2"' in page.text
    shown = dtctl("history", "show", "holder", "--timeline", hub=hub_file)
    assert shown.returncode == 0, shown.stderr
    assert "lock @counter@c2" in shown.stdout
