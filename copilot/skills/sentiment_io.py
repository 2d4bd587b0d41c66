"""Sentiment for many texts at once (a workbook column), on either engine.

The local engine scores a whole column in one batched embedding pass; the LLM engine runs
the user's sentiment skill once per text, so their personal examples and instructions
apply to every row. Either way the result is a list of SentimentResult aligned with the
input, which the workbook writer turns into columns and a summary sheet.
"""

from __future__ import annotations

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
                score=_clamp(raw.get("score"), -1.0, 1.0, default=0.0),
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


def _clamp(value: Any, low: float, high: float, *, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return max(low, min(high, float(value)))
