"""Progress of long commands: a bar with a total and ETA on a terminal, plain lines piped."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from copilot.cli.progress import Total, count_files, plain_line, steps, sync_progress
from copilot.ingest.pipeline import SyncReport

COPILOT = Path(sys.executable).with_name("copilot")


def report(**numbers) -> SyncReport:
    return SyncReport(scope="local:/d", **numbers)


def test_count_files_skips_hidden_and_says_about_when_it_stops_early(tmp_path: Path) -> None:
    for n in range(5):
        (tmp_path / f"a{n}.txt").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.docx").write_text("x")
    assert count_files(tmp_path) == Total(6, exact=True)
    about = count_files(tmp_path, limit=3)
    assert not about.exact and str(about).startswith("~")


def test_plain_line_has_total_counters_rate_and_eta() -> None:
    line = plain_line(report(seen=10, indexed=8, failed=2, chunks=30, seconds=5.0), Total(40))
    assert line == (
        "sync: items 10 of 40  indexed 8  unchanged 0  failed 2  chunks 30  2.0 items/s  ETA 15 s"
    )
    big = report(seen=1, seconds=2.0, item_done=300, item_total=900, current="[old]/big.pdf")
    assert "(embedding 300/900 chunks of [old]/big.pdf)" in plain_line(big, Total(5, False))
    assert "items 0 of ~5" in plain_line(big, Total(5, False))  # read, not yet finished


def test_every_file_read_is_not_the_end_while_chunks_wait() -> None:
    # Reading runs ahead of embedding: at the end of 55 PDFs all were read while 824 chunks
    # of 36 of them were being embedded; the line said "items 55 of 55 … ETA 0 s" for 45 s.
    ahead = report(seen=55, failed=7, chunks=659, seconds=50.0, item_done=659, item_total=824,
                   current="i1040nr.pdf")  # fmt: skip
    line = plain_line(ahead, Total(55))
    assert line.startswith("sync: items 7 of 55")
    assert line.endswith("ETA 13 s")  # 165 chunks left at the 13.2 a second stored so far
    done = report(seen=55, indexed=48, failed=7, chunks=895, seconds=64.0)
    assert plain_line(done, Total(55)).endswith("ETA 0 s")


def test_a_terminal_gets_a_bar_and_markup_in_names_prints_as_text() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    with sync_progress(console, Total(4)) as shown:
        shown.update(report(seen=2, indexed=2, chunks=2, seconds=1.0, current="[/x]"))
    text = out.getvalue()
    assert "2/4" in text and "indexed 2" in text and "ETA" in text


def test_piped_output_is_plain_lines_and_json_shows_nothing() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with sync_progress(console, Total(3)) as shown:
        shown.update(report(seen=1, seconds=1.0, current="[old]"))
        shown.waiting()
        shown.update(report(seen=3, indexed=3, seconds=2.0))
    lines = out.getvalue().splitlines()
    assert lines[0] == "sync: starting (3 files)"
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in a log
    assert lines[-1].startswith("sync: items 3 of 3  indexed 3")
    quiet = io.StringIO()
    with sync_progress(Console(file=quiet), Total(3), enabled=False) as shown:
        shown.update(report(seen=1, seconds=1.0))
    assert quiet.getvalue() == ""


def test_steps_counts_up_to_the_total_when_piped() -> None:
    out = io.StringIO()
    with steps(Console(file=out, force_terminal=False), "queries", 3) as advance:
        for _ in range(3):
            advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "queries: starting (3)" and lines[-1].startswith("queries: 3 of 3")


def test_sync_piped_prints_progress_lines_with_the_total(tmp_path: Path, cli_env) -> None:
    docs = tmp_path / "[old] docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"n{n}.txt").write_text(f"Note {n} on the budget review.\n")
    env = {**cli_env, "COPILOT_USER": "ann"}
    env.pop("COPILOT_SERVICE_URL", None)
    done = subprocess.run(
        [str(COPILOT), "sync", "local", str(docs)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sync: starting (3 files)" in done.stderr
    assert "sync: items 3 of 3  indexed 3" in done.stderr
    assert "\x1b[" not in done.stderr
    assert str(docs) in done.stdout  # "[old]" survives: printed as text, not markup


def test_eval_retrieval_piped_shows_ingestion_progress(tmp_path: Path, cli_env) -> None:
    from tests.eval.test_eval import write_beir

    folder = write_beir(tmp_path / "tiny")
    done = subprocess.run(
        [str(COPILOT), "eval", "retrieval", "--beir", str(folder), "--mode", "bm25"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sync: starting" in done.stderr and "sync: items" in done.stderr
    assert "nDCG@10" in done.stdout
    quiet = subprocess.run(
        [str(COPILOT), "eval", "retrieval", "--beir", str(folder), "--mode", "bm25", "--json"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert quiet.returncode == 0 and "sync:" not in quiet.stderr
