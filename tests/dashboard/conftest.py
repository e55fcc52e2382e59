"""Fixtures of the dashboard tests: the web stack must be installed (the test extra has it)."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the dashboard extra is not installed: pip install -e '.[test]'")
