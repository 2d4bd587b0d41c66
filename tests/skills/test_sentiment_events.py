"""Praise and complaints told as events, with no opinion word: the local engine's weak spot.

``events.py`` holds such sentences, written for the project; with the prototype bank they
are weighted training rows of the learnt head. These tests keep them out of the bank and
of every evaluation file, keep the shipped head in step with them, and score the
development set written for this (bench/sentiment_events_tune.tsv; the head's row
weight was chosen on it and the other development sets, never on a test file).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from copilot.eval.sentiment import read_tsv
from copilot.skills.engines.local import events, prototypes
from copilot.skills.engines.local.encoder import sentence_encoder
from copilot.skills.engines.local.head import HEAD_FILES
from copilot.skills.engines.local.negation import plain_polarity
from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary

ROOT = Path(__file__).resolve().parents[2]
EVENTS_TUNE = ROOT / "bench/sentiment_events_tune.tsv"
AMAZON = ROOT.parent / "shared/data/sentiment/amazon_cells_labelled.txt"


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _evaluation_keys() -> set[str]:
    files = [*sorted((ROOT / "bench").glob("sentiment_*.tsv")), AMAZON]
    return {_key(t) for path in files if path.is_file() for t, _ in read_tsv(path)}


def test_event_sentences_are_in_no_evaluation_file_nor_the_bank():
    every = [*events.POSITIVE_EVENTS, *events.NEGATIVE_EVENTS]
    assert len(set(every)) == len(every)
    assert abs(len(events.POSITIVE_EVENTS) - len(events.NEGATIVE_EVENTS)) <= 2
    bank = {*prototypes.POSITIVE, *prototypes.NEGATIVE, *prototypes.NEUTRAL}
    assert not set(every) & (bank | set(prototypes.CALIBRATION))
    assert not {_key(t) for t in every} & _evaluation_keys()


@pytest.mark.parametrize("head_file", HEAD_FILES, ids=lambda p: p.name)
def test_the_shipped_head_was_fitted_with_the_current_bank_and_events(head_file):
    """Edit either and this fails until bench/train_sentiment_head.py is rerun for each
    encoder (its rows are positive, negative, neutral in this order)."""
    about = json.loads(head_file.read_text())
    rows = [
        *prototypes.POSITIVE,
        *events.POSITIVE_EVENTS,
        *prototypes.NEGATIVE,
        *events.NEGATIVE_EVENTS,
        *prototypes.NEUTRAL,
    ]
    digest = hashlib.sha256("\n".join(plain_polarity(t) for t in rows).encode()).hexdigest()
    assert about["rows"]["bank"] == len(rows)
    assert about["bank_sha256"] == digest, "bank changed since the head was fitted"
    assert about["bank_row_weight"] > 1


@pytest.fixture(scope="module")
def engine(embedder):
    return LocalSentiment(sentence_encoder(embedder))  # the engine as shipped


def test_the_events_development_set_is_balanced_and_separate():
    pairs = read_tsv(EVENTS_TUNE)
    labels = [y for _, y in pairs]
    assert len(pairs) == 120 and labels.count(1) == labels.count(0)
    bank = {*prototypes.POSITIVE, *prototypes.NEGATIVE, *prototypes.NEUTRAL}
    bank |= {*events.POSITIVE_EVENTS, *events.NEGATIVE_EVENTS}
    others = set()
    for path in [*(ROOT / "bench").glob("sentiment_*.tsv"), AMAZON]:
        if path.is_file() and path != EVENTS_TUNE:
            others |= {_key(t) for t, _ in read_tsv(path)}
    assert not {_key(t) for t, _ in pairs} & (others | {_key(t) for t in bank})


def test_praise_told_as_an_event_is_no_longer_mostly_called_a_complaint(engine):
    """0.642 before events.py and the refitted head (40 of 60 praise sentences called
    negative), 0.717 after (29): better, still far from the 0.88 goal."""
    pairs = read_tsv(EVENTS_TUNE)
    predicted = predict_binary(engine, [t for t, _ in pairs])
    labels = [y for _, y in pairs]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
    praise_missed = sum(p == 0 and y == 1 for p, y in zip(predicted, labels, strict=True))
    assert accuracy >= 0.69, accuracy
    assert praise_missed <= 33, praise_missed
