"""Fixtures of the replay tests."""

from __future__ import annotations

import pytest

from dtctl.testing import HistoryBuilder
from tests.core.support import START, MakeHistory


@pytest.fixture
def make_history() -> MakeHistory:
    """Builds a fresh history for one execution (default: instance ``order-1`` of ``orchestrator``)."""

    def make(name: str = "orchestrator", instance_id: str = "order-1") -> HistoryBuilder:
        return HistoryBuilder(instance_id=instance_id, name=name, start=START)

    return make
