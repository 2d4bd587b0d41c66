"""Which attachments of a parsed message or file become items of their own, and how the
ones left out are reported.

Every left-out attachment (over this source's cap, or dropped by the mail parser) becomes a
failed child row of its message, so ``copilot status`` and the API say what was not indexed
and why, and the row goes when the message goes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.local import _human
from connectors.parsers import MAIL_TYPES, media_type_for
from connectors.types import Attachment, Content, Item, Parsed
from copilot.config import Settings

MAX_DEPTH = 3  # attachments of attached messages of attached messages, no deeper
# Largest mail attachment indexed. The mail parser only enforces a far higher safety
# ceiling; the cap that applies is decided here, per source (see ``attachment_cap``).
DEFAULT_ATTACHMENT_BYTES = 25 * 1024 * 1024


def attachment_cap(settings: Settings, item: Item) -> int:
    """Graph items (and their attachments' attachments) follow COPILOT_GRAPH_MAX_ATTACHMENT_MB."""
    if item.source.startswith("graph-"):
        return int(settings.graph_max_attachment_mb * 1024 * 1024)
    return DEFAULT_ATTACHMENT_BYTES


def child_item(parent: Item, index: int, attachment: Attachment) -> Item:
    """The attachment as an item: its id names its parent, its version is its content hash."""
    media_type = media_type_for(attachment.name) or attachment.media_type
    return Item(
        id=f"{parent.id}#{index}:{attachment.name}",
        owner=parent.owner,
        kind="mail" if media_type in MAIL_TYPES else "file",
        title=attachment.name,
        url=parent.url,
        modified=parent.modified,
        version=hashlib.sha256(attachment.data).hexdigest(),
        content=Content.of(attachment.data, media_type),
        acl=parent.acl,
        meta={"attachment_of": parent.id, "size": len(attachment.data)},
        parent=parent.id,
    )


def split_attachments(
    settings: Settings, item: Item, parsed: Parsed, depth: int
) -> tuple[list[Item], list[dict[str, Any]]]:
    """(attachments to index as children, entries for the ones left out).

    A kind of file we never index is neither; nothing below ``MAX_DEPTH`` is looked at.
    """
    skipped = list(parsed.meta.get("skipped_attachments") or ())
    cap = attachment_cap(settings, item)
    children: list[Item] = []
    if depth < MAX_DEPTH:
        for index, attachment in enumerate(parsed.attachments):
            child = child_item(item, index, attachment)
            if media_type_for(child.title) or child.content.media_type in MAIL_TYPES:
                if len(attachment.data) > cap:
                    size = len(attachment.data)
                    skipped.append({"name": attachment.name, "size": size, "cap": cap})
                    continue
                children.append(child)
    return children, skipped


def skipped_rows(
    parent: Item, scope: str, skipped: list[dict[str, Any]]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(item id, reason, state row) of each left-out attachment that we would have indexed."""
    rows = []
    for n, entry in enumerate(skipped):
        name = str(entry.get("name") or "")
        media_type = entry.get("media_type")
        if name and media_type and not (media_type_for(name) or media_type in MAIL_TYPES):
            continue  # a kind of file we would not index anyway: nothing was lost
        item_id = f"{parent.id}#skipped{n}:{name}"
        row: dict[str, Any] = {"item_id": item_id, "scope": scope, "parent_id": parent.id}
        row.update(kind="file", title=name or "(part)", url=parent.url, status="failed")
        row.update(version=f"skipped:{entry.get('size', '')}", content_hash="", chunks=0)
        row.update(modified=parent.modified.timestamp())
        rows.append((item_id, _skip_reason(entry), row))
    return rows


def _skip_reason(skipped: dict[str, Any]) -> str:
    name = str(skipped.get("name") or "")
    size, cap = skipped.get("size"), skipped.get("cap")
    if isinstance(size, int) and isinstance(cap, int):
        return f"attachment {name} is {_human(size)}, over the {_human(cap)} attachment cap"
    what = f"attachment {name}" if name else "part of the message"
    return f"{what} not indexed: {skipped.get('reason') or 'skipped by the mail parser'}"
