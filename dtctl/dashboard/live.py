"""Live updates: the hub's wake-ups drive server-sent events; polling is the fallback.

One thread (:class:`LiveHub`) waits on the hub's wake-up hint (a SQLite hub's file changes, a
PostgreSQL hub's NOTIFY) or, at the latest, every ``poll_seconds``; each time it bumps a version number
and tells every open event stream, at most every ``MIN_INTERVAL`` seconds however busy the hub is. The
pages then fetch their live region again. The same thread samples the overview's charts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dtctl.client import TaskHubClient
from dtctl.dashboard import fmt
from dtctl.hub.base import TaskHub

MIN_INTERVAL = 0.5  # seconds between two change events at most
KEEPALIVE = 15.0  # seconds: an SSE comment so proxies and browsers keep the stream open
SAMPLE_SECONDS = 2.0  # chart resolution
SAMPLE_WINDOW = 10.0  # each chart point: work finished in the last this many seconds
CHART_SECONDS = 300.0  # the charts show this much (the hub's work log keeps as long)


def start_wake_source(hub: TaskHub, wake: threading.Event) -> Callable[[], None]:
    """Start setting ``wake`` when the hub hints at a change; returns the function that stops it.

    The one place the dashboard knows where wake-ups come from: the hub's own wake source, waited on by
    a daemon thread (the source's wait may be the caller's own inotify wait, so it gets a thread).
    Hints only shorten the wait; the dashboard polls as well.
    """
    from dtctl.hub.wakeup.relay import relay

    return relay(hub.wake_source(), wake, name="dtctl-dashboard-wake")


@dataclass(frozen=True, slots=True)
class Sample:
    at: int  # hub clock, µs
    completed: float  # orchestrations completed per second
    episodes: float
    activities: float
    failures: float  # failed instances + failed activities per second
    episode_p50: float | None  # ms, schedule-to-start + start-to-complete medians
    activity_p50: float | None
    activity_p95: float | None


class LiveHub:
    """The change counter the event streams follow, and the charts' samples."""

    def __init__(self, borrow: Callable[[], Any], poll_seconds: float) -> None:
        self._borrow = borrow  # a context manager factory lending a TaskHubClient
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._samples: deque[Sample] = deque(maxlen=int(CHART_SECONDS / SAMPLE_SECONDS) + 1)
        self.version = 0
        self.wake_driven = False
        self._thread = threading.Thread(target=self._run, name="dtctl-dashboard-live", daemon=True)
        self._stop_wake: Callable[[], None] = lambda: None

    def start(self, hub: TaskHub) -> LiveHub:
        self._stop_wake = start_wake_source(hub, self._wake)
        self.wake_driven = True  # every hub hands out a wake source; polling stays the guarantee
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._stop_wake()
        self._thread.join(timeout=5)

    def poke(self) -> None:
        """A change the dashboard made itself (an action): tell the pages without waiting for the hub."""
        self._wake.set()

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def _run(self) -> None:
        next_sample = 0.0
        while not self._stop.is_set():
            woke = self._wake.wait(min(self._poll, SAMPLE_SECONDS))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now >= next_sample:
                self._sample()
                next_sample = now + SAMPLE_SECONDS
            if woke or not self.wake_driven or now - self._last_bump >= self._poll:
                self._bump()
            # However busy the hub, tell the pages at most every MIN_INTERVAL (a wait, not a spin).
            self._stop.wait(MIN_INTERVAL)

    _last_bump = 0.0

    def _bump(self) -> None:
        self._last_bump = time.monotonic()
        with self._lock:
            self.version += 1
            listeners = list(self._listeners)
        for loop, event in listeners:
            with contextlib.suppress(RuntimeError):  # its loop closed: the stream is gone
                loop.call_soon_threadsafe(event.set)

    def _sample(self) -> None:
        try:
            with self._borrow() as client:
                sample = take_sample(client)
        except Exception:  # a hub that is busy or gone for a moment: the chart gets a gap, not a crash
            return
        if sample is not None:
            with self._lock:
                self._samples.append(sample)

    @contextlib.contextmanager
    def _listening(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._listeners.add(entry)
        try:
            yield event
        finally:
            with self._lock:
                self._listeners.discard(entry)

    async def stream(self, since: int) -> AsyncIterator[str]:
        """Server-sent events: ``change`` with the version whenever it moves past ``since``."""
        yield f"retry: 2000\nevent: hello\ndata: {self.version}\n\n"
        with self._listening() as event:
            seen = since
            while not self._stop.is_set():
                if self.version != seen:
                    seen = self.version
                    yield f"event: change\ndata: {seen}\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), KEEPALIVE)
                if not event.is_set():
                    yield ": keepalive\n\n"
                event.clear()


def take_sample(client: TaskHubClient) -> Sample | None:
    s = client.hub.hub_snapshot(SAMPLE_WINDOW)
    w = s.window_seconds

    def both(p_queue: int | None, p_run: int | None) -> float | None:
        if p_queue is None or p_run is None:
            return None
        return fmt.ms(p_queue + p_run)

    return Sample(
        at=s.at,
        completed=fmt.rate(s.instances.completed, w),
        episodes=fmt.rate(s.orchestration_work.finished, w),
        activities=fmt.rate(s.activity_work.finished, w),
        failures=fmt.rate(s.instances.failed + s.activity_work.failed, w),
        episode_p50=both(
            s.orchestration_work.schedule_to_start_p50, s.orchestration_work.start_to_complete_p50
        ),
        activity_p50=both(s.activity_work.schedule_to_start_p50, s.activity_work.start_to_complete_p50),
        activity_p95=both(s.activity_work.schedule_to_start_p95, s.activity_work.start_to_complete_p95),
    )
