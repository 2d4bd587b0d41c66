"""Compare the local sentiment engine with simple baselines on labelled review files.

    .venv/bin/python bench/sentiment.py bench/sentiment_dev.tsv [OTHER.tsv ...]

bench/sentiment_dev.tsv is the development set the engine's constants were chosen on
(hand-written, several domains). bench/sentiment_domains_tune.tsv and _test.tsv are a
second hand-written set (hotels, restaurants, films, services, work mail; 84 + 80
sentences, balanced): the prototype bank and negation rules were looked at against the
tune half only; the test half is a measurement only, like any other file. Prints accuracy
and macro-F1 per variant and file, and the engine's sentences per second.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from copilot.config import get_settings
from copilot.eval.sentiment import evaluate, read_tsv
from copilot.index.embed import Embedder, get_embedder
from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary


def two_prototypes(embedder: Embedder, positive: str, negative: str):
    anchors = embedder.embed_documents([positive, negative])

    def predict(texts: list[str]) -> list[int]:
        sims = embedder.embed_documents(texts) @ anchors.T
        return [int(a > b) for a, b in sims]

    return predict


def vader_only(texts: list[str]) -> list[int]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    return [int(analyser.polarity_scores(t)["compound"] >= 0.05) for t in texts]


def main(paths: list[str]) -> None:
    settings = get_settings(
        home=tempfile.mkdtemp(), models_dir_override=Path(sys.prefix) / "share/copilot-models"
    )
    embedder = get_embedder(settings)
    engine = LocalSentiment(embedder)
    variants = {
        "two prototypes (I love it / I hate it)": two_prototypes(
            embedder, "I love it.", "I hate it."
        ),
        "VADER compound >= 0.05": vader_only,
        "local engine": lambda texts: predict_binary(engine, texts),
    }
    for path in paths:
        pairs = read_tsv(path)
        print(f"\n{path} ({len(pairs)} sentences)")
        for name, predict in variants.items():
            started = time.perf_counter()
            scores = evaluate(pairs, predict)
            rate = len(pairs) / (time.perf_counter() - started)
            print(
                f"  {name:40s} accuracy {scores['accuracy']:.3f}  "
                f"macro-F1 {scores['macro_f1']:.3f}  {rate:7.0f} sentences/s"
            )
    texts = [t for t, _ in read_tsv(paths[-1])]
    texts = (texts * (1000 // len(texts) + 1))[:1000]
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        engine.classify(texts)
        timings.append(time.perf_counter() - started)
    print(f"\nlocal engine, 1,000 sentences: {1000 / float(np.median(timings)):.0f} sentences/s")


if __name__ == "__main__":
    main(
        sys.argv[1:]
        or [
            "bench/sentiment_dev.tsv",
            "bench/sentiment_domains_tune.tsv",
            "bench/sentiment_domains_test.tsv",
        ]
    )
