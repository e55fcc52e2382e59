"""The scale recommendation: how many workers the current backlog needs.

``recommended = ceil(live_orchestrations / N) + ceil(live_activities / M)``, where N and M are the
per-worker limits (``--max-orchestrations`` / ``--max-activities``, each at least 1). The hub counts
the inputs (:meth:`dtctl.hub.base.TaskHub.scale_metrics`): an instance is live when it has an inbox
message visible now or is leased now (counted once however many messages it has); an activity is live
when its queue row is visible now, leased or not. Future timers and scheduled starts do not count, so
an idle hub recommends 0.

Pure: no database, no clock, no printing. On PostgreSQL the same formula is the SQL function
``<schema>.scale_recommendation(N, M)`` that KEDA's ``postgresql`` scaler queries.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dtctl.errors import UsageError
from dtctl.hub.base import ScaleMetrics

DEFAULT_DEPLOYMENT = "dtctl-worker"
# KEDA gets its own variable: the workers' DTCTL_HUB names the hub (``?hub=``, or ``@FILE``), which the
# scaler's driver cannot take (see keda_connection_value).
DEFAULT_CONNECTION_ENV = "DTCTL_KEDA_CONNECTION"
WORKER_HUB_ENV = "DTCTL_HUB"
SCALER_SUFFIX = "-scaler"
# KEDA's admission webhook refuses a ScaledObject whose generated autoscaler name ``keda-hpa-<name>``
# is longer than a Kubernetes label value (63): the ScaledObject name is at most 63 - 9 = 54
# characters, so the deployment is at most 54 - len("-scaler") = 47 (kedacore/keda,
# apis/keda/v1alpha1/scaledobject_webhook.go, maxK8sLabelValueLength).
KEDA_HPA_PREFIX = "keda-hpa-"
K8S_LABEL_VALUE_MAX = 63
MAX_DEPLOYMENT = K8S_LABEL_VALUE_MAX - len(KEDA_HPA_PREFIX) - len(SCALER_SUFFIX)
PG_SCHEMA_PREFIX = "dtctl_"
PG_DEFAULT_HUB = "default"
_HUB_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,56}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # a DNS-1123 subdomain (Deployment names)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleRecommendation:
    """The recommendation and every input of the formula."""

    recommended_workers: int
    orchestration_workers: int  # ceil(live_orchestrations / max_orchestrations)
    activity_workers: int  # ceil(live_activities / max_activities)
    live_orchestrations: int
    live_activities: int
    max_orchestrations: int  # per worker
    max_activities: int  # per worker
    metrics: ScaleMetrics


def recommend(metrics: ScaleMetrics, max_orchestrations: int, max_activities: int) -> ScaleRecommendation:
    """Apply the formula; per-worker limits below 1 count as 1 (as the mssql function clamps them)."""
    per_orch = max(1, int(max_orchestrations))
    per_act = max(1, int(max_activities))
    live_orch = max(0, metrics.live_orchestrations)
    live_act = max(0, metrics.live_activities)
    orch_workers = math.ceil(live_orch / per_orch)
    act_workers = math.ceil(live_act / per_act)
    return ScaleRecommendation(
        recommended_workers=orch_workers + act_workers,
        orchestration_workers=orch_workers,
        activity_workers=act_workers,
        live_orchestrations=live_orch,
        live_activities=live_act,
        max_orchestrations=per_orch,
        max_activities=per_act,
        metrics=metrics,
    )


# --- KEDA -------------------------------------------------------------------------------------------------


def is_postgres_location(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def postgres_schema(url: str) -> str:
    """The schema of the PostgreSQL hub a URL names: ``dtctl_<hub>`` (``?hub=NAME``, default ``default``).

    The same rule as :func:`dtctl.hub.postgres.conn.parse_url`, without importing psycopg or connecting.
    """
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError as exc:
        raise UsageError(f"malformed PostgreSQL URL ({exc})") from None
    hubs = [value for key, value in query if key == "hub"]
    if len(hubs) > 1:
        raise UsageError("the hub URL names the hub more than once")
    hub = hubs[0] if hubs else PG_DEFAULT_HUB
    if not _HUB_NAME.match(hub):
        raise UsageError(f"invalid hub name {hub!r}")
    return PG_SCHEMA_PREFIX + hub


def url_names_hub(url: str) -> bool:
    """Whether a PostgreSQL URL carries dtctl's own ``hub=`` parameter (libpq does not know it)."""
    try:
        return any(key == "hub" for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True))
    except ValueError:
        return False


