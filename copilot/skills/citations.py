"""Check an answer's ``[n]`` markers against the sources it was given, and link them.

Models cite in many shapes ("[1, 2]", "[1-3]", "[Source 1]", "【1】") and sometimes cite a
source that does not exist. A citation is a promise that a person can check the claim, so a
number that points nowhere is removed (and reported), the rest are written the one way the
UI renders ("[1][2]"), and each cited source gets a link that opens at the right place.

Not everything in brackets is a citation: Markdown links ``[text](url)``, code (``a[1]``),
words (``[link]``) and years (``[2024]``) are left exactly as written.

While an answer streams, ``citation_stream.CitationStream`` applies the same checks
(``checked``) to the text shown so far.

A citation names its source for people (``citation``): a mail by subject, sender and date,
a file by title and place (page, section, ``Sheet!A1:B2``), with a snippet from the body
(the sentence the answer leans on), never the header lines. Sources that are one passage
to a reader (parts of one mail, two pieces of one paragraph) share one number: a marker of
the second is written as the first's, so "[1][2][4]" for one place becomes "[1]".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from copilot.index.search import (
    body_text,
    format_locator,
    mail_fields,
    place,
    snippet,
)
from copilot.skills.types import Citation, Source

ALLOWED_SCHEMES = ("http", "https", "file", "mailto")
MAX_CITATION = 999  # [1000] and up read as years or quantities, not citations
MAX_RANGE = 20  # [1-500] is not a request to cite 500 sources: only its ends count
SNIPPET_CHARS = 200
TYPED_TITLE = "your text"  # what a person calls the text they gave with the request

_NUM = r"\d{1,4}"
_ITEM = rf"(?:sources?\s*)?{_NUM}(?:\s*[-–—]\s*{_NUM})?"
MARKER_LIST = rf"{_ITEM}(?:\s*[,;]\s*(?:and\s+)?{_ITEM})*"
# "[1]", "[1, 2]", "[1-3]", "[Source 1]", "【1】", "【1†source】" — not "[1](url)" (a link).
_MARKER = re.compile(
    rf"\[\s*(?P<a>{MARKER_LIST})\s*\](?!\()|【\s*(?P<b>{MARKER_LIST})\s*(?:†[^】\n]*)?】",
    re.IGNORECASE,
)
CODE = re.compile(r"```[\s\S]*?(?:```|$)|`[^`\n]*`")
_RANGE = re.compile(rf"({_NUM})\s*[-–—]\s*({_NUM})")
_DIGITS = re.compile(r"\d+")
GONE = "\x00"  # where a marker was removed, until the whitespace around it is tidied
_TAB_NEWLINE = re.compile(r"[\t\r\n]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
# Sentence ends of an answer; a marker after the full stop ("… we have. [1]") stays with it.
_ANSWER_SENTENCE = re.compile(r"(?<=[.!?\]])\s+(?!\[\d)|\n+")
_REPEATED_MARKER = re.compile(r"\[(\d{1,4})\](?:[ \t]*\[\1\])+")
_CANONICAL_MARKER = re.compile(r"\[(\d{1,4})\]")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Cited:
    text: str  # the answer with invalid markers removed, valid ones as "[1][2]"
    citations: list[Citation] = field(default_factory=list)  # in order of first citation
    invalid: list[int] = field(default_factory=list)  # cited but not given (removed from text)
    uncited: list[int] = field(default_factory=list)  # given but never cited (one per passage)


def markers(answer: str) -> list[int]:
    """The numbers ``answer`` cites, in order of first citation, each once."""
    seen: list[int] = []

    def collect(numbers: list[int]) -> str:
        seen.extend(n for n in numbers if n not in seen)
        return ""

    _rewrite(answer, collect)
    return seen


def cite(answer: str, sources: Sequence[Source]) -> Cited:
    """Keep the answer's citations of ``sources``, drop the rest, and say which is which.

    Numbers of one passage (``passage_numbers``) are written as its first number, so each
    passage is cited, and listed, once.
    """
    by_number = {s.n: s for s in sources}
    alias = passage_numbers(sources)
    text, order, invalid = checked(answer, by_number, alias)
    return Cited(
        text=text,
        citations=[_cited(by_number, alias, n, text) for n in order],
        invalid=invalid,
        uncited=sorted(n for n in by_number if alias[n] == n and n not in order),
    )


def passage_numbers(sources: Sequence[Source]) -> dict[int, int]:
    """Each source's number → the first number of the passage it belongs to.

    One passage to a reader: every part of one mail (it is named by subject, sender and
    date), or parts of one item at the same place as a person reads it ("paragraph 1" cut
    in three pieces). Distinct places stay distinct numbers.
    """
    first: dict[tuple[str, str], int] = {}
    alias: dict[int, int] = {}
    for source in sorted(sources, key=lambda s: s.n):
        key = (source.item_id, "" if source.kind == "mail" else format_locator(source.locator))
        alias[source.n] = first.setdefault(key, source.n)
    return alias


def citation(
    source: Source, *, answer: str = "", also: Sequence[Source] = (), cited: bool = True
) -> Citation:
    """``source`` as a person sees it: named (a mail by subject, sender and date, a file by
    title and place), linked, with a snippet of its body. ``answer`` picks the snippet: the
    sentence that shares most words with the answer's sentences citing it; ``also`` are
    other sources of the same passage (their text may hold that sentence)."""
    locator = dict(source.locator or {})
    texts = [source.text, *(s.text for s in also)]
    near = _citing_sentences(answer, {source.n, *(s.n for s in also)})
    if source.kind == "mail":
        header = next((f for f in map(mail_fields, texts) if f["sender"] or f["date"]), None)
        sender = source.sender or (header["sender"] if header else "")
        date = source.date or (header["date"] if header else "")
        subject = source.title or (header["subject"] if header else "") or "(no subject)"
        title = subject
    else:
        sender, date, subject = "", "", ""
        title = source.title or source.item_id
        if source.given_text:  # typed or pasted with the request
            title = TYPED_TITLE
    return Citation(
        n=source.n,
        item_id=source.item_id,
        title=title,
        url=source.url,
        link=deep_link(source.url, source.kind, locator),
        locator=locator,
        where=place(source.kind, locator, sender, date),
        snippet=_snippet(texts, near),
        kind=source.kind,
        subject=subject,
        sender=sender,
        date=date,
        cited=cited,
    )


def more_sources(sources: Sequence[Source], cited: Sequence[Citation]) -> list[Citation]:
    """The sources an answer was given but did not cite, one per passage, named like the
    cited ones: what a "more sources" list shows."""
    alias = passage_numbers(sources)
    by_number = {s.n: s for s in sources}
    shown = {c.n for c in cited}
    return [
        _cited(by_number, alias, n, "", cited=False)
        for n in sorted(by_number)
        if alias[n] == n and n not in shown
    ]


def citation_line(c: Citation, *, link: bool = True) -> str:
    """One line of text for a source list: "[1] Mexico advice — Kay Mann, 14 Mar 2001 <link>"."""
    target = (c.link or c.url) if link else ""
    return f"[{c.n}] {c.label}" + (f"  {target}" if target else "")


def renumber(answer: str, mapping: dict[int, int]) -> str:
    """Rewrite every ``[n]`` as ``[mapping[n]]``, all at once; unmapped numbers are removed.

    Map-reduce summaries number each part's sources from 1; combining them needs their
    markers moved to the global numbering. A number the mapping does not know cannot be
    placed, and left alone it could silently cite the wrong global source, so it goes.
    """

    def move(numbers: list[int]) -> str:
        return _canonical([mapping[n] for n in numbers if n in mapping])

    return _tidy(_rewrite(answer.replace(GONE, ""), move))


def deep_link(url: str, kind: str, locator: dict[str, Any]) -> str:
    """A link that opens the item at the cited place, or "" if the URL is not safe to show.

    Only http(s), file and mailto links are produced: an item's URL comes from a document
    or mail, and a ``javascript:`` or ``data:`` link in an answer is an attack. PDFs (a file
    or web URL ending ``.pdf``) open at the page with ``#page=N``, which browsers' and most
    desktop viewers understand; other formats have no standard fragment, so the URL is as is.
    """
    # Browsers drop tabs and newlines anywhere in a URL ("java\tscript:"), so do the same
    # before judging the scheme.
    clean = _TAB_NEWLINE.sub("", url or "").strip(_C0_AND_SPACE)
    try:
        parts = urlsplit(clean)
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return ""
    page = (locator or {}).get("page")
    is_pdf = parts.path.lower().endswith(".pdf") or (kind or "").lower() == "pdf"
    if scheme in ("http", "https", "file") and is_pdf and _is_page(page):
        return clean.split("#", 1)[0] + f"#page={page}"
    return clean


# --- helpers --------------------------------------------------------------------------------


def checked(
    answer: str, known: Container[int], alias: Mapping[int, int] | None = None
) -> tuple[str, list[int], list[int]]:
    """The answer with markers of ``known`` numbers canonical (each as its passage's first
    number, ``alias``) and the others removed; the numbers cited (in order of first
    citation) and those removed."""
    order: list[int] = []
    invalid: list[int] = []
    alias = alias or {}

    def check(numbers: list[int]) -> str:
        good = [alias.get(n, n) for n in numbers if n in known]
        invalid.extend(n for n in numbers if n not in known and n not in invalid)
        order.extend(n for n in good if n not in order)
        return _canonical(good)

    return _tidy(_rewrite(answer.replace(GONE, ""), check)), order, invalid


def _rewrite(answer: str, replace: Callable[[list[int]], str]) -> str:
    """Call ``replace`` with the numbers of each marker outside code; splice in its result.

    A marker ``replace`` turns into "" leaves a placeholder for ``_tidy``.
    """
    out: list[str] = []
    last = 0
    for code in CODE.finditer(answer):
        out.append(_rewrite_prose(answer[last : code.start()], replace))
        out.append(code.group())
        last = code.end()
    out.append(_rewrite_prose(answer[last:], replace))
    return "".join(out)


def _rewrite_prose(text: str, replace: Callable[[list[int]], str]) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group("a") or match.group("b")
        numbers = _numbers(body)
        if numbers is None:
            return match.group()  # a year or a quantity: not ours to touch
        return replace(numbers) or GONE

    # Two markers of one passage side by side ("[1][2]", both [1] now) are one citation.
    return _REPEATED_MARKER.sub(r"[\1]", _MARKER.sub(one, text))


def _numbers(body: str) -> list[int] | None:
    """The numbers a marker's body cites, ranges expanded; None if it is not a citation."""
    if any(int(d) > MAX_CITATION for d in _DIGITS.findall(body)):
        return None
    numbers: list[int] = []
    for item in re.split(r"\s*[,;]\s*(?:and\s+)?", body):
        item = re.sub(r"(?i)^sources?\s*", "", item.strip())
        span = _RANGE.fullmatch(item)
        if span:
            lo, hi = sorted((int(span.group(1)), int(span.group(2))))
            found = list(range(lo, hi + 1)) if hi - lo < MAX_RANGE else [lo, hi]
        else:
            found = [int(item)]
        numbers.extend(n for n in found if n not in numbers)
    return numbers


