"""The scale formula (pure) and the KEDA ScaledObject it prints."""

from __future__ import annotations

import pytest

from dtctl.errors import UsageError
from dtctl.hub.base import ScaleMetrics
from dtctl.scale import keda_scaled_object, postgres_schema, recommend, scale_query, url_names_hub


def metrics(orchestrations: int, activities: int) -> ScaleMetrics:
    return ScaleMetrics(live_orchestrations=orchestrations, live_activities=activities)


@pytest.mark.parametrize(
    ("orchestrations", "activities", "n", "m", "expected"),
    [
        (0, 0, 8, 8, 0),  # idle
        (40, 0, 8, 8, 5),
        (41, 0, 8, 8, 6),  # ceil
        (1, 1, 8, 8, 2),  # each kind needs its own worker share
        (3, 20, 2, 8, 2 + 3),
        (5, 5, 0, -3, 10),  # limits below 1 count as 1
    ],
)
def test_formula(orchestrations: int, activities: int, n: int, m: int, expected: int) -> None:
    rec = recommend(metrics(orchestrations, activities), n, m)
    assert rec.recommended_workers == expected
    assert rec.recommended_workers == rec.orchestration_workers + rec.activity_workers
    assert (rec.live_orchestrations, rec.live_activities) == (orchestrations, activities)
    assert (rec.max_orchestrations, rec.max_activities) == (max(1, n), max(1, m))


def test_recommendation_keeps_the_breakdown() -> None:
    full = ScaleMetrics(live_orchestrations=2, live_activities=3, future_timers=9, scheduled_activities=7)
    assert recommend(full, 8, 8).metrics is full


def test_keda_scaled_object() -> None:
    text = keda_scaled_object(schema="dtctl_orders", max_orchestrations=8, max_activities=16, deployment="w")
    import yaml  # a test dependency: a missing yaml must fail, not skip

    doc = yaml.safe_load(text)
    assert (doc["apiVersion"], doc["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert doc["spec"]["scaleTargetRef"] == {"name": "w"}
    [trigger] = doc["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"] == {
        "connectionFromEnv": "DTCTL_KEDA_CONNECTION",
        "query": "SELECT dtctl_orders.scale_recommendation(8, 16)",
        "targetQueryValue": "1",
        "activationTargetQueryValue": "0",
    }
    assert (doc["spec"]["minReplicaCount"], doc["spec"]["maxReplicaCount"]) == (0, 100)
    assert "--max-orchestrations 8 --max-activities 16" in text  # the worker flags that match


@pytest.mark.parametrize(
    "bad",
    [
        {"deployment": "Bad_Name"},
        {"connection_env": "1X"},
        {"schema": "public; DROP"},
        {"min_replicas": 5, "max_replicas": 2},
    ],
)
def test_keda_refuses_bad_values(bad: dict[str, object]) -> None:
    args: dict[str, object] = {"schema": "dtctl_default", "max_orchestrations": 8, "max_activities": 8}
    with pytest.raises(UsageError):
        keda_scaled_object(**(args | bad))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("postgresql://u:p@db:5432/app", "dtctl_default"),
        ("postgresql://u:p@db/app?hub=orders", "dtctl_orders"),
        ("postgres://db/app?sslmode=require&hub=eu_1", "dtctl_eu_1"),
    ],
)
def test_postgres_schema_from_the_url(url: str, schema: str) -> None:
    assert postgres_schema(url) == schema
    assert url_names_hub(url) == ("hub=" in url)
    pg = pytest.importorskip("dtctl.hub.postgres.conn")
    assert pg.parse_url(url).schema == schema  # the same rule as the hub itself


def test_postgres_schema_refuses_bad_hub_names() -> None:
    with pytest.raises(UsageError):
        postgres_schema("postgresql://db/app?hub=Orders;x")
    with pytest.raises(UsageError):
        postgres_schema("postgresql://db/app?hub=a&hub=b")


def test_scale_query() -> None:
    assert scale_query("dtctl_x", 0, 4) == "SELECT dtctl_x.scale_recommendation(1, 4)"
