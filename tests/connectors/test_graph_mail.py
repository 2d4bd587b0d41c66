"""Outlook mail through the Graph connector, against the fake Graph in tests/graph_server.py.

Each test runs the real pipeline into an index in tmp_path and compares what the index
holds with what the fake mailbox holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import qdrant_edge as qe

from connectors.graph import GraphClient, GraphMail
from copilot.index.filters import scoped
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace
from tests.fakes.graph_server import FakeGraph, mailbox

FOLDERS = ("inbox", "sentitems", "archive")


@pytest.fixture
def graph():
    server = FakeGraph(page_size=10).serve()
    yield server
    server.close()


def connector(graph, **client_kw):
    client = GraphClient(graph.url, graph.fresh_token, sleep=lambda s: None, **client_kw)
    return GraphMail(client, owner="ann", folders=FOLDERS, page_size=10)


def run(ws, conn):
    return sync(conn, ws.settings, ws.state, ws.store, ws.embedder)


def top_level(ws, conn):
    """Indexed message ids (attachments left out) and every indexed id's chunk count."""
    rows = ws.state.item_states("ann", conn.scope)
    messages = {i for i, s in rows.items() if s.parent_id is None and s.status == "indexed"}
    return messages, {i: s.chunks for i, s in rows.items()}


def payloads(ws, item_id):
    flt = scoped("ann", qe.FieldCondition("item_id", match=qe.MatchValue(item_id)))
    records, _ = ws.store.client.scroll(qe.ScrollRequest(limit=100, filter=flt, with_payload=True))
    return [r.payload for r in records]


def source_ids(graph):
    return {f"graph-mail:{m}" for f in FOLDERS for m in graph.folder_ids(f)}


def assert_index_matches(ws, conn, graph):
    messages, chunks = top_level(ws, conn)
    assert messages == source_ids(graph)
    stored = {i: len(ws.store.item_chunk_ids("ann", i)) for i in chunks}
    assert stored == chunks, "every item has exactly the chunks its state row says"
    assert ws.store.count("ann") == sum(chunks.values())


def test_first_sync_indexes_the_mailbox_with_attachments_as_children(ws, graph):
    made = mailbox(graph, 25)
    conn = connector(graph)
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    assert_index_matches(ws, conn, graph)
    first = made[0]
    children = ws.state.children("ann", f"graph-mail:{first.id}")
    names = sorted(c.split(":", 2)[-1] for c in children)
    # Two supported files and the attached message; the .bin photo is not indexed.
    assert names == ["Forwarded 0.eml", "notes-0.txt", "table-0.csv"]
    row = ws.state.item("ann", f"graph-mail:{first.id}")
    assert row["title"] == first.subject and row["url"].startswith("https://outlook")
    # Metadata from Graph reaches the index payload: folder display name and sender.
    assert {p["folder"] for p in payloads(ws, f"graph-mail:{made[3].id}")} == {"Sent Items"}
    assert {p["sender"] for p in payloads(ws, f"graph-mail:{made[3].id}")} == {"bob@contoso.com"}
    # Every delta page was read with the bearer token; MIME was fetched once per message.
    mime = [p for p, _ in graph.requests if p.endswith("/$value")]
    assert len(mime) == 25 and all(t == "token-1" for _, t in graph.requests)


def test_incremental_sync_processes_only_the_changes(ws, graph):
    made = mailbox(graph, 25)
    conn = connector(graph)
    run(ws, conn)
    graph.requests.clear()
    new = graph.add_message("inbox", subject="Fresh news", body="A brand new zebra-crossing memo.")
    graph.edit_message(made[1].id, body="Edited body mentioning the walrus plan.")
    graph.delete_message(made[5].id)  # has attachments: they go too
    moved = graph.move_message(made[2].id, "sentitems")
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    assert report.indexed == 3  # new, edited, moved (a move is a new id in Graph)
    assert report.deleted == 2 + 3  # made[5] with its 3 attachments, made[2]'s old id
    one_message = ws.state.item_states("ann", conn.scope)[f"graph-mail:{new.id}"].chunks
    assert report.embedded <= 3 * one_message + 3
    assert_index_matches(ws, conn, graph)
    assert f"graph-mail:{moved.id}" in top_level(ws, conn)[0]
    mime = [p for p, _ in graph.requests if p.endswith("/$value")]
    assert len(mime) == 3, "only changed messages are downloaded"
    again = run(ws, conn)
    assert again.indexed == again.embedded == again.deleted == 0


