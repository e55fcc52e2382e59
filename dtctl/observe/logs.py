"""Worker logs as text or as one JSON object per line (``dtctl worker --log-format json``).

A JSON line has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``worker_id``, and, when the
line is about a work item, ``instance_id``, ``name`` and ``task_id``: from the record's ``extra`` (the
worker's own lines pass them), else from the work item the current thread is running (an activity's own
log lines, through :class:`LogContext`). Exceptions add ``exception`` (the formatted traceback).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dtctl.observe.hooks import Observer, SlotGauge

if TYPE_CHECKING:
    from dtctl.hub.base import ActivityResult, ActivityWorkItem

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# (attribute of the record, key of the JSON line): a LogRecord's own ``name`` is its logger's.
ITEM_FIELDS = (("instance_id", "instance_id"), ("item_name", "name"), ("task_id", "task_id"))

_current_item: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "dtctl_work_item", default=None
)


class JsonFormatter(logging.Formatter):
    def __init__(self, worker_id: str | None = None) -> None:
        super().__init__()
        self.worker_id = worker_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "worker_id": self.worker_id,
            "pid": record.process,
        }
        fields = _current_item.get() or {}
        for attribute, key in ITEM_FIELDS:
            value = getattr(record, attribute, fields.get(attribute))
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str, level: str, role: str = "worker") -> None:
    """The root logger of a worker process (or its isolated child): text or JSON lines, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {role}[{os.getpid()}] %(levelname)s %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def item_extra(instance_id: str, name: str, task_id: int | None = None) -> dict[str, Any]:
    """``extra=`` of a log call about one work item."""
    return {"instance_id": instance_id, "item_name": name, "task_id": task_id}


class LogContext(Observer):
    """Puts the worker id into JSON lines, and the running activity's ids into its own log lines."""

    def attach(self, worker_id: str, slots: SlotGauge, limits: tuple[int, int]) -> None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler.formatter, JsonFormatter):
                handler.formatter.worker_id = worker_id

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        token = _current_item.set(item_extra(item.instance_id, item.name, item.task_id))
        try:
            return call()
        finally:
            _current_item.reset(token)
