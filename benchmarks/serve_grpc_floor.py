"""``python -m benchmarks.serve_grpc_floor [--calls N]``: what gRPC's Python server costs before serve works.

A server process with no-op handlers for the two calls serve answers most (CompleteActivityTask, unary;
GetWorkItems, server streaming), with the threaded server ``dtctl serve`` uses and with the asyncio one
(``grpc.aio``, async handlers). Seven client threads call it, as the SDK's worker pool does. Reports the
server's CPU milliseconds per unary call and per streamed message (from the process's own CPU clock,
start-up excluded), three rounds each, as one JSON object. A hello-cities-3 instance costs serve seven
unary completions and seven streamed work items, so ``7 * (unary + message)`` is serve's floor per
instance, whatever its engine and hub cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc

from dtctl.serve.proto import orchestrator_service_pb2 as pb
from dtctl.serve.proto import orchestrator_service_pb2_grpc as pb_grpc

CLIENT_THREADS = 7
TOKEN = "0" * 40


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _item() -> pb.WorkItem:
    return pb.WorkItem(activityRequest=pb.ActivityRequest(name="say_hello", taskId=1), completionToken=TOKEN)


class _Threaded(pb_grpc.TaskHubSidecarServiceServicer):
    def __init__(self, messages: int) -> None:
        self.messages = messages

    def CompleteActivityTask(self, request: pb.ActivityResponse, context: Any) -> pb.CompleteTaskResponse:
        return pb.CompleteTaskResponse()

    def GetWorkItems(self, request: pb.GetWorkItemsRequest, context: Any) -> Iterator[pb.WorkItem]:
        item = _item()
        for _ in range(self.messages):
            yield item


class _Async(pb_grpc.TaskHubSidecarServiceServicer):
    def __init__(self, messages: int) -> None:
        self.messages = messages

    async def CompleteActivityTask(
        self, request: pb.ActivityResponse, context: Any
    ) -> pb.CompleteTaskResponse:
        return pb.CompleteTaskResponse()

    async def GetWorkItems(self, request: pb.GetWorkItemsRequest, context: Any) -> AsyncIterator[pb.WorkItem]:
        item = _item()
        for _ in range(self.messages):
            yield item


def _answer_cpu_reads() -> None:
    """Each line on stdin asks for this process's CPU seconds so far (a line on stdout)."""
    print(_cpu(), flush=True)
    for _ in sys.stdin:
        print(_cpu(), flush=True)


def server(kind: str, port: int, messages: int) -> None:
    if kind == "threaded":
        s = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        pb_grpc.add_TaskHubSidecarServiceServicer_to_server(_Threaded(messages), s)  # type: ignore[no-untyped-call]
        s.add_insecure_port(f"127.0.0.1:{port}")
        s.start()
        _answer_cpu_reads()
        return

    async def run() -> None:
        s = grpc.aio.server()
        pb_grpc.add_TaskHubSidecarServiceServicer_to_server(_Async(messages), s)  # type: ignore[no-untyped-call]
        s.add_insecure_port(f"127.0.0.1:{port}")
        await s.start()
        await asyncio.get_running_loop().run_in_executor(None, _answer_cpu_reads)

    asyncio.run(run())


def measure(kind: str, calls: int, rounds: int) -> dict[str, float]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    argv = [sys.executable, "-m", "benchmarks.serve_grpc_floor", "--server", kind, "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--calls", str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def server_cpu() -> float:
        stdin.write("\n")
        stdin.flush()
        return float(stdout.readline())

    stdout.readline()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
    request = pb.ActivityResponse(instanceId="i", taskId=1, completionToken=TOKEN)
    stub.CompleteActivityTask(request)  # connected, warm
    unary: list[float] = []
    stream: list[float] = []
    try:
        for _ in range(rounds):
            before = server_cpu()

            def call(count: int = calls // CLIENT_THREADS) -> None:
                for _ in range(count):
                    stub.CompleteActivityTask(request)

            threads = [threading.Thread(target=call) for _ in range(CLIENT_THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            middle = server_cpu()
            received = sum(1 for _ in stub.GetWorkItems(pb.GetWorkItemsRequest()))
            after = server_cpu()
            unary.append((middle - before) * 1000 / (calls // CLIENT_THREADS * CLIENT_THREADS))
            stream.append((after - middle) * 1000 / received)
    finally:
        channel.close()
        proc.kill()
        proc.wait()
    per_call, per_message = statistics.median(unary), statistics.median(stream)
    return {
        "unary_ms_per_call": round(per_call, 3),
        "stream_ms_per_message": round(per_message, 3),
        "floor_ms_per_hello_cities_instance": round(7 * (per_call + per_message), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=7000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=("threaded", "asyncio"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        server(args.server, args.port, args.calls)
        return 0
    out: dict[str, Any] = {"grpcio": grpc.__version__, "load_average": os.getloadavg()}
    for kind in ("threaded", "asyncio"):
        out[kind] = measure(kind, args.calls, args.rounds)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
