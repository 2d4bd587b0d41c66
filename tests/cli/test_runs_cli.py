"""``copilot runs list|show|feedback`` as a user runs it: a real process, piped output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.db.engine import open_engine
from copilot.skills.history import RunStore
from tests.skills.test_runs import make_run

COPILOT = Path(sys.executable).with_name("copilot")


def copilot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COPILOT), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def two_runs(home: Path) -> list[str]:
    """Two of Ann's runs and one of Bob's in the home's state database."""
    home.mkdir(parents=True, exist_ok=True)
    store = RunStore(open_engine(f"sqlite:///{home / 'state.db'}"))
    first = store.record(make_run(user="local:ann", output="Costs [old] rose; see [/x]."))
    second = store.record(make_run(user="local:ann", skill_id="draft", output="Dear team"))
    store.record(make_run(user="local:bob"))
    store.engine.dispose()
    return [first, second]


def test_list_show_and_feedback_round_trip(two_runs: list[str], cli_env, tmp_path: Path):
    first, second = two_runs
    env = {**cli_env, "COPILOT_USER": "ann"}

    listed = copilot(env, "runs", "list", "--user", "ann", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [second, first]  # newest first, none of Bob's
    assert rows[0]["created"].startswith("20") and "T" in rows[0]["created"]  # ISO, local

    table = copilot({**env, "COLUMNS": "200"}, "runs", "list", "--user", "ann")
    assert table.returncode == 0, table.stderr
    assert first[:8] in table.stdout and "Costs [old] rose; see [/x]." in table.stdout

    shown = copilot(env, "runs", "show", first[:8], "--user", "ann")
    assert shown.returncode == 0, shown.stderr
    assert f"run       {first}" in shown.stdout and "[old]" in shown.stdout

    edited = tmp_path / "edited.txt"
    edited.write_text("Costs rose 4%, [old] figures.")
    given = copilot(env, "runs", "feedback", first[:10], "--user", "ann", "--rating", "up",
                    "--comment", "good", "--edited", str(edited), "--json")  # fmt: skip
    assert given.returncode == 0, given.stderr
    after = json.loads(given.stdout)
    assert (after["rating"], after["edited_text"]) == (1, "Costs rose 4%, [old] figures.")
    assert after["comment"] == "good"

    down = copilot(env, "runs", "feedback", first, "--user", "ann", "--rating", "down")
    assert down.returncode == 0 and f"Feedback saved on run {first[:8]} (down)." in down.stdout
    shown = copilot(env, "runs", "show", first[:8], "--user", "ann").stdout
    assert "rating    down" in shown and "comment   good" in shown  # the comment stays


def test_bad_feedback_is_refused_with_a_clear_message(two_runs: list[str], cli_env, tmp_path):
    first, _ = two_runs
    env = dict(cli_env)
    sideways = copilot(env, "runs", "feedback", first, "--user", "ann", "--rating", "sideways")
    assert sideways.returncode == 2 and "--rating must be up or down" in sideways.stderr
    nothing = copilot(env, "runs", "feedback", first, "--user", "ann")
    assert nothing.returncode == 2 and "give --rating" in nothing.stderr
    missing = copilot(env, "runs", "feedback", first, "--user", "ann",
                      "--edited", str(tmp_path / "nope.txt"))  # fmt: skip
    assert missing.returncode == 2 and "nope.txt does not exist" in missing.stderr
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    bad = copilot(env, "runs", "feedback", first, "--user", "ann", "--edited", str(binary))
    assert bad.returncode == 2 and "is not UTF-8 text" in bad.stderr
    bobs = copilot(env, "runs", "show", first, "--user", "bob")
    assert bobs.returncode != 0 and "no run" in bobs.stderr  # another user's run: not found
    unknown = copilot(env, "runs", "show", "ffff", "--user", "ann")
    assert unknown.returncode == 2 and "no run 'ffff'" in unknown.stderr
