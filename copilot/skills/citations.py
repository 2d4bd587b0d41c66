"""Check an answer's ``[n]`` markers against the sources it was given, and link them.

Models cite in many shapes ("[1, 2]", "[1-3]", "[Source 1]", "【1】") and sometimes cite a
source that does not exist. A citation is a promise that a person can check the claim, so a
number that points nowhere is removed (and reported), the rest are written the one way the
UI renders ("[1][2]"), and each cited source gets a link that opens at the right place.

Not everything in brackets is a citation: Markdown links ``[text](url)``, code (``a[1]``),
words (``[link]``) and years (``[2024]``) are left exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from copilot.index.search import format_locator
from copilot.skills.types import Citation, Source

ALLOWED_SCHEMES = ("http", "https", "file", "mailto")
MAX_CITATION = 999  # [1000] and up read as years or quantities, not citations
MAX_RANGE = 20  # [1-500] is not a request to cite 500 sources: only its ends count
SNIPPET_CHARS = 200

_NUM = r"\d{1,4}"
_ITEM = rf"(?:sources?\s*)?{_NUM}(?:\s*[-–—]\s*{_NUM})?"
_LIST = rf"{_ITEM}(?:\s*[,;]\s*(?:and\s+)?{_ITEM})*"
# "[1]", "[1, 2]", "[1-3]", "[Source 1]", "【1】", "【1†source】" — not "[1](url)" (a link).
_MARKER = re.compile(
    rf"\[\s*(?P<a>{_LIST})\s*\](?!\()|【\s*(?P<b>{_LIST})\s*(?:†[^】\n]*)?】",
    re.IGNORECASE,
)
_CODE = re.compile(r"```[\s\S]*?(?:```|$)|`[^`\n]*`")
_RANGE = re.compile(rf"({_NUM})\s*[-–—]\s*({_NUM})")
_DIGITS = re.compile(r"\d+")
_GONE = "\x00"  # where a marker was removed, until the whitespace around it is tidied
_TAB_NEWLINE = re.compile(r"[\t\r\n]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


@dataclass(frozen=True)
class Cited:
    text: str  # the answer with invalid markers removed, valid ones as "[1][2]"
    citations: list[Citation] = field(default_factory=list)  # in order of first citation
    invalid: list[int] = field(default_factory=list)  # cited but not given (removed from text)
    uncited: list[int] = field(default_factory=list)  # given but never cited


def markers(answer: str) -> list[int]:
    """The numbers ``answer`` cites, in order of first citation, each once."""
    seen: list[int] = []

    def collect(numbers: list[int]) -> str:
        seen.extend(n for n in numbers if n not in seen)
        return ""

    _rewrite(answer, collect)
    return seen


def cite(answer: str, sources: Sequence[Source]) -> Cited:
    """Keep the answer's citations of ``sources``, drop the rest, and say which is which."""
    by_number = {s.n: s for s in sources}
    order: list[int] = []
    invalid: list[int] = []

    def check(numbers: list[int]) -> str:
        good = [n for n in numbers if n in by_number]
        invalid.extend(n for n in numbers if n not in by_number and n not in invalid)
        order.extend(n for n in good if n not in order)
        return _canonical(good)

    text = _rewrite(answer.replace(_GONE, ""), check)
    return Cited(
        text=_tidy(text),
        citations=[_citation(by_number[n]) for n in order],
        invalid=invalid,
        uncited=sorted(n for n in by_number if n not in order),
    )


def renumber(answer: str, mapping: dict[int, int]) -> str:
    """Rewrite every ``[n]`` as ``[mapping[n]]``, all at once; unmapped numbers are removed.

    Map-reduce summaries number each part's sources from 1; combining them needs their
    markers moved to the global numbering. A number the mapping does not know cannot be
    placed, and left alone it could silently cite the wrong global source, so it goes.
    """

    def move(numbers: list[int]) -> str:
        return _canonical([mapping[n] for n in numbers if n in mapping])

    return _tidy(_rewrite(answer.replace(_GONE, ""), move))


def deep_link(url: str, kind: str, locator: dict) -> str:
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


def _rewrite(answer: str, replace: Callable[[list[int]], str]) -> str:
    """Call ``replace`` with the numbers of each marker outside code; splice in its result.

    A marker ``replace`` turns into "" leaves a placeholder for ``_tidy``.
    """
    out: list[str] = []
    last = 0
    for code in _CODE.finditer(answer):
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
        return replace(numbers) or _GONE

    return _MARKER.sub(one, text)


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
    run = rf"[ \t]*{_GONE}(?:[ \t]*{_GONE})*[ \t]*"
    # Before punctuation or at the end of a line: "rose [9]." → "rose."
    text = re.sub(rf"{run}(?=[.,;:!?)\]]|\n|$)", "", text)
    # At the start of a line: keep the indentation, drop the gap.
    text = re.sub(rf"(^|\n)([ \t]*){_GONE}(?:[ \t]*{_GONE})*[ \t]*", r"\1\2", text)
    # Between words: one space if there was any, none if the marker was glued on.
    return re.sub(run, lambda m: " " if re.search("[ \t]", m.group()) else "", text)


def _is_page(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _snippet(text: str) -> str:
    flat = " ".join((text or "").split())
    if len(flat) <= SNIPPET_CHARS:
        return flat
    head = flat[:SNIPPET_CHARS]
    space = head.rfind(" ")
    if space > SNIPPET_CHARS // 2:
        head = head[:space]
    return head.rstrip(" ,;:") + "…"


def _citation(source: Source) -> Citation:
    locator = dict(source.locator or {})
    return Citation(
        n=source.n,
        item_id=source.item_id,
        title=source.title,
        url=source.url,
        link=deep_link(source.url, source.kind, locator),
        locator=locator,
        where=format_locator(locator),
        snippet=_snippet(source.text),
    )
