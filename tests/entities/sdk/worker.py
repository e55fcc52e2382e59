"""``durabletask.worker.TaskHubGrpcWorker`` as a dtctl worker loop in a thread, on the test backend's hub."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dtctl.core.app import App
from tests.entities import sdk


class TaskHubGrpcWorker:
    def __init__(self, host_address: str | None = None, **_options: Any) -> None:
        self._path = sdk.hub_for(host_address)
        self._app = App()
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def add_orchestrator(self, fn: Callable[..., Any], *, name: str | None = None) -> str:
        return self._app.add_orchestrator(fn, name=name).name

    def add_activity(self, fn: Callable[..., Any], *, name: str | None = None) -> str:
        return self._app.add_activity(fn, name=name).name

    def add_entity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self._app.add_entity(fn, name=name).name

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dtctl-sdk-worker", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        from dtctl.hub import open_hub
        from dtctl.runtime.config import WorkerConfig
        from dtctl.runtime.worker import Worker

        hub = open_hub(str(self._path))  # opened in this thread: a SQLite connection stays in its thread
        config = WorkerConfig(
            hub=str(self._path), app="-", lease_seconds=5.0, idle_poll_max=0.05, isolate_suspects=False
        )
        try:
            self._worker = Worker(config, self._app, hub)
            self._ready.set()
            self._worker.run()
        except BaseException as error:  # reported by stop()
            self._error = error
        finally:
            self._ready.set()
            hub.close()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.request_stop()
        if self._thread is not None:
            self._thread.join(30)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> TaskHubGrpcWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
