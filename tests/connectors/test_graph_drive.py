"""OneDrive/SharePoint files through the Graph drive connector, against the fake Graph."""

from __future__ import annotations

import pytest

from connectors.graph import GraphClient, GraphDrive
from copilot.index.search import search
from copilot.ingest.pipeline import sync
from tests.fakes.graph_server import DRIVE_ID, FakeGraph


@pytest.fixture
def graph():
    server = FakeGraph(page_size=4).serve()
    yield server
    server.close()


def connector(graph, **kw):
    client = GraphClient(graph.url, graph.fresh_token, sleep=lambda s: None)
    return GraphDrive(client, owner="ann", page_size=4, **kw)


def run(ws, conn):
    return sync(conn, ws.settings, ws.state, ws.store, ws.embedder)


def item_id(item):
    return f"graph-drive:{DRIVE_ID}:{item.id}"


def drive(graph):
    """A small drive: two folders, supported and unsupported files."""
    docs = graph.add_file("Docs", None)
    plans = graph.add_file("Plans", None, parent=docs.id)
    files = {
        "notes": graph.add_file("notes.md", b"# Notes\n\nThe heron budget is frozen.\n", docs.id),
        "plan": graph.add_file("plan.txt", b"Quarterly plan: expand the otter line.", plans.id),
        "table": graph.add_file("costs.csv", b"item,cost\nkayak,120\npaddle,30\n", "root"),
        "shared": graph.add_file("team.txt", b"Team charter for the lynx squad.", shared="users"),
        "image": graph.add_file("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, docs.id),
        "binary": graph.add_file("tool.exe", b"MZ" + b"\x00" * 64, "root"),
    }
    return files


def test_first_sync_indexes_supported_files_with_paths_and_acl(ws, graph):
    files = drive(graph)
    conn = connector(graph)
    report = run(ws, conn)
    assert report.failed == 0, report.failures
    rows = ws.state.item_states("ann", conn.scope)
    supported = {item_id(files[k]) for k in ("notes", "plan", "table", "shared")}
    assert set(rows) == supported, "folders, images and executables are not items"
    assert ws.store.count("ann") == sum(r.chunks for r in rows.values())
    hit = search(ws.store, ws.embedder, "ann", "otter line quarterly plan", k=1)[0]
    assert hit.item_id == item_id(files["plan"]) and hit.title == "plan.txt"
    assert hit.url.startswith("https://contoso.sharepoint.com/")
    # Graph's delta has no paths: they come from the folders seen in the same round.
    seen = [e for e in conn.load(None) if getattr(e, "id", "") == item_id(files["plan"])]
    assert seen[0].meta["path"] == "/Docs/Plans/plan.txt"
    assert seen[0].acl == ()
    shared = [e for e in conn.load(None) if getattr(e, "id", "") == item_id(files["shared"])]
    assert shared[0].acl == ("user:ann@contoso.com", "user:carol@contoso.com")
    # Downloads went through the 302 to the pre-authenticated download path.
    assert any(p.startswith("/download/") for p, _ in graph.requests)


def test_rename_and_move_update_title_without_embedding(ws, graph):
    files = drive(graph)
    conn = connector(graph)
    run(ws, conn)
    graph.requests.clear()
    graph.change_file(files["notes"].id, name="heron-budget.md", parent="root")
    report = run(ws, conn)
    assert report.embedded == 0 and report.indexed == 0
    assert report.renamed == 1
    hits = search(ws.store, ws.embedder, "ann", "heron budget frozen", k=1)
    assert hits[0].title == "heron-budget.md" and hits[0].url.endswith("heron-budget.md")
    assert ws.state.item("ann", item_id(files["notes"]))["title"] == "heron-budget.md"
    assert not any(p.startswith("/download/") for p, _ in graph.requests), "nothing downloaded"


def test_content_change_reembeds_only_that_file_and_deletion_removes_it(ws, graph):
    files = drive(graph)
    conn = connector(graph)
    first = run(ws, conn)
    graph.change_file(files["table"].id, data=b"item,cost\ncanoe,999\n")
    graph.delete_file(files["plan"].id)
    report = run(ws, conn)
    assert report.indexed == 1 and report.deleted == 1
    assert 0 < report.embedded < first.embedded
    assert item_id(files["plan"]) not in ws.state.item_states("ann", conn.scope)
    assert search(ws.store, ws.embedder, "ann", "canoe cost", k=1)[0].item_id == item_id(
        files["table"]
    )


def test_too_big_file_is_a_failure_naming_its_size(ws, graph):
    drive(graph)
    big = graph.add_file("huge.txt", b"x" * 3000)
    report = run(ws, connector(graph, max_bytes=2048))
    assert [f["item"] for f in report.failures] == [item_id(big)]
    assert "2.9 KB, over the 2.0 KB size cap" in report.failures[0]["reason"]
    assert not any(p == f"/download/{big.id}" for p, _ in graph.requests)


def test_resync_after_gone_deletes_what_vanished_meanwhile(ws, graph):
    files = drive(graph)
    conn = connector(graph)
    run(ws, conn)
    graph.gone_next_delta()
    graph.items.pop(files["table"].id)  # gone without a trace: no delta reports it
    report = run(ws, conn)
    assert report.failed == 0 and report.embedded == 0
    assert report.deleted == 1
    assert item_id(files["table"]) not in ws.state.item_states("ann", conn.scope)
