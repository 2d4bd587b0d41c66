"""Subject lines scored with ROUGE, as `copilot eval summarise` measures them.

The mails here are written for the tests in AESLC's layout (``body``, ``subject``,
``annotations``); the real dev split is scored by the opt-in test at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import eval as eval_cli
from copilot.cli.eval import eval_app
from copilot.eval.summarise import (
    Mail,
    SummariseDataError,
    clean_prediction,
    read_jsonl,
    score_subject,
)
from tests.fakes.llm_server import Reply

MAILS = [
    {
        "id": "a-1",
        "body": "Hi Sandra,\nThis message is to confirm our call on Monday, March 3rd from 2:00 "
        "pm to 3:00 pm.\nThe dial-in number is in the invitation.\nThanks,",
        "subject": "Call on Monday",
        "annotations": ["call confirmation", "confirming monday call", "call on march 3"],
    },
    {
        "id": "a-2",
        "body": "Tom/Lena: Please approve the following travel requests for March.\nThe "
        "Leeds trip needs a decision by Friday.",
        "subject": "Travel requests",
        "annotations": ["approve travel requests", "march travel requests", "travel approval"],
    },
    {
        "id": "a-3",
        "body": "The Q3 budget review moves to Thursday at 10 am in room 4.2. Please bring "
        "the updated forecasts.",
        "annotations": ["budget review moved", "q3 budget review on thursday"],
    },
]


def write_jsonl(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra, encoding="utf-8")
    return path


# -- reading the file ----------------------------------------------------------------------


def test_mails_are_read_with_their_references(tmp_path):
    mails = read_jsonl(write_jsonl(tmp_path / "m.jsonl", MAILS))
    assert [m.line for m in mails] == [1, 2, 3]
    assert mails[0].subject == "Call on Monday" and len(mails[0].annotations) == 3
    assert mails[2].subject is None and mails[2].annotations[0] == "budget review moved"
    assert [m.line for m in read_jsonl(tmp_path / "m.jsonl", limit=2)] == [1, 2]
    # a U+2028 inside a body is text, not a line end
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"body": "one\u2028two", "subject": "x"}])
    assert read_jsonl(odd)[0].body == "one\u2028two"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "line 4: not JSON"),
        ("[1, 2]", "line 4: expected a JSON object"),
        ('{"subject": "no body"}', 'line 4: "body" must be a non-empty string'),
        ('{"body": "hi", "annotations": "one"}', 'line 4: "annotations" must be a list'),
        ('{"body": "hi", "subject": ""}', 'line 4: needs a "subject" or "annotations"'),
        ("[" * 100_000, "line 4: not JSON"),
    ],
)
def test_bad_lines_are_named_by_number(tmp_path, line, message):
    path = write_jsonl(tmp_path / "m.jsonl", MAILS, extra=line + "\n")
    with pytest.raises(SummariseDataError, match=message):
        read_jsonl(path)


def test_missing_empty_and_oversized_files_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(SummariseDataError, match="no such file"):
        read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(SummariseDataError, match="has no mails"):
        read_jsonl(tmp_path / "empty.jsonl")
    monkeypatch.setattr("copilot.eval.summarise.MAX_LINE_BYTES", 100)
    path = write_jsonl(tmp_path / "m.jsonl", [{"body": "x" * 500, "subject": "long"}])
    with pytest.raises(SummariseDataError, match="line 1 is longer than 100 bytes"):
        read_jsonl(path)


# -- scoring -------------------------------------------------------------------------------


def test_rouge_with_stemming_against_the_subject_and_the_best_annotation():
    mail = Mail(1, "body", "Meeting confirmation", ("lunch on friday", "meetings confirmed"))
    scores = score_subject("meetings confirmed [1]", mail)
    # stemming: "meetings confirmed" and "Meeting confirmation" share both stems
    assert scores["subject"] == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert scores["annotations"]["rouge1"] == 1.0  # the second annotation, the best one
    half = score_subject("meeting agenda", Mail(1, "b", "Meeting confirmation", ()))
    assert half == {"subject": {"rouge1": 0.5, "rouge2": 0.0, "rougeL": 0.5}}
    assert clean_prediction("  Budget [2] review\n[10]") == "Budget review"
    assert clean_prediction('Subject: "Budget review" [1]') == "Budget review"


# -- the command ---------------------------------------------------------------------------


def test_the_local_engine_writes_subjects_and_the_command_scores_them(home, tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", MAILS)
    result = CliRunner().invoke(eval_app, ["summarise", "--jsonl", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"engine", "model", "n", "subject", "annotations", "p50_s", "p95_s"}
    assert out["engine"] == "local" and out["model"] is None and out["n"] == 3
    assert out["errors"] == 0 and 0 < out["p50_s"] <= out["p95_s"]
    for kind in ("subject", "annotations"):
        assert set(out[kind]) == {"rouge1", "rouge2", "rougeL"}
        assert all(0.0 <= v <= 1.0 for v in out[kind].values())
    assert out["annotations"]["rouge1"] > 0.3  # the lead sentence holds their words

    only_annotations = write_jsonl(tmp_path / "a.jsonl", MAILS[2:])
    result = CliRunner().invoke(eval_app, ["summarise", "--jsonl", str(only_annotations)])
    assert result.exit_code == 0 and "annotations" in result.stdout
    assert "local: 1 mails" in result.stdout


def test_a_model_engine_gets_the_subject_style(home, tmp_path, monkeypatch, llm):
    llm.responder = lambda request: Reply.text("Travel requests [1]")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    path = write_jsonl(tmp_path / "m.jsonl", MAILS[1:2])
    args = ["summarise", "--jsonl", str(path), "--engine", "llm", "--json"]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["engine"] == "llm" and out["model"] and out["n"] == 1
    assert out["subject"] == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    sent = json.dumps(llm.requests[0].json)
    assert "a subject line" in sent and "travel requests for March" in sent


def test_failed_mails_are_counted_and_fail_the_command(home, tmp_path, monkeypatch, llm):
    replies = iter([Reply.text("Call on Monday"), Reply.status(400, message="bad request")])
    llm.responder = lambda request: next(replies, Reply.text("Budget review moved"))
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    path = write_jsonl(tmp_path / "m.jsonl", MAILS)
    result = CliRunner().invoke(
        eval_app, ["summarise", "--jsonl", str(path), "--engine", "llm", "--json"]
    )
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["n"] == 2 and out["errors"] == 1  # the means are over the two that answered
    assert "1 mails failed (line 2:" in " ".join(result.stderr.split())


def test_progress_goes_to_stderr_as_plain_lines(home, tmp_path, monkeypatch):
    monkeypatch.setattr(eval_cli, "PROGRESS_AFTER_S", 0.0)
    path = write_jsonl(tmp_path / "m.jsonl", MAILS)
    result = CliRunner().invoke(eval_app, ["summarise", "--jsonl", str(path), "--json"])
    assert result.exit_code == 0
    assert "mails: 3 of 3" in result.stderr and "mails" not in result.stdout.split("{")[0]
    json.loads(result.stdout)  # stdout stays one JSON object


def test_bad_input_and_unavailable_engines_exit_2(home, tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", MAILS, extra="{oops\n")
    result = CliRunner().invoke(eval_app, ["summarise", "--jsonl", str(path)])
    assert result.exit_code == 2 and "line 4: not JSON" in " ".join(result.output.split())
    good = write_jsonl(tmp_path / "g.jsonl", MAILS)
    for engine, says in [
        ("embedded", "no embedded model is installed"),
        ("llm", "no language model is configured"),
        ("bard", "unknown engine 'bard'"),
    ]:
        result = CliRunner().invoke(
            eval_app, ["summarise", "--jsonl", str(good), "--engine", engine]
        )
        assert result.exit_code == 2 and says in " ".join(result.output.split())


@pytest.mark.skipif(
    not os.environ.get("COPILOT_AESLC_JSONL"),
    reason="set COPILOT_AESLC_JSONL to AESLC's dev file (../shared/data/summarisation/"
    "aeslc-dev.jsonl)",
)
def test_local_engine_on_real_mail(home):
    path = os.environ["COPILOT_AESLC_JSONL"]
    args = ["summarise", "--jsonl", path, "--limit", "100", "--json"]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n"] == 100 and out["annotations"]["rougeL"] >= 0.35, out
