"""The lock-free accumulators expose what prometheus-client's own Counter and Histogram expose."""

from __future__ import annotations

import itertools
import random
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dtctl.core.history import TaskCompleted
from dtctl.hub.records import ActivityResult, ActivityWorkItem
from dtctl.observe.accumulators import Accumulators
from dtctl.observe.hooks import Commit
from dtctl.observe.metrics import LATENCY_BUCKETS, WorkerMetrics

BUCKETS = (0.001, 0.01, 0.1, 1, 10)


def _blocks(text: str) -> dict[str, list[str]]:
    """Each family's lines (from its HELP line on), samples sorted, a ``_created`` line without its value
    (the two implementations create series at different instants)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = found.setdefault(line, [])
        elif "_created{" in line or line.split(" ")[0].endswith("_created"):
            current.append(line.rsplit(" ", 1)[0])
        else:
            current.append(line)
    return {help_line: sorted(lines) for help_line, lines in found.items()}


def test_exposition_is_prometheus_clients_for_the_same_observations() -> None:
    ours, theirs = Accumulators(), CollectorRegistry()
    registry = CollectorRegistry()
    registry.register(ours)
    counter = ours.counter("t_items", "Items.", ["kind", "name"])
    ref_counter = Counter("t_items", "Items.", ["kind", "name"], registry=theirs)
    histogram = ours.histogram("t_seconds", "Seconds.", ["kind"], buckets=BUCKETS)
    ref_histogram = Histogram("t_seconds", "Seconds.", ["kind"], buckets=BUCKETS, registry=theirs)
    plain = ours.histogram("t_loaded", "Loaded.", buckets=(1, 5, 10))
    ref_plain = Histogram("t_loaded", "Loaded.", buckets=(1, 5, 10), registry=theirs)
    pinned = ours.counter("t_refused", "Refused.", ["kind"])
    ref_pinned = Counter("t_refused", "Refused.", ["kind"], registry=theirs)
    plain_series = plain.pin()
    for kind in ("a", "b"):
        pinned.pin(kind)
        ref_pinned.labels(kind)
        histogram.pin(kind)
        ref_histogram.labels(kind)
    pinned.child("a").value += 1
    ref_pinned.labels("a").inc()
    rng = random.Random(15)
    edges = [*BUCKETS, 0.0, 0.0005, 11.0, 1e9]  # on a bound: that bucket, as prometheus-client's "<="
    for _ in range(2000):
        kind, name = rng.choice("abc"), rng.choice(("x", "y", "z/w", 'q"u'))
        counter.child(kind, name).value += 1
        ref_counter.labels(kind, name).inc()
        seconds = rng.choice(edges) if rng.random() < 0.3 else rng.expovariate(3.0)
        histogram.child(kind).observe(seconds)
        ref_histogram.labels(kind).observe(seconds)
        loaded = rng.randint(0, 12)
        plain_series.observe(loaded)
        ref_plain.observe(loaded)

    got, want = generate_latest(registry).decode(), generate_latest(theirs).decode()
    assert _blocks(got) == _blocks(want)
    assert 't_seconds_bucket{kind="c",le="+Inf"}' in got  # not pinned: shown once observed
    assert "t_items_created" in got and "t_seconds_created" in got


def test_untouched_series_are_not_shown_and_pinned_ones_are() -> None:
    ours = Accumulators()
    registry = CollectorRegistry()
    registry.register(ours)
    ours.counter("t_failed", "Failed.", ["name"]).child("never")
    ours.counter("t_stale", "Stale.", ["kind"]).pin("activity")
    text = generate_latest(registry).decode()
    assert 'name="never"' not in text
    assert 't_stale_total{kind="activity"} 0.0' in text


def _item(n: int, name: str) -> ActivityWorkItem:
    return ActivityWorkItem(
        id=n,
        instance_id=f"i{n}",
        execution_id="e",
        task_id=0,
        name=name,
        input=None,
        lease_token="token",
        lease_expires=0,
        dequeue_count=1,
    )


def _execution_counts(registry: CollectorRegistry) -> dict[str, float]:
    """``dtctl_execution_seconds`` count per activity name; checks each series' count is its +Inf."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.name != "dtctl_execution_seconds":
            continue
        infs = {s.labels["name"]: s.value for s in family.samples if s.labels.get("le") == "+Inf"}
        for sample in family.samples:
            if sample.name.endswith("_count"):
                assert sample.value == infs[sample.labels["name"]], sample
                counts[sample.labels["name"]] = sample.value
    return counts


def test_activity_executions_from_pool_threads_are_all_counted_while_scraped() -> None:
    metrics = WorkerMetrics()
    per_thread, names = 3000, ("greet", "wave")
    items = [_item(n, names[n % 2]) for n in range(4 * per_thread)]
    metrics.activities_leased(items, 0)
    scraped: list[dict[str, float]] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            scraped.append(_execution_counts(metrics.registry))

    def run(chunk: list[ActivityWorkItem]) -> None:
        for item in chunk:
            metrics.run_activity(item, lambda item=item: ActivityResult(item, TaskCompleted(task_id=0)))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    pool = [threading.Thread(target=run, args=(items[i::4],)) for i in range(4)]
    for thread in pool:
        thread.start()
    results = []
    for thread in pool:
        thread.join()
    for item in items:
        results.append(ActivityResult(item, TaskCompleted(task_id=0)))
    metrics.committed(Commit(0.002, True, (), (), results, [True] * len(results)))
    stop.set()
    scraper.join()

    assert _execution_counts(metrics.registry) == {"greet": 2 * per_thread, "wave": 2 * per_thread}
    assert scraped, "the scraper never ran"
    for before, after in itertools.pairwise(scraped):  # counts only grow, scrape after scrape
        assert all(after.get(name, 0) >= value for name, value in before.items())
    text = generate_latest(metrics.registry).decode()
    assert f'dtctl_work_items_completed_total{{kind="activity",name="greet"}} {2.0 * per_thread}' in text
    assert 'dtctl_commit_seconds_bucket{durable="true",le="0.0025"} 1.0' in text
    assert len(LATENCY_BUCKETS) + 1 == text.count('dtctl_commit_seconds_bucket{durable="false"')
