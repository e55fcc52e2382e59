"""Case files: one instance exported as a self-contained JSON document, for bug reports.

``dtctl history export ID > case.json`` writes it, ``dtctl history import case.json`` loads it into
another hub, ``dtctl replay-check APP --from-file case.json`` and :func:`dtctl.testing.replay_case`
replay it against an app. The document (format version 1)::

    {"format": "dtctl-case", "format_version": 1, "exported_at": <epoch µs>,
     "instance": {<the instance row: id, execution id, name, status, times, input, output, ...>},
     "executions": [{"execution_id": "...", "events": [<history events as dtctl encodes them>]}, ...]}

Executions are oldest first: the previous one (kept after a continue-as-new or a rewind) when the hub
still stores it, then the current one. Events are in the JSON form of :mod:`dtctl.core.history`, so a
reader needs nothing but that module; payloads stay encoded JSON text. Writing streams the history
page by page (memory is one page however long it is).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent, event_from_dict, event_to_dict
from dtctl.errors import InstanceNotFound, UsageError
from dtctl.hub.base import ImportedInstance, InstanceState, TaskHub

__all__ = ["FORMAT", "FORMAT_VERSION", "export_chunks", "read_case"]

FORMAT = "dtctl-case"
FORMAT_VERSION = 1
_PAGE = 1000
# The instance fields a case keeps: what describes the instance, not who holds its lease right now.
_LEFT_OUT = ("lease_owner", "lease_expires")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def export_chunks(hub: TaskHub, instance_id: str) -> Iterator[str]:
    """The case document of ``instance_id`` as text chunks (InstanceNotFound before the first one)."""
    state = hub.get_instance(instance_id, include_payloads=True)
    if state is None:
        raise InstanceNotFound(f"no instance {instance_id!r} in hub {hub.url}")
    executions = [state.execution_id]
    previous = state.previous_execution_id
    if previous and hub.get_history(instance_id, previous, limit=1):
        executions.insert(0, previous)
    return _chunks(hub, state, executions)


def _chunks(hub: TaskHub, state: InstanceState, executions: list[str]) -> Iterator[str]:
    head = {"format": FORMAT, "format_version": FORMAT_VERSION, "exported_at": hub.now()}
    yield _dumps(head)[:-1] + ',"instance":' + _dumps(_instance_dict(state)) + ',"executions":['
    for number, execution in enumerate(executions):
        yield ("," if number else "") + '{"execution_id":' + _dumps(execution) + ',"events":['
        for index, event in enumerate(_events_of(hub, state.instance_id, execution)):
            yield ("," if index else "") + "\n" + _dumps(event_to_dict(event))
        yield "]}"
    yield "]}\n"


def _events_of(hub: TaskHub, instance_id: str, execution: str) -> Iterator[HistoryEvent]:
    after = -1
    while True:
        page = hub.get_history(instance_id, execution, after=after, limit=_PAGE)
        yield from (record.event for record in page)
        if len(page) < _PAGE:
            return
        after = page[-1].sequence


def _instance_dict(state: InstanceState) -> dict[str, Any]:
    data = asdict(state)
    for name in _LEFT_OUT:
        data.pop(name, None)
    if state.failure is not None:
        data["failure"] = state.failure.to_dict()
    return data


def read_case(path: str | Path) -> ImportedInstance:
    """Read and check a case file; malformed or of another format: UsageError (exit 2)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read case file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not a JSON document ({exc})") from None
    return parse_case(data, str(path))


def parse_case(data: Any, source: str = "case") -> ImportedInstance:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f'{source}: not a dtctl case file (no "format": "{FORMAT}")')
    if data.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{source}: case format version {data.get('format_version')!r}; this dtctl reads {FORMAT_VERSION}"
        )
    try:
        state = _instance_from(data["instance"])
        executions = tuple((str(e["execution_id"]), tuple(_events(e["events"]))) for e in data["executions"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: malformed case file ({exc})") from None
    if not executions or executions[-1][0] != state.execution_id:
        raise UsageError(f"{source}: the last execution must be the instance's current one")
    return ImportedInstance(state=state, executions=executions)


def _instance_from(data: dict[str, Any]) -> InstanceState:
    fields = dict(data)
    failure = fields.get("failure")
    if isinstance(failure, dict):
        fields["failure"] = FailureDetails.from_dict(failure)
    return InstanceState(**fields)


def _events(items: list[Any]) -> Iterator[HistoryEvent]:
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a history event must be a JSON object")
        yield event_from_dict(item)
