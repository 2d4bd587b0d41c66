"""Sentences and paragraphs for the local engine: where extractive text can be cut.

Why not a regex on ". ": office text is full of "Dr. Lee", "e.g. the", "3.5 %", bullet lists
without any punctuation, mail wrapped at 72 columns and PDF text broken at every line of a
narrow column. A bad cut gives a summary of half sentences ("- can obtain enough basic
patterns from an article."), so the splitter knows the usual abbreviations, treats every
bullet line as its own sentence and joins lines that were only wrapped: a long line without
final punctuation, or any line followed by one that starts in lower case or that ends on a
word no sentence ends with ("the", "of", "and"). It returns character spans, not strings,
so a caller can always point back into the original text.

``sources_from_text`` turns a pasted text into numbered Sources, one per paragraph (short
ones merged), so a summary of "this text" cites paragraphs just as a summary of indexed
documents cites chunks.
"""

from __future__ import annotations

import hashlib
import re

from copilot.skills.types import GIVEN_TITLE, Source

__all__ = ["MAX_SENTENCE_CHARS", "sources_from_text", "split_sentences"]

# Longer "sentences" (a text with no punctuation at all) are cut at a space: nobody reads a
# 5,000-character bullet, and the embedding model sees only the first 256 tokens anyway.
MAX_SENTENCE_CHARS = 400
# A paragraph shorter than this (a heading, "Hi team,") is merged with the next one.
MIN_SOURCE_CHARS = 80
# A wrapped line (mail at 72 columns) is at least this long; a shorter one ends its sentence.
_WRAP_MIN_CHARS = 50

_BULLET = re.compile(r"^[ \t]*(?:[-*•◦▪‣–—+]|\d{1,3}[.)]|[a-zA-Z][.)]|#{1,6})[ \t]+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# A terminator, then closing quotes/brackets, then either white space or the end.
_END = re.compile(r"(?:[.!?…]+|[。！？]+)[\"'”’»)\]]*(?=\s|$)|[。！？]+[\"'”’»)\]]*")
# Never the end of a sentence, whatever follows ("Dr. Smith", "e.g. Paris", "U.S. Army").
_ALWAYS_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "capt", "lt", "sgt",
    "hon", "vs", "cf", "eg", "ie", "viz", "approx", "ca", "fig", "figs", "vol", "vols", "pp",
    "dept", "incl", "resp", "feb", "apr", "jun", "jul", "aug", "sept", "oct", "nov", "tue",
    "tues", "thu", "thurs", "fri", "zb", "bzw", "usw", "ggf", "evtl", "vgl", "str",
}  # fmt: skip
# The end of a sentence only when a capitalised word follows ("... Acme Inc. The deal"):
# either a company suffix or an abbreviation that is also a word ("no", "sat", "art").
_MAYBE_ABBREV = {
    "etc", "inc", "ltd", "co", "corp", "llc", "plc", "gmbh", "am", "pm", "al", "no", "nos",
    "nr", "art", "sec", "ch", "ref", "tel", "ext", "est", "gen", "col", "jan", "mar", "sep",
    "dec", "mon", "wed", "sat", "sun",
}  # fmt: skip
# A line ending on one of these words goes on in the next line, however short it is.
_OPEN_ENDINGS = {
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "and", "or",
    "but", "nor", "that", "which", "who", "whose", "as", "than", "is", "are", "was", "were",
    "be", "been", "has", "have", "had", "will", "would", "can", "could", "should", "may",
    "into", "onto", "about", "between", "such", "its", "their", "our", "your", "this",
}  # fmt: skip
_LAST_WORD = re.compile(r"(\w+)\W*$")
_NON_SPACE = re.compile(r"\S")
_HEADER = re.compile(r"^(?:subject|from|to|cc|bcc|date|sent)\s*:", re.IGNORECASE)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text``, in order.

    Blank lines and bullet lines are hard breaks; a single newline is one too unless the
    line looks wrapped (long, no final punctuation, next line not a bullet). Spans exclude
    surrounding white space and bullet markers, so ``text[start:end]`` reads as a sentence.
    """
    spans: list[tuple[int, int]] = []
    for start, end in _blocks(text):
        for s, e in _sentences_in_block(text, start, end):
            spans.extend(_cap(text, s, e))
    return spans


def _blocks(text: str) -> list[tuple[int, int]]:
    """Runs of lines that may hold running prose: a new block at each hard line break."""
    blocks: list[tuple[int, int]] = []
    block_start: int | None = None
    prev_line = ""
    pos = 0
    for line in text.splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        content = line.rstrip("\r\n")
        stripped = content.strip()
        if not stripped:
            if block_start is not None:
                blocks.append((block_start, line_start))
            block_start, prev_line = None, ""
            continue
        bullet = _BULLET.match(content)
        body_start = line_start + (bullet.end() if bullet else len(content) - len(content.lstrip()))
        if block_start is not None and (bullet or _hard_break(prev_line, stripped)):
            blocks.append((block_start, line_start))
            block_start = None
        if block_start is None:
            block_start = body_start
        prev_line = stripped
    if block_start is not None:
        blocks.append((block_start, len(text)))
    return blocks


def _hard_break(prev_line: str, line: str) -> bool:
    """Does the newline between ``prev_line`` and ``line`` end a sentence (rather than wrap
    one)? PDF columns break lines of any length, so a short line still goes on when the
    next starts in lower case or when it ends on a word like "the" (see the module doc)."""
    if _HEADER.match(prev_line) or _HEADER.match(line):
        return True
    if prev_line.endswith(".") and line[0].islower() and _abbreviation_end(prev_line):
        return False  # "…the columns, e.g.\nthe dates"
    if prev_line[-1] in ".!?:;…。！？" or prev_line.endswith((".)", '."', ".”")):
        return True  # even before a lower-case line: "…by Friday.\njoy@example.com will …"
    if line[0].islower():
        return False  # "…we have assumed that we" / "can obtain enough basic patterns"
    last = _LAST_WORD.search(prev_line)
    if prev_line[-1].isalnum() and last and last.group(1).lower() in _OPEN_ENDINGS:
        return False  # "…both entities Katrina and" / "Longwang have the pattern"
    return len(prev_line) < _WRAP_MIN_CHARS


def _abbreviation_end(line: str) -> bool:
    """Does ``line`` end on an abbreviation ("e.g.", "Fig.", "approx.") rather than a
    sentence?"""
    word = re.search(r"([\w.]+)$", line[-20:])
    token = word.group(1).lower().strip(".") if word else ""
    return token.replace(".", "") in _ALWAYS_ABBREV or (
        "." in token and all(len(p) == 1 for p in token.split("."))
    )


def _sentences_in_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    sent_start = start
    for match in _END.finditer(text, start, end):
        if _is_boundary(text, match.start(), match.end(), end):
            spans.append((sent_start, match.end()))
            sent_start = match.end()
    spans.append((sent_start, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _is_boundary(text: str, mark_start: int, mark_end: int, block_end: int) -> bool:
    mark = text[mark_start:mark_end]
    if mark[0] in "。！？" or mark_end >= block_end:
        return True
    found = _NON_SPACE.search(text, mark_end, block_end)
    next_char = found.group() if found else ""
    if mark[0] in "!?…" or mark.startswith(".."):
        return not next_char.islower()  # "... and then" / "Hm?! no" go on
    if next_char.islower():
        return False  # "approx. five", "Fig. 3 shows" never end here
    word = re.search(r"([\w.]+)$", text[max(0, mark_start - 20) : mark_start])
    if word is None:
        return True
    token = word.group(1).lower().strip(".")
    if token.replace(".", "") in _ALWAYS_ABBREV or token in _ALWAYS_ABBREV:
        return False
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. Smith"
    if "." in token and all(len(p) == 1 for p in token.split(".")):
        # dotted abbreviations: "U.S." goes on, "a.m." ends before a capitalised word
        return token.replace(".", "") in _MAYBE_ABBREV and next_char.isupper()
    if token in _MAYBE_ABBREV:
        return next_char.isupper()
    return True


def _cap(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut an over-long span at spaces into pieces of at most MAX_SENTENCE_CHARS."""
    out = []
    while end - start > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", start + MAX_SENTENCE_CHARS // 2, start + MAX_SENTENCE_CHARS)
        if cut == -1:
            cut = start + MAX_SENTENCE_CHARS
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append((start, end))
    return out