def _canonical(numbers: list[int]) -> str:
    unique = list(dict.fromkeys(numbers))
    return "".join(f"[{n}]" for n in unique)


def _tidy(text: str) -> str:
    """Close the gaps removed markers left, touching no other whitespace of the answer."""
    run = rf"[ \t]*{GONE}(?:[ \t]*{GONE})*[ \t]*"
    # Before punctuation or at the end of a line: "rose [9]." → "rose."
    text = re.sub(rf"{run}(?=[.,;:!?)\]]|\n|$)", "", text)
    # At the start of a line: keep the indentation, drop the gap.
    text = re.sub(rf"(^|\n)([ \t]*){GONE}(?:[ \t]*{GONE})*[ \t]*", r"\1\2", text)
    # Between words: one space if there was any, none if the marker was glued on.
    return re.sub(run, lambda m: " " if re.search("[ \t]", m.group()) else "", text)


def _is_page(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _cited(
    by_number: Mapping[int, Source],
    alias: Mapping[int, int],
    n: int,
    answer: str,
    *,
    cited: bool = True,
) -> Citation:
    """The citation of passage ``n``, its other sources' text and numbers included."""
    also = [s for m, s in sorted(by_number.items()) if alias[m] == n and m != n]
    return citation(by_number[n], answer=answer, also=also, cited=cited)


def _citing_sentences(answer: str, numbers: set[int]) -> str:
    """The answer's sentences that cite one of ``numbers``, markers taken out."""
    if not answer:
        return ""
    picked = []
    for sentence in _ANSWER_SENTENCE.split(answer):
        cited = {int(m) for m in _CANONICAL_MARKER.findall(sentence)}
        if cited & numbers:
            picked.append(_CANONICAL_MARKER.sub(" ", sentence))
    return " ".join(picked)[:4000]


def _snippet(texts: Sequence[str], near: str = "") -> str:
    """A snippet of the passage's body: the sentence closest to ``near`` (what the answer
    says with it) when one shares words with it, else the body's start."""
    bodies = [body_text(t or "").strip() for t in texts]
    body = "\n".join(b for b in bodies if b)
    if not body:
        return ""
    terms = {w.lower() for w in _WORDS.findall(near)}
    if terms and terms & {w.lower() for w in _WORDS.findall(body)}:
        best = " ".join(snippet(body, near, width=SNIPPET_CHARS + 1).split())
        if best:
            return _cut(best)
    return _cut(" ".join(body.split()))


def _cut(flat: str) -> str:
    if len(flat) <= SNIPPET_CHARS:
        return flat
    head = flat[:SNIPPET_CHARS]
    space = head.rfind(" ")
    if space > SNIPPET_CHARS // 2:
        head = head[:space]
    return head.rstrip(" ,;:…") + "…"
