"""Graph mail sync: first-sync throughput, and an incremental (delta) sync against a full
re-sync of the same mailbox without delta.

Why this comparison: a connector without delta support has to page through every message
and compare change keys on every run to find 100 changes; the delta connector asks each
folder for what changed. Both runs below apply the same mix of 100 changes (new, edited,
moved, deleted) to one mailbox served by the fake Graph in tests/graph_server.py, on one
index, one after the other in this process; both embed exactly the changed messages, so
the ratio is the cost of finding the changes.

Prints JSON lines (each with a "name"): mailbox, first_sync, incremental_delta,
full_resync_baseline, summary.

    .venv/bin/python bench/sync_graph.py [--messages 10000] [--changes 100] [--keep DIR]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before any Hugging Face import: never the network

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.graph import GraphClient, GraphMail
from connectors.types import Checkpoint, Failure, Item
from copilot.config import get_settings
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace
from tests.fakes.graph_server import FakeGraph, mailbox

FOLDERS = ("inbox", "sentitems", "archive")


def emit(record: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(record), flush=True)
    return record


class NoDelta:
    """The baseline: what a connector without delta does each run — list every message
    from scratch (the pipeline skips unchanged change keys) and find deletions by listing."""

    def __init__(self, mail: GraphMail) -> None:
        self.mail, self.scope, self.owner = mail, mail.scope, mail.owner
        self.ids: set[str] = set()

    def load(self, checkpoint: dict[str, Any] | None) -> Iterator[Any]:
        for event in self.mail.load(None):
            if isinstance(event, Item | Failure):
                self.ids.add(event.id if isinstance(event, Item) else event.item)
            if not isinstance(event, Checkpoint):  # keep the delta connector's checkpoint
                yield event

    def list_ids(self) -> set[str]:
        return self.ids


def change(graph: FakeGraph, n: int, rng: random.Random, tag: str) -> tuple[set[str], set[str]]:
    """``n`` changes: 40% new, 30% edited, 15% moved, 15% deleted. Returns the ids of the
    messages that are new to the index (new, and moved ones under their new id) and of the
    edited ones (whose attachments are unchanged, so not embedded again)."""
    ids = sorted(graph.messages)
    rng.shuffle(ids)
    touched: set[str] = set()
    edited: set[str] = set()
    n_new, n_edit, n_move = int(n * 0.4), int(n * 0.3), int(n * 0.15)
    for i in range(n_new):
        body = f"New {tag} message {i} on the {tag}-{i} rollout."
        touched.add(graph.add_message("inbox", subject=f"New {tag} {i}", body=body).id)
    for mid in ids[:n_edit]:
        graph.edit_message(mid, body=f"Edited {tag}: the plan for {mid} changed.")
        edited.add(mid)
    for mid in ids[n_edit : n_edit + n_move]:
        touched.add(graph.move_message(mid, "archive").id)
    for mid in ids[n_edit + n_move : n - n_new]:
        graph.delete_message(mid)
    return touched, edited


def expected_chunks(ws: Workspace, scope: str, new: set[str], edited: set[str]) -> int:
    """Chunks of the new messages and their attachments, and of the edited messages."""
    rows = ws.state.item_states("ann", scope)
    wanted = {f"graph-mail:{m}" for m in new}
    edited_ids = {f"graph-mail:{m}" for m in edited}

    def top(item_id: str) -> str:
        while rows[item_id].parent_id:
            item_id = rows[item_id].parent_id  # type: ignore[assignment]
        return item_id

    whole = sum(s.chunks for i, s in rows.items() if top(i) in wanted)
    return whole + sum(rows[i].chunks for i in edited_ids if i in rows)


def timed(ws: Workspace, connector: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    report = sync(connector, ws.settings, ws.state, ws.store, ws.embedder)
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="added to every Graph answer (real Graph: 50-300)",
    )
    parser.add_argument("--keep", type=Path, help="write the index here instead of a temp dir")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    home = args.keep or Path(tempfile.mkdtemp(prefix="bench-graph-"))
    models = Path(sys.prefix) / "share" / "copilot-models"
    settings = get_settings(home=str(home), models_dir_override=models)

    graph = FakeGraph(page_size=50)
    graph.latency = args.latency_ms / 1000
    graph.serve()
    try:
        mailbox(graph, args.messages)
        emit(
            {
                "name": "mailbox",
                "messages": len(graph.messages),
                "changes": args.changes,
                "latency_ms": args.latency_ms,
            }
        )
        client = GraphClient(graph.url, graph.fresh_token)
        mail = GraphMail(client, owner="ann", folders=FOLDERS)
        with Workspace(settings) as ws:
            ws.embedder.embed_documents(["warm up the model before the clock starts"])
            report, seconds = timed(ws, mail)
            emit(
                {
                    "name": "first_sync",
                    "items": report.indexed,
                    "chunks": report.chunks,
                    "failed": report.failed,
                    "seconds": round(seconds, 2),
                    "messages_per_s": round(args.messages / seconds, 1),
                    "items_per_s": round(report.indexed / seconds, 1),
                    "requests": client.requests,
                }
            )
            results = {}
            for name, connector in (
                ("incremental_delta", mail),
                ("full_resync_baseline", NoDelta(mail)),
            ):
                new, edited = change(graph, args.changes, rng, name)
                before = client.requests
                report, seconds = timed(ws, connector)
                expected = expected_chunks(ws, mail.scope, new, edited)
                results[name] = emit(
                    {
                        "name": name,
                        "seconds": round(seconds, 3),
                        "embed_seconds": round(report.embed_seconds, 3),
                        "embedded": report.embedded,
                        "expected_embedded": expected,
                        "exact": report.embedded == expected,
                        "indexed": report.indexed,
                        "deleted": report.deleted,
                        "unchanged": report.unchanged,
                        "requests": client.requests - before,
                        "failed": report.failed,
                    }
                )
            base, delta = results["full_resync_baseline"], results["incremental_delta"]
            emit(
                {
                    "name": "summary",
                    "baseline": "full_resync_baseline",
                    "speedup": round(base["seconds"] / max(delta["seconds"], 1e-9), 1),
                    "request_ratio": round(base["requests"] / max(delta["requests"], 1), 1),
                }
            )
    finally:
        graph.close()


if __name__ == "__main__":
    main()
