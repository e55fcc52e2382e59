"""Run the durabletask SDK's own end-to-end test files against ``dtctl serve``; report per file.

    python -m benchmarks.serve_sdk_e2e [--source GIT_DIR_OR_CHECKOUT] [--rev REV] [FILE ...]

The test files are copied at run time into a temporary directory from a checkout (or a bare git
directory) of microsoft/durabletask-python — never committed here. They run unmodified; the only
change is the fixture: a ``conftest.py`` replaces ``durabletask.testing.create_test_backend`` (the SDK's
in-memory backend, which each file starts on its port) with a ``dtctl serve`` process on a fresh SQLite
hub on that port. The installed ``durabletask`` package (the test extra, from PyPI) is the client and
worker. Prints, per file, how many tests passed, failed, were skipped, and the first line of each
failure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = "/work/.mirror/microsoft+durabletask-python/repo"
FILES = (
    "tests/durabletask/test_orchestration_e2e.py",
    "tests/durabletask/test_orchestration_async_e2e.py",
    "tests/durabletask/test_orchestration_versioning_e2e.py",
    "tests/durabletask/test_rewind_e2e.py",
    "tests/durabletask/test_work_item_filters_e2e.py",
    "tests/durabletask/test_large_payload_e2e.py",
    "tests/durabletask/scheduled/test_scheduled_e2e.py",
    "tests/durabletask/entities/test_function_based_entities_e2e.py",
    "tests/durabletask/entities/test_class_based_entities_e2e.py",
    "tests/durabletask/entities/test_delayed_signals_e2e.py",
)
SUPPORT = ("tests/__init__.py", "tests/durabletask/__init__.py", "tests/durabletask/_port_utils.py")

CONFTEST = '''
"""Point the SDK's e2e tests at dtctl serve: the only change to them (their backend fixture)."""
import os, signal, socket, subprocess, sys, tempfile, time
import durabletask.testing

DTCTL = [sys.executable, "-m", "dtctl"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([%(repo)r, os.environ.get("PYTHONPATH", "")])}


class DtctlServe:
    def __init__(self, port):
        self._dir = tempfile.TemporaryDirectory()
        hub = os.path.join(self._dir.name, "hub.db")
        subprocess.run([*DTCTL, "--hub", hub, "init"], check=True, capture_output=True, env=ENV)
        self._log = open(os.path.join(self._dir.name, "serve.log"), "wb")
        self._proc = subprocess.Popen(
            [*DTCTL, "--hub", hub, "serve", "--port", str(port), "--lease-seconds", "5"],
            env=ENV, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("dtctl serve did not start")

    def stop(self, grace=None):
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def reset(self):
        self._dir.cleanup()


def create_test_backend(port=50051, max_history_size=10000):
    return DtctlServe(port)


durabletask.testing.create_test_backend = create_test_backend
'''


def _read(source: Path, rev: str, path: str) -> bytes | None:
    if (source / path).exists():
        return (source / path).read_bytes()
    done = subprocess.run(
        ["git", f"--git-dir={source}", "show", f"{rev}:{path}"], capture_output=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def run(source: Path, rev: str, files: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        present: list[str] = []
        for path in (*SUPPORT, *files):
            content = _read(source, rev, path)
            if content is None:
                print(f"{path}: not in {source} at {rev}")
                continue
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            if path in files:
                present.append(path)
        for package in {Path(p).parent for p in present}:
            (root / package / "__init__.py").touch()
        (root / "conftest.py").write_text(CONFTEST % {"repo": str(REPO)})
        report = root / "report.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--timeout",
                "120",
                f"--junitxml={report}",
                "-o",
                "addopts=",
                "-o",
                "asyncio_mode=auto",  # as the SDK repository's own pytest configuration runs them
                *present,
            ],
            cwd=root,
            check=False,
        )
        return _summarise(report)


def _summarise(report: Path) -> int:
    if not report.exists():
        print("no report: pytest did not run")
        return 1
    counts: dict[str, Counter[str]] = {}
    reasons: dict[str, list[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        # A module skipped whole is reported with no class name; its name is then the module.
        module = (case.get("classname") or case.get("name") or "").rsplit(".", 1)[-1] + ".py"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                first = (child.get("message") or "").strip().splitlines()
                reasons.setdefault(module, []).append(
                    f"{case.get('name')}: {first[0][:160] if first else ''}"
                )
            elif child.tag == "skipped":
                outcome = "skipped"
        counts.setdefault(module, Counter())[outcome] += 1
    failed = 0
    print("\nper file (passed / failed / skipped):")
    for module, c in sorted(counts.items()):
        failed += c["failed"]
        print(f"  {module}: {c['passed']} / {c['failed']} / {c['skipped']}")
        for reason in reasons.get(module, []):
            print(f"      - {reason}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", default=DEFAULT_SOURCE, help="checkout or bare git dir of durabletask-python"
    )
    parser.add_argument("--rev", default="HEAD", help="revision to take the files from (bare git dir)")
    parser.add_argument("files", nargs="*", help="test files (default: every e2e file)")
    args = parser.parse_args()
    return run(Path(args.source), args.rev, args.files or list(FILES))


if __name__ == "__main__":
    raise SystemExit(main())
