"""POST /v1/sync/outlook in Entra ID mode, over real HTTP: the caller's token is exchanged
on behalf of them at the fake Entra, and their own fake mailbox is indexed into their own
index only (tests/graph_router.py gives each person a mailbox behind one Graph address)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from tests.fakes.api_server import serving, wait_for_job
from tests.fakes.entra_fake import ANNA_OID, BOB_OID, FakeEntra
from tests.fakes.graph_router import GraphRouter


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    graph = GraphRouter()
    graph.box(ANNA_OID).add_message(subject="Walrus migration", body="The walrus plan slips.")
    graph.box(BOB_OID).add_message(subject="Narwhal budget", body="The narwhal budget grows.")
    graph.serve()
    with FakeEntra() as entra:
        settings = entra.settings(
            tmp_path_factory.mktemp("api-graph"),
            graph_base_url=graph.url,
            graph_site_drives=["b!library-1"],
            rate_limit_per_minute=10_000,
            parse_workers=1,
        )
        with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
            yield {"entra": entra, "graph": graph, "client": c, "settings": settings}
    graph.close()


CAROL_OID = "cccccccc-dddd-4eee-8fff-000000000000"


def exchanges(entra: FakeEntra) -> list[dict[str, str]]:
    return [f for f in entra.token_requests if f.get("requested_token_use") == "on_behalf_of"]


def bearer(entra: FakeEntra, oid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {entra.token(oid=oid)}"}


def search(client: httpx.Client, query: str, headers: dict[str, str]) -> list[str]:
    hits = client.post("/v1/search", json={"query": query}, headers=headers).json()
    return [h["title"] for h in hits]


def test_each_user_syncs_their_own_mailbox_with_their_own_token(world: dict[str, Any]) -> None:
    client, entra, graph = world["client"], world["entra"], world["graph"]
    anna, bob = bearer(entra, ANNA_OID), bearer(entra, BOB_OID)

    started = client.post("/v1/sync/outlook", json={}, headers=anna)
    assert started.status_code == 202, started.text
    job = wait_for_job(client, started.json(), anna)
    assert job["status"] == "done" and job["progress"]["indexed"] == 1, job
    assert "Walrus migration" in search(client, "walrus plan", anna)
    assert search(client, "walrus plan", bob) == []
    assert {t.split(".")[1] for t in graph.tokens()} == {ANNA_OID}

    job = wait_for_job(client, client.post("/v1/sync/outlook", json={}, headers=bob).json(), bob)
    assert job["status"] == "done", job
    assert "Narwhal budget" in search(client, "narwhal budget", bob)
    assert "Narwhal budget" not in search(client, "narwhal budget", anna)
    assert {t.split(".")[1] for t in graph.tokens()} == {ANNA_OID, BOB_OID}
    assert len(exchanges(entra)) == 2, "one on-behalf-of exchange per user, then the cache"

    # Anna's Graph token is revoked before her next sync: Graph answers 401, the job
    # exchanges her token again and goes on.
    graph.revoked |= {t for t in graph.tokens() if ANNA_OID in t}
    graph.box(ANNA_OID).add_message(subject="Heron sightings", body="Three herons today.")
    job = wait_for_job(client, client.post("/v1/sync/outlook", json={}, headers=anna).json(), anna)
    assert job["status"] == "done" and job["progress"]["indexed"] == 1, job
    assert len(exchanges(entra)) == 3
    assert "Heron sightings" in search(client, "herons today", anna)


def test_a_refused_exchange_fails_the_job_with_what_to_do(world: dict[str, Any]) -> None:
    client, entra = world["client"], world["entra"]
    carol = bearer(entra, CAROL_OID)
    entra.require_consent()
    job = wait_for_job(
        client, client.post("/v1/sync/outlook", json={}, headers=carol).json(), carol
    )
    assert job["status"] == "failed" and "administrator must grant consent" in job["error"]


def test_bad_sources_are_refused_with_a_plain_problem(world: dict[str, Any]) -> None:
    client, anna = world["client"], bearer(world["entra"], ANNA_OID)
    walk = client.post("/v1/sync/outlook", json={"folders": ["../users/bob"]}, headers=anna)
    assert walk.status_code == 422 and "not a mail folder" in walk.json()["detail"]
    other = client.post("/v1/sync/sharepoint", json={"drive": "b!someone-else"}, headers=anna)
    assert other.status_code == 403 and "COPILOT_GRAPH_SITE_DRIVES" in other.json()["detail"]
    missing = client.post("/v1/sync/sharepoint", json={}, headers=anna)
    assert missing.status_code == 422 and "b!library-1" in missing.json()["detail"]


def test_graph_not_configured_is_a_503_problem(tmp_path) -> None:
    with FakeEntra() as entra:
        settings = entra.settings(tmp_path, entra_client_secret=None, parse_workers=1)
        with serving(create_app(settings)) as url:
            response = httpx.post(
                f"{url}/v1/sync/outlook", json={}, headers=bearer(entra, ANNA_OID), timeout=30
            )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "COPILOT_ENTRA_CLIENT_SECRET" in response.json()["detail"]
