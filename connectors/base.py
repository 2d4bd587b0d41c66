"""The connector interface: how any source hands items to the ingestion pipeline.

A connector is any object with these attributes. It is a ``Protocol`` rather than a base
class so a connector is a plain object with no framework to inherit from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from connectors.checkpoints import StoredCheckpoint
from connectors.types import Checkpoint, Deleted, Failure, Item


class Connector(Protocol):
    """A source of items for one user.

    ``scope`` names what this connector covers (``local:/home/ann/Documents``,
    ``graph-mail:ann@contoso.com``): checkpoints are stored per scope, and deletion
    detection only ever removes items of the same scope.
    """

    scope: str
    owner: str

    def load(
        self, checkpoint: StoredCheckpoint | None
    ) -> Iterator[Item | Failure | Deleted | Checkpoint]:
        """Yield the items that may have changed since ``checkpoint``.

        ``checkpoint`` is the JSON of the last stored ``Checkpoint``, unchecked: a
        connector reads it with its ``connectors.checkpoints`` reader, never trusting it.

        Yields ``Failure`` for an item that cannot be fetched (the sync goes on) and a
        ``Checkpoint`` after each batch; the pipeline stores it once everything before
        it is durable and passes it back on the next run. Re-yielding an unchanged item
        is harmless: the pipeline compares its version and skips it. A delta-based source
        yields ``Deleted`` for items it reports as removed.
        """
        ...

    def list_ids(self) -> Iterable[str] | None:
        """Every item id that exists at the source now, to detect deletions; None for a
        delta-based source that reports deletions itself with ``Deleted``."""
        ...
