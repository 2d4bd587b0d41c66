"""A skill answered by a chat model: the ``llm`` engine, and the body of ``embedded``.

``ChatEngine`` wraps any ``ChatModel`` (the OpenAI-compatible client), so a cloud model
and the packaged model in a local llama.cpp server run one code path: the template's
sampling parameters and JSON schema, the techniques it switches on (chain-of-thought,
self-ask, tree-of-thoughts), map-reduce for documents longer than the window, streamed
deltas with the user's real values put back, and one tally of calls, tokens and cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot.config import Settings
from copilot.llm.openai_engine import Completion, OpenAIEngine
from copilot.llm.tokens import count_tokens
from copilot.llm.types import Message
from copilot.skills import size
from copilot.skills.attribute import AttributionStream
from copilot.skills.citation_stream import CitationStream
from copilot.skills.engines.base import (
    Answer,
    ChatModel,
    EngineName,
    EventSink,
    Job,
    ReadAhead,
)
from copilot.skills.engines.local.engine import describe_sentiment
from copilot.skills.mapreduce import summarise_long
from copilot.skills.privacy import redacted, restore, restoring_sink
from copilot.skills.result import Tally
from copilot.skills.templates import techniques as tq
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.types import JSON

if TYPE_CHECKING:  # prepare imports the engines' base
    from copilot.skills.prepare import Prepared


def open_llm(settings: Settings, *, client: ChatModel | None = None) -> ChatEngine:
    """The ``llm`` engine: the configured server (``client`` when the caller holds one).
    Its window is the one the server states, when it does (``context_window``)."""
    chat = client if client is not None else OpenAIEngine(settings)
    window = (
        chat.context_window() if isinstance(chat, OpenAIEngine) else settings.llm_context_window
    )
    return ChatEngine(chat, name="llm", window=window, remote=True)


class ChatEngine:
    """The ``Engine`` protocol over a chat-completions client."""

    def __init__(self, client: ChatModel, *, name: EngineName, window: int, remote: bool) -> None:
        self.client = client
        self.name: EngineName = name
        self.window = window
        self.remote = remote

    @property
    def model(self) -> str:
        return self.client.model

    def read_ahead(self, prep: Prepared) -> ReadAhead:
        # A cloud or self-hosted server bills or schedules per call; its own prompt cache
        # (where it has one) fills on the run itself.
        return "not_needed"

    def answer(self, job: Job) -> Answer:
        calls = _Calls(self.client, job)
        meta = job.prep.template.metadata
        if meta.techniques.self_ask:
            _self_ask(job, calls)
        messages = prompt(job.prep)
        job.messages = [redacted(m, job.redactor) for m in messages]
        completion: Completion | None
        if job.prep.long_document:
            text = _map_reduce(job, calls)
            completion = None
        elif meta.techniques.tree_of_thoughts:
            completion = _tree(messages, calls)
            text = completion.text
            if job.on_event is not None:
                shown = size.cut(tq.final_answer(text), job.prep.size)
                job.on_event("delta", {"text": restore(shown, job.redactor)})
        else:
            completion = calls(messages, stream=True)
            text = completion.text
        data: JSON = None
        if calls.schema is not None and completion is not None:
            data = completion.data
            text = describe(data, meta.task)
            text = restore(_final(text, calls.reasoning), job.redactor)
        else:  # a streamed answer was cut as it came, any other one is cut here
            text = restore(size.cut(_final(text, calls.reasoning), job.prep.size), job.redactor)
        return Answer(text=text, data=data, tally=calls.tally)


def prompt(prep: Prepared) -> list[Message]:
    """The messages the answer's (first) model call sends for ``prep``: the prepared
    ones, with the reasoning instruction when the template thinks step by step."""
    messages = list(prep.messages)
    if reasons(prep.template):
        messages = tq.with_instruction(messages, tq.REASONING_INSTRUCTION)
    return messages


def reasons(template: SkillTemplate) -> bool:
    """Whether the model thinks step by step before a marked final answer: a template
    with chain of thought, for a text answer (a JSON answer is its own structure)."""
    meta = template.metadata
    return meta.techniques.chain_of_thought and meta.output.format != "json"


def single_call(prep: Prepared) -> bool:
    """Whether ``prep``'s answer is one model call (no map-reduce, self-ask or tree of
    thoughts): only then is the prompt known before the run begins."""
    techniques = prep.template.metadata.techniques
    return not (prep.long_document or techniques.self_ask or techniques.tree_of_thoughts)


class _Default:
    """Marks an argument left out: the template's value, as distinct from an explicit None."""


_DEFAULT = _Default()


WRITING_EVERY_S = 0.5  # how often a structured answer's progress is told


