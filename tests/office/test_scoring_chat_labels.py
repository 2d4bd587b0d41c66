"""A workbook scored by a configured chat model: the label read off the first answer
token's probabilities (``skills.sentiment_chat``), through the scripted OpenAI-compatible
server; and the skill per row when the server gives no probabilities."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from copilot.config import Settings
from copilot.office.scoring import score_workbook
from copilot.skills.runner import SkillRunner
from copilot.skills.sentiment_chat import TOP_LOGPROBS, label_logprobs
from copilot.skills.sentiment_labels import INSTRUCTION, MAX_TEXT_TOKENS
from copilot.workspace import Workspace
from tests.fakes.builders_office import column_xlsx
from tests.fakes.llm_server import Reply, ScriptedLLM

REVIEWS = {  # a word of the text: the answer to it (and to any clause of it)
    "broken": Reply.label(negative=0.9, Negative=0.05, mixed=0.04, ne=0.01),
    "lovely": Reply.label(positive=0.8, Positive=0.1, mixed=0.1),
    "invoice": Reply.label(neutral=0.7, positive=0.2, The=0.1),
}
TEXTS = ["Arrived broken and support never answered.", "Fast delivery, lovely colour.",
         "The invoice is attached."]  # fmt: skip


def by_word(request: Any) -> Reply:
    text = text_of(request)
    return next((reply for word, reply in REVIEWS.items() if word in text),
                Reply.label(positive=0.5, negative=0.5))  # fmt: skip


def text_of(request: Any) -> str:
    return request["messages"][-1]["content"].removeprefix("Text: ")


def scored(out: Path) -> list[tuple[Any, ...]]:
    sheet = openpyxl.load_workbook(out)["Scored"]
    return [row[:3] for row in sheet.iter_rows(min_row=2, values_only=True)]


def score(settings: Settings, src: Path, out: Path) -> dict[str, Any]:
    with Workspace(settings) as ws:
        return score_workbook(SkillRunner(ws), "anna", "sentiment", src, "Review", out=out,
                              engine="llm")  # fmt: skip


def test_labels_are_read_off_the_first_tokens_probabilities(
    llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = by_word
    src, out = tmp_path / "reviews.xlsx", tmp_path / "scored.xlsx"
    src.write_bytes(column_xlsx("Review", TEXTS))
    summary = score(llm_settings, src, out)

    assert summary["counts"] == {"positive": 1, "negative": 1, "neutral": 1, "mixed": 0}
    rows = scored(out)
    assert [r[1] for r in rows] == ["negative", "positive", "neutral"]
    # score = P(positive) - P(negative) over the labels' mass; "ne" (negative or neutral)
    # and "The" count for no label.
    assert rows[0][2] == pytest.approx(round(-0.95 / 0.99, 3))
    assert rows[1][2] == pytest.approx(0.9)
    assert rows[2][2] == pytest.approx(round(0.2 / 0.9, 3))
    sent = [r.json for r in llm.requests]
    # A read a text, and one a clause of a text of several ("Fast delivery", "lovely
    # colour"): the aspects the summary lists.
    assert sorted(text_of(body) for body in sent) == sorted(
        [*TEXTS, "Fast delivery", "lovely colour"]
    )
    assert [a["aspect"] for a in summary["aspects"]][:1] == ["colour"]
    for body in sent:
        assert (body["max_tokens"], body["temperature"]) == (1, 0.0)
        assert body["logprobs"] is True and body["top_logprobs"] == TOP_LOGPROBS
        assert body["messages"][0]["role"] == "system"
        assert INSTRUCTION in body["messages"][0]["content"]
        # The built-in skill's label examples come as turns before the text.
        roles = [m["role"] for m in body["messages"][1:-1]]
        assert roles and roles == ["user", "assistant"] * (len(roles) // 2)


def test_the_text_sent_is_redacted_and_cut_to_its_budget(
    llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = lambda request: Reply.label(positive=0.6, negative=0.4)
    long = "The meeting went well and everyone agreed. " * 200
    src, out = tmp_path / "mail.xlsx", tmp_path / "scored.xlsx"
    src.write_bytes(column_xlsx("Review", ["Thanks, write to ann.lee@example.com.", long]))
    summary = score(llm_settings.model_copy(update={"redact": True}), src, out)

    texts = [text_of(r.json) for r in llm.requests]  # reads run 4 at a time: in any order
    assert any(t.startswith("Thanks") for t in texts)
    assert not any("ann.lee@example.com" in t for t in texts)
    whole = max((t for t in texts if t.startswith("The meeting")), key=len)  # clauses beside it
    assert long.startswith(whole) and len(whole) < len(long) // 2
    assert summary["notes"] == [
        f"1 text was longer than {MAX_TEXT_TOKENS} tokens and labelled from its start"
    ]


def test_an_answer_that_names_no_label_is_neutral_and_said(
    llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = lambda request: Reply.label(The=0.7, I=0.3)
    src, out = tmp_path / "odd.xlsx", tmp_path / "scored.xlsx"
    src.write_bytes(column_xlsx("Review", ["It came."]))
    summary = score(llm_settings, src, out)
    assert scored(out) == [("It came.", "neutral", 0.0)]
    assert summary["notes"] == ["the model answered 1 text with no label: neutral, confidence 0"]


@pytest.mark.parametrize("server", ["refuses", "ignores"])
def test_a_server_without_probabilities_runs_the_skill_per_row(
    server: str, llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """A refusal of ``logprobs`` (as a server without them answers) or an answer without
    them: one request finds out, each row then runs through the skill, the workbook says
    so, and a second workbook on the same server does not ask again."""
    if server == "refuses":
        llm.rejects["logprobs"] = (400, "Unrecognized request argument supplied: logprobs")

    def answer(request: Any) -> Reply:
        return Reply.json({"label": "positive", "score": 0.7, "aspects": []})

    llm.responder = answer
    src = tmp_path / "reviews.xlsx"
    src.write_bytes(column_xlsx("Review", ["Good.", "Fine."]))
    first = score(llm_settings, src, tmp_path / "one.xlsx")
    asked = [r.json for r in llm.requests if r.json.get("logprobs")]
    assert len(asked) == 1 and len(llm.requests) == 3
    assert first["counts"]["positive"] == 2
    assert first["notes"] == [
        "the model's server gives no token probabilities, so each row was run through the "
        "skill's prompt"
    ]
    llm.requests.clear()
    score(llm_settings, src, tmp_path / "two.xlsx")
    assert len(llm.requests) == 2 and not any(r.json.get("logprobs") for r in llm.requests)


def test_tokens_count_for_the_one_label_they_start() -> None:
    found = label_logprobs([("Neg", math.log(0.5)), (" negative", math.log(0.3)),
                            ("ne", math.log(0.1)), ("mixed", math.log(0.1))])  # fmt: skip
    p = [math.exp(x) for x in found]
    assert p == pytest.approx([0.0, 0.8 / 0.9, 0.0, 0.1 / 0.9])
    assert label_logprobs([("", -0.1), ("Sure", -2.0)]) == [-math.inf] * 4
