"""The local sentiment engine on rated sentences it was not fitted on, per encoder.

    .venv/bin/python bench/sentiment_fold.py /tmp/vader/vaderSentiment-3.3.2.tar.gz \\
        [--cache-e5 E5.npz] [--cache-index MINILM.npz]

The head is refitted (as ``bench/train_sentiment_head.py`` fits it, with the bank and
event rows) on four fifths of the ICWSM 2014 rated sentences, and the whole engine (bank,
that head, VADER, the clause blend) scores the fifth left out, per source: product and
film review snippets, editorials, tweets. The same fold for both encoders (MiniLM, the
index's, and e5, the engine's own), so the two engines are compared on ~3,900 real rated
sentences that neither saw. The caches are ``train_sentiment_head.py --cache`` files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from train_sentiment_head import (
    FOLDS,
    SOURCES,
    balanced_weights,
    bank_rows,
    corpus_vectors,
    fit_head,
    rated_corpus,
)

from copilot.config import get_settings
from copilot.index.embed import get_embedder
from copilot.skills.engines.local.encoder import load_e5
from copilot.skills.engines.local.head import SentimentHead
from copilot.skills.engines.local.sentiment import LocalSentiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sdist", type=Path)
    parser.add_argument("--cache-e5", type=Path)
    parser.add_argument("--cache-index", type=Path)
    args = parser.parse_args()

    kept, texts, y, sources = rated_corpus(args.sdist)
    test = np.random.default_rng(0).permutation(len(y)) % FOLDS == 0  # the script's fold 0
    scored = test & (y != 2)
    settings = get_settings(
        home=tempfile.mkdtemp(), models_dir_override=Path(sys.prefix) / "share/copilot-models"
    )
    encoders = {"MiniLM": (get_embedder(settings), args.cache_index)}
    e5 = load_e5()
    if e5 is not None:
        encoders["e5"] = (e5, args.cache_e5)
    bank_texts, bank_y = bank_rows()
    for name, (embedder, cache) in encoders.items():
        x = corpus_vectors(embedder, texts, cache)
        train = ~test
        theta = fit_head(x[train], y[train], balanced_weights(y[train]),
                         embedder.embed_documents(bank_texts), bank_y)  # fmt: skip
        head = SentimentHead(theta[:, :-1], theta[:, -1], frozenset({embedder.model_id}))
        engine = LocalSentiment(embedder, head=head)
        originals = [kept[i][0] for i in np.flatnonzero(scored)]
        results = engine.classify(originals)
        right = np.array([(r.score > 0) == (y[i] == 0) for r, i in
                          zip(results, np.flatnonzero(scored), strict=True)])  # fmt: skip
        where = sources[scored]
        per = "  ".join(
            f"{s} {right[where == s].mean():.3f} ({(where == s).sum()})" for s in SOURCES
        )
        print(f"{name}: all {right.mean():.3f} ({len(right)})  {per}", flush=True)


if __name__ == "__main__":
    main()
