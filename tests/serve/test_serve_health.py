"""The health of a serve process: the standard gRPC health check and ``dtctl serve --status``."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

from dtctl.errors import ExitCode
from dtctl.serve import health
from tests.helpers import child_env, wait_until
from tests.serve.harness import DTCTL, SdkWorker, Serve

CHECK = "/grpc.health.v1.Health/Check"


def check(port: int, service: str = "") -> bytes:
    request = b"" if not service else bytes((0x0A, len(service))) + service.encode()
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        answer: bytes = channel.unary_unary(CHECK)(request, timeout=10)
    return answer


def status(port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*DTCTL, "--json", "serve", "--status", "--port", str(port), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=child_env(**(env or {})))


def test_health_request_decoding() -> None:
    assert health.health_request_service(b"") == ""
    assert health.health_request_service(b"\x0a\x03abc") == "abc"
    assert health.health_request_service(b"\x10\x05\x0a\x01x") == "x"  # an unknown varint field is skipped
    with pytest.raises(ValueError):
        health.health_request_service(b"\x0a\x85")


def test_check_and_status_with_a_connected_sdk_worker(sqlite_hub: str, tmp_path: Path) -> None:
    serve = Serve(sqlite_hub, tmp_path / "logs")
    worker = SdkWorker(serve.port, tmp_path / "logs", USE_FILTERS=1)
    try:
        assert check(serve.port) == bytes((0x08, health.SERVING))
        assert check(serve.port, "TaskHubSidecarService") == bytes((0x08, health.SERVING))
        with pytest.raises(grpc.RpcError) as refused:
            check(serve.port, "no.such.Service")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND

        def one_stream() -> dict[str, object] | None:
            done = status(serve.port)
            assert done.returncode == 0, done.stderr
            found = json.loads(done.stdout)
            return found if found["workers"] == 1 else None

        found = wait_until(one_stream, what="the SDK worker's stream")
        assert found["serving"] is True and found["hub"] == sqlite_hub
        assert found["items_held"] == {"orchestrations": 0, "activities": 0, "entities": 0}
        [stream] = found["streams"]  # type: ignore[misc]
        assert "chain" in stream["orchestrations"] and "hello" in stream["activities"]
        argv = [*DTCTL, "serve", "--status", "--port", str(serve.port)]
        human = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert human.returncode == 0 and "1 SDK worker stream(s)" in human.stdout, human.stderr
    finally:
        worker.stop()
        serve.stop()


def test_status_needs_the_token_and_the_check_does_not(
    sqlite_hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_env = {"SERVE_TOKEN": "s3cret"}
    monkeypatch.setenv("SERVE_TOKEN", serve_env["SERVE_TOKEN"])
    serve = Serve(sqlite_hub, tmp_path / "logs", args=("--token-env", "SERVE_TOKEN"))
    monkeypatch.delenv("SERVE_TOKEN")
    try:
        assert check(serve.port) == bytes((0x08, health.SERVING))
        denied = status(serve.port)
        assert denied.returncode == ExitCode.NOT_FOUND and "UNAUTHENTICATED" in denied.stderr
        allowed = status(serve.port, "--token-env", "SERVE_TOKEN", env=serve_env)
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout)["workers"] == 0
    finally:
        serve.stop()


def test_nothing_listening_is_a_clear_error(tmp_path: Path) -> None:
    from tests.serve.harness import free_port

    done = status(free_port())
    assert done.returncode == ExitCode.NOT_FOUND
    assert "no dtctl serve answered" in done.stderr


def test_a_draining_server_reports_not_serving(sqlite_hub: str, tmp_path: Path) -> None:
    from durabletask import client

    serve = Serve(sqlite_hub, tmp_path / "logs")
    worker = SdkWorker(serve.port, tmp_path / "logs")
    gate = tmp_path / "gate"
    try:
        c = client.TaskHubGrpcClient(host_address=serve.address)
        c.schedule_new_orchestration("held", input=str(gate))
        wait_until(Path(f"{gate}.entered").exists, timeout=60, what="the SDK to hold an episode")
        serve.process.send_signal(signal.SIGTERM)  # drains: waits for the held item
        wait_until(
            lambda: check(serve.port) == bytes((0x08, health.NOT_SERVING)), timeout=8, what="NOT_SERVING"
        )
        assert json.loads(status(serve.port).stdout)["serving"] is False
        gate.touch()
        assert serve.process.wait(30) == 0
    finally:
        worker.stop()
        serve.stop()
