"""The `local` engine: answers a skill with no language model at all.

It is what a fresh install (or a locked-down site) gets: extractive summaries and answers
with citations, embedding-based sentiment, and a draft outline. It follows the skill's
task, not its prompt text, and says in its note that it is not a language model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from copilot.errors import CopilotError
from copilot.index.embed import Embedder
from copilot.skills.engines.base import Answer, EngineName, Job, ReadAhead
from copilot.skills.engines.local import text as local_text
from copilot.skills.engines.local.encoder import sentence_encoder
from copilot.skills.engines.local.sentiment import LocalSentiment
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.types import JSON, SentimentResult, Source

if TYPE_CHECKING:  # prepare imports the engines' base, which this module imports
    from copilot.skills.prepare import Prepared

Choice = TypeVar("Choice", bound=str)

NOTE_SENTIMENT = (
    "Scored by the local engine's embedding classifier (no language model): a label and "
    "aspects from sentence similarity, not a written judgement."
)


class LocalEngineError(CopilotError, ValueError):
    """A skill the local engine cannot answer."""

    kind = "local_engine_unsupported"
    status = 400
    title = "The local engine can't do that"


@dataclass(frozen=True)
class LocalOutcome:
    text: str
    data: JSON
    note: str


class LocalEngine:
    """The ``Engine`` protocol for the local engine: no model, no window, nothing sent."""

    name: EngineName = "local"
    model = ""
    window = 0  # no model window: the template's retrieval cap bounds the sources
    remote = False

    def answer(self, job: Job) -> Answer:
        prep = job.prep
        outcome = run_local(prep.template, prep.inputs, prep.sources, job.embedder())
        return Answer(text=outcome.text, data=outcome.data, note=outcome.note, streamed=False)

    def read_ahead(self, prep: Prepared) -> ReadAhead:
        return "not_needed"  # nothing reads a prompt


def sentiment_model(template: SkillTemplate, embedder: Embedder) -> LocalSentiment:
    """The embedding classifier on its own encoder (``encoder.py``; ``embedder`` where that
    cannot run), steered by the template's own few-shot examples."""
    examples = [(e.input, e.output.strip().lower()) for e in template.metadata.few_shot.examples]
    return LocalSentiment(sentence_encoder(embedder), examples=examples)


def describe_sentiment(result: SentimentResult) -> str:
    lines = [f"{result.label} (score {result.score:+.2f}, confidence {result.confidence:.2f})"]
    for a in result.aspects:
        score = "" if a.score is None else f" ({a.score:+.2f})"  # a model may omit it
        quote = f" — “{a.evidence}”" if a.evidence else ""
        lines.append(f"- {a.aspect}: {a.label}{score}{quote}")
    return "\n".join(lines)


def body_only(source: Source) -> Source:
    """The source without the heading path that chunking puts on its first line: useful
    context for a model, but an extractive engine would quote it as if it were a sentence."""
    section = source.locator.get("section")
    if isinstance(section, str) and source.text.startswith(section + "\n"):
        return replace(source, text=source.text[len(section) + 1 :])
    return source


def run_local(
    template: SkillTemplate,
    inputs: dict[str, Any],
    sources: list[Source],
    embedder: Embedder,
) -> LocalOutcome:
    task = template.metadata.task
    sources = [body_only(s) for s in sources]
    if task == "summarise":
        answer = local_text.summarise(
            sources,
            embedder,
            style=_choice("style", inputs.get("style"), STYLES),
            length=_choice("length", inputs.get("length"), LENGTHS),
            focus=str(inputs.get("focus") or "") or None,
        )
        return LocalOutcome(answer.text, None, answer.note)
    if task == "ask":
        question = str(inputs.get("question") or inputs.get("query") or "")
        answer = local_text.answer(question, sources, embedder)
        return LocalOutcome(answer.text, None, answer.note)
    if task == "draft":
        message = str(inputs.get("message") or inputs.get("notes") or "")
        answer = local_text.draft_outline(
            message, sources, embedder, tone=str(inputs.get("tone") or "neutral")
        )
        return LocalOutcome(answer.text, None, answer.note)
    if task == "sentiment":
        text = str(inputs.get("text") or "")
        if not text.strip():
            raise LocalEngineError("there is no text to score")
        result = sentiment_model(template, embedder).classify([text])[0]
        return LocalOutcome(describe_sentiment(result), result.as_dict(), NOTE_SENTIMENT)
    raise LocalEngineError(
        f"the skill {template.name!r} needs a language model: the local engine only answers "
        "summarise, draft, sentiment and ask skills. Install the local model (`copilot model "
        "install`) or configure COPILOT_LLM_BASE_URL or COPILOT_LLM_API_KEY."
    )


STYLES = local_text.STYLES
LENGTHS: tuple[local_text.Length, ...] = ("medium", "short", "long")


def _choice(name: str, value: object, allowed: tuple[Choice, ...]) -> Choice:
    """``value`` when it is one of ``allowed``; the first (the default) when not given; an
    error naming the allowed values otherwise (never silently another value)."""
    if value is None or value == "":
        return allowed[0]
    for choice in allowed:
        if value == choice:
            return choice
    raise LocalEngineError(
        f"the local engine's {name} is one of {', '.join(allowed)}; got {value!r}"
    )
