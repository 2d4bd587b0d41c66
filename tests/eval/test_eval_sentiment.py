"""Scoring a sentiment engine on a labelled file, as `copilot eval sentiment` does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli.eval import eval_app
from copilot.eval.sentiment import TsvError, evaluate, label_of, read_tsv
from copilot.skills.engines.local.encoder import sentence_encoder
from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary
from tests.fakes.llm_server import Reply

REVIEWS = [
    ("The waiter was lovely and the pasta was perfect.", 1),
    ("Cold food, rude staff, never again.", 0),
    ("This charger stopped working after a week.", 0),
    ("A wonderful film with a brilliant cast.", 1),
    ("The app crashes every time I open it.", 0),
    ("Check-in was quick and the room was spotless.", 1),
]


def write_tsv(path: Path, rows: list[tuple[str, int]], extra: str = "") -> Path:
    path.write_text("".join(f"{t}\t{g}\n" for t, g in rows) + extra, encoding="utf-8")
    return path


def test_read_tsv_keeps_sentences_and_labels(tmp_path):
    path = write_tsv(tmp_path / "r.tsv", REVIEWS, extra="\n   \n")  # blank lines are fine
    assert read_tsv(path) == REVIEWS


def test_bad_lines_are_named_by_number(tmp_path):
    path = write_tsv(tmp_path / "r.tsv", REVIEWS, extra="no tab here\nGood phone\tyes\n\t1\n")
    with pytest.raises(TsvError) as e:
        read_tsv(path)
    message = str(e.value)
    assert "3 bad line(s)" in message
    assert "line 7: expected 'sentence<TAB>0 or 1'" in message
    assert "line 8: label 'yes' is not 0 or 1" in message
    assert "line 9" in message


@pytest.mark.parametrize("content", [None, "", "\n\n"])
def test_missing_or_empty_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "r.tsv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TsvError, match="no such file" if content is None else "no labelled"):
        read_tsv(path)


def test_evaluate_counts_accuracy_macro_f1_and_confusion():
    pairs = [("a", 1), ("b", 1), ("c", 0), ("d", 0)]
    scores = evaluate(pairs, lambda texts: [1, 0, 0, 0])
    assert scores["accuracy"] == 0.75 and scores["n"] == 4
    assert scores["confusion"] == [[2, 0], [1, 1]]  # confusion[gold][predicted]
    # F1(positive) = 2/3, F1(negative) = 4/5
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    with pytest.raises(ValueError, match="returned 1 labels for 4"):
        evaluate(pairs, lambda texts: [1])


def test_the_command_scores_the_local_engine(home, tmp_path, embedder):
    path = write_tsv(tmp_path / "r.tsv", REVIEWS)
    result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", str(path), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    # The engine a sentiment skill runs locally, scored directly: the command reports it.
    shipped = LocalSentiment(sentence_encoder(embedder))
    direct = evaluate(REVIEWS, lambda texts: predict_binary(shipped, texts))
    assert scores == {
        "engine": "local",
        **{k: direct[k] for k in ("accuracy", "macro_f1", "n", "confusion")},
    }
    # Five of six at least: e5 and MiniLM both read "the room was spotless" as a stain.
    assert scores["n"] == 6 and scores["accuracy"] >= 5 / 6
    result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", str(path)])
    assert (
        f"accuracy {direct['accuracy']:.3f}, macro-F1 {direct['macro_f1']:.3f} on 6"
        in result.output
    )


def test_the_command_names_a_broken_file(home, tmp_path):
    path = write_tsv(tmp_path / "r.tsv", REVIEWS, extra="oops\t2\n")
    result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", str(path)])
    assert result.exit_code == 2
    assert "line 7: label '2' is not 0 or 1" in " ".join(result.output.split())


NEGATIVE_WORDS = ("rude", "crashes")


def reviewer(request: dict) -> Reply:
    """A model that calls a review negative when it holds one of NEGATIVE_WORDS."""
    text = request["messages"][-1]["content"]
    label = "negative" if any(w in text for w in NEGATIVE_WORDS) else "positive"
    return Reply.json({"label": label, "score": 0.8 if label == "positive" else -0.8,
                       "confidence": 0.9, "aspects": []})  # fmt: skip


def test_a_server_without_logprobs_runs_the_sentiment_skill_per_sentence(
    home, tmp_path, monkeypatch, llm
):
    llm.responder = reviewer  # JSON answers, no token probabilities
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    path = write_tsv(tmp_path / "r.tsv", REVIEWS)
    args = ["sentiment", "--tsv", str(path), "--engine", "llm", "--json"]
    result = CliRunner().invoke(eval_app, [*args, "--limit", "4"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    # --limit 4 stops before "The app crashes"; the scripted model misses "This charger
    # stopped working" (no word it knows): 3 of 4.
    assert scores["engine"] == "llm" and scores["n"] == 4
    assert scores["confusion"] == [[1, 1], [0, 2]]
    # One label read finds the server gives no logprobs; then one skill run per sentence.
    probe, *runs = llm.requests
    assert probe.json["logprobs"] is True and len(runs) == 4
    assert all(REVIEWS[i][0] in json.dumps(r.json) for i, r in enumerate(runs))

    llm.responder = lambda request: Reply.status(400, message="model not loaded")
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 2
    assert "sentence 1 ('The waiter was lovely" in " ".join(result.output.split())


def test_a_model_engine_reads_each_label_off_the_first_token(home, tmp_path, monkeypatch, llm):
    """As a scored workbook does: one token a sentence (and a clause of a sentence of
    several), the label from the server's probabilities."""

    def labels(request: dict) -> Reply:
        text = request["messages"][-1]["content"]
        good = any(w in text for w in ("lovely", "perfect", "wonderful", "brilliant"))
        return (
            Reply.label(positive=0.9, negative=0.1)
            if good
            else Reply.label(negative=0.8, mixed=0.2)
        )

    llm.responder = labels
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    path = write_tsv(tmp_path / "r.tsv", REVIEWS)
    result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", str(path), "--engine", "llm",
                                           "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["n"] == 6 and scores["confusion"] == [[3, 0], [1, 2]]  # "spotless": no word
    assert all(r.json["max_tokens"] == 1 and r.json["logprobs"] for r in llm.requests)


def test_an_engine_that_cannot_run_is_named(home, tmp_path):
    path = write_tsv(tmp_path / "r.tsv", REVIEWS)
    for engine, says in [
        ("llm", "no language model is configured"),
        ("embedded", "no embedded model is installed: run `copilot model install`"),
        ("gpt", "unknown engine 'gpt'"),
    ]:
        result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", str(path), "--engine", engine])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output


def test_labels_of_the_skills_json():
    assert label_of({"label": "positive", "score": -0.2}) == 1  # the label wins
    assert label_of({"label": "negative"}) == 0
    assert label_of({"label": "mixed", "score": -0.3}) == 0
    assert label_of({"label": "neutral"}) == 1 and label_of(None) == 1


@pytest.mark.skipif(
    not os.environ.get("COPILOT_SENTIMENT_TSV"),
    reason="set COPILOT_SENTIMENT_TSV to a labelled review file (e.g. amazon_cells_labelled.txt)",
)
def test_local_engine_accuracy_on_a_real_review_set(home):
    path = os.environ["COPILOT_SENTIMENT_TSV"]
    result = CliRunner().invoke(eval_app, ["sentiment", "--tsv", path, "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["accuracy"] >= 0.88, scores
