"""A message that asks several things is searched once per question as well.

Why: a reply has to answer every question of the mail it answers, but one search for the
whole message ranks passages by the words of all its questions at once, so the passage
that answers the shorter question can fall below those that share words with the longer
one. Seen in ``make demo``: "Can we move the go-live of Atlas to 21 March? What is the
travel budget for Q3?" found the go-live mails and a note about travel first; the budget
table with the Q3 figure came fourth and was packed out, and the draft wrote
"[TODO: figure]". Searched alone, the second question puts that table first.

So a text with two or more questions is searched as a whole and once per question, and
the rankings are taken in turns (the whole text's best, each question's best, then the
seconds …), each chunk once: every question's best passage is among the first ones kept,
and a text with one question or none is searched exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from copilot.index.search import SearchResult

MAX_QUESTIONS = 4  # more would each get a turn too late to be packed: the first ones count
MIN_WORDS = 3  # "Why?" and "Any news?" name nothing to search for
_QUESTION = re.compile(r"[^.!?\n]*\?")
_WORD = re.compile(r"\w+")


def questions(text: str) -> list[str]:
    """The questions ``text`` asks, in order: sentences ending with "?" of at least
    ``MIN_WORDS`` words, each once, at most ``MAX_QUESTIONS``."""
    found: list[str] = []
    for match in _QUESTION.finditer(text):
        question = " ".join(match.group().split())
        if len(_WORD.findall(question)) >= MIN_WORDS and question not in found:
            found.append(question)
    return found[:MAX_QUESTIONS]


def queries(text: str) -> list[str]:
    """What to search for ``text``: the text, and each of its questions if it asks two or
    more."""
    asked = questions(text)
    return [text, *asked] if len(asked) >= 2 else [text]


def in_turns(rankings: Sequence[Sequence[SearchResult]], k: int) -> list[SearchResult]:
    """The rankings taken in turns, best first, each chunk once, at most ``k``."""
    taken: list[SearchResult] = []
    seen: set[str] = set()
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank].chunk_id not in seen:
                seen.add(ranking[rank].chunk_id)
                taken.append(ranking[rank])
                if len(taken) == k:
                    return taken
    return taken
