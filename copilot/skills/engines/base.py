"""The contract between the skill runner and the engines that answer a skill.

Three engines answer skills: ``llm`` (any OpenAI-compatible server: OpenAI, Azure, vLLM,
Ollama), ``embedded`` (the packaged model in a llama.cpp server that the copilot manages
itself, reached through the same client) and ``local`` (extractive, no language model).
The runner knows only this protocol: it prepares a run (the packing budget comes from the
engine's ``window``), hands the engine a ``Job`` and turns the ``Answer`` into a cited,
recorded result. Which engine runs is decided once, in ``engines.select``.

``ChatModel`` is the narrower contract of a chat-completions client
(``copilot.llm.openai_engine.OpenAIEngine`` implements it): the ``llm`` and ``embedded``
engines wrap one, and every model call of a run (the answer itself, chain-of-thought,
self-ask, tree-of-thoughts, map-reduce parts) goes through its ``complete``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from copilot.index.embed import Embedder
from copilot.llm.openai_engine import Completion
from copilot.llm.redact import Redactor
from copilot.llm.types import Message, StopAt
from copilot.skills.result import Tally
from copilot.skills.types import JSON

if TYPE_CHECKING:  # prepare imports this module for the Engine type
    from copilot.skills.prepare import Prepared

EngineName = Literal["llm", "embedded", "local"]
ENGINE_NAMES: tuple[EngineName, ...] = ("llm", "embedded", "local")
# What a caller may ask for: an engine by name, or "auto" (see engines.select).
Requested = Literal["auto", "llm", "embedded", "local"]
# What ``Engine.read_ahead`` did (see there).
ReadAhead = Literal["read", "busy", "not_needed", "too_long", "failed"]

# Events streamed to the caller while a run goes: ("sources", {"sources": [...]}) once the
# sources are known, ("delta", {"text": ...}) for each piece of the answer. Payloads are
# JSON objects for the API's server-sent events.
EventSink = Callable[[str, dict[str, Any]], None]


class ChatModel(Protocol):
    """A chat-completions client: what the ``llm`` and ``embedded`` engines call."""

    @property
    def model(self) -> str:
        """The default model (or deployment) name."""
        ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_delta: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        redactor: Redactor | None = None,
        model: str | None = None,
        stop_at: StopAt | None = None,
    ) -> Completion:
        """One answer to ``messages`` (JSON matching ``json_schema`` when one is given),
        ended where ``stop_at`` says; raises ``LLMError`` when there is none."""
        ...


@dataclass
class Job:
    """Everything a run hands its engine, after preparation and before the first token.

    ``prep`` and ``messages`` are the run's working record: an engine that changes them
    (self-ask finds more sources; chain-of-thought adds an instruction) replaces them here
    before its first call, so the run records what was really sent even when it fails.
    """

    prep: Prepared
    messages: list[Message]  # exactly what is (or would be) sent: redacted
    # The local engine classifies and selects with embeddings; opened only when asked for.
    embedder: Callable[[], Embedder]
    # The model this skill runs on when it is not the engine's default (a fine-tuned model
    # named by the template, or an admin's per-skill override); None: ``engine.model``.
    model: str | None = None
    redactor: Redactor | None = None  # one set of placeholders for every call of the run
    on_event: EventSink | None = None
    cancel: threading.Event | None = None
    # Self-ask: prepare the same skill again with a wider retrieval query.
    reprepare: Callable[[str], Prepared] | None = None


@dataclass
class Answer:
    """What an engine returns: the final text (placeholders restored, citations not yet
    checked: the runner does that for every engine alike) and the run's tally."""

    text: str
    data: JSON = None  # the structured output of a JSON skill
    note: str = ""  # said to the user beside the answer (e.g. "no language model")
    tally: Tally = field(default_factory=Tally)
    # False: nothing was streamed, and the runner sends the finished (cited) text as one
    # delta instead.
    streamed: bool = True


class Engine(Protocol):
    """One engine a skill can run on; the runner uses nothing else of it."""

    @property
    def name(self) -> EngineName: ...

    @property
    def model(self) -> str:
        """The model's name as results show it; "" when there is no language model."""
        ...

    @property
    def window(self) -> int:
        """Context tokens the model accepts, prompt plus answer; 0: no model window (the
        template's retrieval cap bounds the sources instead)."""
        ...

    @property
    def remote(self) -> bool:
        """Whether prompts leave the machine: only then does the redaction policy apply."""
        ...

    def answer(self, job: Job) -> Answer:
        """Answer ``job``; raises ``LLMError``, ``LocalEngineError`` or ``Cancelled``."""
        ...

    def read_ahead(self, prep: Prepared) -> ReadAhead:
        """Have the model read the prompt ``prep``'s run would send (``SkillRunner.read_ahead``):
        "read", "busy" (the model was not idle: nothing read), "not_needed" (an engine with
        nothing to gain: no model, or one that reads fast or bills per call), "too_long" (it
        would hold the model too long) or "failed" (a model error; the run will report it)."""
        ...
