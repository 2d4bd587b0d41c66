"""The local sentiment engine off its home ground: negated complaints, neutral text, domains.

The sentences here are not in the prototype bank (asserted), so each one is classified by
its neighbours, not by finding itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.eval.sentiment import read_tsv
from copilot.skills.engines.local import prototypes
from copilot.skills.engines.local.encoder import sentence_encoder
from copilot.skills.engines.local.negation import plain_polarity
from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary

BANK = {*prototypes.POSITIVE, *prototypes.NEGATIVE, *prototypes.NEUTRAL, *prototypes.CALIBRATION}
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def engine(embedder):
    return LocalSentiment(sentence_encoder(embedder))  # the engine as shipped


NEGATED_COMPLAINTS = [
    ("The hotel breakfast was awful.", "The hotel breakfast was not awful at all."),
    ("The legroom was bad for the price.", "The legroom was not bad for the price."),
    ("The tour guide was boring.", "The tour guide was never boring."),
    ("The update caused problems.", "The update caused no problems at all."),
    ("The night porter was unfriendly.", "The night porter was not unfriendly, just quiet."),
]


@pytest.mark.parametrize(("plain", "negated"), NEGATED_COMPLAINTS)
def test_a_negated_complaint_reads_as_praise(engine, plain, negated):
    assert not {plain, negated} & BANK
    said, denied = engine.classify([plain, negated])
    assert said.label == "negative", said
    assert denied.score > 0 and denied.label != "negative", denied


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The concierge could not have been more helpful.", "positive"),
        ("I couldn't be happier with the new layout.", "positive"),
        ("Honestly could not be more disappointed with the repair.", "negative"),
        ("Don't waste your evening on this sequel.", "negative"),
        ("The lift was not working for three days.", "negative"),
    ],
)
def test_negated_comparatives_and_warnings(engine, text, label):
    assert text not in BANK
    (result,) = engine.classify([text])
    assert result.label == label, result


def test_the_rewrite_only_touches_negated_complaints():
    assert plain_polarity("The soup was not bad at all.") == "The soup was good."
    assert plain_polarity("Without a single problem.") == "good."
    assert plain_polarity("Do not bother with the sequel.").startswith("avoid")
    # negated praise, "not cheap", "nothing but" and texts without a negator are left alone
    for text in [
        "The soup was not good.",
        "It is not cheap.",
        "It won't stop beeping.",
        "Nothing but problems.",
        "The pool was cold.",
        "",
    ]:
        assert plain_polarity(text) == text


# Neutral sentences in the domains the bank covers, none of them in the bank or its
# calibration set: a threshold biased to one side labels most of them that side.
NEUTRAL_TEXTS = [
    "The restaurant has forty tables and a small terrace.",
    "We ordered two pizzas and a bottle of water.",
    "The film was shot in Morocco over six weeks.",
    "The trilogy ends with the third book.",
    "The hotel is fifteen minutes from the airport by bus.",
    "Breakfast is served from seven to ten.",
    "The call centre is open on Saturdays.",
    "The repair was booked for the twelfth.",
    "The budget meeting has moved to Wednesday.",
    "Attached is the draft agenda for the workshop.",
    "The laptop ships with a sixty watt adapter.",
    "The tablet is available in three colours.",
]


def test_neutral_text_is_not_pulled_to_one_side(engine):
    assert not set(NEUTRAL_TEXTS) & BANK
    results = engine.classify(NEUTRAL_TEXTS)
    scores = np.array([r.score for r in results])
    assert abs(float(np.mean(scores))) < 0.05, scores
    leaning_positive = int(np.sum(scores > 0))
    assert 3 <= leaning_positive <= len(scores) - 3, scores  # neither side takes nearly all
    assert sum(r.label == "neutral" for r in results) >= len(results) * 2 // 3


def test_the_calibration_set_is_neutral_and_outside_the_bank():
    calibration = set(prototypes.CALIBRATION)
    assert len(calibration) == len(prototypes.CALIBRATION) >= 20
    assert not calibration & {*prototypes.POSITIVE, *prototypes.NEGATIVE, *prototypes.NEUTRAL}


def test_the_second_domain_set_is_balanced_separate_and_scored_well(engine):
    """bench/sentiment_domains_test.tsv: hotels, restaurants, films, services, work mail;
    written for this project, never tuned on (the *_tune.tsv half was)."""
    tune = read_tsv(BENCH / "sentiment_domains_tune.tsv")
    test = read_tsv(BENCH / "sentiment_domains_test.tsv")
    assert not {t for t, _ in tune} & {t for t, _ in test}
    assert not {t for t, _ in test} & BANK
    labels = [y for _, y in test]
    assert labels.count(1) == labels.count(0) == len(test) // 2
    predicted = predict_binary(engine, [t for t, _ in test])
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
    # 0.900 measured with the head's event rows (docs/benchmarks.md); 0.863 before them
    assert accuracy >= 0.83, accuracy


def test_a_third_set_of_other_domains_is_scored_without_tuning(engine):
    """bench/sentiment_more_domains_test.tsv: travel, apps, courses, clinics, shops, public
    services; written before the learnt head and never tuned on. Many of its sentences tell
    what happened without a sentiment word, the engine's weak spot (docs/benchmarks.md)."""
    more = read_tsv(BENCH / "sentiment_more_domains_test.tsv")
    others = {
        t
        for name in ("dev", "domains_tune", "domains_test")
        for t, _ in read_tsv(BENCH / f"sentiment_{name}.tsv")
    }
    assert len(more) == 200 and not {t for t, _ in more} & (others | BANK)
    labels = [y for _, y in more]
    assert labels.count(1) == labels.count(0)
    predicted = predict_binary(engine, [t for t, _ in more])
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
    # 0.810 measured with the head's event rows; 0.785 before them, 0.815 before the head
    assert accuracy >= 0.76, accuracy
