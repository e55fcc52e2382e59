"""The edges of ``dtctl serve``: the optional extra, generated stubs, binding and token rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
from durabletask.internal import orchestrator_service_pb2 as sdk_pb
from durabletask.internal import orchestrator_service_pb2_grpc as sdk_grpc
from google.protobuf import empty_pb2

from tests.helpers import REPO, child_env
from tests.serve.harness import DTCTL, Serve

_PROBE = """
import json, sys
import dtctl, dtctl.cli.main
from dtctl.cli.main import main
code = main(["--help"])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "google"))))
"""


def test_import_and_help_do_not_load_grpc() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=child_env(), cwd=REPO, check=False
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.splitlines()[-1]) == []


def test_missing_extra_gives_one_clear_line(tmp_path: os.PathLike[str], sqlite_hub: str) -> None:
    # A directory named like the package, shadowing it, makes `import grpc` fail as if not installed.
    blocker = tmp_path / "block"  # type: ignore[operator]
    (blocker / "grpc").mkdir(parents=True)
    (blocker / "grpc" / "__init__.py").write_text("raise ImportError('no grpc here')\n")
    env = child_env(PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]))
    done = subprocess.run(
        [*DTCTL, "--hub", sqlite_hub, "serve"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2
    assert "pip install 'dtctl[serve]'" in done.stderr


def test_generated_stubs_match_the_vendored_proto() -> None:
    pytest.importorskip("grpc_tools")
    done = subprocess.run(
        [sys.executable, "-m", "dtctl.serve.regen", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_non_loopback_needs_tls_or_insecure(sqlite_hub: str) -> None:
    done = subprocess.run(
        [*DTCTL, "--hub", sqlite_hub, "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "without TLS" in done.stderr and "--insecure" in done.stderr


def test_bearer_token_is_checked_on_every_call(sqlite_hub: str, tmp_path: os.PathLike[str]) -> None:
    os.environ["SERVE_TEST_TOKEN"] = "s3cret"
    serve = Serve(sqlite_hub, tmp_path / "logs", args=("--token-env", "SERVE_TEST_TOKEN"))  # type: ignore[operator]
    try:
        with grpc.insecure_channel(serve.address) as channel:
            stub = sdk_grpc.TaskHubSidecarServiceStub(channel)
            with pytest.raises(grpc.RpcError) as denied:
                stub.Hello(empty_pb2.Empty(), timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as wrong:
                stub.Hello(empty_pb2.Empty(), timeout=10, metadata=[("authorization", "Bearer nope")])
            assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stub.Hello(empty_pb2.Empty(), timeout=10, metadata=[("authorization", "Bearer s3cret")])
            stream = stub.GetWorkItems(sdk_pb.GetWorkItemsRequest(), timeout=10)
            with pytest.raises(grpc.RpcError) as stream_denied:
                next(iter(stream))
            assert stream_denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        os.environ.pop("SERVE_TEST_TOKEN", None)
        serve.stop()


def test_dtctl_stubs_and_the_sdk_stubs_load_in_one_process() -> None:
    code = (
        "from durabletask.internal import orchestrator_service_pb2 as sdk\n"
        "from dtctl.serve.proto import orchestrator_service_pb2 as ours, orchestrator_service_pb2_grpc\n"
        "wire = sdk.WorkItem(completionToken='t', healthPing=sdk.HealthPing()).SerializeToString()\n"
        "assert ours.WorkItem.FromString(wire).HasField('healthPing')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), cwd=REPO
    )
    assert done.returncode == 0, done.stderr
