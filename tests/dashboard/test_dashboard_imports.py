"""The dashboard is optional: dtctl and its help load none of it; without the extra, one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO, child_env

WEB = ("starlette", "jinja2", "uvicorn", "dtctl.dashboard.app", "dtctl.dashboard.server")

_PROBE = """
import json, sys
from dtctl.cli.main import main
import dtctl
code = main(["--help"])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("starlette", "jinja2", "uvicorn")
                        or m.startswith(("dtctl.dashboard.app", "dtctl.dashboard.server")))))
"""


def test_import_and_help_load_no_web_stack() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=child_env(), cwd=REPO, check=False
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == []
    assert "dashboard" in probe.stdout  # the command is listed all the same


_MISSING = """
import sys
sys.modules["starlette"] = None  # as if the extra were not installed
from dtctl.cli.main import main
sys.exit(main(["--hub", sys.argv[1], "dashboard"]))
"""


def test_a_missing_extra_names_the_install_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = subprocess.run(
        [sys.executable, "-c", _MISSING, str(tmp_path / "hub.db")],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "pip install 'dtctl[dashboard]'" in lines[0]
