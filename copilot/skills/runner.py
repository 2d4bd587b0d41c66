"""Run a skill for a user: choose the engine, prepare, let the engine answer, cite, record.

One function does a run from start to end so that the CLI, the API (streaming) and the
Teams bot all get the same behaviour: the same redaction before anything leaves the
machine, the same citation checks, the same run record. What differs between engines
(a chat model with its techniques, or the extractive local engine) is behind the
``Engine`` protocol of ``engines.base``; which one runs is ``engines.select``'s decision.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Literal

from copilot.errors import Cancelled
from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import OpenAIEngine
from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.skills.attribute import attribute_lines, attribute_sentences
from copilot.skills.citations import cite
from copilot.skills.engines.base import (
    Answer,
    ChatModel,
    Engine,
    EngineName,
    EventSink,
    Job,
    ReadAhead,
)
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.engines.local.sentences import split_sentences
from copilot.skills.engines.select import choose_engine, open_engine, skill_model
from copilot.skills.history import RunRecord, RunStore, inputs_hash
from copilot.skills.library.store import SkillStore, StoredSkill, model_name
from copilot.skills.prepare import Prepared, SkillInputError, prepare
from copilot.skills.privacy import redacted
from copilot.skills.request import RunRequest
from copilot.skills.result import RunResult
from copilot.skills.shape import shape_answer
from copilot.skills.types import GivenInputs, Source
from copilot.workspace import Workspace

RunStatus = Literal["ok", "error", "cancelled"]

__all__ = ["RunResult", "SkillInputError", "SkillRunner"]


class SkillRunner:
    """Runs skills in one workspace. Cheap to make; each engine is opened on first use."""

    def __init__(self, workspace: Workspace, *, llm: ChatModel | None = None) -> None:
        self.workspace = workspace
        self.settings = workspace.settings
        self.skills = SkillStore(workspace.state.engine)
        self.runs = RunStore(workspace.state.engine)
        if llm is not None:
            self.__dict__["llm"] = llm
        self._engines: dict[EngineName, Engine] = {}
        self._opening = threading.Lock()  # API threads share one runner
        # Preparation (query embedding, search, packing) is CPU work under one GIL: run
        # side by side, 20 preparations all finish late; in turn, with one per core, they
        # finish one after another and the model is called sooner on average (the same
        # work, served in order: docs/benchmarks.md, API under load).
        self._preparing = threading.BoundedSemaphore(os.cpu_count() or 1)

    @cached_property
    def llm(self) -> ChatModel:
        """The configured server's chat client (the ``llm`` engine's, and the evals')."""
        return OpenAIEngine(self.settings)

    def engine(self, requested: str = "auto") -> Engine:
        """The engine a run asking for ``requested`` gets, opened once per runner."""
        name = choose_engine(self.settings, requested)
        with self._opening:
            if name not in self._engines:
                client = self.llm if name == "llm" else None
                self._engines[name] = open_engine(name, self.settings, llm=client)
            return self._engines[name]

    # -- the public entry points -------------------------------------------------------

    def prepare(
        self,
        user: str,
        skill_id: str | StoredSkill,
        inputs: GivenInputs,
        *,
        engine: str = "auto",
        query: str | None = None,
        retrieval: bool | None = None,
        documents: Sequence[Source] | None = None,
    ) -> Prepared:
        return prepare(
            self.workspace,
            self.runs,
            self._skill(user, skill_id),
            user,
            inputs,
            engine=self.engine(engine),
            query=query,
            retrieval=retrieval,
            documents=documents,
        )

    def read_ahead(self, user: str, request: RunRequest) -> ReadAhead:
        """Prepare ``request`` as its run will and have the model read the prompt now, if
        it is idle (``Engine.read_ahead``): the run, sent a moment later, then starts
        writing at once. Nothing is recorded; an input error raises as the run would."""
        with self._preparing:
            prep = self.prepare(
                user,
                request.skill_id,
                request.inputs,
                engine=request.engine,
                query=request.query,
                retrieval=request.retrieval,
                documents=request.documents,
            )
        return self.engine(request.engine).read_ahead(prep)

    def run_request(
        self,
        user: str,
        request: RunRequest,
        *,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run what ``copilot.skills.request`` assembled from a CLI, API or bot input."""
        return self.run(
            user,
            request.skill_id,
            request.inputs,
            engine=request.engine,
            query=request.query,
            retrieval=request.retrieval,
            documents=request.documents,
            dry_run=request.dry_run,
            on_event=on_event,
            cancel=cancel,
        )

    def run(
        self,
        user: str,
        skill_id: str | StoredSkill,
        inputs: GivenInputs,
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
        answering = self.engine(engine)
        skill = self._skill(user, skill_id)
        with self._preparing:
            prep = prepare(
                self.workspace,
                self.runs,
                skill,
                user,
                inputs,
                engine=answering,
                query=query,
                retrieval=retrieval,
                documents=documents,
            )
        redactor = self._redactor(answering)
        model = self._model_for(prep) if answering.name == "llm" else None
        job = Job(
            prep=prep,
            messages=[redacted(m, redactor) for m in prep.messages],
            embedder=lambda: self.workspace.embedder,
            model=model,
            redactor=redactor,
            on_event=on_event,
            cancel=cancel,
            reprepare=lambda wider: prepare(
                self.workspace,
                self.runs,
                skill,
                user,
                prep.inputs,
                engine=answering,
                query=wider,
                retrieval=True,
            ),
        )
        result = _result(prep, job, model or answering.model or None, dry_run)
        if on_event is not None and prep.sources and not prep.long_document:
            on_event("sources", {"sources": [s.as_dict() for s in prep.sources]})
        if dry_run:
            result.redactions = redactor.report() if redactor else {}
            return result
        status: RunStatus = "ok"
        error: str | None = None
        try:
            answer = answering.answer(job)
            _take(job, result)
            _complete(job.prep, result, answer, on_event)
        except (LLMError, LocalEngineError, Cancelled) as e:
            _take(job, result)  # what was sent before it failed
            cancelled = isinstance(e, Cancelled) or getattr(e, "kind", "") == "cancelled"
            status, error = ("cancelled" if cancelled else "error"), str(e)
            raise
        finally:
            result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            result.redactions = redactor.report() if redactor else {}
            if record:
                result.run_id = self._record(user, prep, result, status, error)
        return result

    # -- helpers -----------------------------------------------------------------------

    def _skill(self, user: str, skill_id: str | StoredSkill) -> StoredSkill:
        # A StoredSkill not yet saved (a candidate edit under `copilot skills test`) runs as is.
        return skill_id if isinstance(skill_id, StoredSkill) else self.skills.get(user, skill_id)

    def model_for(self, skill: StoredSkill) -> str | None:
        """The model the skill asks for on the ``llm`` engine: its template's own (a
        fine-tuned model set by ``copilot finetune use``), else an admin's per-skill
        override; None: the default."""
        return model_name(skill.template) or skill_model(self.workspace.state.engine, skill.id)

    def _model_for(self, prep: Prepared) -> str | None:
        return self.model_for(prep.skill)

    def _redactor(self, engine: Engine) -> Redactor | None:
        policy = RedactionPolicy.from_settings(self.settings)
        return Redactor(policy) if policy is not None and engine.remote else None

    def _record(
        self, user: str, prep: Prepared, result: RunResult, status: RunStatus, error: str | None
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
                status=status,
                error=error,
                redactions=result.redactions,
            )
        )


def _result(prep: Prepared, job: Job, model: str | None, dry_run: bool) -> RunResult:
    """The result before the engine answers: what a dry run returns."""
    return RunResult(
        skill_id=prep.skill.id,
        skill_version=f"v{prep.skill.version}" if prep.skill.version is not None else "builtin",
        engine=prep.engine,
        model=model,
        text="",
        data=None,
        citations=[],
        invalid_citations=[],
        sources=prep.sources,
        messages=job.messages,
        prep_ms=prep.timings_ms.get("total_ms", 0.0),
        dropped=prep.dropped,
        dry_run=dry_run,
        budget_tokens=prep.budget,
    )


def _take(job: Job, result: RunResult) -> None:
    """What the engine really sent and with which sources (self-ask may add some)."""
    result.messages = job.messages
    result.sources, result.dropped = job.prep.sources, job.prep.dropped


def _complete(
    prep: Prepared, result: RunResult, answer: Answer, on_event: EventSink | None
) -> None:
    """The answer, its citations checked against the sources the engine was given."""
    tally = answer.tally
    result.data, result.note = answer.data, answer.note
    result.calls, result.model = tally.calls, tally.model or result.model
    result.prompt_tokens, result.completion_tokens = tally.prompt, tally.completion
    result.cost_usd = tally.cost
    given = prep.all_sources if prep.long_document else prep.sources
    text_output = prep.template.metadata.output.format == "text"
    notes = str(prep.inputs.get("notes") or "") if prep.template.metadata.task == "draft" else None
    written = (
        shape_answer(answer.text, prep.inputs.get("style"), notes) if text_output else answer.text
    )
    if given and text_output:
        if prep.template.metadata.prefill is None:  # not a reply: its reader has no sources
            attribute = attribute_sentences if prep.cite_after else attribute_lines
            written = attribute(written, given)
        cited = cite(written, given)
        result.text, result.citations, result.invalid_citations = (
            cited.text,
            cited.citations,
            cited.invalid,
        )
        result.sources = given
    else:
        result.text = written
    if not answer.streamed and on_event is not None:
        for piece in sentence_pieces(result.text):  # the extractive engine, sentence by sentence
            on_event("delta", {"text": piece})


_MARKER_ONLY = re.compile(r"\s*(?:[-*•◦▪–—+]|\d{1,3}[.)])?\s*")  # "- ", "2. " or nothing


def sentence_pieces(text: str) -> list[str]:
    """``text`` cut at its sentence starts (a bullet's marker goes with its sentence); the
    pieces join back to exactly ``text``."""
    starts: set[int] = set()
    for start, _ in split_sentences(text):
        line = text.rfind("\n", 0, start) + 1
        starts.add(line if _MARKER_ONLY.fullmatch(text[line:start]) else start)
    bounds = [0, *sorted(s for s in starts if 0 < s < len(text)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]
