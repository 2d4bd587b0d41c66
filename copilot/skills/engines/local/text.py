"""The text side of the ``local`` engine: what the copilot says when no LLM is configured.

Why extractive: with no language model, the only honest output is the user's own text.
Every sentence here is quoted from a numbered Source and ends with its ``[n]`` marker, so
a reader can check it, and every answer carries a ``note`` saying that it was extracted,
not written. Sentences are scored with the same embedder the index uses, in one batched
call per request; the text is never interpreted, only measured, so a document that says
"ignore previous instructions" is one more sentence to score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from copilot.index.embed import Embedder
from copilot.index.mmr import mmr
from copilot.index.search import query_text
from copilot.skills.engines.local import cues
from copilot.skills.engines.local.sentences import sources_from_text, split_sentences
from copilot.skills.engines.local.subject import subject_line
from copilot.skills.types import Source

__all__ = ["LocalAnswer", "answer", "draft_outline", "sources_from_text", "summarise"]

Style = Literal["bullets", "paragraph", "tldr", "action_items", "subject"]
STYLES: tuple[Style, ...] = ("bullets", "paragraph", "tldr", "action_items", "subject")
Length = Literal["short", "medium", "long"]

# Sentences embedded per request: ~0.8 s for 500 with the local MiniLM on two cores.
MAX_SCORED = 500
_SUMMARY_SIZE = {"short": 3, "medium": 5, "long": 8}
_ACTIONS_SHOWN = {"short": 5, "medium": 10, "long": 20}
# Centrality alone is flat (0.4-0.65 for every sentence of a memo), so position breaks ties:
# the first sentence of a source, and most of all of the text, says what it is about; a
# fragment of a few words ("Parking changes too.", a heading) says little.
_LEAD_BONUS = 0.04
_FIRST_BONUS = 0.06
_FRAGMENT_PENALTY = 0.1
_FOCUS_WEIGHT = 0.6  # share of the focus query in the summary's target vector
# Cosine to the question (MiniLM): a sentence stating the asked fact scores 0.6-0.9, one on
# a neighbouring topic 0.2-0.3, unrelated text under 0.1; word overlap adds up to 0.25.
_RELEVANT = 0.35
_ANSWER_MARGIN = 0.15  # extra answer sentences must score within this of the best one

# Said beside every answer of this engine, so nobody takes an extract for a written text.
FALLBACK = "Extractive fallback of the local engine: no language model wrote this"
WRITTEN = (
    "For a written answer, install the local model (`copilot model install`) or configure "
    "a language model (COPILOT_LLM_BASE_URL)."
)
NOTE_SUMMARY = f"{FALLBACK}; the sentences are quoted from the sources, not rewritten. {WRITTEN}"
NOTE_SUBJECT = (
    f"{FALLBACK}; the subject is the mail's lead sentence, shortened, not rewritten. {WRITTEN}"
)
NOTE_ACTIONS = (
    f"{FALLBACK}; action items were found by wording rules, and an owner is shown only where "
    f"the text names one: check them. {WRITTEN}"
)
NOTE_ANSWER = (
    f"{FALLBACK}; these are the sentences of your documents that best match the question, "
    f"quoted. {WRITTEN}"
)
NOTE_OUTLINE = (
    f"{FALLBACK}; this is an outline, not a reply: the questions and requests of the message, "
    "each with the best-matching fact from your other documents (never the message itself). "
    f"Nothing was sent; write the reply yourself. {WRITTEN}"
)

_GREETING = {"formal": "Dear [name],", "friendly": "Hi [name]!", "neutral": "Hello [name],"}
_OPENING = {
    "formal": "Thank you for your message.",
    "friendly": "Thanks so much for your message!",
    "neutral": "Thanks for your message.",
}
_CLOSING = {
    "formal": "Kind regards,\n[your name]",
    "friendly": "Cheers,\n[your name]",
    "neutral": "Best regards,\n[your name]",
}
_NO_FACT = "(no information found — answer yourself)"

_WORD = re.compile(r"\w+", re.UNICODE)
_MARKER = re.compile(r"\[(\d{1,6})\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER = re.compile(r"^(?:subject|from|to|cc|bcc|date|sent)\s*:", re.IGNORECASE)
_STOPWORDS = {
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "by", "with",
    "from", "as", "is", "are", "was", "were", "be", "been", "it", "this", "that", "these",
    "those", "what", "when", "where", "who", "whom", "which", "why", "how", "do", "does", "did",
    "can", "could", "would", "should", "will", "shall", "may", "might", "must", "i", "you",
    "he", "she", "we", "they", "me", "my", "your", "our", "their", "his", "her", "its", "about",
    "into", "than", "then", "there", "here", "any", "some", "please", "tell", "know"
}  # fmt: skip


@dataclass(frozen=True)
class LocalAnswer:
    """What the local engine says: text with ``[n]`` markers, the ``n`` it cites, and why."""

    text: str
    sources_used: list[int] = field(default_factory=list)
    engine: str = "local"
    note: str = ""


@dataclass(frozen=True)
class _Sentence:
    n: int  # the Source it is quoted from
    order: int  # position over all sources, for document order
    lead: bool  # first sentence of its source
    text: str


def summarise(
    sources: Sequence[Source],
    embedder: Embedder,
    *,
    style: Style = "bullets",
    length: Length = "medium",
    focus: str | None = None,
) -> LocalAnswer:
    """The most central sentences of ``sources``, without repeats, in document order.

    Centrality is the cosine to the mean sentence vector (the centroid form of TextRank);
    ``focus`` pulls that target toward a query. MMR then drops near-copies.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: use {', '.join(STYLES)}")
    if length not in _SUMMARY_SIZE:
        raise ValueError(f"unknown length {length!r}: use short, medium or long")
    sentences = _sentences(sources) or _sentences(sources, min_words=1)  # "Ok, thanks."
    if not sentences:
        return LocalAnswer("Nothing to summarise: the text is empty.", [], note=NOTE_SUMMARY)
    if style == "action_items":
        return _action_items(sentences, _ACTIONS_SHOWN[length])
    if style == "subject":
        return _subject(sentences)
    pool = _pool(sentences, MAX_SCORED, focus or "")
    focus_text = " ".join((focus or "").split())[:2000]
    vectors = embedder.embed_documents(
        [s.text for s in pool] + ([focus_text] if focus_text else [])
    )
    matrix = vectors[: len(pool)]
    target = _unit(matrix.mean(axis=0))
    if focus_text:
        target = _unit((1 - _FOCUS_WEIGHT) * target + _FOCUS_WEIGHT * vectors[-1])
    scores = matrix @ target
    scores += np.array([_prior(s) for s in pool], dtype=np.float32)
    k = _summary_size(length, style, len(sentences))
    candidates = [(str(i), matrix[i], float(scores[i])) for i in range(len(pool))]
    picked = sorted((pool[int(i)] for i in mmr(None, candidates, k, lambda_=0.7)), key=_order)
    cited = [f"{s.text} [{s.n}]" for s in picked]
    text = "\n".join(f"- {c}" for c in cited) if style == "bullets" else " ".join(cited)
    return LocalAnswer(text.rstrip(), _used(picked), note=NOTE_SUMMARY)


