"""Every dtctl history event converts to the protocol's history (StreamInstanceHistory, work items)."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc", reason="needs the serve extra")

from dtctl.core.history import EVENT_TYPES
from dtctl.serve import convert


def test_every_history_event_kind_converts() -> None:
    assert set(EVENT_TYPES) - convert.convertible_kinds() == set()
