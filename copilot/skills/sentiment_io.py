"""Sentiment for many texts at once (a workbook column), on either engine.

The local engine scores a whole column in one batched embedding pass; the LLM engine runs
the user's sentiment skill once per text, so their personal examples and instructions
apply to every row. Either way the result is a list of SentimentResult aligned with the
input, which the workbook writer turns into columns and a summary sheet.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from copilot.skills.types import Aspect, Label, SentimentResult

LABELS: tuple[Label, ...] = ("positive", "negative", "neutral", "mixed")


def _is_label(value: object) -> TypeGuard[Label]:
    return value in LABELS


def result_from_json(data: Any, text: str = "") -> SentimentResult:
    """A model's JSON answer as a SentimentResult; evidence is located in ``text`` so the
    offsets are real (an evidence span the text does not contain gets -1 offsets)."""
    if not isinstance(data, dict):
        raise ValueError("the sentiment answer is not a JSON object")
    label = data.get("label")
    if not _is_label(label):
        raise ValueError(f"unknown sentiment label {label!r}")
    score = _clamp(data.get("score"), -1.0, 1.0, default=0.0)
    aspects = []
    for raw in data.get("aspects") or []:
        if not isinstance(raw, dict) or not raw.get("aspect"):
            continue
        evidence = str(raw.get("evidence") or "")
        start = text.find(evidence) if evidence and text else -1
        raw_label = raw.get("label")
        aspect_label: Label = raw_label if _is_label(raw_label) else "neutral"
        aspects.append(
            Aspect(
                aspect=str(raw["aspect"])[:100],
                label=aspect_label,
                score=_optional_score(raw.get("score")),
                evidence=evidence[:500],
                start=start,
                end=start + len(evidence) if start >= 0 else -1,
            )
        )
    return SentimentResult(
        label=label,
        score=score,
        confidence=_clamp(data.get("confidence"), 0.0, 1.0, default=abs(score)),
        aspects=aspects,
    )


def score_texts(
    texts: Sequence[str],
    *,
    local: Callable[[Sequence[str]], list[SentimentResult]] | None = None,
    one: Callable[[str], Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[SentimentResult]:
    """Score every text: with ``local`` (a batch classifier) or ``one`` (a per-text call
    returning the model's JSON). A text the model fails on is neutral with confidence 0
    rather than stopping the other 999 rows; the caller can see it in the confidence."""
    if local is not None:
        return local(list(texts))
    if one is None:
        raise ValueError("give a local classifier or a per-text function")
    out = []
    for i, text in enumerate(texts, 1):
        try:
            out.append(result_from_json(one(text), text))
        except ValueError:
            out.append(SentimentResult("neutral", 0.0, 0.0, []))
        if on_progress is not None:
            on_progress(i, len(texts))
    return out


def aggregate(results: Sequence[SentimentResult]) -> dict[str, Any]:
    """Counts per label, mean score, shares, and the most mentioned aspects with their mean."""
    counts = Counter({"positive": 0, "negative": 0, "neutral": 0, "mixed": 0})
    counts.update(r.label for r in results)
    n = len(results)
    by_aspect: dict[str, list[float | None]] = defaultdict(list)
    for r in results:
        for a in r.aspects:
            if a.aspect != "overall":
                by_aspect[a.aspect].append(a.score)
    top = sorted(by_aspect.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    return {
        "n": n,
        "counts": dict(counts),
        "mean_score": round(sum(r.score for r in results) / n, 3) if n else 0.0,
        "share_positive": round(counts["positive"] / n, 3) if n else 0.0,
        "share_negative": round(counts["negative"] / n, 3) if n else 0.0,
        "aspects": [
            {"aspect": name, "mentions": len(s), "mean_score": _mean(s)} for name, s in top
        ],
    }


def _mean(scores: Sequence[float | None]) -> float | None:
    """The mean of the scores given; None when none was (a model may omit an aspect's)."""
    given = [s for s in scores if s is not None]
    return round(sum(given) / len(given), 3) if given else None


def _optional_score(value: Any) -> float | None:
    """An aspect's score in -1..1, or None when the model gave none: a missing score is
    shown as the label alone, never as a made-up 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return max(-1.0, min(1.0, float(value)))


def _clamp(value: Any, low: float, high: float, *, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return max(low, min(high, float(value)))