def answer(
    question: str, sources: Sequence[Source], embedder: Embedder, *, max_sentences: int = 4
) -> LocalAnswer:
    """The sentences of ``sources`` that best answer ``question``, best first, or a plain
    "found nothing" when none is close enough: an extract never guesses."""
    question = " ".join(_CONTROL.sub(" ", question).split())
    if not _WORD.search(question):
        return LocalAnswer(
            "The question is empty: there is nothing to look for.", [], note=NOTE_ANSWER
        )
    # Scored in search's canonical form: "…advice?" and "…advice" are one question.
    asked = query_text(question)
    sentences = _pool(_statements(sources), MAX_SCORED, asked)
    nothing = f"I found nothing in your documents about “{_clip(question, 200)}”."
    if not sentences:
        return LocalAnswer(nothing, [], note=NOTE_ANSWER)
    vectors = embedder.embed_documents([s.text for s in sentences] + [asked])
    # "What did Kay Mann say about …": a mail's sentences are said by its sender.
    speakers = {s.n: content_terms(s.sender) for s in sources if s.sender}
    scores = _relevance(asked, vectors[-1], sentences, vectors[:-1], speakers)
    best = float(scores.max())
    keep = [i for i in np.argsort(-scores) if scores[i] >= max(_RELEVANT, best - _ANSWER_MARGIN)]
    if not keep:
        return LocalAnswer(nothing, [], note=NOTE_ANSWER)
    candidates = [(str(i), vectors[i], float(scores[i])) for i in keep]
    picked = [sentences[int(i)] for i in mmr(None, candidates, max(1, max_sentences), 0.7)]
    text = " ".join(f"{s.text} [{s.n}]" for s in picked)
    return LocalAnswer(text.rstrip(), _used(picked), note=NOTE_ANSWER)


