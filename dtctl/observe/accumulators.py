"""Counters and histograms a worker updates without locks, exported at scrape time as Prometheus families.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock each and its ``labels()`` builds a
key per call: a few microseconds per work item that the worker pays on its hot path. Here an update is an
attribute increment (a :class:`Count`) or a ``bisect`` and two increments (a :class:`Buckets`), and the
worker keeps the objects of one series at hand, so it looks nothing up.

Why no lock is needed: each series has ONE writer. The worker's main thread writes the series it
observes; observations made on other threads (activity pool threads) are handed over through a deque and
written by whoever drains it, under :attr:`Accumulators.lock` (see ``WorkerMetrics``). The scrape thread
only reads. New series are created under the same lock, and the scrape copies each family's series under
it, so no dictionary changes while it is iterated. A scrape reads each histogram's bucket list in one
copy and derives the count from that copy, so ``_count`` always equals the ``+Inf`` bucket; its ``_sum``
may be one observation ahead or behind, as a scrape during an update may see with any exporter.

What a scraper sees is what prometheus-client's own metrics give: the same names, types, help, labels,
buckets (``le`` formatted the same), ``_total``/``_bucket``/``_count``/``_sum``/``_created`` samples
(``_created`` unless ``PROMETHEUS_DISABLE_CREATED_SERIES`` says otherwise). A series is shown from its
first update on, or from the start when :meth:`CounterFamily.pin`/:meth:`HistogramFamily.pin` made it
known up front: a series may be created earlier (with the rest of its work item name's series) than it is
shown, so its ``_created`` can be earlier than prometheus-client would say.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from math import inf
from typing import Generic, TypeVar

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_SHOW_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


class Count:
    """One counter series: ``value += 1`` from its one writer."""

    __slots__ = ("created", "pinned", "value")

    def __init__(self) -> None:
        self.value = 0
        self.pinned = False
        self.created = time.time()


class Buckets:
    """One histogram series: per-bucket (not cumulative) counts and the sum."""

    __slots__ = ("bounds", "counts", "created", "pinned", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # upper bounds, +Inf last
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.pinned = False
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # bisect_left: the first bound >= amount, as prometheus-client's "amount <= bound" picks.
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


S = TypeVar("S", Count, Buckets)


class _Family(Generic[S]):
    """The series of one metric by label values; a subclass makes a series and exports them."""

    def __init__(
        self, lock: threading.RLock, name: str, documentation: str, labelnames: Sequence[str]
    ) -> None:
        self.lock = lock
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series: dict[tuple[str, ...], S] = {}

    def _new(self) -> S:
        raise NotImplementedError

    def _family(self, series: Iterable[tuple[tuple[str, ...], S]]) -> Metric:
        raise NotImplementedError

    def child(self, *labels: str) -> S:
        found = self.series.get(labels)
        if found is None:
            with self.lock:
                found = self.series.setdefault(labels, self._new())
        return found

    def pin(self, *labels: str) -> S:
        """The series, shown at 0 before its first update (alerts and rates see it from the start)."""
        found = self.child(*labels)
        found.pinned = True
        return found

    def snapshot(self) -> Callable[[], Metric]:
        """Under the lock: the series as they are now, and how to export them (outside the lock)."""
        series = list(self.series.items())
        return lambda: self._family(series)


class CounterFamily(_Family[Count]):
    def _new(self) -> Count:
        return Count()

    def _family(self, series: Iterable[tuple[tuple[str, ...], Count]]) -> CounterMetricFamily:
        found = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, count in series:
            value = count.value
            if value or count.pinned:
                found.add_metric(labels, value, created=count.created if _SHOW_CREATED else None)
        return found


class HistogramFamily(_Family[Buckets]):
    def __init__(
        self,
        lock: threading.RLock,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(lock, name, documentation, labelnames)
        bounds = tuple(float(b) for b in buckets)
        self.bounds = bounds if bounds[-1] == inf else (*bounds, inf)
        self.le = tuple(floatToGoString(b) for b in self.bounds)  # type: ignore[no-untyped-call]

    def _new(self) -> Buckets:
        return Buckets(self.bounds)

    def _family(self, series: Iterable[tuple[tuple[str, ...], Buckets]]) -> HistogramMetricFamily:
        found = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, buckets in series:
            counts = buckets.counts.copy()  # one copy: the count below is this copy's +Inf bucket
            total = buckets.sum
            if not any(counts) and not buckets.pinned:
                continue
            cumulative: list[tuple[str, float]] = []
            acc = 0
            for le, n in zip(self.le, counts, strict=True):
                acc += n
                cumulative.append((le, acc))
            found.add_metric(labels, cumulative, total)
            if _SHOW_CREATED:
                found.add_sample(
                    self.name + "_created", dict(zip(self.labelnames, labels, strict=True)), buckets.created
                )
        return found


class Accumulators(Collector):
    """The families of one process, registered as one collector; ``drain`` runs first at each scrape."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._families: list[CounterFamily | HistogramFamily] = []
        self._drains: list[Callable[[], None]] = []

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> CounterFamily:
        found = CounterFamily(self.lock, name, documentation, labelnames)
        self._families.append(found)
        return found

    def histogram(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> HistogramFamily:
        found = HistogramFamily(self.lock, name, documentation, labelnames, buckets)
        self._families.append(found)
        return found

    def on_scrape(self, drain: Callable[[], None]) -> None:
        """``drain`` (called under :attr:`lock`) writes what other threads handed over before a scrape."""
        self._drains.append(drain)

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            for drain in self._drains:
                drain()
            exports = [family.snapshot() for family in self._families]
        for export in exports:
            yield export()
