"""The task pane's JavaScript unit tests (`node --test addins/tests/`), run from pytest so that
`make test` runs them too. They use office-addin-mock, installed by `make install`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ADDINS = Path(__file__).resolve().parents[2] / "addins"


def test_the_task_pane_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make system-deps installs nodejs)")
    assert (ADDINS / "node_modules" / "office-addin-mock").is_dir(), (
        "addins/node_modules is missing: run `make install` (it runs npm ci in addins/)"
    )
    done = subprocess.run(
        [node, "--test", "tests/"],
        cwd=ADDINS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = dict(
        line[2:].split(" ", 1) for line in done.stdout.splitlines() if line.startswith("# ")
    )
    assert int(summary["pass"]) >= 30 and int(summary["fail"]) == 0, summary
