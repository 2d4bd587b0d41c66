"""A run's own material: a local file or an indexed item, as numbered sources.

A file is parsed by the connectors' parsers in the same sandboxed worker as a sync
(``ingest.untrusted``), its elements grouped into passages short enough for a citation to
point at (``MAX_SOURCE_CHARS``), each keeping its own locator (page, paragraphs, cell
range); an indexed item (a mail with its thread) becomes sources that link back to it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from copilot.db.state import StateStore
from copilot.ingest.chunk import merge_locators
from copilot.skills.engines.local.text import sources_from_text
from copilot.skills.input_errors import FileInputError, ItemNotFound
from copilot.skills.types import Source

MAX_SOURCE_CHARS = 700  # a citation should point at a passage, not a whole document


def sources_from_file(path: Path, *, max_bytes: int) -> tuple[str, list[Source]]:
    """Parse a local file with the connectors' parsers (the same safety checks as a
    sync, in the same sandboxed worker: ``ingest.untrusted``) into its display text and
    one source per element group."""
    from connectors.parsers import media_type_for
    from copilot.ingest.untrusted import UntrustedFileError, read_untrusted

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileInputError(f"{path}: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise FileInputError(
            f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit"
        )
    media_type = media_type_for(path.name)
    if media_type is None:
        raise FileInputError(f"{path}: this file type is not supported")
    try:
        parsed = read_untrusted(path, path.name, max_bytes=max_bytes, media_type=media_type)
    except UntrustedFileError as exc:
        raise FileInputError(f"{path}: {exc}") from exc
    url = path.resolve().as_uri()
    runs: list[tuple[str, list[str], list[dict[str, Any]]]] = []  # group, texts, locators
    for element in parsed.elements:
        text = element.text.strip()
        if not text:
            continue
        last = runs[-1] if runs else None
        if (
            last
            and last[0] == element.group
            and sum(map(len, last[1])) + len(text) < MAX_SOURCE_CHARS
        ):
            last[1].append(text)
            last[2].append(element.locator)
        else:
            runs.append((element.group, [text], [element.locator]))
    kind = "mail" if media_type.startswith("message/") else "file"
    meta = parsed.meta or {}
    # A mail is named for people by its subject, sender and date, not by its file name.
    title = str(meta.get("subject") or path.name) if kind == "mail" else path.name
    sender = str(meta.get("from_name") or meta.get("from") or "") if kind == "mail" else ""
    date = str(meta.get("date") or "") if kind == "mail" else ""
    sources = [
        Source(
            n=n,
            item_id=f"file:{path.name}",
            chunk_id=f"{path.name}#{n}",
            title=title,
            url=url,
            kind=kind,
            locator=merge_locators(locators),
            text="\n".join(texts),
            sender=sender,
            date=date,
        )
        for n, (_, texts, locators) in enumerate(runs, 1)
    ]
    return parsed.display_text or "\n\n".join(s.text for s in sources), sources


def read_item(state: StateStore, owner: str, item_id: str) -> tuple[str, list[Source]]:
    """``indexed_item``, or ``ItemNotFound``."""
    found = indexed_item(state, owner, item_id)
    if found is None:
        raise ItemNotFound(owner, item_id)
    return found


def indexed_item(state: StateStore, owner: str, item_id: str) -> tuple[str, list[Source]] | None:
    """An indexed item's full text (a mail with its thread) and its sources, linking back
    to it; None when ``owner`` has no such item."""
    item = state.item(owner, item_id)
    text = state.display_text(owner, item_id)
    if item is None or text is None:
        return None
    sources = sources_for_item(
        text, item_id=item_id, title=item["title"], url=item["url"], kind=item["kind"]
    )
    return text, sources


def sources_for_item(text: str, *, item_id: str, title: str, url: str, kind: str) -> list[Source]:
    """An indexed item's text (e.g. a mail thread) as sources that link back to it."""
    return [
        replace(s, item_id=item_id, title=title, url=url, kind=kind, chunk_id=f"{item_id}#{s.n}")
        for s in sources_from_text(text, title=title)
    ]
