"""Connector checkpoints: the stored JSON of earlier versions still loads, a damaged one
restarts only what is damaged, and a checkpoint handed to the pipeline never changes later.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.checkpoints import read_graph_drive, read_graph_mail
from connectors.graph import GraphClient, GraphMail
from connectors.imap_state import FolderState, folders_checkpoint, load_folders
from connectors.local import LocalFolder
from connectors.types import Checkpoint
from tests.fakes.graph_server import FakeGraph, mailbox

DELTA = "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=a1"
NEXT = "https://graph.microsoft.com/v1.0/me/mailFolders/sentitems/messages/delta?$skiptoken=b2"


def stored(value: object) -> Any:
    """What the state store hands back: the value after a round trip through JSON."""
    return json.loads(json.dumps(value))


def test_checkpoints_stored_by_earlier_versions_load_as_they_were() -> None:
    mail = {"deltas": {"inbox": DELTA}, "next": {"sentitems": NEXT}, "resync": False}
    assert read_graph_mail(stored(mail)) == mail
    drive = {"delta": None, "next": NEXT, "resync": True, "drive_id": "b!Xy"}
    assert read_graph_drive(stored(drive)) == drive
    # IMAP checkpoints from before UIDNEXT was kept have no "uidnext".
    imap = {"folders": {"INBOX": {"uidvalidity": 7, "last_uid": 12, "uids": "1:3,12"}}}
    assert load_folders(stored(imap)) == {"INBOX": FolderState(7, 0, 12, {1, 2, 3, 12})}


def test_a_checkpoint_made_now_reads_back_the_same() -> None:
    folders = {"INBOX": FolderState(7, 13, 12, {1, 2, 3, 12}), "Sent": FolderState(2)}
    assert load_folders(stored(folders_checkpoint(folders).value)) == folders
    assert read_graph_mail(None) == {"deltas": {}, "next": {}, "resync": False}
    fresh = {"delta": None, "next": None, "resync": False, "drive_id": None}
    assert read_graph_drive(None) == fresh


@pytest.mark.parametrize(
    ("damaged", "kept"),
    [
        ({"deltas": {"inbox": 5, "archive": DELTA}, "next": [NEXT], "resync": "yes"},
         {"deltas": {"archive": DELTA}, "next": {}, "resync": False}),
        ({"deltas": None}, {"deltas": {}, "next": {}, "resync": False}),
        ([DELTA], {"deltas": {}, "next": {}, "resync": False}),
    ],
)  # fmt: skip
def test_a_damaged_mail_checkpoint_restarts_only_the_damaged_folders(
    damaged: Any, kept: object
) -> None:
    assert read_graph_mail(damaged) == kept


def test_damaged_drive_and_imap_checkpoints() -> None:
    drive = read_graph_drive({"delta": 3, "next": "", "resync": 1, "drive_id": ["x"]})
    assert drive == {"delta": None, "next": None, "resync": False, "drive_id": None}
    imap = {
        "folders": {
            "INBOX": {"uidvalidity": "seven", "last_uid": 1},
            "Old": [1, 2],
            "Huge": {"uidvalidity": 1, "last_uid": 2, "uids": "1:99999999999"},
            "Sent": {"uidvalidity": 3, "last_uid": 2, "uids": "1:2"},
        }
    }
    assert load_folders(imap) == {"Sent": FolderState(3, 0, 2, {1, 2})}
    assert load_folders({"folders": ["INBOX"]}) == {}


def test_local_checkpoints_say_how_far_the_scan_got(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("one")
    events = list(LocalFolder(tmp_path, owner="ann").load(None))
    marks = [e.value for e in events if isinstance(e, Checkpoint)]
    assert marks == [{"root": str(tmp_path.resolve()), "scanned": 1, "complete": True}]


def test_mail_checkpoints_are_snapshots_the_run_does_not_change_later() -> None:
    """The pipeline holds a checkpoint until the items before it are stored; meanwhile the
    run goes on. If a held checkpoint shared the run's dicts, a later folder's deltaLink
    would be stored before that folder's messages are."""
    graph = FakeGraph(page_size=10).serve()
    try:
        mailbox(graph, 25)  # inbox: three pages; sent items: one
        client = GraphClient(graph.url, graph.fresh_token, sleep=lambda s: None)
        conn = GraphMail(client, owner="ann", folders=("inbox", "sentitems"), page_size=10)
        seen = [(e, json.dumps(e.value)) for e in conn.load(None) if isinstance(e, Checkpoint)]
    finally:
        graph.close()
    assert len(seen) >= 4
    assert all(json.dumps(cp.value) == when_yielded for cp, when_yielded in seen)
    first = json.loads(seen[0][1])
    assert first["deltas"] == {} and set(first["next"]) == {"inbox"}
    last = json.loads(seen[-1][1])
    assert set(last["deltas"]) == {"inbox", "sentitems"} and last["next"] == {}
