"""A sync job reports the numbers the CLI's progress shows: counters, rate and ETA."""

from __future__ import annotations

from copilot.api.jobs import _progress
from copilot.ingest.pipeline import SyncReport


def test_job_progress_has_rate_and_eta_with_a_total() -> None:
    report = SyncReport(scope="local:/d", seen=10, indexed=9, failed=1, chunks=40, seconds=4.0)
    report.item_done, report.item_total, report.current = 100, 400, "big.pdf"
    numbers = _progress(report, total=30)
    assert (numbers["seen"], numbers["indexed"], numbers["failed"]) == (10, 9, 1)
    assert (numbers["item_done"], numbers["item_total"], numbers["current"]) == (
        100,
        400,
        "big.pdf",
    )
    assert numbers["rate"] == 2.5 and numbers["total"] == 30 and numbers["finished"] == 10
    # 20 items left at 2.5 a second: 8 s; but 300 chunks wait at 10 stored a second: 30 s
    assert numbers["eta_seconds"] == 30.0
    unknown = _progress(report)
    assert unknown["total"] is None and unknown["eta_seconds"] is None
