"""Sentiment without an LLM: nearest prototypes in a sentence encoder's space, a learnt
head on the same vectors, and a word lexicon.

Why this shape:
- The vectors are multilingual-e5-small's (``encoder.py``), read for this engine only, or
  the index's MiniLM where e5 cannot run; each has its own head (``head.py``). On rated
  review, film and editorial sentences held out of the head's fit, the same engine scores
  higher on e5 (docs/benchmarks.md, "A sentence encoder that reads outcomes").
- A text is compared with a bank of hand-written example sentences per polarity
  (``sentiment_prototypes``) and votes with a softmax over the similarities. Two prototype
  sentences ("I love it" / "I hate it") are pulled by topic as much as by polarity (about 0.81
  accuracy on review sentences); many short prototypes across domains let the nearest ones
  share the text's topic and differ only in polarity (about 0.89).
- The bank is hand-written and leans to the domains it was written for, so a learnt head
  (``head.py``: multinomial logistic regression on the same vectors, fitted on ~23,700
  human-rated sentences of reviews, editorials and tweets that ship in the vaderSentiment
  sdist) shares the embedding part of the score with it, half each. On a held-out fold of
  those sentences the blend gained 0.025 accuracy over the bank alone (product and film
  snippets, editorials, tweets: each gained). Praise told only as an event ("the courier
  phoned when he was ten minutes away") is rare in that corpus, and the head pulled it to
  neutral or negative; so the head is also fitted on hand-written rows, weighted up: the
  bank and ``events.py`` (praise and complaints told as events across many services).
  Embedders the head was not fitted for score without it.
- Sentence vectors barely see negation ("not terrible" sits next to "terrible"). VADER's lexicon and
  rules (``vaderSentiment``, when installed) handle negation, intensifiers and "but"; its
  compound score is mixed in with a fixed weight rather than fitted to any test set.
  Negated complaints ("not bad at all") are also said plainly before either reads them
  (``negation.plain_polarity``).
- The bank leans to one side on text with no opinion (positive, with MiniLM): the mean
  score of neutral sentences kept out of the bank (``prototypes.CALIBRATION``) is taken
  off every score, so the two classes meet at 0 on neutral text.
- A skill template's few-shot examples join the bank with a higher weight, so a user's
  own examples move the decision for texts like them: that is how a fork adapts the local
  engine to its domain. The bank's share against the head rises with the share of its
  vote the examples carry, so a text close to them follows them, not the head.
- Aspects come from clauses (split at sentence ends, ";", commas and "but/although/...")
  scored the same way, named by their first content words. That is a heuristic, stated as
  one: it finds "screen" and "battery", not a parse.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from copilot.index.embed import Embedder
from copilot.skills.engines.local import prototypes as prototypes
from copilot.skills.engines.local.aspects import is_aspect_word
from copilot.skills.engines.local.bank import bank_texts_with_calibration, shipped_vectors
from copilot.skills.engines.local.head import SentimentHead, head_for
from copilot.skills.engines.local.negation import plain_polarity
from copilot.skills.sentiment_io import aggregate as aggregate  # where callers found it
from copilot.skills.types import Aspect, Label, SentimentResult

TEMPERATURE = 0.1  # softmax over cosine similarities: the nearest ~10 prototypes dominate
LEXICON_WEIGHT = 0.3  # share of VADER's compound score in the final score
BANK_SHARE = 0.5  # with a head: the bank's share of the embedding part (the head has the rest)
EXAMPLE_WEIGHT = 4.0  # one of the user's examples counts as this many built-in prototypes
NEUTRAL_BAND = 0.1  # |score| below this is neutral
ASPECT_BAND = 0.2  # a clause must be at least this clear to count as an aspect
MIXED_BAND = 0.3  # "mixed" needs a clause this clear on each side, and a whole text below it
MAX_CLAUSES = 12  # per text: a long document is summarised by its first clauses
CHARS_PER_TOKEN = 6  # generous: a text is cut to max_tokens * this before any work

_CLAUSE_BREAK = re.compile(
    r"[.!?;:\n]+|,|\b(?:but|although|though|however|whereas|yet|except|while)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
# Words that never name an aspect; the lexicon's opinion words are excluded too, and the
# commonest of them are listed here for when the lexicon is not installed.
_STOPWORD_TEXT = """a an the this that these those it its it's i i'm i've me my we our you your
    they them their he she his her is are was were be been being am do does did done have has
    had having
    get got gets make made will would can could should shall may might must not no never
    nothing very really so too quite just also even still only much more most less all any
    some every each one two three first last after before in on at of for to from with
    without by about into over under up down out off again than then there here when where
    what which who how why and or if as because until within day days week weeks month
    months year years time times hour hours minute minutes lot bit thing things way
    absolutely totally completely pretty kind sort anything everything something right away
    back well work works worked working use used using come came comes go went going lasts
    last lasted looks look looked feels feel felt seems seem seemed sounds tastes smells
    arrived arrives keeps kept stopped started takes took gives gave says said
    good great bad best worst fine nice poor perfect excellent terrible awful horrible amazing
    awesome lovely love loved hate hated died broke broken"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_vader: Any = None


