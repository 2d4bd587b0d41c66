"""A received mail that closes its fence and writes instructions after it, sent as each
input of each built-in skill to the real server's preview (what would be sent to the model):
the attacker's text must stay inside one fence."""

from __future__ import annotations

import pytest

from copilot.skills.templates.builtin import builtin_ids, load_builtin
from tests.hostile.conftest import ANNA, Server
from tests.skills.test_fences import ATTACK, MARK, fenced_spans, prints, tags

CASES = [
    (skill_id, name)
    for skill_id in builtin_ids()
    for name, spec in load_builtin(skill_id).inputs.items()
    if spec.type == "string" and not spec.enum
]
# Inputs with a list of allowed values never reach the prompt with other text: the attack
# is refused before rendering, naming the allowed values.
CHOICES = [
    (skill_id, name)
    for skill_id in builtin_ids()
    for name, spec in load_builtin(skill_id).inputs.items()
    if spec.type == "string" and spec.enum
]


def preview(server: Server, skill_id: str, inputs: dict[str, str]) -> list[dict[str, str]]:
    response = server.client.post(
        f"/v1/skills/{skill_id}/preview",
        json={"inputs": inputs, "retrieval": False, "engine": "local"},
        headers=ANNA,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


@pytest.mark.parametrize(("skill_id", "name"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_the_attack_stays_inside_one_fence(server: Server, skill_id: str, name: str) -> None:
    sample = {k: str(v) for k, v in (load_builtin(skill_id).sample or {}).items()}
    benign = preview(server, skill_id, {**sample, name: "Thanks for the figures."})
    attacked = preview(server, skill_id, {**sample, name: ATTACK})
    assert [m["role"] for m in attacked] == [m["role"] for m in benign]
    seen = 0
    for before, after in zip(benign, attacked, strict=True):
        outside, spans = fenced_spans(after["content"])
        assert MARK not in outside, after["content"]
        assert tags(after["content"]) == tags(before["content"])
        seen += sum(MARK in span for span in spans)
    template = load_builtin(skill_id)
    via = "context" if (skill_id, name) == ("summarise", "text") else name
    assert bool(seen) == prints(template, via), f"{skill_id}: {name} printed {seen} times"


@pytest.mark.parametrize(("skill_id", "name"), CHOICES, ids=[f"{s}-{n}" for s, n in CHOICES])
def test_an_attack_in_a_choice_is_refused_before_rendering(
    server: Server, skill_id: str, name: str
) -> None:
    sample = {k: str(v) for k, v in (load_builtin(skill_id).sample or {}).items()}
    response = server.client.post(
        f"/v1/skills/{skill_id}/preview",
        json={"inputs": {**sample, name: ATTACK}, "retrieval": False, "engine": "local"},
        headers=ANNA,
    )
    assert response.status_code in (400, 422), response.text
    allowed = load_builtin(skill_id).inputs[name].enum
    assert allowed and all(str(value) in response.text for value in allowed)
    assert MARK not in response.text  # the refusal does not echo the attack


@pytest.mark.parametrize(
    ("turns", "field"),
    [
        ([{"question": "q", "answer": "a"}] * 21, "conversation"),  # more turns than allowed
        ([{"question": "q", "answer": "a" * 20_001}], "answer"),  # a turn over its size
        ([{"question": ATTACK * 100, "answer": "a"}], "question"),
    ],
    ids=["21-turns", "huge-answer", "huge-question"],
)
def test_an_oversized_conversation_is_refused_naming_the_field(
    server: Server, turns: list[dict[str, str]], field: str
) -> None:
    with server.watched() as measured:
        response = server.client.post(
            "/v1/skills/ask/run",
            json={"inputs": {"question": "And then?"}, "conversation": turns, "engine": "local"},
            headers=ANNA,
        )
    seconds, growth_mb = measured()
    assert response.status_code == 422, response.text
    assert field in response.text and MARK not in response.text
    assert seconds < 5 and growth_mb < 50
