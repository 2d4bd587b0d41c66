"""Hostile personal templates and oversized inputs, against the real server.

Each template is saved as the user's own skill (``PUT /v1/skills/{id}``) and previewed
(``POST /v1/skills/{id}/preview``). Before the fix, one line of template took hundreds of
megabytes of the server (``center(10**8)``: +336 MB; ``'%0200000000d' % 1``: up to +953 MB)
or minutes of CPU (a loop over ``replace``: 150 s; ``|list|sort``: over 5 minutes). Each is
now a 422 naming the line, answered within seconds, and the server barely grows.
"""

from __future__ import annotations

import json

import pytest

from tests.hostile.conftest import ANNA, Server

ATTACKS = {
    "center": "{{ '😀'|center(10**8) }}",
    "percent": "{{ '%0200000000d' % 1 }}",
    "ljust": "{{ 'a'.ljust(10**8) }}",
    "rjust": "{{ 'a'.rjust(10**8) }}",
    "zfill": "{{ 'a'.zfill(10**8) }}",
    "format": "{{ '{:>100000000}'.format('x') }}",
    "nested format": "{{ '{:>{w}}'.format('x', w=10**8) }}",
    "format filter": "{{ '%0200000000d'|format(1) }}",
    "indent": "{{ ('a\\n' * 50000)|indent('x' * 1000) }}",
    "wordwrap": "{{ ('a ' * 50000)|wordwrap(1, wrapstring='x' * 100) }}",
    "times": "{{ 'x' * 10**9 }}",
    "power": "{{ 9 ** 9999999 }}",
    "replace": "{{ ('a' * 1000)|replace('a', 'b' * 10000) }}",
    "join": "{{ ('x' * 10000).join(['a'] * 100000) }}",
    "doubling": "{% set ns = namespace(a='x' * 1000) %}{% for i in range(30) %}"
    "{% set ns.a = ns.a ~ ns.a %}{% endfor %}{{ ns.a|length }}",
    "loop over replace": "{% for i in range(100000) %}{{ ('x' * 10000).replace('x', 'yy')"
    "|length }}{% endfor %}",
    "list sort": "{% for i in range(100000) %}{% set y = range(100000)|list|sort %}{% endfor %}",
    # allocates nothing, so only the clock stops it
    "deadline": "{% for i in range(100000) %}{% if text.count('ab') %}x{% endif %}{% endfor %}",
}


def template(body: str) -> str:
    return (
        "---\nname: Hostile\ninputs:\n  text:\n    kind: string\n    default: ''\n"
        f"metadata:\n  retrieval:\n    enabled: false\n---\nsystem:\nHello.\nuser:\n{body}\n"
    )


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_hostile_template_is_refused_fast_and_small(server: Server, attack: str) -> None:
    skill_id = "hostile-" + attack.replace(" ", "-")
    saved = server.client.put(
        f"/v1/skills/{skill_id}", json={"text": template(ATTACKS[attack])}, headers=ANNA
    )
    assert saved.status_code == 200, saved.text
    inputs = {"text": "a" * 399_000} if attack == "deadline" else {}
    with server.watched() as measured:
        response = server.client.post(
            f"/v1/skills/{skill_id}/preview", json={"inputs": inputs}, headers=ANNA
        )
    seconds, growth = measured()
    print(f"{attack}: {response.status_code} after {seconds:.2f} s, server +{growth} MB")
    server.within_limits(seconds, growth, attack)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert "blocked by the sandbox" in problem["detail"] and problem["line"] == 14


def test_a_20_mb_input_is_refused_by_size_first(server: Server) -> None:
    """It once cost 8 s of CPU before a later check refused it."""
    body = json.dumps({"inputs": {"text": "x" * 20_000_000}})
    cpu = server.process.cpu_times()
    with server.watched() as measured:
        response = server.client.post(
            "/v1/skills/summarise/preview",
            content=body,
            headers={**ANNA, "Content-Type": "application/json"},
        )
    seconds, growth = measured()
    spent = sum(server.process.cpu_times()[:2]) - sum(cpu[:2])
    print(f"20 MB input: {response.status_code} after {seconds:.2f} s, {spent:.2f} s CPU")
    server.within_limits(seconds, growth, "a 20 MB input")
    assert response.status_code == 422, response.text
    assert "text is 20,000,000 characters" in response.json()["detail"]
    assert spent < 2.0
