"""Hub-wide gauges for Prometheus, from one designated exporter (``dtctl metrics serve``).

Queue depths, instances by status, live workers and the scale recommendation describe the hub, not a
process: if every worker exported them, ``sum()`` would count each queue once per worker. So workers
export only their own counters (:mod:`dtctl.observe.metrics`) and one ``dtctl metrics serve`` per hub
exports these, read from the same snapshot as ``dtctl top`` (:meth:`HubInspector.hub_snapshot` judged
by :func:`dtctl.ops.top_view`) at each scrape. Every series carries a ``hub`` label (the hub's location
without its password), so one Prometheus can watch many hubs; run one exporter per hub (two exporters
of the same hub give equal values: ``max by (hub, …)`` de-duplicates them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client import Metric

    from dtctl.hub.inspection import QueueDepth
    from dtctl.ops import TopView

US = 1_000_000
QUEUES = (("orchestration", "inbox"), ("activity", "activity_queue"))


class HubCollector(Collector):
    """Reads one hub snapshot per scrape (``view``) and turns it into gauges."""

    def __init__(self, hub: str, view: Callable[[], TopView]) -> None:
        self._hub = hub
        self._view = view

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        view = self._view()
        yield from self._queues(view)
        yield from self._instances(view)
        yield from self._workers(view)
        yield from self._scale(view)
        took = GaugeMetricFamily("dtctl_hub_scrape_seconds", "Time to read the hub snapshot.", labels=["hub"])
        took.add_metric([self._hub], time.perf_counter() - started)
        yield took

    def _gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=["hub", *labels])

    def _queues(self, view: TopView) -> Iterator[Metric]:
        s = view.snapshot
        depth = self._gauge(
            "dtctl_hub_queue_depth",
            "Work items in a queue now: waiting (ready, not leased), leased, later (not visible yet).",
            ["queue", "state"],
        )
        oldest = self._gauge(
            "dtctl_hub_oldest_waiting_seconds",
            "Age of the oldest ready work item that nobody holds (0 when none).",
            ["queue"],
        )
        for queue, attribute in QUEUES:
            q: QueueDepth = getattr(s, attribute)
            depth.add_metric([self._hub, queue, "waiting"], q.visible - q.leased)
            depth.add_metric([self._hub, queue, "leased"], q.leased)
            depth.add_metric([self._hub, queue, "later"], q.later)
            age = 0.0 if q.oldest is None else max(0, s.at - q.oldest.visible_at) / US
            oldest.add_metric([self._hub, queue], age)
        yield depth
        yield oldest

    def _instances(self, view: TopView) -> Iterator[Metric]:
        counts = view.snapshot.instances
        live = self._gauge("dtctl_hub_instances", "Live instances now, by runtime status.", ["status"])
        for status, value in (
            ("PENDING", counts.pending),
            ("RUNNING", counts.running),
            ("SUSPENDED", counts.suspended),
        ):
            live.add_metric([self._hub, status], value)
        yield live

    def _workers(self, view: TopView) -> Iterator[Metric]:
        workers = self._gauge("dtctl_hub_workers", "Registered workers, live or lost.", ["state"])
        live = [h for h in view.workers if h.live]
        workers.add_metric([self._hub, "live"], len(live))
        workers.add_metric([self._hub, "lost"], len(view.workers) - len(live))
        yield workers
        slots = self._gauge(
            "dtctl_hub_worker_slots",
            "Live workers' leases held now and their limits, by kind.",
            ["kind", "state"],
        )
        slots.add_metric([self._hub, "orchestration", "leased"], sum(h.orchestrations for h in live))
        slots.add_metric([self._hub, "orchestration", "limit"], sum(h.info.max_orchestrations for h in live))
        slots.add_metric([self._hub, "activity", "leased"], sum(h.activities for h in live))
        slots.add_metric([self._hub, "activity", "limit"], sum(h.info.max_activities for h in live))
        yield slots
        unclaimable = self._gauge(
            "dtctl_hub_unclaimable_backlog", "Ready work items that no live worker can take.", []
        )
        unclaimable.add_metric([self._hub], sum(b.count for b in view.unclaimable))
        yield unclaimable

    def _scale(self, view: TopView) -> Iterator[Metric]:
        rec = view.recommendation
        recommended = self._gauge(
            "dtctl_hub_scale_recommendation",
            "Recommended worker count for the exporter's --max-orchestrations/--max-activities.",
            [],
        )
        recommended.add_metric([self._hub], rec.recommended_workers)
        yield recommended
        live = self._gauge(
            "dtctl_hub_scale_live_work_items", "The inputs of the scale recommendation, by kind.", ["kind"]
        )
        live.add_metric([self._hub, "orchestration"], rec.live_orchestrations)
        live.add_metric([self._hub, "activity"], rec.live_activities)
        yield live


def hub_registry(hub: str, view: Callable[[], TopView]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(HubCollector(hub, view))
    return registry


def serve_forever(registry: CollectorRegistry, host: str, port: int, ready: Callable[[int], None]) -> None:
    """Serve ``/metrics`` on the calling thread, one request at a time: the hub's connection is used
    only by the thread that opened it. ``ready`` gets the bound port (useful with port 0)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    with make_server(host, port, make_wsgi_app(registry), handler_class=_Quiet) as server:
        ready(server.server_port)
        server.serve_forever()
