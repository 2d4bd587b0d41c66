"""The local sentiment engine as a skill uses it: labels, evidence, few-shot examples."""

from __future__ import annotations

import pytest

from copilot.skills.engines.local.prototypes import NEGATIVE, NEUTRAL, POSITIVE
from copilot.skills.engines.local.sentiment import LocalSentiment, aggregate, split_clauses
from copilot.skills.types import Aspect, SentimentResult


@pytest.fixture(scope="module")
def engine(embedder):
    return LocalSentiment(embedder)


def test_clear_positive_and_negative_sentences(engine):
    positive = [
        "The food was wonderful and the staff were so kind.",
        "Best headphones I have ever owned.",
        "The new release is fast and a joy to use.",
    ]
    negative = [
        "The hotel room was filthy and the staff were rude.",
        "It broke after two days, total waste of money.",
        "The support team ignored my emails for a month.",
    ]
    results = engine.classify(positive + negative)
    assert [r.label for r in results] == ["positive"] * 3 + ["negative"] * 3
    for r in results:
        assert -1.0 <= r.score <= 1.0 and 0.0 <= r.confidence <= 1.0
    assert all(r.score > 0.1 for r in results[:3]), [r.score for r in results]
    assert all(r.score < -0.1 for r in results[3:]), [r.score for r in results]


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("Honestly, the new printer is bad.", "Honestly, the new printer is not bad."),
        ("The coffee was good.", "The coffee was not good."),
        ("The support call was helpful.", "The support call was not helpful."),
    ],
)
def test_negation_turns_the_polarity(engine, plain, negated):
    # Sentences the engine has not seen: a prototype would be classified by its own vector.
    assert not {plain, negated} & {*POSITIVE, *NEGATIVE, *NEUTRAL}
    said, denied = engine.classify([plain, negated])
    assert said.label in ("positive", "negative")
    assert denied.label == ("negative" if said.label == "positive" else "positive")
    assert said.score * denied.score < 0


def test_factual_office_text_is_neutral(engine):
    (result,) = engine.classify(["The meeting moved to room 4 on Thursday at 10."])
    assert result.label == "neutral"


def test_a_mixed_text_has_one_positive_and_one_negative_aspect(engine):
    text = "great screen but the battery died in a day"
    (result,) = engine.classify([text])
    assert result.label in ("mixed", "positive", "negative")
    by_label = {a.label: a for a in result.aspects}
    assert by_label["positive"].aspect == "screen"
    assert by_label["positive"].evidence == "great screen"
    assert "battery" in by_label["negative"].aspect
    assert by_label["negative"].score < 0 < by_label["positive"].score


@pytest.mark.parametrize(
    "text",
    [
        "Lovely staff; the room, however, was tiny.  The breakfast was cold!",
        "  «Great» service, although the wait was long... I'd go back.\n\nThe bill was wrong",
        "Although the plot is thin, the acting is superb - and the music, wow.",
    ],
)
def test_evidence_spans_are_verbatim_at_their_offsets(engine, text):
    (result,) = engine.classify([text])
    assert result.aspects
    for a in result.aspects:
        assert isinstance(a, Aspect)
        assert text[a.start : a.end] == a.evidence
        assert a.evidence == a.evidence.strip() and a.evidence
    for clause, start, end in split_clauses(text):
        assert text[start:end] == clause


def test_the_users_examples_move_a_borderline_decision(embedder):
    """An ops team's reports read "dropped" as good news; a horror fan likes "scary"."""
    ops = [
        ("Latency dropped to 20 ms after the fix.", "positive"),
        ("Memory use went down a lot.", "positive"),
        ("Fewer crashes this week.", "positive"),
        ("Response times went up again.", "negative"),
        ("Error rates increased after the release.", "negative"),
    ]
    horror = [
        ("The horror film was terrifying, loved it.", "positive"),
        ("So creepy, I screamed the whole time!", "positive"),
        ("Not scary at all, boring.", "negative"),
    ]
    texts = ["CPU usage dropped by half.", "The movie was really scary."]
    plain = LocalSentiment(embedder).classify(texts)
    assert [r.label for r in plain] == ["negative", "negative"]
    assert LocalSentiment(embedder, ops).classify(texts)[0].label == "positive"
    assert LocalSentiment(embedder, horror).classify(texts)[1].label == "positive"
    # examples with labels the engine does not know, or no text, are ignored, not fatal
    odd = LocalSentiment(embedder, [("", "positive"), ("fine", "so-so"), ("ok", "NEUTRAL ")])
    assert odd.classify(texts)[0].label == "negative"


