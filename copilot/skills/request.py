"""Turning what a person types or points at into a skill's inputs.

`--set key=value` strings get the type the template declares; `--text` goes to the
skill's main input; a file or an indexed mail becomes numbered sources whose locators are
the file's own (page, paragraphs, cell range), so a summary's citations open the right
place rather than "paragraph 3 of some pasted text".
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from copilot.ingest.chunk import merge_locators
from copilot.skills.engines.local.text import sources_from_text
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.types import Source

# Which declared input receives --text, in order of preference.
MAIN_INPUTS = ("text", "question", "message", "notes", "query")
MAX_SOURCE_CHARS = 700  # a citation should point at a passage, not a whole document


class InputError(ValueError):
    """An input that cannot be used, named."""


def main_input(template: SkillTemplate) -> str:
    for name in MAIN_INPUTS:
        if name in template.inputs:
            return name
    strings = [n for n, spec in template.inputs.items() if spec.type == "string"]
    required = [n for n in strings if template.inputs[n].is_required]
    if required or strings:
        return (required or strings)[0]
    raise InputError(f"the skill {template.name!r} has no text input")


QUESTION_INPUTS = ("question", "query")


def attach(
    template: SkillTemplate,
    inputs: dict[str, Any],
    text: str,
    documents: list[Source] | None,
) -> list[Source] | None:
    """Give a document's (or mail's) text to the skill; return the sources to run with.

    A skill that answers a question (``ask``) gets the document as its sources, fenced as
    data, and the question stays the user's: the document's text must never become the
    question itself, outside the fence. Any other skill takes the text as its main input
    (summarise also gets the sources, for citations to the right passages).
    """
    main = main_input(template)
    if main in QUESTION_INPUTS:
        return documents
    inputs[main] = text
    return documents if template.metadata.task == "summarise" else None


def coerce(template: SkillTemplate, name: str, raw: str) -> Any:
    """``raw`` as the type the template declares for input ``name``."""
    spec = template.inputs.get(name)
    if spec is None:
        known = ", ".join(template.inputs) or "none"
        raise InputError(f"the skill has no input {name!r} (its inputs: {known})")
    if spec.type == "string":
        return raw
    if spec.type == "boolean":
        low = raw.strip().lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise InputError(f"input {name!r} is yes/no; got {raw!r}")
    if spec.type == "number":
        try:
            number = float(raw)
        except ValueError:
            raise InputError(f"input {name!r} is a number; got {raw!r}") from None
        return int(number) if number.is_integer() and "." not in raw else number
    try:
        value = json.loads(raw)
    except ValueError:
        raise InputError(f"input {name!r} needs JSON ({spec.type}); got {raw!r}") from None
    expected = list if spec.type == "array" else dict
    if not isinstance(value, expected):
        raise InputError(f"input {name!r} needs a JSON {spec.type}")
    return value


def parse_sets(template: SkillTemplate, sets: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set needs key=value; got {item!r}")
        out[key.strip()] = coerce(template, key.strip(), value)
    return out


def sources_from_file(path: Path, *, max_bytes: int) -> tuple[str, list[Source]]:
    """Parse a local file with the connectors' parsers (the same safety checks as a
    sync) into its display text and one source per element group."""
    from connectors.parsers import media_type_for, parse
    from connectors.types import ParseError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise InputError(f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    media_type = media_type_for(path.name)
    if media_type is None:
        raise InputError(f"{path}: this file type is not supported")
    try:
        parsed = parse(path.read_bytes(), path.name, media_type)
    except ParseError as exc:
        raise InputError(f"{path}: {exc}") from exc
    url = path.resolve().as_uri()
    runs: list[tuple[Any, list[str], list[dict[str, Any]]]] = []  # (group, texts, locators)
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
    sources = [
        Source(
            n=n,
            item_id=f"file:{path.name}",
            chunk_id=f"{path.name}#{n}",
            title=path.name,
            url=url,
            kind=kind,
            locator=merge_locators(locators),
            text="\n".join(texts),
        )
        for n, (_, texts, locators) in enumerate(runs, 1)
    ]
    return parsed.display_text or "\n\n".join(s.text for s in sources), sources


def indexed_item(state: Any, owner: str, item_id: str) -> tuple[str, list[Source]] | None:
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
