"""Every hub hands out a wake source (``TaskHub.wake_source()``): a commit through another connection
wakes a waiter, ``set`` wakes it, a closed source never blocks; and the trailing looks after a wake-up."""

from __future__ import annotations

import threading
import time

from dtctl.hub.base import TaskHub, WakeSource
from dtctl.hub.wakeup import TRAILING_LOOKS, HintedWait
from dtctl.hub.wakeup.event import EventWake
from tests.hub.conftest import Backend
from tests.hub.hub_helpers import start


def _quiet(source: WakeSource) -> None:
    """Let hints already on their way arrive (PostgreSQL: the LISTEN connection wakes once when it is
    up), then forget them, so that only what the test does next can wake the source."""
    for _ in range(50):
        source.before_look()
        if not source.wait(0.3):
            return
        source.clear()
    raise AssertionError("the wake source never went quiet")


def test_a_commit_by_another_connection_wakes_the_source(backend: Backend, hub: TaskHub) -> None:
    source = hub.wake_source()
    other = backend.open()
    try:
        _quiet(source)
        start(other, "a")
        assert source.wait(10), "no wake-up after a commit"
        source.clear()
        assert not source.is_set()
    finally:
        other.close()
        source.close()


def test_set_wakes_a_waiter_in_another_thread_and_close_never_blocks(hub: TaskHub) -> None:
    source = hub.wake_source()
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(source.wait(30)))
    try:
        waiter.start()
        source.set()
        waiter.join(10)
        assert woken == [True] and source.is_set()
        source.clear()
        assert not source.is_set()
    finally:
        source.close()
    began = time.monotonic()
    assert source.wait(30)
    assert time.monotonic() - began < 5


def test_hinted_wait_looks_again_soon_after_a_wake_up() -> None:
    source = EventWake()
    waiting = HintedWait(source)
    source.set()
    assert waiting.wait(30)  # woken: the trailing looks start
    began = time.monotonic()
    for _ in TRAILING_LOOKS:
        assert not waiting.wait(30)  # each is capped at its trailing delay, not the 30 s asked for
    assert time.monotonic() - began < 5
    began = time.monotonic()
    assert not waiting.wait(0.05)  # the looks are spent: the caller's timeout again
    assert time.monotonic() - began >= 0.05
    source.set()
    assert waiting.wait(30) and not source.is_set()  # a wake-up clears the source