def test_aggregate_counts_labels_and_aspects(engine):
    results = engine.classify(
        [
            "The battery is excellent.",
            "The battery died after an hour.",
            "Great battery, I love it.",
            "Terrible customer service.",
            "The invoice is attached.",
        ]
    )
    summary = aggregate(results)
    assert summary["n"] == 5
    assert summary["counts"] == {"positive": 2, "negative": 2, "neutral": 1, "mixed": 0}
    assert summary["share_positive"] == summary["share_negative"] == 0.4
    top = summary["aspects"][0]
    assert top["aspect"] == "battery" and top["mentions"] == 3
    assert top["mean_score"] > 0  # two of its three mentions are praise
    assert aggregate([]) == {
        "n": 0,
        "counts": {"positive": 0, "negative": 0, "neutral": 0, "mixed": 0},
        "mean_score": 0.0,
        "share_positive": 0.0,
        "share_negative": 0.0,
        "aspects": [],
    }


def test_empty_whitespace_and_huge_texts_do_not_crash(engine):
    huge = "The service was awful and the food was cold. " * 25_000  # ~1 MB
    results = engine.classify(["", "   \n\t ", huge, "!!!"])
    assert len(results) == 4
    assert results[0] == SentimentResult(label="neutral", score=0.0, confidence=0.0)
    assert results[1].label == "neutral" and results[1].aspects == []
    assert results[2].label == "negative"
    assert all(a.end <= 2000 for a in results[2].aspects)  # only the start is read
    assert engine.classify([]) == []
    with pytest.raises(TypeError):
        engine.classify("one string, not a list")  # type: ignore[arg-type]


def test_one_embedding_call_per_batch(embedder):
    calls = []

    class Counting:
        model_id, dim, max_tokens = embedder.model_id, embedder.dim, embedder.max_tokens

        def embed_documents(self, texts):
            calls.append(len(texts))
            return embedder.embed_documents(texts)

        def embed_query(self, text):
            return embedder.embed_query(text)

        def count_tokens(self, texts):
            return embedder.count_tokens(texts)

    engine = LocalSentiment(Counting())
    calls.clear()  # the prototype bank may have been embedded (or cached) just now
    engine.classify(["Good.", "Bad, but the price was fine.", "Meh."] * 50)
    assert len(calls) == 1


def test_a_skills_examples_are_embedded_once_for_many_runs(embedder):
    """Scoring a workbook builds the engine once per row: the template's examples are read
    the first time only."""
    seen: list[str] = []

    class Counting:
        model_id, dim, max_tokens = "counting-space", embedder.dim, embedder.max_tokens

        def embed_documents(self, texts):
            seen.extend(texts)
            return embedder.embed_documents(texts)

    examples = [("Ops saved us a week of work.", "positive"), ("The rota is a mess.", "negative")]
    first = LocalSentiment(Counting(), examples).classify(["The rota is fine."])  # type: ignore[arg-type]
    seen.clear()
    for _ in range(3):
        again = LocalSentiment(Counting(), examples).classify(["The rota is fine."])  # type: ignore[arg-type]
        assert again == first
    assert seen == ["The rota is fine."] * 3  # only the text, never the examples again
    other = [("Lovely.", "positive")]
    LocalSentiment(Counting(), other)  # type: ignore[arg-type]
    assert seen[-1] == "Lovely."  # other examples are read