class Writing:
    """The progress of a structured (JSON) answer: ``("writing", {"characters": n})`` at
    its first piece and then at most every ``WRITING_EVERY_S``, instead of its text.

    Why: such an answer is data (a sentiment's label, score and aspects) that the pane,
    the bot and the CLI show formatted once it is whole; streamed, it appeared as raw
    braces and quotes typed out and then replaced (seen in ``make demo``). On a CPU
    it takes seconds to write, so its length says that the model is at work."""

    def __init__(self, emit: EventSink, clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.clock = clock
        self.characters = 0
        self._told: float | None = None

    def feed(self, text: str) -> None:
        self.characters += len(text)
        now = self.clock()
        if self._told is None or now - self._told >= WRITING_EVERY_S:
            self._told = now
            self.emit("writing", {"characters": self.characters})


@dataclass
class _Calls:
    """One model call of a run, with the template's settings as defaults: every call of
    every technique goes through here, so each is redacted, streamed and tallied alike."""

    client: ChatModel
    job: Job

    def __post_init__(self) -> None:
        template = self.job.prep.template
        params = template.model.get("parameters") or {}
        self.temperature: float | None = params.get("temperature")
        self.max_tokens: int | None = params.get("max_tokens")
        output = template.metadata.output
        self.schema: dict[str, Any] | None = (
            (output.json_schema or {"type": "object"}) if output.format == "json" else None
        )
        self.reasoning = reasons(template)
        self.tally = Tally()

    def __call__(
        self,
        messages: list[Message],
        *,
        stream: bool = False,
        json_schema: dict[str, Any] | _Default | None = _DEFAULT,
        temperature: float | _Default | None = _DEFAULT,
    ) -> Completion:
        job = self.job
        schema = self.schema if isinstance(json_schema, _Default) else json_schema
        sink: Callable[[str], None] | None = None
        citations: CitationStream | None = None
        attribution: AttributionStream | None = None
        if stream and job.on_event is not None and schema is not None:
            sink = Writing(job.on_event).feed  # data, shown once whole: never half a JSON
        elif stream and job.on_event is not None:
            emit = job.on_event
            sink = restoring_sink(lambda t: emit("delta", {"text": t}), job.redactor)
            given = job.prep.all_sources if job.prep.long_document else job.prep.sources
            if given:  # show no citation the answer will not keep
                citations = CitationStream(sink, given)
                sink = citations.feed
                if job.prep.cite_after and job.prep.template.metadata.prefill is None:
                    # The model writes no markers (prepare.cites_after): the runner's rule
                    # adds them, here as each sentence ends, in the final text once more.
                    attribution = AttributionStream(sink, given)
                    sink = attribution.feed
            if self.reasoning:
                sink = tq.FinalAnswerStream(sink).feed
        completion = self.client.complete(
            [redacted(m, job.redactor) for m in messages],
            max_tokens=self.max_tokens,
            temperature=self.temperature if isinstance(temperature, _Default) else temperature,
            json_schema=schema,
            on_delta=sink,
            cancel=job.cancel,
            redactor=job.redactor,  # one set of placeholders for every call of the run
            model=job.model,
            # A summary ends where it has said enough (skills.size): the model stops there.
            stop_at=job.prep.size.stop_at
            if stream and job.prep.size and schema is None and not self.reasoning
            else None,
        )
        if attribution is not None:
            attribution.close()
        if citations is not None:
            citations.close()
        self.tally.add(completion)
        return completion


def _self_ask(job: Job, calls: _Calls) -> None:
    """Ask the model which sub-questions it needs, then prepare again with the sources
    found for each of them as well."""
    prep = job.prep
    asked = calls(
        tq.with_instruction(prep.messages, tq.SELF_ASK_INSTRUCTION),
        json_schema=tq.SELF_ASK_SCHEMA,
    )
    questions = tq.sub_questions(asked.data)
    if questions and job.reprepare is not None:
        query = " ".join([prep.query or "", *questions]).strip()
        again = job.reprepare(query)
        listed = "\n".join(f"- {q}" for q in questions)
        again.messages = tq.with_instruction(
            again.messages, f"Make sure the answer covers these sub-questions:\n{listed}"
        )
        job.prep = again
    if job.on_event is not None and job.prep.sources:
        job.on_event("sources", {"sources": [s.as_dict() for s in job.prep.sources]})


def _tree(messages: list[Message], calls: _Calls) -> Completion:
    """Tree of thoughts, one level deep: candidates explored independently, judged,
    the best kept."""
    candidates = [calls(messages, temperature=0.8) for _ in range(tq.TREE_CANDIDATES)]
    texts = [tq.final_answer(c.text) for c in candidates]
    verdict = calls(tq.judge_messages(messages, texts), json_schema=tq.JUDGE_SCHEMA)
    return candidates[tq.parse_judgement(verdict.data, len(texts)).best]


def _map_reduce(job: Job, calls: _Calls) -> str:
    prep = job.prep
    emit = job.on_event

    def progress(phase: str, step: int, steps: int) -> None:
        # On a CPU a part takes a minute or more: say which one is being read.
        if emit is not None:
            emit("progress", {"phase": phase, "step": step, "steps": steps})

    text, _ = summarise_long(
        prep.template,
        prep.inputs,
        prep.all_sources,
        budget=prep.budget,
        count=count_tokens,
        # The last call's text is the answer: it streams like any other answer.
        call=lambda ms, *, final: _final(calls(ms, stream=final).text, calls.reasoning),
        cancel=job.cancel,
        on_progress=progress,
    )
    return text


def _final(text: str, reasoning: bool) -> str:
    return tq.final_answer(text) if reasoning else text


def describe(data: JSON, task: str) -> str:
    """A readable text for a structured answer (the data itself is kept alongside)."""
    if task == "sentiment" and isinstance(data, dict) and "label" in data:
        try:
            from copilot.skills.sentiment_io import result_from_json

            return describe_sentiment(result_from_json(data))
        except (ValueError, TypeError, KeyError):
            pass
    return json.dumps(data, ensure_ascii=False, indent=2)
