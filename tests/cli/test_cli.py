"""The ``copilot`` command as a person runs it: a real process, real files, real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from copilot.cli.demo import build_workspace
from tests.fakes.hostile import BROKEN_MAIL, write_hostile_set
from tests.fakes.llm_server import Reply


def copilot(env, *args, check=True, timeout=300):
    result = subprocess.run(
        [sys.executable, "-m", "copilot.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"copilot {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_sync_search_and_status_from_the_command_line(cli_env, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    out = copilot(cli_env, "sync", "local", str(folder), "--user", "ann")
    assert "7 indexed" in out.stdout

    hits = json.loads(
        copilot(
            cli_env, "search", "when is the go-live date", "--user", "ann", "--json", "--k", "5"
        ).stdout
    )
    assert len(hits) == 5
    assert {"title", "locator", "score", "snippet", "item_id", "url"} <= set(hits[0])
    assert any("Atlas" in h["title"] or "go-live" in h["title"].lower() for h in hits)

    plain = copilot(cli_env, "search", "Q3 travel budget", "--user", "ann").stdout
    assert "Budget 2025" in plain

    # The status report's footer ("Internal — Project Atlas") comes after every passage.
    risks = copilot(cli_env, "search", "What are the risks for the Atlas migration?",
                    "--user", "ann", "--json", "--k", "50").stdout  # fmt: skip
    footer = [i for i, h in enumerate(json.loads(risks)) if "footer" in h["locator"]]
    assert footer and footer[0] == len(json.loads(risks)) - len(footer)

    status = json.loads(copilot(cli_env, "status", "--json").stdout)
    assert status["items"] == 7 and status["chunks"] > 8 and status["failures"] == []


def test_a_changed_note_re_syncs_without_embedding_its_unchanged_text(cli_env, tmp_path):
    folder = build_workspace(tmp_path / "docs")
    (folder / "filed-again").mkdir()
    copilot(cli_env, "sync", "local", str(folder), "--user", "ann")
    notes = folder / "meeting-notes.md"
    (folder / "filed-again" / notes.name).write_text(notes.read_text())  # the note, twice
    notes.write_text(notes.read_text() + "\n\n## Later\n\nThe walrus budget was approved.\n")
    later = time.time() + 60
    os.utime(notes, (later, later))

    out = copilot(cli_env, "sync", "local", str(folder), "--user", "ann")
    assert "2 indexed" in out.stdout and "not embedded again" in out.stdout
    hits = json.loads(copilot(cli_env, "search", "walrus budget approved", "--user", "ann",
                              "--json", "--k", "1").stdout)  # fmt: skip
    assert hits[0]["title"] == "meeting-notes.md" and "walrus" in hits[0]["text"]
    touched = folder / "filed-again" / notes.name
    touched.write_text(touched.read_text() + "\nA last line.\n")
    os.utime(touched, (later + 60, later + 60))
    report = json.loads(copilot(cli_env, "sync", "local", str(folder), "--user", "ann",
                                "--json").stdout)  # fmt: skip
    assert report["indexed"] == 1 and 0 < report["reused"] < report["embedded"]


def test_bad_files_fail_alone_with_reasons_in_status(cli_env, tmp_path):
    folder = tmp_path / "mixed"
    expected = write_hostile_set(folder)
    for name, data in BROKEN_MAIL.items():
        (folder / name).write_bytes(data)
    (folder / "good.txt").write_text("The capybara procurement plan is ready.")

    started = time.monotonic()
    out = copilot(cli_env, "sync", "local", str(folder), "--user", "ann")
    assert time.monotonic() - started < 240
    assert f"{len(expected)} failed" in out.stdout

    status = json.loads(copilot(cli_env, "status", "--json", "--user", "ann").stdout)
    failures = {f["item"].rsplit("/", 1)[-1]: f for f in status["failures"]}
    assert set(failures) == set(expected)
    for name, words in expected.items():
        assert name in failures[name]["reason"] or words in failures[name]["reason"], failures[name]
        assert words.lower() in failures[name]["reason"].lower(), failures[name]
    # The good file and the broken-but-readable mail were indexed despite their neighbours.
    assert status["items"] == 1 + len(BROKEN_MAIL)
    for word in ("capybara", "pelican", "walrus", "flamingo"):
        hits = json.loads(
            copilot(cli_env, "search", word, "--user", "ann", "--json", "--mode", "bm25").stdout
        )
        assert hits and word in hits[0]["text"].lower(), word

    # Nothing failed is retried until it changes; nothing half-indexed is left.
    again = copilot(cli_env, "sync", "local", str(folder), "--user", "ann", "--json")
    report = json.loads(again.stdout)
    assert report["embedded"] == 0


def test_empty_query_and_missing_folder_get_clear_errors(cli_env, tmp_path):
    bad = copilot(cli_env, "search", "   ", "--user", "ann", check=False)
    assert bad.returncode == 2 and "query is empty" in bad.stderr
    missing = copilot(
        cli_env, "sync", "local", str(tmp_path / "nope"), "--user", "ann", check=False
    )
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_demo_runs_with_no_server_and_no_key(cli_env):
    out = copilot(cli_env, "demo")
    assert "Indexed 7 items" in out.stdout
    assert "search:" in out.stdout and "Atlas status report.docx" in out.stdout


def test_a_second_process_on_the_same_index_gets_a_plain_error(cli_env, tmp_path):
    from copilot.config import Settings
    from copilot.workspace import Workspace

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The okapi memo.")
    copilot(cli_env, "sync", "local", str(folder), "--user", "ann")
    with Workspace(Settings(home=cli_env["COPILOT_HOME"])) as ws:
        assert ws.store.count("local:ann") == 1  # a sync (or the server) holds the index open
        busy = copilot(cli_env, "search", "okapi", "--user", "ann", check=False)
    assert busy.returncode == 2
    assert "already open" in busy.stderr and "Traceback" not in busy.stderr


def test_serve_answers_on_loopback_and_dev_mode_refuses_other_addresses(cli_env, tmp_path):
    import socket
    import urllib.request

    env = {**cli_env, "COPILOT_AUTH": "dev"}
    refused = copilot(env, "serve", "--host", "0.0.0.0", check=False, timeout=60)
    assert refused.returncode == 2 and "loopback" in refused.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "copilot.cli.app", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "copilot serve did not start"
                time.sleep(0.2)
        me = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": "Bearer dev:anna"}
        )
        with urllib.request.urlopen(me, timeout=10) as r:
            assert json.loads(r.read())["user_id"] == "local:anna"
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stdout.close()  # type: ignore[union-attr]  # a pipe: opened above


def test_a_streamed_answer_that_was_cleaned_up_is_shown_as_kept(cli_env, llm):
    """The terminal cannot take back what streamed: when the kept answer differs (here a
    placeholder signature and an attachment the notes do not mention), it follows, said."""
    llm.script(Reply.text("Hi Maria,\n\nThe figures are attached. 7 March works.\n\n"
                          "Best regards,\n[Your Name]", chunks=6))  # fmt: skip
    env = {**cli_env, "COPILOT_LLM_BASE_URL": llm.base_url, "COPILOT_LLM_MAX_RETRIES": "0"}
    mail = "From: Maria Lopez <maria@example.com>\n\nHi, does 7 March work for you?"
    out = copilot(env, "run", "draft", "--set", f"message={mail}", "--set", "notes=yes",
                  "--engine", "llm", "--no-retrieval")  # fmt: skip
    streamed, _, kept = out.stdout.partition("Hi Maria,\n\n7 March works.")
    assert "[Your Name]" in streamed and "attached" in streamed
    assert "The answer as kept" in out.stderr and kept.strip() == "Best regards,"
    llm.script(Reply.text("Hi Maria,\n\n7 March works.\n\nBest regards,", chunks=4))
    out = copilot(env, "run", "draft", "--set", f"message={mail}", "--set", "notes=yes",
                  "--engine", "llm", "--no-retrieval")  # fmt: skip
    assert "The answer as kept" not in out.stderr and out.stdout.count("7 March works") == 1


def test_a_sentiment_is_shown_once_whole_with_its_progress_on_stderr(cli_env, llm):
    """A structured answer is not typed out as JSON: stdout has the readable sentiment once,
    stderr (piped, so plain lines) says the model was writing."""
    answer = {"label": "negative", "score": -0.6, "aspects": [
        {"aspect": "delivery", "label": "negative", "evidence": "was late again"}]}  # fmt: skip
    llm.script(Reply.json(answer, chunks=10))
    env = {**cli_env, "COPILOT_LLM_BASE_URL": llm.base_url, "COPILOT_LLM_MAX_RETRIES": "0"}
    out = copilot(env, "run", "sentiment", "--text", "The delivery was late again.",
                  "--engine", "llm")  # fmt: skip
    assert out.stdout.startswith("negative") and "{" not in out.stdout
    assert "delivery: negative" in out.stdout and "as kept" not in out.stderr
    assert out.stderr.count("writing the answer:") == 1


def test_progress_notes_are_plain_lines_when_piped_and_one_line_on_a_terminal() -> None:
    import io

    from copilot.cli.output import Notes

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    events = [("queue", {"position": 2}), ("progress", {"phase": "part", "step": 1, "steps": 3}),
              ("writing", {"characters": 40}), ("writing", {"characters": 90})]  # fmt: skip
    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        notes = Notes(stream)
        for kind, data in events:
            notes.show(kind, data)
        notes.clear()
    assert piped.getvalue().splitlines() == [
        "waiting for the model: 2 answers ahead…",
        "reading the document in parts: part 1 of 3…",
        "writing the answer: 40 characters…",
    ]
    assert "\n" not in terminal.getvalue() and terminal.getvalue().endswith("\r\x1b[2K")
    assert "writing the answer: 90 characters…" in terminal.getvalue()


def test_the_demo_shows_a_sentiment_once_whole_with_its_progress_said_once(cli_env, llm):
    llm.script(
        Reply.text("- Tom: update the runbook.", chunks=3),
        Reply.text("The largest risk is the invoice export [1].", chunks=3),
        Reply.text("Hi Ana,\n\n21 March works.\n\nBest regards,", chunks=3),
        Reply.json({"label": "mixed", "score": 0.1, "aspects": [
            {"aspect": "portal", "label": "positive", "evidence": "is great"}]},
            chunks=12, chunk_delay=0.15),
    )  # fmt: skip
    env = {**cli_env, "COPILOT_LLM_BASE_URL": llm.base_url, "COPILOT_LLM_MAX_RETRIES": "0"}
    out = copilot(env, "demo")
    sentiment = out.stdout.split("skill sentiment:", 1)[1]
    assert sentiment.count("(writing the answer:") == 1
    assert "mixed" in sentiment and "{" not in sentiment
