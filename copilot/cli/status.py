"""How ``copilot status`` shows what is indexed: per source, with when it was last synced.

Why its own module: the same summary comes from the service or from this process
(``Backend.status``), and only its presentation is the CLI's. Times are the machine's local
time for a person, ISO 8601 with the UTC offset in JSON. Source names are shown in full
(long folders wrap, never cut: two folders with a shared prefix must not look the same), and
every name, path and reason is printed as text, never as Rich markup.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import groupby
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

TIME_KEYS = ("started_at", "finished_at")


def local_time(epoch: float | None) -> str:
    """A time as a person reads it, in the machine's time zone, to the second."""
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso_time(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch).astimezone().isoformat()


def sources(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (user, source): items and chunks indexed, and its last sync (if any)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for s in summary.get("sources", []):
        rows[(s["owner"], s["scope"])] = {**s, "last_sync": None}
    for run in summary.get("syncs", []):
        key = (run["owner"], run["scope"])
        row = rows.setdefault(key, {"owner": key[0], "scope": key[1], "items": 0, "chunks": 0})
        row["last_sync"] = run
    return sorted(rows.values(), key=lambda r: (r["owner"], r["scope"]))


def as_json(summary: dict[str, Any]) -> str:
    """The summary with ISO times in place of epoch seconds, and the per-source rows."""
    out = dict(summary)
    out["syncs"] = [
        {**run, **{k: iso_time(run.get(k)) for k in TIME_KEYS}} for run in summary.get("syncs", [])
    ]
    out["sources"] = [
        {
            "owner": row["owner"],
            "scope": row["scope"],
            "items": row["items"],
            "chunks": row["chunks"],
            "last_synced": iso_time(_finished(row)),
            "last_status": row["last_sync"]["status"] if row.get("last_sync") else None,
        }
        for row in sources(summary)
    ]
    return json.dumps(out, indent=2, default=str)


def _finished(row: dict[str, Any]) -> float | None:
    run = row.get("last_sync")
    if not run:
        return None
    return run.get("finished_at") or run.get("started_at")


def show(console: Console, summary: dict[str, Any]) -> None:
    """The table and the failures, as plain text."""
    console.print(Text(f"{summary['items']} items, {summary['chunks']} chunks indexed."))
    rows = sources(summary)
    for owner, owned in groupby(rows, key=lambda r: r["owner"]):  # rows come sorted by owner
        # A heading a user, then that user's sources: the width goes to the paths. Light
        # borders; a path wraps whole, never "…" (two folders with one long prefix, or
        # local:ann and local:anna, must not look the same).
        console.print(Text(str(owner), style="bold"), soft_wrap=True)
        table = Table("source", "items", "chunks", "last synced", "status", "failed",
                      box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)  # fmt: skip
        table.columns[0].overflow = "fold"
        table.columns[3].no_wrap = True  # a time on one line; the path takes the wrapping
        for row in owned:
            run = row.get("last_sync") or {}
            failed = (run.get("counts") or {}).get("failed", "")
            table.add_row(
                Text(str(row["scope"]), overflow="fold"),
                Text(f"{row['items']:,}"),
                Text(f"{row['chunks']:,}"),
                Text(local_time(_finished(row)) if run else "never"),
                Text(str(run.get("status", ""))),
                Text(str(failed)),
            )
        console.print(table)
    for notice in summary.get("notices", []):
        console.print(Text("index: ", style="yellow") + Text(str(notice)), soft_wrap=True)
    for f in summary.get("failures", []):
        label = "note" if f["stage"] == "note" else f"failed ({f['stage']})"
        line = Text()
        line.append(label, style="cyan" if f["stage"] == "note" else "yellow")
        line.append(f" {f['item']}: {f['reason']}")
        console.print(line, soft_wrap=True)
