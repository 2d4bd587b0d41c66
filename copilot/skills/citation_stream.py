"""A streamed answer with its citations checked as it is written.

``citations.cite`` checks a whole answer; while the answer streams, ``CitationStream``
applies the same checks to the text shown so far, holding back only what is not decided
yet (a marker still being written, the spaces before it), so the reader never sees a
citation that the final answer drops. Its own module because it is the hot path of every
streamed run (one call per token) and its cost was measured apart (docs/benchmarks.md,
"Streamed citations checked once").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from copilot.skills.citations import CODE, GONE, MARKER_LIST, checked, passage_numbers
from copilot.skills.types import Source


class CitationStream:
    """Streamed deltas passed on with their citations checked as ``cite`` checks the whole
    answer: markers of sources that exist written as "[1][2]", the others removed.

    Text is held back only while it is undecided: a marker still being written ("[1, "),
    a complete one that could still turn into a link ("[1]" before a "("), the spaces in
    front of a marker (they go if it goes), and a line after an unclosed backtick (code is
    left alone). ``close`` passes on whatever is left at the end of the answer.
    """

    def __init__(self, emit: Callable[[str], None], sources: Sequence[Source]) -> None:
        self.emit = emit
        self._known = {s.n for s in sources}
        self._alias = passage_numbers(sources)
        self._raw = ""  # text received since the last safe cut (a line break, a word)
        self._shown = ""  # its checked form, as far as it has been passed on

    @property
    def held(self) -> str:
        """The text still checked with each new delta (since the last safe cut)."""
        return self._raw

    def feed(self, delta: str) -> None:
        self._raw += delta
        self._push(_settled(self._raw))

    def close(self) -> None:
        self._push(len(self._raw))

    def _push(self, ready: int) -> None:
        text = self._check(self._raw[:ready])
        same = len(self._shown) if text.startswith(self._shown) else _common(self._shown, text)
        if text[same:]:
            self.emit(text[same:])
        self._shown = text
        cut = max(_line_break(self._raw[:ready]), _word_cut(self._raw, ready))
        if cut:  # the text before it can no longer change: forget it
            head = self._check(self._raw[:cut])
            if self._shown.startswith(head):
                self._raw, self._shown = self._raw[cut:], self._shown[len(head) :]

    def _check(self, text: str) -> str:
        if "[" not in text and "【" not in text and GONE not in text:
            return text  # no marker, nothing to tidy: most deltas of most answers
        return checked(text, self._known, self._alias)[0]


# The end of a streamed text that may still change meaning: spaces, a whole marker (a link
# if "(" follows), or what could be the start of one ("[", "[1, 2", "[Sour", "【3†").
_MARKER_AT_END = re.compile(
    rf"(?:\[\s*{MARKER_LIST}\s*\]|【\s*{MARKER_LIST}\s*(?:†[^】\n]*)?】)$", re.IGNORECASE
)
_OPEN_AT_END = re.compile(r"(?:\[[\s\d,;\-–—sourceand]{0,40}|【[^】\n]{0,80})$", re.IGNORECASE)
_SPACES_AT_END = re.compile(r"[ \t]+$")
_FENCE_MARK = re.compile(r"```")


def _settled(text: str) -> int:
    """How much of a streamed ``text`` reads the same whatever comes next."""
    fences = [m.start() for m in _FENCE_MARK.finditer(text)]
    if len(fences) % 2:  # inside a code block: code is passed on as it is
        return len(text)
    line = text.rfind("\n") + 1
    spans = CODE.sub(lambda m: " " * len(m.group()), text[line:])
    tick = spans.find("`")  # an inline code span still open: wait for its end
    end = line + tick if tick >= 0 else len(text)
    while True:
        head = text[:end]
        found = (
            _SPACES_AT_END.search(head) or _MARKER_AT_END.search(head) or _OPEN_AT_END.search(head)
        )
        if found is None or found.start() == end:
            return end
        end = found.start()


def _line_break(text: str) -> int:
    """The end of the last whole line of ``text`` outside code with no bracket left open
    (0 if none): a safe place to split the text checked so far."""
    end = text.rfind("\n") + 1
    while end > 0:
        before = text[:end]
        line = before[before.rfind("\n", 0, end - 1) + 1 :]
        closed = max(line.rfind("]"), line.rfind("】")) >= max(line.rfind("["), line.rfind("【"))
        if closed and before.count("```") % 2 == 0:
            return end
        end = before.rfind("\n", 0, end - 1) + 1
    return 0


def _word_cut(text: str, ready: int) -> int:
    """A point inside the last word of ``text[:ready + 1]`` where the text can be split and
    each part checked alone (0 if none): no backtick before it (so no code span or fence
    crosses it) and no bracket open (so no marker does). Between two word characters no
    marker, repeated marker or gap left by a removed one can straddle the cut either.

    Why: without it a streamed answer of one long paragraph was checked whole again on
    every delta, work that grows with the square of its length (py-spy put ~10 % of an API
    worker's interpreter samples there under 20 streams; docs/benchmarks.md, "Streamed
    citations checked once")."""
    p = min(ready, len(text) - 1)
    while p > 0 and not (_is_word(text[p - 1]) and _is_word(text[p])):
        p -= 1
    head = text[:p]
    if p <= 0 or "`" in head:
        return 0
    if head.rfind("[") > head.rfind("]") or head.rfind("【") > head.rfind("】"):
        return 0
    return p


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
