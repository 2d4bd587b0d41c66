"""Measure a sentiment engine on a labelled file: one sentence, a tab, 0 (negative) or 1.

This is the format of the UCI "Sentiment Labelled Sentences" sets (Amazon, Yelp, IMDb), so
any of them can be scored as is. The engine is just a function from sentences to 0/1, which
keeps the local engine and an LLM comparable on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from connectors.parsers.text import split_lines
from copilot.errors import CopilotError

MAX_BAD_LINES_SHOWN = 5


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
