"""The query in the printed ScaledObject runs on a real PostgreSQL hub and agrees with the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import dtctl, json_out


def test_keda_query_is_the_hubs_function_and_agrees_with_scale_recommend() -> None:
    import yaml  # a test dependency: a missing yaml must fail, not skip

    from tests import pgserver

    server = pgserver.shared_server()  # skips (fails when required) without a server
    name = pgserver.new_hub_name("keda")
    url = server.url(name)
    try:
        with TaskHubClient(open_hub(url, create=True)) as client:
            client.start_instances([StartRequest("hello_cities", None, f"h{n}") for n in range(40)])
        limits = ("--max-orchestrations", "8", "--max-activities", "8")
        printed = dtctl("--hub", url, "scale-recommend", "--keda", *limits)
        assert printed.returncode == 0, printed.stderr
        [trigger] = yaml.safe_load(printed.stdout)["spec"]["triggers"]
        with server.admin() as conn:  # what KEDA's scaler runs
            assert conn.execute(trigger["metadata"]["query"]).fetchone()[0] == 5
        assert json_out(dtctl("--hub", url, "scale-recommend", *limits, "--json"))["recommended_workers"] == 5
    finally:
        pgserver.drop_hub(server, name)


def pgx_connect(url: str) -> Any:
    """Connect the way KEDA's scaler does (pgx): URL parameters libpq knows are connection settings;
    every other one is sent to the server at login as a run-time parameter (``options=-c k=v``)."""
    import psycopg

    libpq = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}
    parts = urlsplit(url)
    settings: dict[str, str] = {}
    runtime: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in libpq:
            settings[key] = value
        else:
            runtime.append(f"-c {key}={value}")
    if runtime:
        settings["options"] = " ".join(runtime)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return psycopg.connect(base, autocommit=True, **settings)


def test_the_connection_value_keda_is_told_to_use_is_accepted_like_pgx(tmp_path: Path) -> None:
    import psycopg
    import yaml

    from tests import pgserver

    server = pgserver.shared_server()
    name = pgserver.new_hub_name("kedapgx")
    url = server.url(name) + "&sslmode=disable&application_name=dtctl-keda-test"
    try:
        with TaskHubClient(open_hub(url, create=True)) as client:
            client.start_instances([StartRequest("hello_cities", None, f"k{n}") for n in range(3)])
        # DTCTL_HUB=@FILE, as the README recommends for workers: the printed object must still work.
        location = tmp_path / "hub-url"
        location.write_text(url + "\n")
        limits = ("--max-orchestrations", "1", "--max-activities", "1")
        printed = dtctl("--hub", f"@{location}", "scale-recommend", "--keda", "--deployment", "2048", *limits)
        assert printed.returncode == 0, printed.stderr
        [told] = [line for line in printed.stdout.splitlines() if "DTCTL_KEDA_CONNECTION=" in line]
        value = told.split("DTCTL_KEDA_CONNECTION=", 1)[1].strip()
        assert server.password not in printed.stdout + printed.stderr  # shown redacted
        value = value.replace(":***@", f":{server.password}@")  # the user puts the password back
        [trigger] = yaml.safe_load(printed.stdout)["spec"]["triggers"]
        with pgx_connect(value) as conn:
            assert conn.execute(trigger["metadata"]["query"]).fetchone()[0] == 3
        # The workers' URL itself, handed to KEDA, is refused at login: the reason for the own variable.
        with pytest.raises(psycopg.OperationalError, match='unrecognized configuration parameter "hub"'):
            pgx_connect(url).close()
        refused = dtctl("--hub", url, "scale-recommend", "--keda", "--connection-env", "DTCTL_HUB")
        assert refused.returncode == 2 and "DTCTL_HUB" in refused.stderr
    finally:
        pgserver.drop_hub(server, name)
