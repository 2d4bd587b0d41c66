"""``copilot status`` as a user runs it: per-source counts, last synced, full source names."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

COPILOT = Path(sys.executable).with_name("copilot")


def copilot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COPILOT), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_status_shows_each_source_in_full_with_counts_and_last_synced(tmp_path: Path, cli_env):
    shared = tmp_path / ("a-long-shared-prefix-of-two-folders-" * 3)
    folders = {"[old] alpha-end": 2, "beta-end": 1}
    for name, count in folders.items():
        (shared / name).mkdir(parents=True)
        for n in range(count):
            (shared / name / f"n{n}.txt").write_text(f"Note {n} of {name} on the budget.\n")
        synced = copilot(cli_env, "sync", "local", str(shared / name), "--user", "ann")
        assert synced.returncode == 0, synced.stderr
    other = copilot(cli_env, "sync", "local", str(shared / "beta-end"), "--user", "ann-marie")
    assert other.returncode == 0, other.stderr

    data = json.loads(copilot(cli_env, "status", "--user", "ann", "--json").stdout)
    by_scope = {s["scope"].rsplit("/", 1)[-1]: s for s in data["sources"]}
    assert {k: v["items"] for k, v in by_scope.items()} == folders
    last = datetime.fromisoformat(by_scope["beta-end"]["last_synced"])
    assert last.tzinfo is not None  # ISO 8601 with the offset
    assert isinstance(data["syncs"][0]["finished_at"], str)

    shown = copilot({**cli_env, "COLUMNS": "90"}, "status", "--user", "ann")
    assert shown.returncode == 0, shown.stderr
    assert "…" not in shown.stdout  # wrapped, never cut
    flat = "".join(ch for ch in shown.stdout if ch not in "│┃ \n")
    for name in folders:  # each full path is there, its pieces on successive lines
        assert name.replace(" ", "") in flat
    assert last.strftime("%Y-%m-%d %H:%M") in shown.stdout  # local time, as a person reads it

    everyone = copilot({**cli_env, "COLUMNS": "80"}, "status").stdout  # a narrow terminal
    assert "…" not in everyone
    lines = everyone.splitlines()
    assert "local:ann" in lines and "local:ann-marie" in lines  # a heading a user, whole
