"""A server's token probabilities are its word, not ours to trust: NaN, infinity, a log
probability above 0, a token that is not text, a list of thousands. A label read from
them is still a label, a score in [-1, 1] and a confidence in [0, 1], and nothing raises."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from copilot.config import get_settings
from copilot.llm.openai_engine import OpenAIEngine
from copilot.llm.read_answer import MAX_ALTERNATIVES
from copilot.skills.sentiment_chat import chat_labels
from copilot.skills.sentiment_labels import read_labels
from copilot.skills.templates.models import SkillTemplate
from tests.fakes.llm_server import Reply, ScriptedLLM

BAD: dict[str, tuple[tuple[object, object], ...]] = {
    "not numbers": (("positive", float("nan")), ("negative", float("-inf")), ("mixed", "0")),
    "above zero": (("negative", 1e308), ("positive", 5.0)),
    "not text": ((None, -0.1), (7, -0.2), ("neutral", -0.3)),
    "thousands": (*((f"t{i}", -1.0) for i in range(5_000)), ("positive", -0.1)),
}


@pytest.mark.parametrize("name", list(BAD))
def test_hostile_probabilities_give_a_bounded_label(tmp_path: Path, name: str) -> None:
    with ScriptedLLM() as llm:
        llm.responder = lambda request: Reply.text("x", chunks=1, alternatives=BAD[name])  # type: ignore[arg-type]
        settings = get_settings(home=tmp_path, llm_base_url=llm.base_url, llm_max_retries=0)
        engine = OpenAIEngine(settings)
        template = SkillTemplate.model_validate({"name": "s", "metadata": {"task": "sentiment"}})
        labelled = read_labels(chat_labels(engine, template), ["It came."])
        result = labelled.results[0]
        assert -1.0 <= result.score <= 1.0 and 0.0 <= result.confidence <= 1.0
        assert all(math.isfinite(x) for x in (result.score, result.confidence))
        sent = llm.requests[0].json["top_logprobs"]
        assert sent == 20 and MAX_ALTERNATIVES == 20
    if name == "not numbers":  # none usable: no label, said, not a server without them
        assert labelled.unlabelled == [0] and result.label == "neutral"
    if name == "not text":
        assert result.label == "neutral" and result.confidence == 1.0
    if name == "thousands":  # the first 20 asked for: no label among them
        assert labelled.unlabelled == [0] and result.confidence == 0.0
