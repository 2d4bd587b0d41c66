"""The Graph HTTP client's retry, token and budget rules, against the fake Graph."""

from __future__ import annotations

import pytest

from connectors.graph.client import (
    BudgetExceeded,
    GraphClient,
    GraphError,
    ResyncRequired,
    TooLarge,
)
from tests.fakes.graph_server import DRIVE_ID, FakeGraph

FOLDER = "me/mailFolders/inbox?$select=id,displayName"


@pytest.fixture
def graph():
    server = FakeGraph().serve()
    yield server
    server.close()


def client(graph, **kw):
    waits = kw.pop("waits", [])
    return GraphClient(graph.url, graph.fresh_token, sleep=waits.append, **kw)


def test_retry_after_is_waited_for_then_the_request_succeeds(graph):
    waits: list[float] = []
    c = client(graph, waits=waits)
    graph.throttle(2, retry_after=4)
    assert c.get_json(FOLDER)["displayName"] == "Inbox"
    assert waits == [4, 4] and c.requests == 3


def test_throttling_that_never_ends_gives_up_after_bounded_retries(graph):
    c = client(graph, max_retries=3)
    graph.throttle(10, retry_after=1)
    with pytest.raises(GraphError, match="429"):
        c.get_json(FOLDER)
    assert c.requests == 4


def test_a_wait_past_the_budget_stops_instead_of_sleeping(graph):
    waits: list[float] = []
    c = client(graph, waits=waits, budget_s=30)
    graph.throttle(1, retry_after=120)
    with pytest.raises(BudgetExceeded):
        c.get_json(FOLDER)
    assert waits == []


def test_timeouts_are_retried_with_backoff(graph):
    waits: list[float] = []
    c = client(graph, waits=waits, timeout_s=0.2)
    graph.stall(1.0, n=2)
    assert c.get_json(FOLDER)["displayName"] == "Inbox"
    assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)


def test_expired_token_is_replaced_once(graph):
    c = client(graph)
    c.get_json(FOLDER)
    graph.expire_token()
    assert c.get_json(FOLDER)["displayName"] == "Inbox"
    assert [t for _, t in graph.requests] == ["token-1", "token-1", "token-2"]


def test_a_token_that_stays_invalid_is_an_error_not_a_loop(graph):
    c = GraphClient(graph.url, lambda: "stolen", sleep=lambda s: None)
    with pytest.raises(GraphError, match="401 InvalidAuthenticationToken"):
        c.get_json(FOLDER)
    assert c.requests == 2


def test_gone_delta_token_raises_resync_required(graph):
    c = client(graph)
    first = c.get_json("me/mailFolders/inbox/messages/delta")
    graph.gone_next_delta()
    with pytest.raises(ResyncRequired):
        c.get_json(first["@odata.deltaLink"])


def test_downloads_follow_the_redirect_and_respect_the_cap(graph):
    item = graph.add_file("a.txt", b"hello " * 100)
    c = client(graph)
    url = f"drives/{DRIVE_ID}/items/{item.id}/content"
    assert c.get_bytes(url, 10_000) == b"hello " * 100
    assert graph.requests[-1][0] == f"/download/{item.id}"
    with pytest.raises(TooLarge):
        c.get_bytes(url, 100)


def test_not_found_names_the_graph_error(graph):
    with pytest.raises(GraphError, match="404 ErrorItemNotFound") as info:
        client(graph).get_json("me/messages/nope/$value")
    assert info.value.status == 404
