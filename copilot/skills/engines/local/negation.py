"""Say negated complaints plainly before they are embedded: "not bad at all" → "good".

Why: MiniLM barely sees negation. "The breakfast was not bad at all" sits next to "The
breakfast was bad" in its space, so the nearest prototypes are complaints and the sentence
scored negative (-0.11) although a reader takes it as praise. VADER's rules do flip it,
but at a 0.3 share they cannot outvote the embedding. Rewriting only the text that is
embedded (VADER still reads the original) fixes the common idioms without a parser:

- a negator ("not", "never", "no", "without", "hardly", "-n't") followed, after at most
  three filler words ("at all", "ever being", "a single"), by a negative word: VADER's
  lexicon entries at or below ``NEGATIVE_VALENCE`` plus a few it lacks;
- "could not have been kinder", "couldn't be happier": a negated positive comparative is
  the strongest praise; "could not be worse" the strongest complaint.

Negated *positive* words ("not good", "never helpful") are left alone: the embedding and
VADER already read those as complaints, and rewriting them helped nothing on the dev set.
"""

from __future__ import annotations

import re
from functools import lru_cache

NEGATIVE_VALENCE = -1.0  # VADER valence at or below this counts as a negative word
# Negative words VADER's lexicon lacks, and words whose negation is not praise
# ("not cheap" means expensive; "won't stop beeping" is a complaint).
_EXTRA_NEGATIVE = frozenset(
    "issue issues slow unclean dirty noisy overpriced faulty flimsy buggy unhelpful".split()
)
_NOT_PRAISE_WHEN_NEGATED = frozenset("cheap stop stops stopped stopping no not never".split())
_FILLER = (
    r"(?:at|all|that|too|so|very|really|ever|even|once|being|been|be|a|an|the|any|single|"
    r"particularly|overly|remotely|terribly|half|as|bit|in|way|one)"
)
_NEGATOR = r"(?:\b[A-Za-z]+n't|\bnot|\bnever|\bno|\bwithout|\bhardly|\bcannot)"
_NEGATED_WORD = re.compile(
    rf"{_NEGATOR}\s+(?:{_FILLER}\s+){{0,3}}(?P<word>[A-Za-z]+)(?:\s+at\s+all\b)?", re.IGNORECASE
)
_NEGATED_COMPARATIVE = re.compile(
    rf"{_NEGATOR}\s+(?:have\s+been|be|ask\s+for|wish\s+for|have\s+asked\s+for)\s+"
    r"(?:a\s+|any\s+)?(?P<word>better|happier|kinder|nicer|friendlier|worse|"
    r"more\s+(?:helpful|pleased|satisfied|welcoming|impressed))\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _negative_words() -> frozenset[str]:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        lexicon: dict[str, float] = {}
    else:
        lexicon = SentimentIntensityAnalyzer().lexicon
    words = {w for w, v in lexicon.items() if v <= NEGATIVE_VALENCE and w.isalpha()}
    return frozenset((words | _EXTRA_NEGATIVE) - _NOT_PRAISE_WHEN_NEGATED)


def _comparative(match: re.Match[str]) -> str:
    return "terrible" if match["word"].lower() == "worse" else "excellent"


def _negated(match: re.Match[str]) -> str:
    return "good" if match["word"].lower() in _negative_words() else match[0]


def plain_polarity(text: str) -> str:
    """``text`` with negated complaints replaced by the praise they mean (for embedding)."""
    if "n" not in text and "N" not in text:  # every negator has an "n": skip the regexes
        return text
    text = _NEGATED_COMPARATIVE.sub(_comparative, text)
    return _NEGATED_WORD.sub(_negated, text)
