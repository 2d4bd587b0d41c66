"""Shapes that skills, their engines and their outputs (CLI, API, Office files) share."""

from __future__ import annotations

import copy
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


GIVEN_TITLE = "input"  # the title of the pieces of a text given with the request


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
    sender: str = ""  # a mail's sender as people know them ("Kay Mann", else the address)
    date: str = ""  # a mail's date, ISO 8601

    @property
    def given_text(self) -> bool:
        """Whether this is a piece of text typed or pasted with the request (numbered by
        ``sources_from_text``), not a passage of an indexed item."""
        return self.kind == "text" and self.title == GIVEN_TITLE

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies field by field, and a streamed run turns
        # every source into a dict (3 % of the API's interpreter time under load).
        data = dict(self.__dict__)
        data["locator"] = copy.deepcopy(self.locator)
        return data


@dataclass(frozen=True)
class Citation:
    """One source passage as a person sees it: under an answer (cited), or behind "more
    sources" (retrieved, not cited). The one shape the CLI, the API, the task pane, Teams
    cards and Word documents show; ``copilot.skills.citations.citation`` builds it.

    A reader must be able to tell which mail or file it is without opening it: a mail is
    named by its subject, sender and date, a file by its title and the place in it.
    """

    n: int
    item_id: str
    title: str  # the item's name: a mail's subject, a file's title or name
    url: str
    link: str  # the deep link, with the locator where the item's format supports one
    locator: dict[str, Any]
    where: str  # beside the title: a mail's "Kay Mann, 14 Mar 2001"; "page 3", "Budget!A2:F7"
    snippet: str = ""  # from the passage's body (never a mail's header lines)
    label: str = ""  # the one line that names it: "Mexico advice — Kay Mann, 14 Mar 2001"
    kind: str = ""  # "mail", "file", "pdf", "text" (typed text) …
    subject: str = ""  # a mail's subject ("" for a file)
    sender: str = ""  # a mail's sender
    date: str = ""  # a mail's date, ISO 8601
    cited: bool = True  # False: retrieved and given, but not cited by the answer

    def __post_init__(self) -> None:
        if not self.label:
            title = self.title or self.item_id
            object.__setattr__(self, "label", f"{title} — {self.where}" if self.where else title)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Label = Literal["positive", "negative", "neutral", "mixed"]


@dataclass(frozen=True)
class Aspect:
    """What a text is positive or negative about, with the words that show it."""

    aspect: str  # "battery", "customer service"
    label: Label
    score: float | None  # -1 (negative) .. 1 (positive); None: the model gave no score
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
