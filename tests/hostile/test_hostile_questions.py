"""A text built to multiply searches: every question of a text is searched on its own
(``copilot.skills.questions``), so a mail of thousands of questions must still cost a
handful of searches, answer fast and small, and leave the server serving."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import ANNA, Server

FLOODS = {
    "3,000 questions": " ".join(f"Is item {n} in stock?" for n in range(3000)),
    "one question 100,000 characters long": "Is " + "very " * 20_000 + "late?",
    "100,000 question marks": "?" * 100_000,
    "a question per line, no spaces": "\n".join(f"Q{n}?" for n in range(20_000)),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_of_questions_costs_a_handful_of_searches(server: Server, name: str) -> None:
    with server.watched() as result:
        answer = server.client.post(
            "/v1/skills/draft/preview",
            json={"inputs": {"message": FLOODS[name]}, "retrieval": True, "engine": "local"},
            headers=ANNA,
        )
    # Refused by the input's limit, or prepared: either way named, quick and bounded.
    assert answer.status_code in (200, 413, 422), (name, answer.status_code, answer.text[:300])
    if answer.status_code != 200:
        assert "message" in answer.text, name
    server.within_limits(*result(), name)
    assert server.client.get("/readyz").status_code == 200
