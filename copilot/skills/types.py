"""Shapes that skills, their engines and their outputs (CLI, API, Office files) share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Every JSON value: what a structured answer holds and what a skill's inputs may be (the
# template declares which: string, number, boolean, array or object).
JSON = dict[str, Any] | list[Any] | str | int | float | bool | None
# A skill's inputs by name, typed as the template declares them; ``GivenInputs`` is what
# the functions that only read them accept.
Inputs = dict[str, JSON]
GivenInputs = Mapping[str, JSON]


@dataclass(frozen=True)
class Source:
    """One numbered passage given to the model (or the local engine) as grounding.

    ``n`` is the number the answer cites as ``[n]``; ``url`` is the item's deep link and
    ``locator`` the place inside it (page, paragraphs, cell range, message).
    """

    n: int
    item_id: str
    chunk_id: str
    title: str
    url: str
    kind: str
    locator: dict[str, Any]
    text: str
    score: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A source the answer actually cites, with a link a person can open."""

    n: int
    item_id: str
    title: str
    url: str
    link: str  # the deep link, with the locator where the item's format supports one
    locator: dict[str, Any]
    where: str  # the locator as text: "Budget!A2:F7", "page 3", "paragraph 4–5"
    snippet: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Label = Literal["positive", "negative", "neutral", "mixed"]


@dataclass(frozen=True)
class Aspect:
    """What a text is positive or negative about, with the words that show it."""

    aspect: str  # "battery", "customer service"
    label: Label
    score: float  # -1 (negative) .. 1 (positive)
    evidence: str  # the span of the text, verbatim
    start: int  # character offsets of the evidence in the text
    end: int


@dataclass(frozen=True)
class SentimentResult:
    label: Label
    score: float  # -1 .. 1; the sign is the polarity, the size the strength
    confidence: float  # 0 .. 1
    aspects: list[Aspect] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
