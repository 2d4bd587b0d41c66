"""Damaged and hostile known-item query files for ``copilot eval retrieval --mail-known-item``:
each is refused before any sync, with the file, the line and what is wrong, quickly."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from copilot.eval.mailgen import generate
from copilot.eval.retrieval import message_id_of

CASES = {
    "four columns": ("q\t{real}\t{real}\textra\n", "queries.tsv:1: expected query, tab"),
    "an unknown id among the others": ("q\t{real}\t{real} <gone@nowhere>\n", "gone@nowhere"),
    # 200,000 ids on one line: checked one by one against a set, the first unknown named.
    "a huge also column": ("q\t{real}\t" + " ".join(f"x{i}@y" for i in range(200_000)) + "\n",
                           "queries.tsv:1: no .eml file has Message-ID 'x0@y'"),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_query_file_is_refused_by_line(name: str, tmp_path, cli_env) -> None:
    generate(tmp_path / "mail", threads=2, seed=0)
    real = message_id_of(next((tmp_path / "mail").glob("*.eml")))
    text, expected = CASES[name]
    (tmp_path / "mail" / "queries.tsv").write_text(text.format(real=real), encoding="utf-8")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "copilot.cli.app", "eval", "retrieval",
         "--mail-known-item", str(tmp_path / "mail")],
        env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and expected in result.stderr.replace("\n", "")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "home" / "index").exists()  # nothing synced, nothing half-written