def sources_from_text(
    text: str, *, title: str = GIVEN_TITLE, max_chars_per_source: int = 1500
) -> list[Source]:
    """Numbered Sources (from 1) for a given text: one per paragraph, short ones merged.

    A paragraph longer than ``max_chars_per_source`` is split at sentence ends into several
    Sources with the same paragraph number. Empty or blank text gives no Sources.
    """
    if max_chars_per_source < 100:
        raise ValueError(f"max_chars_per_source must be at least 100, got {max_chars_per_source}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in _BLANK_LINE.split(text)]
    paragraphs = [p for p in paragraphs if p]
    groups: list[tuple[int, int, str]] = []  # (first paragraph, last paragraph, text)
    current: tuple[int, int, str] | None = None
    for i, para in enumerate(paragraphs, start=1):
        for piece in _pieces(para, max_chars_per_source):
            if current is not None and len(current[2]) + len(piece) + 2 > max_chars_per_source:
                groups.append(current)
                current = None
            current = (
                (i, i, piece) if current is None else (current[0], i, f"{current[2]}\n\n{piece}")
            )
            if len(current[2]) >= MIN_SOURCE_CHARS:
                groups.append(current)
                current = None
    if current is not None:  # a short tail ("Best, Anna") joins the paragraph before it
        previous = groups[-1] if groups else None
        if previous is not None and len(previous[2]) + len(current[2]) + 2 <= max_chars_per_source:
            groups[-1] = (previous[0], current[1], f"{previous[2]}\n\n{current[2]}")
        else:
            groups.append(current)
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    item_id = f"text:{digest}"
    sources = []
    for n, (first, last, body) in enumerate(groups, start=1):
        locator: dict[str, int] = {"paragraph": first}
        if last != first:
            locator["paragraph_end"] = last
        sources.append(
            Source(
                n=n,
                item_id=item_id,
                chunk_id=f"{item_id}#{n}",
                title=title,
                url="",
                kind="text",
                locator=locator,
                text=body,
            )
        )
    return sources


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """The paragraph, or sentence-aligned pieces of it when it is too long for one Source."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    piece_start = 0
    last_end = 0
    for _, end in split_sentences(paragraph):
        if end - piece_start > max_chars and last_end > piece_start:
            pieces.append(paragraph[piece_start:last_end].strip())
            piece_start = last_end
        last_end = end
    pieces.append(paragraph[piece_start:].strip())
    return [p for p in pieces if p]
