"""The shapes that flow from sources into the index.

Connectors yield ``Item`` and ``Failure`` objects and, between batches, a ``Checkpoint``;
parsers turn an item's bytes into ``Element`` objects with locators precise enough to cite.
These classes are the contract between ``connectors/`` and ``copilot/``: nothing in here may
import from ``copilot``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connectors.errors import ConnectorError

Kind = Literal["mail", "file"]
Stage = Literal["fetch", "parse", "embed", "store"]


@dataclass(frozen=True)
class Content:
    """An item's bytes, read lazily so an unchanged item is never read at all."""

    media_type: str
    size: int
    loader: Callable[[], bytes] = field(repr=False, compare=False)

    def read(self) -> bytes:
        return self.loader()

    @classmethod
    def of(cls, data: bytes, media_type: str) -> Content:
        return cls(media_type=media_type, size=len(data), loader=lambda: data)


@dataclass(frozen=True)
class Item:
    """One document or message, as a connector sees it.

    ``id`` is stable and scoped by source (``local:<relative path>``, ``graph-mail:<id>``);
    ``version`` changes whenever the source says the item changed (etag, change key,
    mtime+size). ``acl`` lists the principals that may read it: empty means owner only.
    """

    id: str
    owner: str
    kind: Kind
    title: str
    url: str
    modified: datetime
    version: str
    content: Content
    acl: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None

    @property
    def source(self) -> str:
        return self.id.split(":", 1)[0]


@dataclass(frozen=True)
class Failure:
    """Something that went wrong with one item. A failure never stops a sync."""

    item: str
    stage: Stage
    reason: str


@dataclass(frozen=True)
class Deleted:
    """The source says this item is gone (a Graph ``@removed`` entry, an IMAP expunge).

    Delta-based connectors report deletions this way instead of listing every id; the
    pipeline removes the item and its attachments from the index and the state.
    """

    item: str


@dataclass(frozen=True)
class Checkpoint:
    """JSON-able state a connector hands back after a batch: its own ``TypedDict`` from
    ``connectors.checkpoints``, opaque to the pipeline.

    Everything yielded before it has been handed to the pipeline; the pipeline stores it
    once that work is durable, and passes it back to ``Connector.load`` on the next run.
    """

    value: Mapping[str, object]


@dataclass(frozen=True)
class Element:
    """A piece of text from a parsed item, with where it came from.

    ``locator`` is what a citation opens: ``{"section": "Intro > Scope", "paragraph": 4}``
    for docx, ``{"sheet": "Budget", "range": "A2:D2"}`` for xlsx, ``{"page": 3}`` for pdf,
    ``{"message_id": "<...>"}`` for mail. ``group`` keeps chunks apart: a chunk never spans
    two groups (sheets, the body and the footer, two messages). ``section`` is the heading
    path that prefixes every chunk of the section; ``header`` is a table's header row that
    is repeated in every chunk holding rows of that table.
    """

    text: str
    locator: dict[str, Any]
    kind: str = "paragraph"
    group: str = "body"
    section: tuple[str, ...] = ()
    header: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file carried inside another item (a mail attachment, an attached message)."""

    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass
class Parsed:
    """What a parser makes of one item's bytes.

    ``display_text`` is the full text for showing a person (for mail: including quoted
    history, which ``elements`` leave out). ``meta`` carries what the parser learnt about
    the item (mail headers, page count, sheet names).
    """

    elements: list[Element]
    display_text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)


class ParseError(ConnectorError):
    """The bytes cannot be turned into text; the message says why in plain words."""

    kind = "unreadable"
