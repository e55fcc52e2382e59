"""Span export in a child process: the worker writes compact span records to a pipe; the child batches,
encodes and sends them with the exporters the environment names.

Why: batching, encoding and sending spans in the worker cost it more than the spans themselves (a
BatchSpanProcessor thread waking, the protobuf encoding and the HTTP request, all under the worker's
GIL). Here the worker turns each finished span into a tuple and writes them, some at a time, as one
``marshal`` frame to the pipe: at a commit of its loop once :data:`SEND_COUNT` wait or the oldest has
waited :data:`SEND_SECONDS`, and from a flusher thread when the worker goes quiet. One child per worker
process, ``python -m dtctl.observe.spanpipe``, started with the tracer, owns the exporters
(:func:`dtctl.observe.exporters.span_processors`, so every ``OTEL_*`` setting applies there).

What can be lost, and what cannot happen:

- The worker never waits for the child: the pipe is non-blocking; when the child falls behind by more
  than :data:`BACKLOG_LIMIT` bytes, new frames are dropped and counted (logged), and a child that died
  (a broken pipe) makes every later span a counted drop. The worker runs on either way.
- A clean exit (SIGTERM drain) writes what is left, closes the pipe and waits up to
  ``OTEL_BSP_EXPORT_TIMEOUT`` (default 30 s) for the child, which exports everything and exits at
  end of file.
- A SIGKILLed worker loses the spans it had not yet written: those that ended in about the last
  :data:`SEND_SECONDS` (fewer than :data:`SEND_COUNT`). The child sees end of file, exports what it
  has, and exits; it never outlives its worker for long.
- The child ignores SIGINT (it is in a session of its own): a terminal's Ctrl-C reaches the worker,
  whose drain then ends the child through end of file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

log = logging.getLogger("dtctl.tracing")
FRAME = struct.Struct("<I")
SEND_COUNT = 128  # records written at once, at a commit or as soon as they are waiting
SEND_SECONDS = 0.1  # the oldest waiting record is written within this (a flusher thread checks)
BACKLOG_LIMIT = 16 << 20  # bytes the child may fall behind before new frames are dropped
PIPE_SIZE = 1 << 20  # asked of the kernel (Linux), so a burst fits without a partial write
_KINDS = tuple(SpanKind)
_CODES = tuple(StatusCode)
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named only from Python 3.10 on Linux

Record = tuple[Any, ...]


def _attributes(attributes: Any) -> dict[str, Any] | None:
    if not attributes:
        return None
    return attributes if type(attributes) is dict else dict(attributes)


def _links(links: Sequence[Link]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (link.context.trace_id, link.context.span_id, link.context.is_remote, _attributes(link.attributes))
        for link in links
    )


def _parent(parent: SpanContext | None) -> tuple[int, int, bool, int] | None:
    if parent is None:
        return None
    return (parent.trace_id, parent.span_id, parent.is_remote, int(parent.trace_flags))


def _scope(scope: InstrumentationScope | None) -> tuple[Any, ...] | None:
    if scope is None:
        return None
    return (scope.name, scope.version, scope.schema_url, _attributes(scope.attributes))


def record(
    name: str,
    context: SpanContext,
    parent: SpanContext | None,
    attributes: Mapping[str, Any] | None,
    times: tuple[int | None, int | None],
    kind: SpanKind,
    status: Status,
    events: Any,
    scope: tuple[Any, ...] | None,
    links: Sequence[Link] = (),
) -> Record:
    """The record of one of dtctl's own spans, straight from what the tracer has (see record_of)."""
    trace_state = tuple(context.trace_state.items()) if context.trace_state else None
    return (
        name,
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        trace_state,
        _parent(parent),
        kind.value,
        times[0],
        times[1],
        _attributes(attributes),
        tuple((e.name, e.timestamp, _attributes(e.attributes)) for e in events) or None,
        _links(links) or None,
        status.status_code.value,
        status.description,
        scope,
    )


def record_of(span: ReadableSpan) -> Record:
    """A finished span as plain values ``marshal`` writes (its resource is the child's own)."""
    context = span.context
    assert context is not None
    return record(
        span.name,
        context,
        span.parent,
        span.attributes,
        (span.start_time, span.end_time),
        span.kind,
        span.status,
        span.events,
        _scope(span.instrumentation_scope),
        span.links,
    )


