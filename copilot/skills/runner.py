"""Run a skill for a user: prepare, call the engine (with the template's techniques),
cite, record.

One function does a run from start to end so that the CLI, the API (streaming) and the
Teams bot all get the same behaviour: the same redaction before anything leaves the
machine, the same citation checks, the same run record.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import Completion, OpenAIEngine
from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.llm.tokens import count_tokens
from copilot.llm.types import Message
from copilot.skills.templates import techniques as tq
from copilot.skills.citations import cite
from copilot.skills.engines.local.engine import LocalEngineError, describe_sentiment, run_local
from copilot.skills.mapreduce import Cancelled, summarise_long
from copilot.skills.prepare import Prepared, SkillInputError, choose_engine, prepare
from copilot.skills.privacy import redacted, restore, restoring_sink
from copilot.skills.result import RunResult, Tally
from copilot.skills.history import RunRecord, RunStore, inputs_hash
from copilot.skills.library.store import SkillStore, StoredSkill, model_name
from copilot.skills.types import Source
from copilot.workspace import Workspace

EventSink = Callable[[str, dict[str, Any]], None]

__all__ = ["RunResult", "SkillInputError", "SkillRunner", "predict_llm"]


class SkillRunner:
    """Runs skills in one workspace. Cheap to make; the LLM client is opened on first use."""

    def __init__(self, workspace: Workspace, *, llm: OpenAIEngine | None = None) -> None:
        self.workspace = workspace
        self.settings = workspace.settings
        self.skills = SkillStore(workspace.state.engine)
        self.runs = RunStore(workspace.state.engine)
        if llm is not None:
            self.__dict__["llm"] = llm

    @cached_property
    def llm(self) -> OpenAIEngine:
        return OpenAIEngine(self.settings)

    # -- the public entry points -------------------------------------------------------

    def prepare(
        self,
        user: str,
        skill_id: str | StoredSkill,
        inputs: dict[str, Any],
        *,
        engine: str = "auto",
        query: str | None = None,
        retrieval: bool | None = None,
        documents: Sequence[Source] | None = None,
    ) -> Prepared:
        # A StoredSkill not yet saved (a candidate edit under `copilot skills test`) runs as is.
        skill = skill_id if isinstance(skill_id, StoredSkill) else self.skills.get(user, skill_id)
        return prepare(
            self.workspace,
            self.runs,
            skill,
            user,
            inputs,
            engine=choose_engine(self.settings, engine),
            query=query,
            retrieval=retrieval,
            documents=documents,
        )

    def run(
        self,
        user: str,
        skill_id: str | StoredSkill,
        inputs: dict[str, Any],
        *,
        engine: str = "auto",
        query: str | None = None,
        retrieval: bool | None = None,
        documents: Sequence[Source] | None = None,
        dry_run: bool = False,
        record: bool = True,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run ``skill_id`` for ``user``. A dry run returns the exact messages (redacted as
        they would be) and sends nothing; it is not recorded."""
        started = time.perf_counter()
        prep = self.prepare(
            user,
            skill_id,
            inputs,
            engine=engine,
            query=query,
            retrieval=retrieval,
            documents=documents,
        )
        redactor = self._redactor(prep.engine)
        sent = [redacted(m, redactor) for m in prep.messages]
        result = RunResult(
            skill_id=prep.skill.id,
            skill_version=_version(prep),
            engine=prep.engine,
            model=(self._model_for(prep) or self.llm.model) if prep.engine == "llm" else None,
            text="",
            data=None,
            citations=[],
            invalid_citations=[],
            sources=prep.sources,
            messages=sent,
            prep_ms=prep.timings_ms.get("total_ms", 0.0),
            dropped=prep.dropped,
            dry_run=dry_run,
            budget_tokens=prep.budget,
        )
        if on_event is not None and prep.sources and not prep.long_document:
            on_event("sources", {"sources": [s.as_dict() for s in prep.sources]})
        if dry_run:
            result.redactions = redactor.report() if redactor else {}
            return result
        status, error = "ok", None
        try:
            if prep.engine == "local":
                self._local(prep, result, on_event)
            else:
                self._llm(prep, user, result, redactor, on_event, cancel)
        except (LLMError, LocalEngineError, Cancelled) as e:
            cancelled = isinstance(e, Cancelled) or getattr(e, "kind", "") == "cancelled"
            status, error = ("cancelled" if cancelled else "error"), str(e)
            raise
        finally:
            result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            result.redactions = redactor.report() if redactor else {}
            if record:
                result.run_id = self._record(user, prep, result, status, error)
        return result

    # -- engines -----------------------------------------------------------------------

    def _local(self, prep: Prepared, result: RunResult, on_event: EventSink | None) -> None:
        outcome = run_local(prep.template, prep.inputs, prep.sources, self.workspace.embedder)
        result.data, result.note = outcome.data, outcome.note
        self._finish(prep, result, outcome.text)
        if on_event is not None:
            on_event("delta", {"text": result.text})

    def _llm(
        self,
        prep: Prepared,
        user: str,
        result: RunResult,
        redactor: Redactor | None,
        on_event: EventSink | None,
        cancel: threading.Event | None,
    ) -> None:
        template = prep.template
        meta = template.metadata
        params = template.model.get("parameters") or {}
        temperature = params.get("temperature")
        max_tokens = params.get("max_tokens")
        schema = None
        if meta.output.format == "json":
            schema = meta.output.json_schema or {"type": "object"}
        tally = Tally()
        model = result.model  # the skill's own model when it names one, else the default

        def call(
            messages: list[Message],
            *,
            stream: bool = False,
            json_schema: dict[str, Any] | None = schema,
            temperature: float | None = temperature,
        ) -> Completion:
            sink = None
            if stream and on_event is not None:
                sink = restoring_sink(lambda t: on_event("delta", {"text": t}), redactor)
                if meta.techniques.chain_of_thought and schema is None:
                    sink = tq.FinalAnswerStream(sink).feed
            completion = self.llm.complete(
                [redacted(m, redactor) for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
                json_schema=json_schema,
                on_delta=sink,
                cancel=cancel,
                redactor=redactor,  # one set of placeholders for every call of the run
                model=model,
            )
            tally.add(completion)
            return completion

        if meta.techniques.self_ask:
            prep = self._self_ask(prep, user, call)
            result.sources, result.dropped = prep.sources, prep.dropped
            if on_event is not None and prep.sources:
                on_event("sources", {"sources": [s.as_dict() for s in prep.sources]})
        messages = prep.messages
        if meta.techniques.chain_of_thought and schema is None:
            messages = tq.with_instruction(messages, tq.REASONING_INSTRUCTION)
        result.messages = [redacted(m, redactor) for m in messages]
        if prep.long_document:
            text, _ = summarise_long(
                template,
                prep.inputs,
                prep.all_sources,
                budget=prep.budget,
                count=count_tokens,
                call=lambda ms: _final(call(ms).text, meta.techniques.chain_of_thought),
                cancel=cancel,
            )
            completion = None
        elif meta.techniques.tree_of_thoughts:
            completion = self._tree(messages, call)
            text = completion.text
            if on_event is not None:
                on_event("delta", {"text": restore(tq.final_answer(text), redactor)})
        else:
            completion = call(messages, stream=True)
            text = completion.text
        if schema is not None and completion is not None:
            result.data = completion.data
            text = _describe(completion.data, template.metadata.task)
        text = restore(_final(text, meta.techniques.chain_of_thought and schema is None), redactor)
        result.calls, result.model = tally.calls, tally.model or result.model
        result.prompt_tokens, result.completion_tokens = tally.prompt, tally.completion
        result.cost_usd = tally.cost
        self._finish(prep, result, text)

    def _tree(self, messages: list[Message], call: Callable[..., Completion]) -> Completion:
        """Tree of thoughts, one level deep: candidates explored independently, judged,
        the best kept."""
        candidates = [call(messages, temperature=0.8) for _ in range(tq.TREE_CANDIDATES)]
        texts = [tq.final_answer(c.text) for c in candidates]
        verdict = call(tq.judge_messages(messages, texts), json_schema=tq.JUDGE_SCHEMA)
        return candidates[tq.parse_judgement(verdict.data, len(texts)).best]

    def _self_ask(self, prep: Prepared, user: str, call: Callable[..., Completion]) -> Prepared:
        """Ask the model which sub-questions it needs, then prepare again with the
        sources found for each of them as well."""
        asked = call(
            tq.with_instruction(prep.messages, tq.SELF_ASK_INSTRUCTION),
            json_schema=tq.SELF_ASK_SCHEMA,
        )
        questions = tq.sub_questions(asked.data)
        if not questions:
            return prep
        query = " ".join([prep.query or "", *questions]).strip()
        again = prepare(
            self.workspace,
            self.runs,
            prep.skill,
            user,
            prep.inputs,
            engine=prep.engine,
            query=query,
            retrieval=True,
        )
        listed = "\n".join(f"- {q}" for q in questions)
        again.messages = tq.with_instruction(
            again.messages, f"Make sure the answer covers these sub-questions:\n{listed}"
        )
        return again

    # -- after the engine --------------------------------------------------------------

    def _finish(self, prep: Prepared, result: RunResult, text: str) -> None:
        given = prep.all_sources if prep.long_document else prep.sources
        if given and prep.template.metadata.output.format == "text":
            cited = cite(text, given)
            result.text, result.citations, result.invalid_citations = (
                cited.text,
                cited.citations,
                cited.invalid,
            )
            result.sources = given
        else:
            result.text = text

    def _model_for(self, prep: Prepared) -> str | None:
        """The model the skill asks for: its template's own (a fine-tuned model set by
        ``copilot finetune use``), else an admin's per-skill override; None: the default."""
        named = model_name(prep.template)
        if named is not None:
            return named
        from copilot.finetune.overrides import skill_model  # a leaf module: no cycle

        return skill_model(self.workspace.state.engine, prep.skill.id)

    def _redactor(self, engine: str) -> Redactor | None:
        policy = RedactionPolicy.from_settings(self.settings)
        return Redactor(policy) if policy is not None and engine == "llm" else None

    def _record(
        self, user: str, prep: Prepared, result: RunResult, status: str, error: str | None
    ) -> str:
        return self.runs.record(
            RunRecord(
                user=user,
                skill_id=result.skill_id,
                skill_version=result.skill_version,
                engine=result.engine,
                model=result.model,
                inputs=prep.inputs,
                inputs_hash=inputs_hash(prep.inputs),
                messages=[{"role": m.role, "content": m.content} for m in result.messages],
                output=result.text,
                data=result.data,
                citations=[c.as_dict() for c in result.citations],
                chunk_ids=[s.chunk_id for s in result.sources],
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost_usd=result.cost_usd,
                latency_ms=result.latency_ms,
                status=status,  # type: ignore[arg-type]
                error=error,
                redactions=result.redactions,
            )
        )


def _version(prep: Prepared) -> str:
    return f"v{prep.skill.version}" if prep.skill.version is not None else "builtin"


def _final(text: str, reasoning: bool) -> str:
    return tq.final_answer(text) if reasoning else text


def _describe(data: Any, task: str) -> str:
    """A readable text for a structured answer (the data itself is kept alongside)."""
    if task == "sentiment" and isinstance(data, dict) and "label" in data:
        try:
            from copilot.skills.sentiment_io import result_from_json

            return describe_sentiment(result_from_json(data))
        except (ValueError, TypeError, KeyError):
            pass
    return json.dumps(data, ensure_ascii=False, indent=2)


def predict_llm(settings: Any, texts: Sequence[str]) -> list[int]:
    """1 (positive) or 0 per text from the sentiment skill on the LLM (for `copilot eval`)."""
    with Workspace(settings) as ws:
        runner = SkillRunner(ws)
        out = []
        for text in texts:
            result = runner.run("eval", "sentiment", {"text": text}, engine="llm", record=False)
            data = result.data if isinstance(result.data, dict) else {}
            score = data.get("score")
            label = data.get("label")
            positive = label == "positive" or (label != "negative" and (score or 0) >= 0)
            out.append(1 if positive else 0)
        return out
