"""A source number for each list line a model left uncited, from the words it shares.

The summarise template asks for a source number at the end of every bullet, and a 1.5B
model forgets it on some lines (issue 14: "citations not per line"), so a reader cannot
check those points. A line whose content words are mostly in one given source takes that
source's number; a line that matches no source well stays uncited rather than being
given a guess. Only list lines ("- …", "* …", "1. …") of answers that are not mail
drafts: a reply goes to its recipient, who has no sources to look at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from copilot.skills.engines.local.text import content_terms
from copilot.skills.types import Source

LIST_LINE = re.compile(r"^[ \t]*(?:[-*•]|\d{1,2}[.)])[ \t]+\S")
MARKER = re.compile(r"\[\d{1,4}\]")
MIN_TERMS = 3  # shorter lines ("- Budget") say too little to place
MIN_SHARED = 0.6  # of the line's content words found in the source


def attribute_lines(answer: str, sources: Sequence[Source]) -> str:
    """``answer`` with ``[n]`` added to each uncited list line that clearly comes from
    source ``n`` (the source holding the largest share of its words, at least
    ``MIN_SHARED``; the earlier source on a tie)."""
    if not sources:
        return answer
    vocab: list[tuple[int, set[str]]] = []  # read only when a line needs a source
    lines = answer.split("\n")
    for i, line in enumerate(lines):
        if not LIST_LINE.match(line) or MARKER.search(line):
            continue
        words = content_terms(line)
        if len(words) < MIN_TERMS:
            continue
        vocab = vocab or [(s.n, content_terms(s.text)) for s in sources]
        share, earlier = max((len(words & terms) / len(words), -n) for n, terms in vocab)
        if share >= MIN_SHARED:
            lines[i] = f"{line.rstrip()} [{-earlier}]"
    return "\n".join(lines)
