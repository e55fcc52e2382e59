"""The dashboard in a real headless Chromium (the distribution's package), driven by Playwright.

Real worker processes run the order-processing sample while the browser opens the overview, clicks
into an instance, sees its timeline, follows a sub-orchestration link, and terminates an instance
(actions on) and watches the page change without a reload; the same page offers no action without
the flag. Screenshots of every page go to $DTCTL_ARTIFACTS (or the test's tmp dir).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.hub import open_hub
from tests.dashboard.support import DashboardProcess, orders
from tests.helpers import WorkerProcess, all_terminal, wait_until

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI must run these", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("DTCTL_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def busy_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two real workers running 40 orders (every 4th cancels after a failed child), and one order
    scheduled an hour from now (it stays PENDING: the one the test terminates)."""
    root = tmp_path_factory.mktemp("browser")
    path = root / "hub.db"
    with TaskHubClient(open_hub(path, create=True)) as client:
        client.start_instances([StartRequest(n, i, d) for n, i, d in orders(40, bad_every=4)])
        later = datetime.now(UTC) + timedelta(hours=1)
        client.start_instance("process_order", input=orders(1)[0][1], instance_id="later", start_at=later)
    workers = [WorkerProcess(path, "samples/order_processing.py:app", root / "logs") for _ in range(2)]
    try:
        yield path
    finally:
        for worker in workers:
            worker.stop()


