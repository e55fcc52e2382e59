"""The printed ScaledObject against what KEDA itself accepts: the part of its ScaledObject CRD schema
the object uses, the metadata keys its ``postgresql`` scaler parses, and its admission limit on the
generated autoscaler name.

The facts below are written here (not copied files) from kedacore/keda at commit
8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a:
- config/crd/bases/keda.sh_scaledobjects.yaml (v1alpha1 openAPIV3Schema: spec requires scaleTargetRef
  and triggers; scaleTargetRef requires name, a string of minLength 1; min/maxReplicaCount are int32
  with minimum 0 / 1; a trigger requires type (string, minLength 1) and metadata, a map of strings);
- pkg/scalers/postgresql_scaler.go (postgreSQLMetadata: the keys it reads, and which may come from the
  environment of the scale target's container through a ``<key>FromEnv`` entry, "resolvedEnv");
- apis/keda/v1alpha1/scaledobject_webhook.go (maxK8sLabelValueLength = 63 for the ScaledObject name
  and for the generated HPA name ``keda-hpa-<name>``).
"""

from __future__ import annotations

from typing import Any

import pytest

from dtctl import scale
from dtctl.errors import UsageError

INT32 = {"type": "integer", "format": "int32"}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string", "enum": ["keda.sh/v1alpha1"]},  # the CRD's group and version
        "kind": {"type": "string", "enum": ["ScaledObject"]},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 63}},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                    },
                },
                "minReplicaCount": {**INT32, "minimum": 0},
                "maxReplicaCount": {**INT32, "minimum": 1},
                "triggers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["metadata", "type"],
                        "properties": {
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "metricType": {"type": "string"},
                            "name": {"type": "string"},
                            "type": {"type": "string", "minLength": 1},
                            "useCachedMetrics": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}

# postgreSQLMetadata: key -> where the scaler may read it ("triggerMetadata", "resolvedEnv", "authParams").
POSTGRESQL_SCALER_KEYS = {
    "targetQueryValue": {"triggerMetadata"},
    "activationTargetQueryValue": {"triggerMetadata"},
    "connection": {"authParams", "resolvedEnv"},
    "query": {"triggerMetadata"},
    "host": {"authParams", "triggerMetadata"},
    "port": {"authParams", "triggerMetadata"},
    "userName": {"authParams", "triggerMetadata"},
    "dbName": {"authParams", "triggerMetadata"},
    "sslmode": {"authParams", "triggerMetadata"},
    "password": {"authParams", "resolvedEnv"},
}
HPA_PREFIX = "keda-hpa-"
LABEL_VALUE_MAX = 63


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The OpenAPI v3 subset a CRD uses: type, enum, required, properties, items, additionalProperties,
    minLength/maxLength, minimum and int32; unknown fields are pruned by the API server, so refused."""
    kind = schema.get("type")
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    if kind is not None and not checks[kind]:
        return [f"{path}: {value!r} is not of type {kind}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if kind == "string" and not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 2**31):
        errors.append(f"{path}: length {len(value)} out of range")
    too_big = schema.get("format") == "int32" and kind == "integer" and value >= 2**31
    if kind == "integer" and (value < schema.get("minimum", value) or too_big):
        errors.append(f"{path}: {value} out of range")
    if kind == "array":
        for n, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{n}]")
    if kind == "object":
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{path}.{key}")
            elif extra is not None:
                errors += schema_errors(item, extra, f"{path}.{key}")
            elif properties:
                errors.append(f"{path}: unknown field {key}")
    return errors


def scaler_errors(metadata: dict[str, str]) -> list[str]:
    """What KEDA's postgresql scaler would refuse or ignore in a trigger's metadata."""
    errors: list[str] = []
    for key in metadata:
        base = key.removesuffix("FromEnv")
        sources = POSTGRESQL_SCALER_KEYS.get(base, set())
        if key.endswith("FromEnv") and "resolvedEnv" not in sources:
            errors.append(f"{key}: {base} cannot come from the environment")
        elif not key.endswith("FromEnv") and "triggerMetadata" not in sources:
            errors.append(f"{key}: not a key the postgresql scaler reads from trigger metadata")
    if "query" not in metadata:
        errors.append("query is required")
    try:
        if float(metadata.get("targetQueryValue", "0")) == 0:
            errors.append("targetQueryValue must be given and not 0")
        float(metadata.get("activationTargetQueryValue", "0"))
    except ValueError as exc:
        errors.append(str(exc))
    if not any(k in metadata for k in ("connectionFromEnv", "host")):
        errors.append("no connection: connectionFromEnv (or host, port, ...) is needed")
    return errors


def printed(schema: str = "dtctl_default", **kwargs: Any) -> dict[str, Any]:
    import yaml  # a test dependency: a missing yaml must fail, not skip

    text = scale.keda_scaled_object(schema=schema, max_orchestrations=8, max_activities=16, **kwargs)
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("schema", ["dtctl_default", "dtctl_orders"])
@pytest.mark.parametrize("deployment", ["dtctl-worker", "2048", "1e3", "true", "w." + "x" * 45])
def test_the_printed_object_is_valid_for_keda(schema: str, deployment: str) -> None:
    document = printed(schema, deployment=deployment)
    assert schema_errors(document, SCALED_OBJECT_SCHEMA) == []
    [trigger] = document["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert scaler_errors(trigger["metadata"]) == []
    assert trigger["metadata"]["connectionFromEnv"] == "DTCTL_KEDA_CONNECTION"  # not the workers' variable
    assert document["spec"]["scaleTargetRef"]["name"] == deployment  # a string, even when it looks like 2048
    assert len(HPA_PREFIX + document["metadata"]["name"]) <= LABEL_VALUE_MAX
    assert f"FROM {schema}" in trigger["metadata"]["query"] or f"{schema}." in trigger["metadata"]["query"]


def test_the_checks_can_fail() -> None:
    """The schema subset and the key list refuse what KEDA refuses (an unquoted number, a typo)."""
    document = printed()
    document["spec"]["scaleTargetRef"]["name"] = 2048  # what `name: 2048` unquoted parses as
    assert schema_errors(document, SCALED_OBJECT_SCHEMA)
    metadata = dict(document["spec"]["triggers"][0]["metadata"], queryFromEnv="X", targetQueryValue="0")
    assert len(scaler_errors(metadata)) == 2


def test_deployment_names_whose_autoscaler_name_overflows_are_refused() -> None:
    longest = "d" * scale.MAX_DEPLOYMENT
    assert len(HPA_PREFIX + printed(deployment=longest)["metadata"]["name"]) == LABEL_VALUE_MAX
    with pytest.raises(UsageError, match="at most 47"):
        printed(deployment=longest + "d")
    for bad in ("Bad_Name", "-x", "x-", "a b", ""):
        with pytest.raises(UsageError):
            printed(deployment=bad)


def test_the_connection_value_drops_only_dtctls_hub_parameter() -> None:
    url = "postgresql://app:s%40cret@db:5432/dtctl?sslmode=require&hub=orders&application_name=w"
    value = scale.keda_connection_value(url)
    assert value == "postgresql://app:s%40cret@db:5432/dtctl?sslmode=require&application_name=w"
    assert scale.keda_connection_value("postgresql://db/app") == "postgresql://db/app"