def draft_outline(
    message: str, facts: Sequence[Source], embedder: Embedder, *, tone: str = "neutral"
) -> LocalAnswer:
    """A reply skeleton: one bullet per question or request of ``message``, each with the
    best-matching sentence of ``facts`` (cited) or a note to answer it yourself.

    A sentence of the message itself is never offered as the answer: retrieval often finds
    the very mail being answered (or a copy of it in the thread), whose next sentence
    matches the question best and would hand the sender's own words back as the reply.
    Unknown tones read as neutral. Nothing is sent or done: this is text for the user.
    """
    tone = tone if tone in _GREETING else "neutral"
    message = message[:200_000]
    asks = []
    for start, end in split_sentences(message):
        sentence = _clean(message[start:end])
        wanted = cues.is_question(sentence) or cues.is_request(sentence)
        if wanted and _WORD.search(sentence) and sentence not in asks:
            asks.append(sentence)
    asks = asks[:20]
    said = _words_key(message)
    own = [s for s in _statements(facts) if _words_key(s.text) not in said]
    fact_sentences = _pool(own, MAX_SCORED, " ".join(asks))
    lines, used = [], []
    if asks and fact_sentences:
        texts = [s.text for s in fact_sentences] + asks
        vectors = embedder.embed_documents(texts)
        fact_vectors = vectors[: len(fact_sentences)]
        for ask, ask_vector in zip(asks, vectors[len(fact_sentences) :], strict=True):
            scores = _relevance(ask, ask_vector, fact_sentences, fact_vectors)
            best = int(np.argmax(scores))
            if scores[best] >= _RELEVANT:
                fact = fact_sentences[best]
                lines.append(f"- “{ask}” — {fact.text} [{fact.n}]")
                used.append(fact)
            else:
                lines.append(f"- “{ask}” — {_NO_FACT}")
    else:
        lines = [f"- “{ask}” — {_NO_FACT}" for ask in asks]
    if not lines:
        lines = ["- (no questions or requests found in the message)"]
    parts = [_GREETING[tone], _OPENING[tone], "\n".join(lines), _CLOSING[tone]]
    return LocalAnswer("\n\n".join(parts).rstrip(), _used(used), note=NOTE_OUTLINE)


# --- helpers ----------------------------------------------------------------------------


def _subject(sentences: list[_Sentence]) -> LocalAnswer:
    """The lead sentence as a subject line (``local.subject``), without a marker: it is
    pasted as a subject, and its source is in ``sources_used``. Small talk ("Hope you are
    well.") is passed over for the first sentence that says something."""
    told = [s for s in sentences if not cues.pleasantry(s.text)] or sentences
    for s in told:
        line = subject_line(s.text)
        if line:
            return LocalAnswer(line, [s.n], note=NOTE_SUBJECT)
    return LocalAnswer(_clip(told[0].text, 80), [told[0].n], note=NOTE_SUBJECT)


def _action_items(sentences: list[_Sentence], shown: int) -> LocalAnswer:
    """Sentences that ask, assign, promise or decide: ``- Owner (deadline) — sentence [n]``,
    the owner only where the text names a person (``cues.owner``)."""
    found = [s for s in sentences if cues.is_action(s.text)]
    if not found:
        return LocalAnswer("No action items found.", [], note=NOTE_ACTIONS)
    common = cues.lowercase_words(" ".join(s.text for s in sentences))
    lines = []
    for s in found[:shown]:
        who = cues.owner(s.text, common)
        due = cues.deadline(s.text)
        head = " ".join(x for x in (who, f"({due})" if due else "") if x)
        lines.append(f"- {head + ' — ' if head else ''}{s.text} [{s.n}]")
    if len(found) > shown:
        lines.append(f"- … and {len(found) - shown} more")
    return LocalAnswer("\n".join(lines).rstrip(), _used(found[:shown]), note=NOTE_ACTIONS)


def _sentences(sources: Sequence[Source], min_words: int = 3) -> list[_Sentence]:
    """Every quotable sentence: headers, fragments under three words and repeats dropped."""
    out: list[_Sentence] = []
    seen: set[str] = set()
    for source in sources:
        lead = True
        for start, end in split_sentences(source.text):
            text = _clean(source.text[start:end])
            key = text.lower()
            words = len(_WORD.findall(text))
            long_unspaced = len(text) >= 12 and " " not in text  # CJK, Thai …
            if key in seen or _HEADER.match(text) or (words < min_words and not long_unspaced):
                continue
            seen.add(key)
            out.append(_Sentence(source.n, len(out), lead, text))
            lead = False
    return out


def _statements(sources: Sequence[Source]) -> list[_Sentence]:
    """Sentences that can answer something: a question (often the very mail being
    answered, found by retrieval) or a four-word footer never does."""
    return [s for s in _sentences(sources, min_words=4) if not s.text.rstrip().endswith("?")]


