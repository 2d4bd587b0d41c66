"""Source numbers for the parts of an answer a model left uncited, from the words they share.

Two cases. The summarise template asks for a source number at the end of every bullet,
and a 1.5B model forgets it on some lines (issue 14: "citations not per line"), so
``attribute_lines`` numbers the uncited list lines. And a small model asked to write
"[n]" markers at all writes them where the answer belongs ("The $ value paid to Mixpanel
is [1]."), so on such a model the ``ask`` template does not ask for markers
(``cite_after``, see ``copilot.skills.prepare``) and ``attribute_sentences``
cites every sentence of the answer afterwards.

Either way a citation is a promise that the source says it: a line or sentence whose
content words are mostly in one given source takes that source's number; one that
matches no source well stays uncited rather than being given a guess. Never used on mail
drafts: a reply goes to its recipient, who has no sources to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from copilot.skills.engines.local.sentences import split_sentences
from copilot.skills.engines.local.text import content_terms
from copilot.skills.types import Source

LIST_MARK = r"(?:[-*•]|\d{1,2}[.)])[ \t]+"  # a list item's marker: "- ", "* ", "2. "
BULLET = r"^[ \t]*" + LIST_MARK  # a list line, nested or not
LIST_LINE = re.compile(BULLET + r"\S")
MARKER = re.compile(r"\[\d{1,4}\]")
# Markers a sentence split leaves at the start of the next sentence ("… paid. [1] The …"):
# they belong to the sentence before.
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,4}\])+\s*")
_MARKER_NEXT = re.compile(r"[ \t]*\[\d{1,4}\]")
MIN_TERMS = 3  # shorter lines ("- Budget") say too little to place
MIN_SHARED = 0.6  # of the line's content words found in the source


def attribute_lines(answer: str, sources: Sequence[Source]) -> str:
    """``answer`` with ``[n]`` added to each uncited list line that clearly comes from
    source ``n`` (the source holding the largest share of its words, at least
    ``MIN_SHARED``; the earlier source on a tie)."""
    if not sources:
        return answer
    source_of = supporter(sources)
    lines = answer.split("\n")
    for i, line in enumerate(lines):
        if not LIST_LINE.match(line) or MARKER.search(line):
            continue
        n = source_of(line)
        if n is not None:
            lines[i] = f"{line.rstrip()} [{n}]"
    return "\n".join(lines)


def attribute_sentences(answer: str, sources: Sequence[Source]) -> str:
    """``answer`` with ``[n]`` after each sentence (list lines included) that cites
    nothing and clearly comes from source ``n``, by the rule of ``attribute_lines``.
    Sentences that already cite a source are left as they are."""
    if not sources:
        return answer
    source_of = supporter(sources)
    out: list[str] = []
    done = 0
    for start, end in split_sentences(answer):
        n = _number(answer, start, end, source_of)
        if n is not None:
            out.append(f"{answer[done:end]} [{n}]")
            done = end
    out.append(answer[done:])
    return "".join(out)


def _number(text: str, start: int, end: int, source_of: Callable[[str], int | None]) -> int | None:
    """The source number the sentence ``text[start:end]`` gets: none if it already cites
    one (or one follows it), or if it only introduces what follows ("The risks are:")."""
    sentence = _LEADING_MARKERS.sub("", text[start:end])
    cited = MARKER.search(sentence) or _MARKER_NEXT.match(text, end)
    if not sentence.strip() or cited or sentence.rstrip().endswith(":"):
        return None
    return source_of(sentence)


def supporter(sources: Sequence[Source]) -> Callable[[str], int | None]:
    """A function from a text to the number of the source holding at least
    ``MIN_SHARED`` of its content words (the largest share; the earlier source on a tie),
    or None: too few words to tell (``MIN_TERMS``), or no source holds enough of them.
    The sources' words are read once, on the first text that needs them."""
    vocab: list[tuple[int, set[str]]] = []

    def source_of(text: str) -> int | None:
        words = content_terms(MARKER.sub(" ", text))
        if len(words) < MIN_TERMS or not sources:
            return None
        if not vocab:
            vocab.extend((s.n, content_terms(s.text)) for s in sources)
        share, earlier = max((len(words & terms) / len(words), -n) for n, terms in vocab)
        return -earlier if share >= MIN_SHARED else None

    return source_of


class AttributionStream:
    """Streamed deltas passed on at once, each finished sentence followed by the ``[n]``
    that ``attribute_sentences`` gives it, so a reader sees the citations as the answer is
    written rather than only in the final text.

    A sentence is finished when the next one begins (``split_sentences`` on the text since
    the last finished one); until then only what follows its words (white space, the next
    bullet's marker) is held back, since the marker goes before it. ``close`` settles the
    last sentences.
    """

    def __init__(self, emit: Callable[[str], None], sources: Sequence[Source]) -> None:
        self.emit = emit
        self._source_of = supporter(sources)
        self._text = ""  # from the end of the last finished sentence
        self._shown = 0  # how much of it has been passed on

    def feed(self, delta: str) -> None:
        self._text += delta
        spans = self._settle(keep_last=True)
        # What follows the last sentence's words (white space, a new bullet's "- ") waits:
        # the marker, if the sentence gets one, goes before it.
        ready = spans[-1][1] if spans else 0
        if ready > self._shown:
            self.emit(self._text[self._shown : ready])
            self._shown = ready

    def close(self) -> None:
        self._settle(keep_last=False)
        if len(self._text) > self._shown:
            self.emit(self._text[self._shown :])
        self._text, self._shown = "", 0

    def _settle(self, *, keep_last: bool) -> list[tuple[int, int]]:
        """Pass on each finished sentence with its marker, and forget it; the spans of
        what is left."""
        spans = split_sentences(self._text)
        while len(spans) > (1 if keep_last else 0):
            start, end = spans[0]
            text = self._text
            n = _number(text, start, end, self._source_of)
            piece = text[self._shown : end] + (f" [{n}]" if n is not None else "")
            if piece:
                self.emit(piece)
            self._text, self._shown = text[end:], max(0, self._shown - end)
            spans = split_sentences(self._text)
        return spans
