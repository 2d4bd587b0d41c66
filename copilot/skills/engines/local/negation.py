"""Say negated complaints plainly before they are embedded: "not bad at all" → "good".

Why: MiniLM barely sees negation. "The breakfast was not bad at all" sits next to "The
breakfast was bad" in its space, so the nearest prototypes are complaints and the sentence
scored negative (-0.11) although a reader takes it as praise. VADER's rules do flip it,
but at a 0.3 share they cannot outvote the embedding. Rewriting only the text that is
embedded (VADER still reads the original) fixes the common idioms without a parser:

- a negator ("not", "never", "no", "without", "hardly", "nothing to", "-n't") followed, after
  at most three filler words ("at all", "ever being", "a single"), by a negative word: VADER's
  lexicon entries at or below ``NEGATIVE_VALENCE`` plus a few it lacks;
- "don't waste", "never buy": a warning, said as "avoid";
- "could not have been kinder", "couldn't be more pleased": a negated comparative is the
  strongest praise; "could not be worse", "couldn't be more disappointed" the strongest
  complaint.

Negated *positive* words ("not good", "never helpful") are left alone: the embedding and
VADER already read those as complaints, and rewriting them helped nothing on the dev set.
"""

from __future__ import annotations

import re
from functools import lru_cache

from copilot.skills.engines.local.prototypes import LEXICON

NEGATIVE_VALENCE = -1.0  # VADER valence at or below this counts as a negative word
# Negative words VADER's lexicon lacks, and words whose negation is not praise
# ("not cheap" means expensive; "won't stop beeping" is a complaint).
_EXTRA_NEGATIVE = frozenset(
    [
        *("issue", "issues", "slow", "unclean", "dirty", "noisy"),
        *("overpriced", "faulty", "flimsy", "buggy", "unhelpful"),
    ]
)
# "Don't waste your money" and "don't bother" are warnings, not praise.
_NOT_PRAISE_WHEN_NEGATED = frozenset(
    ["cheap", "stop", "stops", "stopped", "stopping", "no", "not", "never", "waste", "bother"]
)
_FILLER = (
    r"(?:at|all|that|too|so|very|really|ever|even|once|being|been|be|a|an|the|any|single|"
    r"particularly|overly|remotely|terribly|half|as|bit|in|way|one)"
)
_NEGATOR = r"(?:\b[A-Za-z]+n't|\bnot|\bnever|\bno|\bwithout|\bhardly|\bcannot|\bnothing\s+to)"
_NEGATED_WORD = re.compile(
    rf"{_NEGATOR}\s+(?:{_FILLER}\s+){{0,3}}(?P<word>[A-Za-z]+)(?:\s+at\s+all\b)?", re.IGNORECASE
)
_NEGATED_COMPARATIVE = re.compile(
    rf"{_NEGATOR}\s+(?:have\s+been|be|ask\s+for|wish\s+for|have\s+asked\s+for)\s+"
    r"(?:a\s+|any\s+)?(?P<word>better|happier|kinder|nicer|friendlier|worse|"
    r"more\s+[A-Za-z]+)\b",
    re.IGNORECASE,
)


# "Don't waste your money", "never buy from them": warnings read as negated complaints by
# VADER (a positive compound), so the embedded text says it plainly.
_WARNING = re.compile(
    r"\b(?:do\s+not|don't|never)\s+(?:waste|bother|buy|order|book)\b", re.IGNORECASE
)


@lru_cache(maxsize=1)
def _negative_words() -> frozenset[str]:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        lexicon: dict[str, float] = {}
    else:
        lexicon = SentimentIntensityAnalyzer().lexicon
    lexicon = {**lexicon, **LEXICON}
    words = {w for w, v in lexicon.items() if v <= NEGATIVE_VALENCE and w.isalpha()}
    return frozenset((words | _EXTRA_NEGATIVE) - _NOT_PRAISE_WHEN_NEGATED)


def _comparative(match: re.Match[str]) -> str:
    word = match["word"].lower().split()[-1]  # "more disappointed" -> "disappointed"
    return "terrible" if word == "worse" or word in _negative_words() else "excellent"


def _negated(match: re.Match[str]) -> str:
    return "good" if match["word"].lower() in _negative_words() else match[0]


def plain_polarity(text: str) -> str:
    """``text`` with negated complaints replaced by the praise they mean (for embedding)."""
    if "n" not in text and "N" not in text:  # every negator has an "n": skip the regexes
        return text
    text = _WARNING.sub("avoid, terrible", text)
    text = _NEGATED_COMPARATIVE.sub(_comparative, text)
    return _NEGATED_WORD.sub(_negated, text)