def _clean(text: str) -> str:
    """One line, no control characters, and no ``[n]`` a document wrote itself: only the
    engine's markers may look like citations."""
    text = _MARKER.sub(r"(\1)", _CONTROL.sub(" ", text))
    return " ".join(text.split())


def _pool(sentences: list[_Sentence], limit: int, query: str) -> list[_Sentence]:
    """The sentences worth embedding: all of them, or for a long text the half that shares
    most words with ``query`` (a sample alone could miss the one sentence asked about) and
    a sample of the rest."""
    terms = content_terms(query)
    if len(sentences) <= limit or not terms:
        return _sample(sentences, limit)
    shared = [(len(terms & content_terms(s.text)), s) for s in sentences]
    best = sorted((x for x in shared if x[0] > 0), key=lambda x: (-x[0], x[1].order))
    matched = [s for _, s in best[: limit // 2]]
    taken = {s.order for s in matched}
    rest = _sample([s for s in sentences if s.order not in taken], limit - len(matched))
    return sorted(matched + rest, key=_order)


def _sample(sentences: list[_Sentence], limit: int) -> list[_Sentence]:
    """At most ``limit`` sentences, so a 100-page text costs no more than a long mail: the
    first sentences of every source (where documents say what they are about), then an
    evenly spaced sample of the rest. Deterministic, so the same text gives the same summary."""
    if len(sentences) <= limit:
        return sentences
    by_source: dict[int, list[_Sentence]] = {}
    for s in sentences:
        by_source.setdefault(s.n, []).append(s)
    per_source = max(1, (limit // 2) // len(by_source))
    leads = [s for group in by_source.values() for s in group[:per_source]]
    leads = _spaced(leads, limit // 2)
    taken = {s.order for s in leads}
    rest = _spaced([s for s in sentences if s.order not in taken], limit - len(leads))
    return sorted(leads + rest, key=_order)


def _spaced(items: list[_Sentence], k: int) -> list[_Sentence]:
    if len(items) <= k:
        return items
    return [items[int(i)] for i in np.unique(np.linspace(0, len(items) - 1, k).round())]


def _words_key(text: str) -> str:
    """``text`` as its words in lower case, space-separated: "said" in a message whatever
    its line breaks, quoting ("> ") and punctuation (``key in _words_key(message)``)."""
    return " " + " ".join(w.lower() for w in _WORD.findall(text)) + " "


def _prior(s: _Sentence) -> float:
    """Position and shape: a lead says what a text is about; a fragment of a few words, or
    one starting in lower case (the tail of a sentence a table or a page broke), little."""
    bonus = (_LEAD_BONUS if s.lead else 0.0) + (_FIRST_BONUS if s.order == 0 else 0.0)
    fragment = len(s.text.split()) < 6 or s.text[:1].islower()
    return bonus - (_FRAGMENT_PENALTY if fragment else 0.0)


def _summary_size(length: str, style: str, n_sentences: int) -> int:
    """Short 3, medium 5, long 8 sentences, up to twice that for long texts; a tl;dr is one
    or two; never more than ~60 % of a short text."""
    if style == "tldr":
        k = 1 if n_sentences < 20 else 2
    else:
        base = _SUMMARY_SIZE[length]
        k = base + min(base, max(0, round(math.log2(max(n_sentences, 1) / 60))))
    return max(1, min(k, math.ceil(n_sentences * 0.6)))


def _relevance(
    query: str,
    query_vector: np.ndarray,
    sentences: list[_Sentence],
    vectors: np.ndarray,
    speakers: dict[int, set[str]] | None = None,
) -> np.ndarray:
    """Cosine to the query, plus a share of the query's content words the sentence holds
    (names, numbers and product codes that an embedding blurs), its speaker's name (a
    mail's sender, from ``speakers`` by source number) counted as its words."""
    terms = content_terms(query)
    overlap = np.zeros(len(sentences), dtype=np.float32)
    speakers = speakers or {}
    if terms:
        for i, s in enumerate(sentences):
            words = content_terms(s.text) | speakers.get(s.n, set())
            overlap[i] = len(terms & words) / len(terms)
    relevance: np.ndarray = 0.75 * (vectors @ query_vector) + 0.25 * overlap
    return relevance


def content_terms(text: str) -> set[str]:
    """The stemmed words of ``text`` that carry meaning (stop words left out)."""
    return {_stem(w.lower()) for w in _WORD.findall(text) if w.lower() not in _STOPWORDS}


def _stem(word: str) -> str:
    """A crude English stem, enough for "parking" to meet "park" and "spaces" "space"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _order(s: _Sentence) -> int:
    return s.order


def _used(sentences: Sequence[_Sentence]) -> list[int]:
    return sorted({s.n for s in sentences})


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