def test_message_over_the_size_cap_is_indexed_from_its_body_alone(ws, graph):
    big = graph.add_message(
        "inbox",
        subject="Quarterly deck",
        body="The narwhal forecast is attached.",
        attachments=[("deck.txt", "text/plain", b"slide " * 5000)],
    )
    conn = connector(graph)
    conn.max_mime_bytes = 10_000
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    assert ws.state.children("ann", f"graph-mail:{big.id}") == []
    text = ws.state.display_text("ann", f"graph-mail:{big.id}")
    assert "narwhal forecast" in text and "Attachments not indexed" in text


def test_throttling_is_honoured(ws, graph):
    mailbox(graph, 12)
    waits = []
    client = GraphClient(graph.url, graph.fresh_token, sleep=waits.append)
    graph.throttle(3, retry_after=7)
    report = run(ws, GraphMail(client, owner="ann", folders=FOLDERS, page_size=10))
    assert report.failed == 0, report.failures
    assert waits == [7, 7, 7] and client.waited_s == 21
    assert_index_matches(ws, GraphMail(client, owner="ann", folders=FOLDERS), graph)


def test_gone_delta_token_resyncs_without_duplicates_and_finds_deletions(ws, graph):
    made = mailbox(graph, 25)
    conn = connector(graph)
    run(ws, conn)
    before = ws.store.count("ann")
    graph.gone_next_delta()
    graph.delete_message(made[10].id)  # deleted while the token is invalid
    graph.removed.pop(made[10].id)  # ...so no delta will ever report it
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    assert report.embedded == 0, "a resync re-embeds nothing unchanged"
    assert report.deleted == 4  # made[10] and its three attachments, found by listing
    assert_index_matches(ws, conn, graph)
    assert ws.store.count("ann") < before


def test_expired_token_is_refreshed_mid_sync(ws, graph):
    mailbox(graph, 25)
    conn = connector(graph)
    calls = []

    def provider():
        calls.append(1)
        if len(calls) == 1:
            graph.expire_token()  # expires right after it was handed out
            return graph.token
        return graph.fresh_token()

    conn.client.token_provider = provider
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    assert len(calls) == 2 and graph.token == "token-2"
    assert_index_matches(ws, conn, graph)


def test_budget_stops_cleanly_and_the_next_run_resumes(ws, graph):
    mailbox(graph, 25)
    clock = lambda: float(len(graph.requests))  # noqa: E731 - each request takes "a second"
    client = GraphClient(graph.url, graph.fresh_token, budget_s=5, clock=clock)
    conn = GraphMail(client, owner="ann", folders=FOLDERS, page_size=10)
    first = run(ws, conn)
    assert [f["reason"] for f in first.failures if "budget" in f["reason"]], first.failures
    assert len(top_level(ws, conn)[0]) == 10, "the first page, then a clean stop"
    client.budget_s = None
    second = run(ws, conn)
    assert second.failed == 0 and second.indexed > 0
    assert_index_matches(ws, conn, graph)
    assert second.unchanged <= 10, "the second run resumed instead of starting over"


KILLER = """
import sys
from connectors.graph import GraphClient, GraphMail
from copilot.config import Settings
from copilot.index.filters import scoped
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace

url, token = sys.argv[1], sys.argv[2]
client = GraphClient(url, lambda: token)
conn = GraphMail(client, owner="ann", folders=("inbox", "sentitems", "archive"), page_size=10)
settings = Settings()
with Workspace(settings) as ws:
    sync(conn, settings, ws.state, ws.store, ws.embedder)
sys.exit(3)  # reaching here means the kill never came
"""


@pytest.mark.parametrize("after", [9, 23])
def test_sync_killed_mid_run_resumes_to_exactly_the_mailbox(settings, graph, home, after):
    mailbox(graph, 25)
    graph.hold_after(after)  # request number after+1 blocks: the client is mid-request
    env = {**os.environ, "COPILOT_HOME": str(home), "COPILOT_EMBED_BATCH": "4"}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLER, graph.url, graph.token],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(graph.requests) <= after and time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"the sync ended early: {child.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    child.stderr.close()  # type: ignore[union-attr]  # a pipe: opened above
    graph.hold_after(None)
    graph.release.set()

    conn = connector(graph)
    with Workspace(settings) as fresh:
        report = run(fresh, conn)
        assert report.failed == 0, report.failures
        assert_index_matches(fresh, conn, graph)
        children = [i for i, s in fresh.state.item_states("ann", conn.scope).items() if s.parent_id]
        assert len(children) == 5 * 3 + 0, "every attachment of every message is indexed"
