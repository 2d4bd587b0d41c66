"""Progress of long commands: a Rich bar on a terminal, plain lines when output is piped.

Why both: a person at a terminal wants a live bar with a total and an ETA; a log file or a
CI job wants lines it can read afterwards, not terminal control codes. The rule the CLI
keeps: no command runs more than ``PLAIN_EVERY_S`` without showing that it is alive.
``--json`` and ``--quiet`` runs show nothing (pass ``enabled=False``).

The sync's numbers come from the pipeline's ``SyncReport`` (the callback also fires while
a large item's chunks are embedded: ``item_done``/``item_total``); the total comes from
counting the files first (:func:`count_files`), which may stop early and then reads "~N".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from copilot.ingest.report import Numbers, finished, rate_and_eta

PLAIN_EVERY_S = 2.0  # a piped run prints a line at most (and, while busy, about) this often


@dataclass(frozen=True)
class Total:
    """How many items a run will see: ``exact`` False means "about" (counting stopped)."""

    count: int
    exact: bool = True

    def __str__(self) -> str:
        return f"{self.count:,}" if self.exact else f"~{self.count:,}"


def count_files(root: Path, *, limit: int | None = None, budget_s: float | None = None) -> Total:
    """The files under ``root`` (hidden folders skipped, as the local connector does), or an
    estimate when there are more than ``limit`` or counting takes longer than ``budget_s``
    (defaults: ``cli_ops.COUNT_LIMIT``, ``COUNT_BUDGET_S``). The service counts a folder it
    syncs the same way (``cli_ops.count_files``)."""
    from copilot.api import cli_ops

    return Total(*cli_ops.count_files(root, limit=limit or cli_ops.COUNT_LIMIT,
                                      budget_s=budget_s or cli_ops.COUNT_BUDGET_S))  # fmt: skip


def _rate_and_eta(done: int, seconds: float, total: int | None) -> tuple[float, float | None]:
    rate = done / seconds if seconds > 0 else 0.0
    if total is None or rate <= 0:
        return rate, None
    return rate, max(total - done, 0) / rate


def counters(report: Numbers) -> str:
    """The counters every display shows, in one line of plain text."""
    line = (
        f"indexed {report.indexed:,}  unchanged {report.unchanged:,}  failed {report.failed:,}  "
        f"chunks {report.chunks:,}"
    )
    if 0 < report.item_done < report.item_total:  # a large item: how far into it
        name = report.current if len(report.current) <= 40 else "…" + report.current[-39:]
        line += f"  (embedding {report.item_done:,}/{report.item_total:,} chunks of {name})"
    return line


def plain_line(report: Numbers, total: Total | None) -> str:
    """One line for a log: items finished n of N, the counters, rate and ETA."""
    rate, eta = rate_and_eta(report, total.count if total is not None else None)
    done = finished(report)
    seen = f"{done:,} of {total}" if total is not None else f"{done:,}"
    tail = f"  {rate:,.1f} items/s"
    if eta is not None:
        tail += f"  ETA {_duration(eta)}"
    return f"sync: items {seen}  {counters(report)}{tail}"


def _duration(span: float) -> str:
    whole = round(span)
    if whole < 60:
        return f"{whole} s"
    minutes, seconds = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class SyncProgress:
    """Shows one sync: ``update(report)`` from the pipeline's callback, ``waiting()`` while
    another sync holds the index. Use as a context manager (``sync_progress``)."""

    def __init__(self, console: Console, total: Total | None, *, enabled: bool = True) -> None:
        self.console = console
        self.total = total
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self._last_plain = 0.0
        self._last: Numbers | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self) -> None:
        if not self.enabled:
            return
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("items"),
                BarColumn(bar_width=24),
                MofNCompleteColumn()
                if self.total and self.total.exact
                else TextColumn("{task.completed:,.0f}"),
                TextColumn("{task.description}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            total = self.total.count if self.total else None
            self._task = self._progress.add_task("starting…", total=total, rate="")
        else:
            about = f" ({self.total} files)" if self.total is not None else ""
            self._print(f"sync: starting{about}")

    def update(self, report: Numbers) -> None:
        self._last = report
        if not self.enabled:
            return
        if self._progress is not None and self._task is not None:
            total = self.total.count if self.total else None
            rate, _ = rate_and_eta(report, total)
            if total is not None and report.seen > total:  # "~N" was low, or files were added
                total = report.seen
            self._progress.update(
                self._task,
                completed=finished(report),
                total=total,
                description=counters(report),
                rate=f"{rate:,.1f}/s",
            )
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            self._print(plain_line(report, self.total))

    def waiting(self) -> None:
        if not self.enabled:
            return
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description="waiting for another sync to finish…")
        else:
            self._print("sync: waiting for another sync to finish…")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self.enabled and self._last is not None:
            self._print(plain_line(self._last, self.total))  # the final numbers, always

    def _print(self, line: str) -> None:
        # Text, never markup: a path like "[old]/x" must print as it is.
        self.console.print(Text(line), soft_wrap=True, highlight=False)


@contextmanager
def sync_progress(
    console: Console, total: Total | None, *, enabled: bool = True
) -> Iterator[SyncProgress]:
    """A started ``SyncProgress``, stopped (final line printed) however the block ends."""
    shown = SyncProgress(console, total, enabled=enabled)
    shown.start()
    try:
        yield shown
    finally:
        shown.stop()


@contextmanager
def steps(
    console: Console, label: str, total: int | None, *, enabled: bool = True
) -> Iterator[Any]:
    """A simple "label n of N" progress for eval-style loops; yields ``advance(n=1)``.

    On a terminal a bar with ETA; piped, a line at most every ``PLAIN_EVERY_S`` and at the end.
    """
    if not enabled:
        yield lambda n=1: None
        return
    if console.is_terminal:
        with Progress(
            SpinnerColumn(),
            TextColumn(label),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(label, total=total)
            yield lambda n=1: progress.advance(task, n)
        return
    started = time.monotonic()
    state = {"done": 0, "last": 0.0}

    def line() -> str:
        done = state["done"]
        seconds = time.monotonic() - started
        of = f" of {total:,}" if total is not None else ""
        rate, eta = _rate_and_eta(int(done), seconds, total)
        tail = f"  ETA {_duration(eta)}" if eta is not None else ""
        return f"{label}: {int(done):,}{of}  {rate:,.1f}/s{tail}"

    def advance(n: int = 1) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= PLAIN_EVERY_S:
            state["last"] = now
            console.print(Text(line()), soft_wrap=True, highlight=False)

    console.print(Text(f"{label}: starting" + (f" ({total:,})" if total is not None else "")))
    yield advance
    console.print(Text(line()), soft_wrap=True, highlight=False)
