"""The app's data converter on every entity payload path, through a real worker process.

``tests/apps/converted_entities.py`` holds pydantic ``Money`` everywhere (state, inputs, results, the
signals and orchestration inputs an operation sends, ``call_entity`` results); any payload that missed
the converter arrives as a plain dict and fails an ``isinstance`` check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.errors import PayloadError
from dtctl.hub import open_hub
from tests.apps.converted_wallet import Money
from tests.apps.custom_data_converter.converter import PydanticDataConverter
from tests.helpers import WorkerProcess, wait_until

APP = "tests.apps.converted_entities:app"


def _state(client: TaskHubClient, entity_id: str) -> Money | None:
    found = client.get_entity_state(entity_id, Money)
    assert found is None or isinstance(found, Money)
    return found


def test_entity_payloads_go_through_the_apps_converter(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    worker = WorkerProcess(hub, APP, tmp_path / "logs")
    try:
        with TaskHubClient(str(hub), data_converter=PydanticDataConverter()) as client:
            client.signal_entity("@purse@p1", "add", Money(cents=100, currency="EUR"))
            instance_id = client.start_instance("fill_purse", input="p1")
            state = client.wait_for_completion(instance_id, timeout=30)
            assert state.status == COMPLETED, state.failure
            result = client.decode_output(state, Money)
            assert isinstance(result, Money)
            # the signal may land before or after the three calls; the last call sees all four
            assert result.cents in (1200, 1300)
            purse = wait_until(lambda: _state(client, "@purse@p1"), what="the purse state")
            assert purse == Money(cents=1300, currency="EUR")
            # every add signalled a tenth to the vault (an entity-to-entity signal, converted)
            vault = wait_until(
                lambda: (v := _state(client, "@vault@p1")) is not None and v.cents == 130 and v,
                what="the vault to hold the four tithes",
            )
            assert vault == Money(cents=130, currency="EUR")
            # the purse crossed 10.00 and started a receipt orchestration with a Money input
            receipt = client.wait_for_completion("receipt-p1", timeout=30)
            assert receipt.status == COMPLETED, receipt.failure
            assert isinstance(client.decode_output(receipt, Money), Money)
            stored = client.get_entity("@purse@p1")
            assert stored is not None and stored.state is not None
            assert json.loads(stored.state) == {"cents": 1300, "currency": "EUR"}
    finally:
        worker.stop()


def test_the_client_encodes_signals_with_its_converter(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    with TaskHubClient(str(hub)) as plain, pytest.raises(PayloadError, match="purse"):
        plain.signal_entity("@purse@p2", "add", Money(cents=1, currency="EUR"))
    with TaskHubClient(str(hub), data_converter=PydanticDataConverter()) as client:
        client.signal_entity("@purse@p2", "add", Money(cents=1, currency="EUR"))
        details = client.entity_details("@purse@p2")
        assert details is not None
        [waiting] = details.messages
        sent = waiting.message.input
        assert sent is not None and json.loads(sent) == {"cents": 1, "currency": "EUR"}
