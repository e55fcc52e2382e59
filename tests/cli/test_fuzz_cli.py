"""Arbitrary text where users type JSON, ids and names: a clear error or success, never a traceback or
an internal error (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import Run, make_hub, run

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text as a command line can carry it: any code point (lone surrogates stand for bytes that were not
# UTF-8), JSON-looking fragments, and option-like words.
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from('{}[]":,0123456789.eE+-truefalsn \\u\n\t'), max_size=40),
    st.sampled_from(["-", "--", "-x", "@", "@/nonexistent", "NaN", "1e999", "[" * 2000, '"\\ud800"']),
)


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hub_file = make_hub(tmp_path_factory.mktemp("fuzz") / "hub.db")
    assert run("--hub", str(hub_file), "start-instance", "gate", "--id", "target").code == 0
    return hub_file


def _sane(result: Run, allowed: set[int]) -> None:
    assert "Traceback" not in result.err + result.out, result.err
    assert result.code != 1, f"internal error: {result.err}"
    assert result.code in allowed, f"exit {result.code}: {result.err}"


@SETTINGS
@given(name=TEXT, value=TEXT, instance_id=TEXT)
def test_start_instance_with_any_text(fuzz_hub: Path, name: str, value: str, instance_id: str) -> None:
    result = run(
        "--hub", str(fuzz_hub), "start-instance", f"--input={value}", f"--id={instance_id}", "--", name
    )
    _sane(result, {0, 2, 4})


@SETTINGS
@given(instance_id=TEXT, name=TEXT, data=TEXT)
def test_raise_event_with_any_text(fuzz_hub: Path, instance_id: str, name: str, data: str) -> None:
    result = run("--hub", str(fuzz_hub), "raise-event", f"--data={data}", "--", instance_id, name)
    _sane(result, {0, 2, 3, 4})
    targeted = run("--hub", str(fuzz_hub), "raise-event", f"--data={data}", "--", "target", name)
    _sane(targeted, {0, 2})


@SETTINGS
@given(instance_id=TEXT, other=TEXT)
def test_ids_and_filters_with_any_text(fuzz_hub: Path, instance_id: str, other: str) -> None:
    hub_file = str(fuzz_hub)
    for args in (
        ["status", "--", instance_id],
        ["history", "show", f"--execution={other}", "--", instance_id],
        ["wait", "--timeout=0", "--", instance_id],
        ["terminate", f"--reason={other}", "--", instance_id],
        ["purge", "--dry-run", "--", instance_id],
        ["list", f"--name={instance_id}", f"--prefix={other}", "--limit=1"],
        ["list", f"--created-after={other}"],
        ["list", f"--cursor={other}"],
        ["purge", f"--older-than={other}", "--dry-run"],
    ):
        _sane(run("--hub", hub_file, *args), {0, 2, 3, 4, 5, 6})