def scale_query(schema: str, max_orchestrations: int, max_activities: int) -> str:
    return f"SELECT {schema}.scale_recommendation({max(1, max_orchestrations)}, {max(1, max_activities)})"


def keda_connection_value(url: str) -> str:
    """The hub URL without dtctl's ``hub=`` parameter: what KEDA's connection variable must hold.

    KEDA's ``postgresql`` scaler opens the connection string with pgx, which sends every URL parameter
    that is not a connection setting to the server as a run-time setting at login, so ``?hub=orders``
    fails with ``unrecognized configuration parameter "hub"``. The query names the hub's schema, so
    the scaler needs no ``hub=``; libpq parameters (``sslmode=…``) stay.
    """
    try:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "hub"]
    except ValueError as exc:
        raise UsageError(f"malformed PostgreSQL URL ({exc})") from None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def check_keda_names(deployment: str, connection_env: str) -> None:
    """Refuse names KEDA or Kubernetes would refuse, before anything is printed."""
    if not _K8S_NAME.match(deployment):
        raise UsageError(
            f"invalid deployment name {deployment!r}: a Kubernetes name is lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit"
        )
    if len(deployment) > MAX_DEPLOYMENT:
        raise UsageError(
            f"deployment name {deployment!r} is {len(deployment)} characters long (at most "
            f"{MAX_DEPLOYMENT}): KEDA names the autoscaler {KEDA_HPA_PREFIX}{deployment}{SCALER_SUFFIX}, "
            f"which must fit in {K8S_LABEL_VALUE_MAX} characters"
        )
    if not _ENV_NAME.match(connection_env):
        raise UsageError(f"invalid environment variable name {connection_env!r}")


def keda_scaled_object(
    *,
    schema: str,
    max_orchestrations: int,
    max_activities: int,
    deployment: str = DEFAULT_DEPLOYMENT,
    connection_env: str = DEFAULT_CONNECTION_ENV,
    min_replicas: int = 0,
    max_replicas: int = 100,
    connection_value: str | None = None,
) -> str:
    """A KEDA ``ScaledObject`` (YAML) that scales ``deployment`` to the hub's scale recommendation.

    The ``postgresql`` scaler runs the query with the connection string in the environment variable
    ``connection_env`` of the scaled Deployment's container; ``targetQueryValue: "1"`` makes one
    replica per recommended worker. Every string is quoted (``2048`` must stay a name, not a number);
    ``connection_value`` (redacted) goes into the comment that says what to set.
    """
    check_keda_names(deployment, connection_env)
    if not _HUB_NAME.match(schema.removeprefix(PG_SCHEMA_PREFIX)) or not schema.startswith(PG_SCHEMA_PREFIX):
        raise UsageError(f"invalid hub schema {schema!r}")
    if min_replicas < 0 or max_replicas < max(1, min_replicas):
        raise UsageError("need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1")
    query = scale_query(schema, max_orchestrations, max_activities)
    value = connection_value or "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
    lines = [
        "# Generated by dtctl scale-recommend --keda. The worker Deployment must run with the same",
        f"# limits: dtctl worker APP --max-orchestrations {max(1, max_orchestrations)} "
        f"--max-activities {max(1, max_activities)}",
        f"# Set {connection_env} in the container of Deployment {deployment} (from a Secret) to the",
        "# hub URL without dtctl's ?hub= parameter, for example:",
        f"#   {connection_env}={value}",
        f"# Keep {WORKER_HUB_ENV} (the workers' hub, with ?hub= or @FILE) as it is: KEDA does not read it.",
        "apiVersion: keda.sh/v1alpha1",
        "kind: ScaledObject",
        "metadata:",
        f"  name: {_quoted(deployment + SCALER_SUFFIX)}",
        "spec:",
        "  scaleTargetRef:",
        f"    name: {_quoted(deployment)}",
        f"  minReplicaCount: {int(min_replicas)}",
        f"  maxReplicaCount: {int(max_replicas)}",
        "  triggers:",
        "    - type: postgresql",
        "      metadata:",
        f"        connectionFromEnv: {_quoted(connection_env)}",
        f"        query: {_quoted(query)}",
        '        targetQueryValue: "1"',
        '        activationTargetQueryValue: "0"',
    ]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are YAML): always a string, whatever it looks like."""
    return json.dumps(text, ensure_ascii=False)
