"""What one sync did, as the sync pipeline counts it and the progress line shows it.

Apart from the pipeline so that what callers read (the CLI's progress line, the API's job
progress, the service client rebuilding a report from JSON) is defined in one small place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# The failures table's stage of a note: the item is indexed, but not all of it densely.
NOTE_STAGE = "note"


@dataclass
class SyncReport:
    """What one sync did; also what the progress bar shows."""

    scope: str
    seen: int = 0
    unchanged: int = 0
    indexed: int = 0
    failed: int = 0
    deleted: int = 0
    renamed: int = 0  # same content under a new title/url: payload updated, not re-embedded
    chunks: int = 0
    embedded: int = 0
    keyword_only: int = 0  # chunks stored for BM25 only, over the embedding budget
    reused: int = 0  # of the embedded, vectors found in the index or made once for copies
    seconds: float = 0.0
    embed_seconds: float = 0.0
    item_done: int = 0  # chunks of the item (or the batch of small ones) being stored,
    item_total: int = 0  # done / total: a large item's progress, so the line never sits still
    current: str = ""  # the title of that item (of the largest, "and N more")
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)  # {"item", "note"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, Any]:
        """The totals the sync history keeps (no lists, nothing about one item)."""
        counts = self.as_dict()
        for key in ("failures", "notes", "current", "item_done", "item_total"):
            counts.pop(key)
        return counts


class Numbers(Protocol):
    """What a progress display reads from a ``SyncReport``."""

    seen: int
    indexed: int
    unchanged: int
    failed: int
    renamed: int
    chunks: int
    seconds: float
    item_done: int
    item_total: int
    current: str


def finished(numbers: Numbers) -> int:
    """Items done with: stored, unchanged, renamed or failed (at most the items read).

    Not ``seen``, which counts an item as soon as it is read: reading runs ahead of
    embedding, and at the end of a folder of 55 PDFs every file had been read ("55 of 55,
    ETA 0 s") while 824 of their chunks waited for 45 s more.
    """
    done = numbers.indexed + numbers.unchanged + numbers.renamed + numbers.failed
    return min(numbers.seen, done)


def rate_and_eta(numbers: Numbers, total: int | None) -> tuple[float, float | None]:
    """Items finished a second so far, and the seconds left (None when unknown).

    While items are still being read, the items left at that rate (or the chunks waiting
    to be embedded, if they take longer); once every item is read, the chunks waiting at
    the rate chunks were stored so far: items finish a batch at a time (the 36 PDFs above
    all at once), so their rate says little about the end."""
    if numbers.seconds <= 0:
        return 0.0, None
    done = finished(numbers)
    rate = done / numbers.seconds
    if total is None:
        return rate, None
    waiting = max(numbers.item_total - numbers.item_done, 0)
    chunk_rate = numbers.chunks / numbers.seconds
    by_chunks = waiting / chunk_rate if waiting and chunk_rate > 0 else None
    if numbers.seen >= total and by_chunks is not None:
        return rate, by_chunks
    by_items = max(total - done, 0) / rate if rate > 0 else None
    etas = [eta for eta in (by_items, by_chunks) if eta is not None]
    return rate, max(etas) if etas else None
