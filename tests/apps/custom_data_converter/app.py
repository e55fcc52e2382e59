"""The example's worker side as a dtctl app: the same converter the client is given."""

from __future__ import annotations

import dtctl
from tests.apps.custom_data_converter.converter import PydanticDataConverter
from tests.apps.custom_data_converter.workflows import calculate_total, charge_payment, process_order

app = dtctl.App(data_converter=PydanticDataConverter())
app.add_orchestrator(process_order)
app.add_activity(calculate_total)
app.add_activity(charge_payment)
