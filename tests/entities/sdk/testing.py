"""``durabletask.testing.create_test_backend``: here a fresh SQLite hub per test."""

from __future__ import annotations

import shutil

from tests.entities import sdk


class TestBackend:
    __test__ = False  # not a pytest class

    def __init__(self, port: int) -> None:
        self.port = port
        self.path = sdk.register(port)

    def stop(self) -> None:
        sdk.forget(self.port)

    def reset(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def create_test_backend(port: int) -> TestBackend:
    return TestBackend(port)
