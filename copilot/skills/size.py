"""How long a model's summary should be, and where its answer stops.

A summary is a share of the text it summarises, within the length the user picked: a
quarter of the text for ``medium``, never under 40 nor over 120 words (short and long
scale the same way). A fixed "about 5 points or 120 words" whatever the text, as the
template said before, asked for 40 % of a 300-word mail, and the 1.5B model took it as a
floor: 6–8 points, 730–1,000 characters (issue 14, ``bench/embedded.py``), so the summary
took 2.6× the time of a plain prompt's answer on a CPU, where each token written is
~60 ms.

A small model still overshoots a number it is given, so the answer is also cut where it
has clearly said enough (``stop_at``): before a point that would be the second beyond
those asked for, or that would start when the words asked for are half as many again as
asked; a paragraph at the first sentence end past that many words. The engine closes the
stream there, so the model stops writing rather than being trimmed afterwards, and the
same cut applies to an answer that was not streamed. Cuts fall only between points or
sentences, never inside one; tl;dr, subject lines and action items are never cut (every
action item matters, and the others have their own shape).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from copilot.skills.attribute import LIST_MARK, MARKER

# The user's length: the share of the text's words, and the bounds of the summary's words
# and points.
_SHARE = {"short": 0.15, "medium": 0.25, "long": 0.4}
_WORDS = {"short": (25, 60), "medium": (40, 120), "long": (60, 250)}
_POINTS = {"short": (2, 3), "medium": (2, 5), "long": (3, 10)}
WORDS_PER_POINT = 20
SIZED_STYLES = ("bullets", "paragraph")
EXTRA_POINTS = 1  # points beyond those asked for that still stay
OVER = 1.5  # words beyond those asked for, as a factor, after which a new point is cut

# A top-level point of a list: its marker at the very start of a line (not nested).
_POINT_START = re.compile(r"(?m)^" + LIST_MARK)
# A sentence end in running text, with the source markers that follow it.
_SENTENCE_END = re.compile(r"[.!?](?:[ \t]*" + MARKER.pattern + r")*(?=\s+\S)")


@dataclass(frozen=True)
class Size:
    """About how many points and words a summary should have."""

    points: int
    words: int
    style: str = "bullets"

    def as_dict(self) -> dict[str, int]:
        """What a template reads as ``size``."""
        return {"points": self.points, "words": self.words}

    def stop_at(self, text: str) -> int | None:
        """Where the answer ``text`` (so far) should end, or None to go on."""
        if self.style == "paragraph":
            return _paragraph_end(text, self.words * OVER)
        return _points_end(text, self.points + EXTRA_POINTS, self.words * OVER)


def summary_size(
    inputs: Mapping[str, Any], texts: Sequence[str], *, reads_size: bool
) -> Size | None:
    """The size a summary of ``texts`` should have, for a template that reads ``size``;
    None for any other template, or a style that is not sized."""
    style = inputs.get("style") or "bullets"
    length = inputs.get("length") or "medium"
    if not reads_size or style not in SIZED_STYLES or length not in _SHARE:
        return None
    text_words = sum(count_words(t) for t in texts)
    low, high = _WORDS[length]
    words = max(low, min(high, 5 * round(text_words * _SHARE[length] / 5)))
    fewest, most = _POINTS[length]
    points = max(fewest, min(most, math.ceil(words / WORDS_PER_POINT)))
    return Size(points=points, words=words, style=str(style))


def count_words(text: str) -> int:
    """Words of ``text``, source markers left out."""
    return len(MARKER.sub(" ", text).split())


def _points_end(text: str, most_points: int, most_words: float) -> int | None:
    starts = [m.start() for m in _POINT_START.finditer(text)]
    for n, start in enumerate(starts):
        if n >= most_points or (n and count_words(text[:start]) >= most_words):
            return _trimmed(text, start)
    return None


def _paragraph_end(text: str, most_words: float) -> int | None:
    for end in _SENTENCE_END.finditer(text):
        if count_words(text[: end.end()]) >= most_words:
            return end.end()
    return None


def _trimmed(text: str, at: int) -> int:
    """``at`` moved back over the blank space before it."""
    while at > 0 and text[at - 1].isspace():
        at -= 1
    return at


def cut(text: str, size: Size | None) -> str:
    """``text`` ended where ``size`` says it has said enough."""
    if size is None:
        return text
    at = size.stop_at(text)
    return text if at is None else text[:at]
