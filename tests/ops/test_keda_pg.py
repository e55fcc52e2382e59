"""The query in the printed ScaledObject runs on a real PostgreSQL hub and agrees with the CLI."""

from __future__ import annotations

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
