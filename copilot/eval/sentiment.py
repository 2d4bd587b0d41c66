"""Measure a sentiment engine on a labelled file: one sentence, a tab, 0 (negative) or 1.

This is the format of the UCI "Sentiment Labelled Sentences" sets (Amazon, Yelp, IMDb), so
any of them can be scored as is. The engine is just a function from sentences to 0/1, which
keeps the local engine and a model comparable on the same numbers. On a model it reads the
label off the model's first answer token, as a scored workbook does (``predict_with_labels``,
``skills.sentiment_labels``; on ``llm`` through the server's ``logprobs``,
``skills.sentiment_chat``); a server without them runs the built-in sentiment skill once per
sentence (``predict_with_skill``), as a workbook then does too. Both in a throwaway home
(``copilot.eval.skill_runs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.parsers.text import split_lines
from copilot.errors import CopilotError
from copilot.llm.errors import LLMError
from copilot.skills.engines.base import EngineName
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.runner import SkillRunner

if TYPE_CHECKING:
    from copilot.skills.sentiment_labels import Classifier, Reader
    from copilot.skills.templates.models import SkillTemplate

MAX_BAD_LINES_SHOWN = 5
USER = "sentiment-eval"


class TsvError(CopilotError, ValueError):
    """The file cannot be scored: missing, empty, or with malformed lines (named)."""

    kind = "bad_tsv"
    status = 400
    title = "The file cannot be scored"


def read_tsv(path: Path | str) -> list[tuple[str, int]]:
    """Read ``sentence<TAB>0|1`` lines; blank lines are skipped, bad ones are named.

    Every bad line is an error rather than a skip: a silently shorter test set gives an
    accuracy that cannot be compared with anyone else's.
    """
    path = Path(path)
    if not path.is_file():
        raise TsvError(f"{path}: no such file")
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    pairs: list[tuple[str, int]] = []
    bad: list[str] = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("\t")
        label = label.strip()
        if not sep or not sentence.strip():
            bad.append(f"line {number}: expected 'sentence<TAB>0 or 1'")
        elif label not in ("0", "1"):
            bad.append(f"line {number}: label {label[:20]!r} is not 0 or 1")
        else:
            pairs.append((sentence.strip(), int(label)))
    if bad:
        more = len(bad) - MAX_BAD_LINES_SHOWN
        shown = "; ".join(bad[:MAX_BAD_LINES_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise TsvError(f"{path}: {len(bad)} bad line(s): {shown}")
    if not pairs:
        raise TsvError(f"{path}: the file has no labelled sentences")
    return pairs


def evaluate(
    pairs: Sequence[tuple[str, int]], predict: Callable[[list[str]], list[int]]
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the two classes) and the confusion matrix.

    ``confusion[gold][predicted]`` counts sentences; macro-F1 is reported beside accuracy
    because an engine that leans to one polarity can look fine on accuracy alone.
    """
    if not pairs:
        raise ValueError("nothing to evaluate: no labelled sentences")
    texts = [t for t, _ in pairs]
    gold = [g for _, g in pairs]
    predicted = list(predict(texts))
    if len(predicted) != len(gold):
        raise ValueError(f"the engine returned {len(predicted)} labels for {len(gold)} texts")
    confusion = [[0, 0], [0, 0]]
    for g, p in zip(gold, predicted, strict=True):
        if p not in (0, 1):
            raise ValueError(f"the engine returned label {p!r}, not 0 or 1")
        confusion[g][p] += 1
    correct = confusion[0][0] + confusion[1][1]
    f1s = []
    for c in (0, 1):
        tp = confusion[c][c]
        fp = confusion[1 - c][c]
        fn = confusion[c][1 - c]
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {
        "accuracy": correct / len(gold),
        "macro_f1": sum(f1s) / 2,
        "n": len(gold),
        "confusion": confusion,
    }


def predict_with_skill(
    runner: SkillRunner,
    texts: Sequence[str],
    engine: EngineName,
    on_text: Callable[[int, int], None] | None = None,
) -> list[int]:
    """1 (positive) or 0 per text from the built-in sentiment skill on ``engine``, one run
    per text (every run shares the skill's prompt prefix, so a model server's cache keeps
    it). A failed run stops the evaluation, naming the sentence: a score over fewer
    sentences than the file holds would not compare."""
    out = []
    for i, text in enumerate(texts, start=1):
        try:
            result = runner.run(
                USER, "sentiment", {"text": text}, engine=engine, retrieval=False, record=False
            )
        except (LLMError, LocalEngineError) as exc:
            raise RuntimeError(f"sentence {i} ({text[:60]!r}): {exc}") from exc
        out.append(label_of(result.data))
        if on_text is not None:
            on_text(i, len(texts))
    return out


def predict_with_labels(
    runner: SkillRunner,
    texts: Sequence[str],
    on_text: Callable[[int, int], None] | None = None,
    engine: EngineName = "embedded",
) -> list[int]:
    """1 (positive) or 0 per text from the model's label for it, with the built-in
    sentiment skill's persona and examples (``skills.sentiment_labels``). On ``llm`` a
    server that gives no token probabilities runs the skill per text instead."""
    from copilot.eval.skill_runs import chat_model
    from copilot.llm.embedded.chat import EmbeddedChat
    from copilot.llm.openai_engine import OpenAIEngine
    from copilot.skills.sentiment_chat import chat_labels
    from copilot.skills.sentiment_labels import classifier_reader

    model = chat_model(runner, engine)
    stored = runner.skills.get(USER, "sentiment")
    read: Reader
    if isinstance(model, EmbeddedChat):
        read = classifier_reader(model, stored.template)
    elif isinstance(model, OpenAIEngine):
        read = chat_labels(model, stored.template, model=runner.model_for(stored))
    else:
        raise RuntimeError(f"the {engine} engine has no model client")
    try:
        return _binary(read, texts, on_text)
    except LLMError as exc:
        if exc.kind == "unsupported":
            return predict_with_skill(runner, texts, engine, on_text)
        raise RuntimeError(f"the {engine} model failed: {exc}") from exc


def labels_binary(
    model: Classifier,
    template: SkillTemplate,
    texts: Sequence[str],
    on_text: Callable[[int, int], None] | None = None,
) -> list[int]:
    """The embedded model's labels (``label_texts``) as 0/1."""
    from copilot.skills.sentiment_labels import classifier_reader

    return _binary(classifier_reader(model, template), texts, on_text)


def _binary(
    read: Reader, texts: Sequence[str], on_text: Callable[[int, int], None] | None
) -> list[int]:
    """``read_labels`` read as 0/1 by the same rule as a skill's JSON (``label_of``)."""
    from copilot.skills.sentiment_labels import read_labels

    results = read_labels(read, texts, on_progress=on_text).results
    return [label_of({"label": r.label, "score": r.score}) for r in results]


def label_of(data: object) -> int:
    """The 0/1 of a sentiment skill's JSON: its label, else (neutral, mixed) the sign of
    its score, a missing score counting as 0, so positive."""
    found = data if isinstance(data, dict) else {}
    label, score = found.get("label"), found.get("score")
    if label in ("positive", "negative"):
        return 1 if label == "positive" else 0
    return 1 if not isinstance(score, int | float) or score >= 0 else 0
