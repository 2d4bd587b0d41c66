"""What a Teams message asks for: mentions stripped, the command and its arguments parsed.

Plain functions over plain data (no Agents SDK types), so the rules can be read and tested
on their own: which words are commands, when a word is a personal skill, when a typo gets a
"did you mean", and what text is left for the skill.

``COMMANDS`` is the one list of chat commands: the bot's help card and the Teams app
manifest's ``commandLists`` are both built from it.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.parsers.text import split_lines

COMMANDS: list[tuple[str, str]] = [
    ("summarise", "Summarise text, the message you reply to, or an attached Word/Excel/PDF file"),
    ("draft", "Draft a reply or a mail from your notes"),
    ("sentiment", "Score the sentiment of text, or of a column of an attached workbook"),
    ("ask", "Answer a question from your own mail and files (answered privately)"),
    ("skills", "List the skills you can use, yours included"),
    ("use", "use SKILL: make SKILL your default for messages without a command"),
    ("run", "run SKILL text: run any skill, built-in or your own"),
    ("help", "Show what I can do"),
]
ALIASES = {"summarize": "summarise", "summary": "summarise", "question": "ask", "?": "help"}
DEFAULT_SKILL = "ask"
SUGGEST_CUTOFF = 0.75
MAX_MESSAGE_CHARS = 100_000  # Teams caps a message at about 28 KB; anything far over is abuse

_AT_TAG = re.compile(r"<at(?:\s[^>]*)?>(.*?)</at>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(?:br|/p|/div|/li)\s*/?>", re.I)
_OPTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63})=(\"[^\"]*\"|\S*)")
_REPLY_QUOTE = re.compile(
    r"<blockquote[^>]*itemtype=\"http://schema\.skype\.com/Reply\"[^>]*>(.*?)</blockquote>",
    re.I | re.S,
)
_PREVIEW = re.compile(r"<p[^>]*itemprop=\"preview\"[^>]*>(.*?)</p>", re.I | re.S)


@dataclass(frozen=True)
class Parsed:
    """One request: ``kind`` says what to do; ``skill_id`` and ``text`` what to run it on."""

    kind: Literal["help", "skills", "use", "run", "unknown"]
    skill_id: str | None = None
    text: str = ""
    options: dict[str, str] = field(default_factory=dict)
    word: str = ""  # the command word as typed (for "unknown")
    suggestion: str | None = None
    implicit: bool = False  # no command word: the user's default skill runs on the whole text


def strip_mentions(
    text: str, bot_id: str | None, entities: Iterable[Mapping[str, Any]] | None
) -> tuple[str, bool]:
    """``text`` without the ``<at>…</at>`` mentions of the bot, and whether the bot was
    mentioned. Mentions of other people stay (as their plain names): they are content."""
    names = set()
    mentioned = False
    for entity in entities or ():
        if not isinstance(entity, Mapping) or entity.get("type") != "mention":
            continue
        who = entity.get("mentioned")
        if isinstance(who, Mapping) and bot_id and who.get("id") == bot_id:
            mentioned = True
            tag = entity.get("text")
            if isinstance(tag, str):
                names.add(_AT_TAG.sub(r"\1", tag).strip().casefold())

    def replace(match: re.Match[str]) -> str:
        inner = html.unescape(_TAG.sub("", match.group(1))).strip()
        return "" if inner.casefold() in names else inner

    return _tidy(_AT_TAG.sub(replace, text or "")), mentioned


def _tidy(text: str) -> str:
    """Unescape and trim, keeping line breaks (paragraphs matter to summarise)."""
    lines = [" ".join(line.split()) for line in split_lines(html.unescape(text))]
    return "\n".join(lines).strip()


def replied_text(html_bodies: Iterable[str]) -> str | None:
    """The quoted message of a Teams reply (its ``text/html`` attachment), as plain text.

    Teams quotes only a preview of the replied-to message; the full message needs Graph
    (``chatMessage``), which the bot does not call.
    """
    for body in html_bodies:
        if not isinstance(body, str):
            continue
        quote = _REPLY_QUOTE.search(body)
        if not quote:
            continue
        preview = _PREVIEW.search(quote.group(1))
        inner = preview.group(1) if preview else quote.group(1)
        text = _tidy(_TAG.sub("", _BREAK.sub("\n", inner)))
        if text:
            return text
    return None


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest command or skill to a mistyped ``word``, if one is close enough."""
    matches = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=SUGGEST_CUTOFF)
    return matches[0] if matches else None


def parse(text: str, skill_ids: Collection[str], *, default_skill: str = DEFAULT_SKILL) -> Parsed:
    """What ``text`` (mentions already stripped) asks for.

    ``skill_ids`` are the skills this user can run (built-in and personal): a message that
    starts with one runs it. A first word close to a command or skill gets a suggestion;
    any other text goes to the user's default skill.
    """
    text = (text or "").strip()[:MAX_MESSAGE_CHARS]
    if not text:
        return Parsed("help")
    first, _, rest = text.partition(" ")
    if "\n" in first:  # "summarise\nlong text…"
        first, _, more = first.partition("\n")
        rest = more + (" " + rest if rest else "")
    word = first.lower().lstrip("/")
    word = ALIASES.get(word, word)
    rest = rest.strip()
    if word == "help":
        return Parsed("help")
    if word == "skills":
        return Parsed("skills")
    if word == "use":
        target = rest.split()[0].lower() if rest else ""
        if target in skill_ids:
            return Parsed("use", skill_id=target)
        return Parsed("unknown", word=target, suggestion=suggest(target, skill_ids))
    if word == "run":
        target, _, args = rest.partition(" ")
        target = target.lower()
        if target in skill_ids:
            return _run(target, args)
        return Parsed("unknown", word=target, suggestion=suggest(target, skill_ids))
    if word in skill_ids:
        return _run(word, rest)
    commands = {name for name, _ in COMMANDS} | set(skill_ids)
    close = suggest(word, commands)
    if close is not None:
        return Parsed("unknown", word=word, suggestion=close)
    return Parsed("run", skill_id=default_skill, text=text, implicit=True)


def _run(skill_id: str, args: str) -> Parsed:
    options, rest = leading_options(args)
    return Parsed("run", skill_id=skill_id, text=rest, options=options)


def leading_options(args: str) -> tuple[dict[str, str], str]:
    """``style=tldr length=short The text…`` → ({style: tldr, length: short}, "The text…").

    Only leading ``name=value`` words count, so "x=1" inside the text stays text; the skill's
    declared inputs decide later which names are valid.
    """
    options: dict[str, str] = {}
    rest = args.lstrip()
    while True:
        match = _OPTION.match(rest)
        if not match or (match.end() < len(rest) and not rest[match.end()].isspace()):
            return options, rest.strip()
        value = match.group(2)
        options[match.group(1)] = value[1:-1] if value.startswith('"') else value
        rest = rest[match.end() :].lstrip()