def _page(browser: Any) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def test_click_through_while_workers_run(
    busy_hub: Path, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    dashboard = DashboardProcess(str(busy_hub), tmp_path)
    try:
        page = _page(browser)
        page.goto(dashboard.base + "/")
        page.wait_for_selector("#queues")
        wait_until(lambda: page.locator("#live-state.on").count() == 1, what="the event stream to connect")
        # Workers finish the orders while the page is open; the overview refreshes itself.
        wait_until(
            lambda: all_terminal(busy_hub, 40 + 80 + 1) or _pending_only_later(busy_hub),
            timeout=90,
            what="the orders to finish",
        )
        wait_until(lambda: "live-workers" in page.content(), timeout=30, what="live workers on the overview")
        # The charts fill from the dashboard's samples; the page redraws them as the hub changes.
        wait_until(
            lambda: page.locator("svg[data-chart=throughput] path.line").count() > 0,
            timeout=40,
            what="the throughput chart",
        )
        page.screenshot(path=str(artifacts / "overview.png"), full_page=True)

        page.click("nav >> text=Instances")
        page.wait_for_selector("#instances")
        page.screenshot(path=str(artifacts / "instances.png"), full_page=True)
        page.fill("input[name=prefix]", "order-3")
        page.click("button:has-text('Filter')")
        page.wait_for_url("**prefix=order-3**")
        page.click("#instances a.iid >> text=/^order-3$/")
        page.wait_for_selector("#timeline table.tl")
        assert page.locator("#instance-status").inner_text().strip() == "COMPLETED"
        spans = page.locator("#timeline tr.span")
        assert spans.count() >= 4  # orchestration, two sub-orchestrations, release and more
        assert page.locator("#timeline tr.k-sub_orchestration.o-failed").count() == 1
        page.screenshot(path=str(artifacts / "instance.png"), full_page=True)

        page.click("#children a.iid >> text=order-3:0001")
        page.wait_for_url("**/instances/order-3%3A0001")
        assert "no such product" in page.locator("#failure").inner_text()
        assert page.locator("#instance-status").inner_text().strip() == "FAILED"
        page.screenshot(path=str(artifacts / "sub-orchestration.png"), full_page=True)

        page.click("nav >> text=Workers")
        page.wait_for_selector("#workers")
        assert page.locator("#workers tbody tr").count() >= 2
        page.screenshot(path=str(artifacts / "workers.png"), full_page=True)

        page.goto(dashboard.base + "/instances/later")
        assert page.locator("#actions").count() == 0
        assert page.locator("#actions-off").count() == 1
        assert page.errors == []
    finally:
        dashboard.stop()


def _pending_only_later(hub: Path) -> bool:
    with TaskHubClient(hub) as client:
        live = client.list_instances(statuses=("PENDING", "RUNNING"), limit=5).instances
    return [i.instance_id for i in live] == ["later"]


def test_terminate_updates_the_page_without_a_reload(
    busy_hub: Path, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    dashboard = DashboardProcess(str(busy_hub), tmp_path, "--allow-actions")
    try:
        page = _page(browser)
        page.goto(dashboard.base + "/instances/later")
        wait_until(lambda: page.locator("#live-state.on").count() == 1, what="the event stream to connect")
        assert page.locator("#instance-status").inner_text().strip() == "PENDING"
        page.evaluate("window.__notReloaded = true")
        page.click("#actions form[data-action=terminate] button")
        page.wait_for_selector("dialog#confirm[open]")
        page.fill("dialog#confirm input[name=reason]", "browser test")
        page.screenshot(path=str(artifacts / "confirm-terminate.png"))
        page.click("#confirm-ok")
        sync_api.expect(page.locator("#instance-status")).to_have_text("TERMINATED", timeout=20_000)
        assert page.evaluate("window.__notReloaded === true")  # the same document: updated, not reloaded
        assert "browser test" in page.locator("[data-payload=output]").inner_text()
        page.screenshot(path=str(artifacts / "terminated.png"), full_page=True)
        assert page.errors == []
    finally:
        dashboard.stop()


def _confirm(page: Any, action: str) -> None:
    page.click(f"#actions form[data-action={action}] button")
    page.wait_for_selector("dialog#confirm[open]")
    page.click("#confirm-ok")


def test_rewind_and_restart_from_the_instance_page(
    browser: Any, artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FAILED instance rewound with actions on runs its failed step again and completes; a completed
    one restarted runs again as a new execution under the same id; both pages update without a reload."""
    from tests.apps.repair import runs

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("REPAIR_TEST_DIR", str(runs_dir))
    (runs_dir / "fail.two").touch()
    path = tmp_path / "hub.db"
    with TaskHubClient(open_hub(path, create=True)) as client:
        client.start_instance("three_steps", instance_id="rw")
        client.start_instance("echo", input="hi", instance_id="rs")
    worker = WorkerProcess(path, "tests/apps/repair.py:app", tmp_path / "logs")
    dashboard = DashboardProcess(str(path), tmp_path, "--allow-actions")
    try:
        wait_until(lambda: all_terminal(path, 2), timeout=60, what="both instances to finish")
        with TaskHubClient(path) as client:
            assert client.get_instance_or_raise("rw").status == "FAILED"
        (runs_dir / "fail.two").unlink()
        page = _page(browser)
        page.goto(dashboard.base + "/instances/rw")
        wait_until(lambda: page.locator("#live-state.on").count() == 1, what="the event stream to connect")
        assert page.locator("#instance-status").inner_text().strip() == "FAILED"
        page.evaluate("window.__notReloaded = true")
        _confirm(page, "rewind")
        sync_api.expect(page.locator("#instance-status")).to_have_text("COMPLETED", timeout=30_000)
        assert page.evaluate("window.__notReloaded === true")
        assert (runs(runs_dir, "rw", "one"), runs(runs_dir, "rw", "two")) == (1, 2)  # ran again, kept one
        page.screenshot(path=str(artifacts / "rewound.png"), full_page=True)

        page.goto(dashboard.base + "/instances/rs")
        wait_until(lambda: page.locator("#live-state.on").count() == 1, what="the event stream to connect")
        before = page.locator("#execution-id").inner_text()
        _confirm(page, "restart")
        sync_api.expect(page.locator("#execution-id")).not_to_have_text(before, timeout=20_000)
        sync_api.expect(page.locator("#instance-status")).to_have_text("COMPLETED", timeout=30_000)
        assert runs(runs_dir, "rs", "echo") == 2
        page.screenshot(path=str(artifacts / "restarted.png"), full_page=True)
        assert page.errors == []
    finally:
        dashboard.stop()
        worker.stop()


def test_entities_while_a_worker_runs_the_bank_sample(browser: Any, artifacts: Path, tmp_path: Path) -> None:
    """The bank sample's transfer on a real worker; another orchestration keeps a counter's lock. The
    entities page shows both, the entity page its state, and the lock holder links to its instance."""
    path = tmp_path / "hub.db"
    with TaskHubClient(open_hub(path, create=True)) as client:
        client.signal_entity("@account@alice", "deposit", 100)
        client.start_instance(
            "transfer", input={"source": "alice", "target": "bob", "amount": 30}, instance_id="t1"
        )
        client.start_instance("hold_lock", input="c1", instance_id="holder")
    workers = [
        WorkerProcess(path, "samples/entities_bank.py:app", tmp_path / "logs"),
        WorkerProcess(path, "tests/apps/entities.py:app", tmp_path / "logs"),
    ]
    dashboard = DashboardProcess(str(path), tmp_path)
    try:
        page = _page(browser)
        page.goto(dashboard.base + "/entities")
        page.wait_for_selector("#entities")
        wait_until(lambda: page.locator("#live-state.on").count() == 1, what="the event stream to connect")
        alice = page.locator('#entities tr[data-entity="@account@alice"] td.state')
        sync_api.expect(alice).to_have_text("70", timeout=60_000)  # the page follows the transfer live
        holder = page.locator('#entities tr[data-entity="@counter@c1"] a.iid')
        sync_api.expect(holder).to_have_text("holder", timeout=30_000)
        page.screenshot(path=str(artifacts / "entities.png"), full_page=True)

        page.click('#entities a.eid >> text="@account@bob"')
        page.wait_for_url("**/entities/%40account%40bob")
        assert page.locator("[data-payload=state] pre").inner_text().strip() == "30"
        assert page.locator("#lock-holder").inner_text().strip() == "—"
        page.screenshot(path=str(artifacts / "entity.png"), full_page=True)

        page.goto(dashboard.base + "/entities/@counter@c1")
        page.click("#lock-holder a.iid")
        page.wait_for_url("**/instances/holder")
        assert page.locator("#instance-status").inner_text().strip() == "RUNNING"
        assert page.errors == []
    finally:
        dashboard.stop()
        for worker in workers:
            worker.stop()
