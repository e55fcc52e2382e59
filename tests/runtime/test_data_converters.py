"""Data converters through real worker processes.

The first four tests are the durabletask SDK's
``examples/custom_data_converter/test/test_custom_converter.py``
(``test_pydantic_model_round_trips_and_output_is_typed``,
``test_input_is_validated_pydantic_model_on_the_wire``,
``test_invalid_order_input_fails_validation_in_orchestration``,
``test_default_converter_cannot_serialize_pydantic_model``), run against a dtctl hub file and a real
``dtctl worker`` process instead of the SDK's in-memory backend. The converter and workflows are the
example's files with only the imports changed (``tests/apps/custom_data_converter``); the test bodies
use dtctl's client names (``state.status``, ``client.decode_output(state, T)``, ``state.failure``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import dtctl
from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceState
from tests.apps.converted_wallet import Money
from tests.apps.custom_data_converter.converter import PydanticDataConverter
from tests.apps.custom_data_converter.workflows import (
    Order,
    OrderItem,
    Receipt,
    process_order,
    sample_order,
)
from tests.helpers import WorkerProcess

ORDERS_APP = "tests.apps.custom_data_converter.app:app"
WALLET_APP = "tests.apps.converted_wallet:app"


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "taskhub.db"
    open_hub(path, create=True).close()
    return path


def _run(hub_path: Path, tmp_path: Path, order: Order) -> tuple[InstanceState, TaskHubClient]:
    """Run ``process_order`` with the pydantic converter wired into both sides."""
    converter = PydanticDataConverter()
    worker = WorkerProcess(hub_path, ORDERS_APP, tmp_path / "logs")
    try:
        c = TaskHubClient(str(hub_path), data_converter=converter)
        instance_id = c.start_instance(process_order, input=order)
        state = c.wait_for_completion(instance_id, timeout=30)
    finally:
        worker.stop()
    return state, c


def test_pydantic_model_round_trips_and_output_is_typed(hub_path: Path, tmp_path: Path) -> None:
    """A valid order completes and the client reads back a typed Receipt."""
    state, c = _run(hub_path, tmp_path, sample_order())
    with c:
        assert state.status == dtctl.COMPLETED
        receipt = c.decode_output(state, Receipt)
    assert isinstance(receipt, Receipt)
    assert receipt.customer == "Contoso"
    assert receipt.item_count == 4  # 3 widgets + 1 gadget
    assert receipt.total == pytest.approx(174.99)
    assert receipt.confirmation_id == "PAY-17499"


def test_input_is_validated_pydantic_model_on_the_wire() -> None:
    """The serialized input is genuine pydantic JSON, proving the converter ran."""
    converter = PydanticDataConverter()
    order = sample_order()
    serialized = converter.serialize(order)
    assert serialized is not None
    payload = json.loads(serialized)
    assert payload["customer"] == "Contoso"
    assert isinstance(payload["placed_at"], str)
    assert payload["items"][0]["name"] == "Widget"
    restored = converter.deserialize(serialized, Order)
    assert isinstance(restored, Order)
    assert isinstance(restored.items[0], OrderItem)
    assert restored.items[0].quantity == 3


def test_invalid_order_input_fails_validation_in_orchestration(hub_path: Path, tmp_path: Path) -> None:
    """An order that violates a pydantic constraint fails the orchestration while it is decoded."""
    bad_order = Order.model_construct(
        customer="Contoso",
        placed_at=sample_order().placed_at,
        items=[OrderItem.model_construct(name="Widget", quantity=-1, unit_price=25.0)],
    )
    state, c = _run(hub_path, tmp_path, bad_order)
    c.close()
    assert state.status == dtctl.FAILED
    assert state.failure is not None
    message = (state.failure.message or "").lower()
    assert "validation" in message or "quantity" in message


def test_default_converter_cannot_serialize_pydantic_model() -> None:
    """Contrast: dtctl's own codec refuses a pydantic model (it is no dataclass)."""
    from dtctl.serialization import JsonDataConverter

    default = JsonDataConverter()
    with pytest.raises(TypeError):
        default.serialize(sample_order())


# --- every path that stores a payload -----------------------------------------------------------------


def test_every_payload_path_goes_through_the_converter(hub_path: Path, tmp_path: Path) -> None:
    """Orchestration input and output, activity input and result, custom status, continue-as-new input,
    sub-orchestration input and result, and an external event: all pydantic models, all decoded typed."""
    worker = WorkerProcess(hub_path, WALLET_APP, tmp_path / "logs")
    try:
        with TaskHubClient(str(hub_path), data_converter=PydanticDataConverter()) as client:
            client.start_instance("wallet", input=Money(cents=300, currency="EUR"), instance_id="w")
            child = _wait_for(client, "w:0001")  # 300 -> 600 -> continue as new -> 1200 -> the child
            client.raise_event(child.instance_id, "bonus", Money(cents=5, currency="EUR"))
            state = client.wait_for_completion("w", timeout=30)
            assert state.status == dtctl.COMPLETED, (state.failure, worker.log())
            assert client.decode_output(state, Money) == Money(cents=1205, currency="EUR")
            assert client.decode_custom_status(state, Money) == Money(cents=600, currency="EUR")
            assert client.decode_input(state, Money) == Money(cents=600, currency="EUR")
            assert json.loads(state.output or "") == {"cents": 1205, "currency": "EUR"}
    finally:
        worker.stop()


def _wait_for(client: TaskHubClient, instance_id: str) -> Any:
    from tests.helpers import wait_until

    return wait_until(lambda: client.get_instance(instance_id), what=f"instance {instance_id}")


def test_in_process_runs_use_the_apps_converter(tmp_path: Path) -> None:
    from dtctl.testing import run_orchestration
    from tests.apps.custom_data_converter.app import app as orders_app

    state = run_orchestration(orders_app, process_order, sample_order(), hub_dir=tmp_path)
    assert state.status == dtctl.COMPLETED, state.failure
    receipt = PydanticDataConverter().deserialize(state.output, Receipt)
    assert isinstance(receipt, Receipt) and receipt.confirmation_id == "PAY-17499"