def _lexicon() -> Any:
    """VADER's analyser, or None when the package is missing (embedding-only scores then)."""
    global _vader
    if _vader is None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError:
            _vader = False
        else:
            _vader = SentimentIntensityAnalyzer()
            _vader.lexicon.update(prototypes.LEXICON)  # review words it lacks
    return _vader or None


_bank_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _builtin_bank(embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Prototype and calibration vectors, once per vector space (re-embedding them per
    skill run costs ~0.5 s with MiniLM, ~8 s with e5: its vectors ship, ``bank.py``)."""
    cached = _bank_cache.get(embedder.model_id)
    if cached is None:
        every = bank_texts_with_calibration()
        vectors = shipped_vectors(embedder.model_id, every, embedder.dim)
        if vectors is None:
            vectors = embedder.embed_documents(every)
        n = len(every) - len(prototypes.CALIBRATION)
        cached = _bank_cache[embedder.model_id] = (vectors[:n], vectors[n:])
    return cached


_examples_cache: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
_examples_lock = threading.Lock()
EXAMPLE_SETS_KEPT = 64  # a skill's examples, embedded once: a workbook is scored a row a run


def _example_vectors(embedder: Embedder, texts: tuple[str, ...]) -> np.ndarray:
    """A template's few-shot examples' vectors, kept for the next run of the same skill
    (scoring a 1,000-row column builds the engine 1,000 times; e5 takes ~60 ms for three)."""
    key = (embedder.model_id, texts)
    vectors = _examples_cache.get(key)
    if vectors is None:
        vectors = embedder.embed_documents(list(texts))
        with _examples_lock:  # API run threads share the cache
            if len(_examples_cache) >= EXAMPLE_SETS_KEPT:
                _examples_cache.pop(next(iter(_examples_cache)))  # the oldest
            _examples_cache[key] = vectors
    return vectors


class LocalSentiment:
    """Classify texts as positive/negative/neutral/mixed with evidence, no LLM needed."""

    def __init__(
        self,
        embedder: Embedder,
        examples: Sequence[tuple[str, str]] = (),
        *,
        use_head: bool = True,
        head: SentimentHead | None = None,
    ) -> None:
        """``head``: another fitted head in ``embedder``'s space than the shipped one (a
        benchmark's held-out fit); ``use_head=False``: none."""
        self._embedder = embedder
        self._max_chars = embedder.max_tokens * CHARS_PER_TOKEN
        classes = (
            [0] * len(prototypes.POSITIVE)
            + [1] * len(prototypes.NEGATIVE)
            + [2] * len(prototypes.NEUTRAL)
        )
        weights = [1.0] * len(classes)
        vectors, calibration = _builtin_bank(embedder)
        kept = [(t, _LABEL_CLASS[lab.strip().lower()]) for t, lab in examples if _usable(t, lab)]
        if kept:
            extra = _example_vectors(embedder, tuple(t[: self._max_chars] for t, _ in kept))
            vectors = np.concatenate([vectors, extra])
            classes += [c for _, c in kept]
            weights += [EXAMPLE_WEIGHT] * len(kept)
        self._bank = vectors
        # log-weights added to the logits: a weight of 4 is four identical prototypes.
        self._log_weights = np.log(np.asarray(weights, dtype=np.float32))
        self._onehot = np.eye(3, dtype=np.float32)[classes]
        self._builtin = len(classes) - len(kept)  # the bank's columns before the examples
        # The threshold, moved so that neutral text scores 0 on average: without it the
        # bank's own lean (which side has the closer wording) decides every vague sentence.
        self._bias = float(np.mean(self._embedded(calibration)[0]))
        # The learnt head (``head.py``), when it was fitted in this vector space; its lean on
        # neutral text is taken off the same way.
        if use_head:
            self._head = head or head_for(embedder.model_id, embedder.dim)
        else:
            self._head = None
        self._head_bias = float(np.mean(self._head.scores(calibration))) if self._head else 0.0

    def classify(self, texts: Sequence[str]) -> list[SentimentResult]:
        """Score every text and its clauses with one embedding call for the whole batch."""
        if isinstance(texts, str):
            raise TypeError("classify takes a list of texts, not a single string")
        cut = [(t if isinstance(t, str) else str(t))[: self._max_chars] for t in texts]
        clauses = [split_clauses(t)[:MAX_CLAUSES] for t in cut]
        flat = [*cut]
        for spans in clauses:
            if len(spans) > 1:  # a one-clause text is its own clause: no second embedding
                flat.extend(text for text, _, _ in spans)
        scores = self._scores(flat) if flat else np.zeros(0)
        results = []
        at = len(cut)
        for text, spans, score in zip(cut, clauses, scores[: len(cut)], strict=True):
            if len(spans) > 1:
                clause_scores = scores[at : at + len(spans)]
                at += len(spans)
                # The first 256 tokens of a long text embed poorly as one vector: let its
                # clauses, each read on its own, count for half.
                score = 0.5 * score + 0.5 * float(np.mean(clause_scores))
            else:
                clause_scores = np.full(len(spans), score)
            results.append(_result(text, spans, float(score), clause_scores))
        return results

    def _scores(self, texts: list[str]) -> np.ndarray:
        """The blend of the bank's vote, the head and the lexicon (see ``_components``)."""
        bank, own, head, lexicon = self._components(texts)
        if self._head is None:  # the blend the engine had before the head
            embedded = bank
        else:
            # The user's examples steer through the bank: the more of its vote they carry
            # for this text, the more the bank counts against the head (all of it when the
            # examples alone decide the vote, BANK_SHARE when none is near). The square
            # root lets a text the examples mostly decide follow them even where the head
            # is sure the other way ("dropped by half" is bad news in its training rows,
            # good news in an ops team's reports).
            share = BANK_SHARE + (1 - BANK_SHARE) * np.sqrt(own)
            embedded = (1 - share) * head + share * bank
        if lexicon is None:
            return embedded
        blended: np.ndarray = (1 - LEXICON_WEIGHT) * embedded + LEXICON_WEIGHT * lexicon
        return blended

    def _components(
        self, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The bank's P(positive) - P(negative) and the share of that vote the user's
        examples carry, the head's 2·P(positive) - 1 (zeros without one), both scores less
        their mean on neutral text, and VADER's compound (None without it)."""
        # Both readers see negated complaints said plainly ("not bad" -> "good"): VADER
        # flips "not bad" itself but reads "could not be more disappointed" as praise.
        texts = [plain_polarity(t) if t.strip() else "." for t in texts]
        vectors = self._embedder.embed_documents(texts)
        vote, own = self._embedded(vectors)
        bank = np.clip(vote - self._bias, -1.0, 1.0)
        head = np.zeros(len(texts))
        if self._head is not None:
            head = np.clip(self._head.scores(vectors) - self._head_bias, -1.0, 1.0)
        vader = _lexicon()
        if vader is None:
            return bank, own, head, None
        compound = np.array([vader.polarity_scores(t)["compound"] for t in texts])
        return bank, own, head, compound

    def _embedded(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(positive) - P(negative) by a softmax over the similarities to the bank, and the
        share of that softmax's mass on the user's examples."""
        logits = vectors @ self._bank.T / TEMPERATURE + self._log_weights
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        total = weights.sum(axis=1)
        mass = (weights @ self._onehot) / total[:, None]
        own = weights[:, self._builtin :].sum(axis=1) / total
        return mass[:, 0] - mass[:, 1], own


_LABEL_CLASS = {"positive": 0, "pos": 0, "1": 0, "negative": 1, "neg": 1, "0": 1, "neutral": 2}


def _usable(text: object, label: object) -> bool:
    return (
        isinstance(text, str)
        and bool(text.strip())
        and isinstance(label, str)
        and label.strip().lower() in _LABEL_CLASS
    )


def split_clauses(text: str) -> list[tuple[str, int, int]]:
    """Clauses as (verbatim text, start, end), trimmed of spaces and punctuation.

    Splits at sentence ends, ";", ":", commas and contrast words, since each side of "but"
    is usually about a different thing ("great screen but the battery died").
    """
    out = []
    start = 0
    for match in [*_CLAUSE_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        left = len(piece) - len(piece.lstrip(" \t\r\n\"'()-–—,"))
        right = len(piece.rstrip(" \t\r\n\"'()-–—,"))
        if right > left and _WORD.search(piece):
            out.append((piece[left:right], start + left, start + right))
        if match:
            start = match.end()
    return out


def aspect_name(clause: str) -> str:
    """The first run of up to two likely nouns (``aspects.is_aspect_word``) that are not
    the lexicon's opinion words: "battery", "customer service"; "overall" when none."""
    vader = _lexicon()
    opinion = vader.lexicon if vader is not None else {}
    run: list[str] = []
    for word in _WORD.findall(clause):
        lower = word.lower().strip("'-")
        if lower in _STOPWORDS or lower in opinion or not is_aspect_word(lower):
            if run:
                break
            continue
        run.append(lower)
        if len(run) == 2:
            break
    return " ".join(run) or "overall"


def _label(score: float) -> Label:
    if score >= NEUTRAL_BAND:
        return "positive"
    if score <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def _result(
    text: str, spans: list[tuple[str, int, int]], score: float, clause_scores: np.ndarray
) -> SentimentResult:
    if not text.strip():
        return SentimentResult(label="neutral", score=0.0, confidence=0.0)
    aspects = [
        Aspect(
            aspect=aspect_name(clause),
            label=_label(s),
            score=round(float(np.clip(s, -1, 1)), 3),
            evidence=clause,
            start=start,
            end=end,
        )
        for (clause, start, end), s in zip(spans, clause_scores, strict=True)
        if abs(s) >= ASPECT_BAND
    ]
    polarities = {a.label for a in aspects if abs(a.score or 0.0) >= MIXED_BAND}
    score = float(np.clip(score, -1.0, 1.0))
    label: Label = _label(score)
    confidence = min(1.0, abs(score) / 0.5)
    if {"positive", "negative"} <= polarities:
        # Both sides clearly present: "mixed" unless the whole text leans clearly one way.
        label = label if abs(score) >= MIXED_BAND else "mixed"
        if label == "mixed":
            confidence = min(
                max(abs(a.score or 0.0) for a in aspects if a.label == p) for p in polarities
            )
    elif label == "neutral":
        confidence = 1.0 - abs(score) / NEUTRAL_BAND
    return SentimentResult(
        label=label, score=round(score, 3), confidence=round(confidence, 3), aspects=aspects
    )


def predict_binary(engine: LocalSentiment, texts: Sequence[str]) -> list[int]:
    """1 for a positive lean, 0 otherwise: how the 0/1 review sets are scored."""
    return [int(r.score > 0) for r in engine.classify(texts)]
