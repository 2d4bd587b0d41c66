"""Hostile requests to the index routes a service keeps for its own API workers
(``/internal/index/*``, ``copilot.api.internal``) and to the worker headers: refused
with a clear answer, fast and small, and the server goes on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.hostile.conftest import ANNA, Server


def service_token(server: Server) -> str:
    """The service's local admin token, as this machine's CLI reads it."""
    info = json.loads((server.home / "service.json").read_text())
    assert info["pid"] == server.process.pid
    return str(info["token"])


WITHOUT_TOKEN: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("no token", {}, {"owner": "local:anna", "text": "x"}),
    ("a user's token", ANNA, {"owner": "local:bob", "text": "x"}),
    ("a forged worker proof", {**ANNA, "X-Copilot-Worker": "guess", "X-Copilot-Client": "::1"},
     {"owner": "local:bob", "text": "x"}),
]  # fmt: skip


@pytest.mark.parametrize("name,headers,body", WITHOUT_TOKEN, ids=[w[0] for w in WITHOUT_TOKEN])
def test_only_the_service_itself_may_search_any_owner(
    server: Server, name: str, headers: dict[str, str], body: dict[str, Any]
) -> None:
    with server.watched() as result:
        answer = server.client.post("/internal/index/search", headers=headers, json=body)
    assert answer.status_code == 403 and "/internal" in answer.text, name
    server.within_limits(*result(), name)


def test_malformed_index_requests_are_named_even_with_the_token(server: Server) -> None:
    machine = {"Authorization": f"Bearer {service_token(server)}"}
    wrong_size = base64.b64encode(b"\0" * 4 * 5).decode()
    cases = {
        "a vector of the wrong size": ({"dense": wrong_size}, "20 bytes is not 384"),
        "a vector that is not base64": ({"dense": "%%%"}, "bad search request"),
        "an unknown filter": ({"filters": {"owner": ["local:bob"]}}, "bad search request"),
        "a filter of the wrong type": ({"filters": {"kinds": "mail"}}, "'kinds'"),
        "k over the limit": ({"k": 10**9}, "k"),
        "a 1 MB query": ({"text": "x" * 1_000_000}, "text"),
    }
    search = "/internal/index/search"
    for name, (extra, named) in cases.items():
        body = {"owner": "local:anna", "text": "x", **extra}
        with server.watched() as result:
            answer = server.client.post(search, headers=machine, json=body)
        assert answer.status_code == 422 and named in answer.text, (name, answer.text[:300])
        server.within_limits(*result(), name)
    ids = {"owner": "local:anna", "ids": [f"id-{i}" for i in range(10_000)]}
    too_many = server.client.post("/internal/index/vectors", headers=machine, json=ids)
    assert too_many.status_code == 422
    assert server.client.get("/healthz").status_code == 200  # and it goes on
