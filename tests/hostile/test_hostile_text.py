"""Text no encoder can take as it is: a lone surrogate (a JSON "\\ud800" escape, a badly
decoded mail) cannot be UTF-8, and the tokenizers raised on it; a NUL ends a C string.
A typed field refuses a lone surrogate by name (422); a skill's free-form inputs reach the
engine, and the embedders take both (they raised before)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import copilot.skills.templates.builtin as builtin
from copilot.llm.embedded import models
from copilot.llm.embedded import server as model_server
from copilot.llm.embedded.chat import EmbeddedChat
from copilot.skills.sentiment_labels import label_texts
from copilot.skills.templates.render import load_template
from tests.hostile.conftest import ANNA, Server
from tests.llm.smollm import install, needs_model, settings_in

BUILTIN = Path(builtin.__file__).parent

# Written as JSON escapes: httpx would refuse to encode a lone surrogate itself.
ODD = {
    "a lone surrogate": '"late \\ud800 delivery, never again"',
    "a NUL": '"great \\u0000 service"',
    "both, repeated": '"' + "\\udfff\\u0000 x " * 2000 + '"',
}


@pytest.mark.parametrize("name", list(ODD))
def test_text_no_encoder_takes_as_it_is_is_answered(server: Server, name: str) -> None:
    text = ODD[name]
    headers = {**ANNA, "Content-Type": "application/json"}
    with server.watched() as result:
        found = server.client.post("/v1/search", content=f'{{"query": {text}}}', headers=headers)
        felt = server.client.post(
            "/v1/skills/sentiment/run",
            content=f'{{"inputs": {{"text": {text}}}, "engine": "local"}}',
            headers=headers,
        )
    surrogate = "\\ud" in text
    if surrogate:  # a typed string field cannot hold it: refused, by name
        assert found.status_code == 422 and "query" in found.json()["detail"], found.text[:300]
    else:
        assert found.status_code == 200, (name, found.text[:300])
    # A skill's inputs are free-form: the text reaches the engine, which reads it.
    assert felt.status_code == 200, (name, felt.text[:300])
    assert felt.json()["data"]["label"] in ("positive", "negative", "neutral", "mixed")
    server.within_limits(*result(), name)
    assert server.client.get("/readyz").status_code == 200


def test_the_embedders_take_what_cannot_be_encoded(embedder) -> None:
    odd = ["late \ud800 delivery", "great \x00 service", "\udfff" * 500]
    vectors = embedder.embed_documents(odd)
    assert vectors.shape == (3, embedder.dim)
    assert embedder.count_tokens(odd)[0] > 0


@pytest.fixture(scope="module")
def model_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedChat]:
    """The real SmolLM2 server, for the embedded model's label reads."""
    settings = settings_in(tmp_path_factory.mktemp("hostile-model"))
    install(settings)
    yield EmbeddedChat(settings, models.resolve(settings), progress=lambda _line: None)
    model_server.stop(settings)


@needs_model
@pytest.mark.parametrize("name", list(ODD))
def test_the_embedded_models_label_reads_take_it_too(model_chat: EmbeddedChat, name: str) -> None:
    """A workbook cell with such text, scored on the embedded model: labelled, and the
    rows around it too (one bad cell once failed the whole batch)."""
    template = load_template(BUILTIN / "sentiment.prompty")
    texts = ["Fine, thanks.", json.loads(ODD[name]), "The parcel came a day early."]
    results = label_texts(model_chat, template, texts).results
    assert [r.label in ("positive", "negative", "neutral", "mixed") for r in results] == [True] * 3
    assert all(r.confidence > 0 for r in results)
