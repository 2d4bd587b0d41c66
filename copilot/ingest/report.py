"""What one sync did, as the sync pipeline counts it and the progress line shows it.

Apart from the pipeline so that what callers read (the CLI's progress line, the API's job
progress, the service client rebuilding a report from JSON) is defined in one small place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
