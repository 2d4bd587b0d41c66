"""Attachments left out of the index are reported: each becomes a parse failure naming the
attachment, its size and the cap, shown by `copilot status` and the API, and it goes away
with its message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.graph import GraphClient, GraphMail
from connectors.local import LocalFolder
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace
from tests.fakes.graph_server import FakeGraph


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    server = FakeGraph(page_size=10).serve()
    yield server
    server.close()


def run(settings, connector):
    with Workspace(settings) as ws:
        report = sync(connector, settings, ws.state, ws.store, ws.embedder)
        return report, ws.state.failures("ann"), ws.state.children


def test_graph_attachment_over_the_configured_cap_becomes_a_failure(settings, graph) -> None:
    settings = settings.model_copy(update={"graph_max_attachment_mb": 0.01})  # 10 KiB
    message = graph.add_message(
        subject="Deck review",
        body="The heron deck is attached.",
        attachments=[
            ("deck.txt", "text/plain", b"slide text " * 2000),  # 21.5 KB: over the cap
            ("notes.txt", "text/plain", b"Short notes on the heron plan."),
            ("photo.bin", "application/octet-stream", b"\x00" * 30_000),  # never indexed
        ],
    )
    client = GraphClient(graph.url, graph.fresh_token, sleep=lambda s: None)
    conn = GraphMail(client, owner="ann", folders=("inbox",))

    report, failures, _ = run(settings, conn)
    assert report.failed == 1 and report.indexed == 2, report.failures  # message + notes
    (failure,) = failures
    assert failure["item_id"] == f"graph-mail:{message.id}#skipped0:deck.txt"
    assert failure["stage"] == "parse"
    assert failure["reason"] == "attachment deck.txt is 21.5 KB, over the 10.2 KB attachment cap"
    with Workspace(settings) as ws:  # the message and its small attachment are searchable
        children = ws.state.children("ann", f"graph-mail:{message.id}")
        assert sorted(c.rsplit(":", 1)[-1] for c in children) == ["deck.txt", "notes.txt"]
        assert ws.store.count("ann") > 0

    again, failures, _ = run(settings, conn)
    assert again.failed == 0 and again.indexed == 0 and len(failures) == 1  # still listed

    graph.delete_message(message.id)
    gone, failures, _ = run(settings, conn)
    assert gone.deleted == 3 and failures == [], "the failure goes with its message"


def test_what_the_mail_parser_leaves_out_is_reported_too(settings, tmp_path) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "ann@example.com", "Many parts"
    msg.set_content("A message with more parts than the parser reads.")
    for n in range(510):
        msg.add_attachment(b"x", maintype="application", subtype="octet-stream",
                           filename=f"part-{n}.bin")  # fmt: skip
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "many.eml").write_bytes(bytes(msg))

    report, failures, _ = run(settings, LocalFolder(folder, owner="ann"))
    assert report.indexed == 1 and report.failed == 1, report.failures
    assert failures[0]["item_id"].endswith("many.eml#skipped0:")
    assert "more than 500 parts" in failures[0]["reason"]