def _plain(value: Any) -> Any:
    """``value`` in the exact types ``marshal`` writes (as the OTLP encoder reads the subclasses)."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool, bytes):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return str(value)


class SpanPipe(SpanProcessor):
    """The worker's end: records buffered and written a batch at a time, without ever blocking."""

    def __init__(self, command: list[str] | None = None) -> None:
        command = command or [sys.executable, "-m", "dtctl.observe.spanpipe", str(os.getpid())]
        self._child = subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True)
        assert self._child.stdin is not None
        self._stdin = self._child.stdin
        self._fd = self._stdin.fileno()
        with contextlib.suppress(OSError):  # else the default size: a burst takes a few writes
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, PIPE_SIZE)
        os.set_blocking(self._fd, False)
        self._records: list[Record] = []
        self._first_at = 0.0  # when the oldest waiting record came
        self._unsent = bytearray()
        self._unsent_records = 0  # in the frames not yet written whole
        self._lock = threading.Lock()  # activity threads end spans while the loop sends
        self._broken = False
        self.dropped = 0
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_late, name="dtctl-span-pipe", daemon=True)
        self._flusher.start()

    @property
    def pid(self) -> int:
        return self._child.pid

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        self.add(record_of(span))

    def add(self, record: Record) -> None:
        """A record made by the worker's tracer itself (no ReadableSpan on the way)."""
        with self._lock:
            if not self._records:
                self._first_at = time.monotonic()
            self._records.append(record)
            full = len(self._records) >= SEND_COUNT
        if full:
            self.send()

    def committed(self) -> None:
        """A commit of the worker's loop: write if enough records wait, or have waited long enough.
        (Writing at every commit woke the exporter process hundreds of times a second.)"""
        records = self._records
        if records and (len(records) >= SEND_COUNT or time.monotonic() - self._first_at >= SEND_SECONDS):
            self.send()

    def _flush_late(self) -> None:
        """Records of a worker that went quiet still leave within about SEND_SECONDS, and a backlog
        the pipe could not take moves on as the exporter process reads."""
        while not self._stop.wait(SEND_SECONDS):
            waited = self._records and time.monotonic() - self._first_at >= SEND_SECONDS
            if waited or (self._unsent and not self._broken):  # or what a full pipe held back
                self.send()

    def send(self) -> None:
        """Write the buffered records as one frame, and as much of the backlog as the pipe takes.
        Tracing never stops the worker: a failure here is logged and its spans dropped."""
        try:
            self._send()
        except Exception:
            log.exception("tracing: spans dropped")

    def _send(self) -> None:
        with self._lock:
            records, self._records = self._records, []
            if records:
                self._frame(records)
            self._write()

    def _frame(self, records: list[Record]) -> None:
        if self._broken or len(self._unsent) > BACKLOG_LIMIT:
            self._drop(len(records), "the exporter process fell behind" if not self._broken else "")
            return
        try:
            payload = marshal.dumps(records)
        except ValueError:  # a str or int subclass (an enum) among the values: plain copies of them
            try:
                payload = marshal.dumps(_plain(records))
            except ValueError as exc:
                log.error("tracing: %d spans not exported: %s", len(records), exc)
                return
        self._unsent += FRAME.pack(len(payload))
        self._unsent += payload
        self._unsent_records += len(records)

    def _write(self) -> None:
        while self._unsent and not self._broken:
            try:
                written = os.write(self._fd, self._unsent)
            except BlockingIOError:
                return  # the child is busy: the rest goes with the next send
            except OSError as exc:  # EPIPE: the child is gone
                self._broken = True
                log.error("tracing: the span exporter process %d is gone (%s); spans dropped", self.pid, exc)
                self._drop(self._unsent_records, "")
                self._unsent.clear()
                return
            del self._unsent[:written]
        if not self._unsent:
            self._unsent_records = 0

    def _drop(self, count: int, why: str) -> None:
        if why and self.dropped == 0:
            log.error("tracing: %s; spans dropped from now on while it lasts", why)
        self.dropped += count

    def shutdown(self) -> None:
        """Write everything left, close the pipe, and wait for the child to export and exit."""
        self._stop.set()
        self._flusher.join()
        self.send()
        timeout = float(os.environ.get("OTEL_BSP_EXPORT_TIMEOUT", "30000")) / 1000
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._unsent and not self._broken and (left := deadline - time.monotonic()) > 0:
                select.select([], [self._fd], [], left)  # a stuck child holds the drain only this long
                self._write()
            if self._unsent:
                log.error("tracing: the exporter process did not take the last spans in %.0f s", timeout)
            with contextlib.suppress(OSError):
                self._stdin.close()
        try:
            self._child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("tracing: the span exporter process %d is still exporting; left to finish", self.pid)
        if self.dropped:
            log.error("tracing: %d spans were dropped on the way to the exporter process", self.dropped)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.send()
        return True


# --- the child's end -------------------------------------------------------------------------------------


class Rebuilt:
    """Records back into ReadableSpans for the exporters, under the child's one resource."""

    def __init__(self, resource: Resource) -> None:
        self._resource = resource
        self._scopes: dict[tuple[Any, ...], InstrumentationScope] = {}

    def scope(self, key: tuple[Any, ...] | None) -> InstrumentationScope | None:
        if key is None:
            return None
        found = self._scopes.get(key[:3])
        if found is None:
            found = InstrumentationScope(key[0], key[1], key[2], key[3])
            self._scopes[key[:3]] = found
        return found

    def span(self, record: Record) -> ReadableSpan:
        (name, trace_id, span_id, flags, state, parent, kind, start, end) = record[:9]
        (attributes, events, links, code, description, scope) = record[9:]
        context = SpanContext(
            trace_id, span_id, False, TraceFlags(flags), TraceState(list(state)) if state else None
        )
        parent_context = None
        if parent is not None:
            parent_context = SpanContext(parent[0], parent[1], parent[2], TraceFlags(parent[3]))
        return ReadableSpan(
            name,
            context,
            parent_context,
            self._resource,
            attributes,
            tuple(Event(n, a, t) for n, t, a in events or ()),
            tuple(Link(SpanContext(t, s, r), a) for t, s, r, a in links or ()),
            _KINDS[kind],
            None,
            Status(_CODES[code], description),
            start,
            end,
            self.scope(scope),
        )


def _frames(stream: Any) -> Any:
    """Each frame's records until end of file (a frame cut short by a dying worker is left out)."""
    while True:
        header = stream.read(FRAME.size)
        if len(header) < FRAME.size:
            return
        (size,) = FRAME.unpack(header)
        payload = stream.read(size)
        if len(payload) < size:
            return
        yield marshal.loads(payload)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from dtctl.observe.exporters import span_processors, worker_resource

    worker_pid = int(argv[0]) if argv else os.getppid()
    processors: list[SpanProcessor] = span_processors()
    rebuilt = Rebuilt(worker_resource(worker_pid))
    try:
        for records in _frames(sys.stdin.buffer):
            for record in records:
                span = rebuilt.span(record)
                for processor in processors:
                    processor.on_end(span)
    finally:
        for processor in processors:
            processor.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
