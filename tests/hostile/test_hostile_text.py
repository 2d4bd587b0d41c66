"""Text no encoder can take as it is: a lone surrogate (a JSON "\\ud800" escape, a badly
decoded mail) cannot be UTF-8, and the tokenizers raised on it; a NUL ends a C string.
A typed field refuses a lone surrogate by name (422); a skill's free-form inputs reach the
engine, and the embedders take both (they raised before)."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import ANNA, Server

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
