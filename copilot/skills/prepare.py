"""Everything before the first model token: pick the engine, gather and pack the sources,
choose few-shot examples, render the template, fit the budget.

This is the part a user waits on before anything streams, so it is kept to one search,
one embedding of the query and one render (bench/skill_prep.py measures it), and it is
also exactly what a dry run shows: the messages that would leave the machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from copilot.config import Settings
from copilot.index.filters import SearchFilters
from copilot.index.mmr import diverse_search, mmr
from copilot.index.search import QueryError, SearchResult, search
from copilot.llm.tokens import count_messages, count_tokens
from copilot.llm.types import Message
from copilot.skills.context import budget_for, fence, pack
from copilot.skills.engines.local.text import sources_from_text
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.history import RunStore
from copilot.skills.library.store import StoredSkill
from copilot.skills.templates.render import render
from copilot.skills.types import Source
from copilot.workspace import Workspace

EngineName = Literal["llm", "local"]
# Input names that say what to search for, in the order they are tried.
QUERY_INPUTS = ("question", "query", "notes", "message", "text", "focus")
# Graph, IMAP and Outlook spellings of the sent folder, for "the user's voice" examples.
SENT_FOLDERS = ("Sent Items", "Sent", "Sent Mail", "Sent Messages", "INBOX.Sent")
MAX_APPROVED_CANDIDATES = 200


class SkillInputError(ValueError):
    """Inputs or options a skill cannot run with, in words the user can act on."""


@dataclass
class Prepared:
    skill: StoredSkill
    engine: EngineName
    inputs: dict[str, Any]
    messages: list[Message]  # as rendered, before any redaction
    sources: list[Source]  # numbered, as given to the model
    all_sources: list[Source]  # for a long document: every part (map-reduce works on these)
    dropped: list[tuple[str, str]]
    examples: list[dict[str, str]]
    budget: int
    query: str | None
    long_document: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def template(self) -> SkillTemplate:
        return self.skill.template


def choose_engine(settings: Settings, requested: str = "auto") -> EngineName:
    """The LLM when asked for or configured; the local engine otherwise."""
    wanted = requested if requested != "auto" else settings.engine
    if wanted == "llm":
        if not settings.llm_configured:
            raise SkillInputError(
                "no language model is configured: set COPILOT_LLM_BASE_URL (an OpenAI-"
                "compatible server), COPILOT_LLM_API_KEY (OpenAI) or COPILOT_LLM_AZURE_ENDPOINT,"
                " or use the local engine"
            )
        return "llm"
    if wanted == "local":
        return "local"
    return "llm" if settings.llm_configured else "local"


def output_reserve(template: SkillTemplate, settings: Settings) -> int:
    """Tokens kept free for the answer: the template's max_tokens, else the setting."""
    params = template.model.get("parameters") or template.model.get("options") or {}
    value = params.get("max_tokens") or params.get("maxOutputTokens")
    return int(value) if isinstance(value, int) and value > 0 else settings.llm_output_tokens


def retrieval_query(template: SkillTemplate, inputs: dict[str, Any], query: str | None) -> str:
    if query:
        return query
    parts = []
    for name in QUERY_INPUTS:
        value = inputs.get(name)
        if name in template.inputs and isinstance(value, str) and value.strip():
            parts.append(value.strip()[:1000])
            if name in ("question", "query"):
                break
    return " ".join(parts)[:2000]


def prepare(
    workspace: Workspace,
    runs: RunStore,
    skill: StoredSkill,
    user: str,
    inputs: dict[str, Any],
    *,
    engine: EngineName,
    query: str | None = None,
    retrieval: bool | None = None,
    documents: Sequence[Source] | None = None,
) -> Prepared:
    """Render ``skill`` for ``user`` with its sources, examples and budget."""
    settings = workspace.settings
    template = skill.template
    meta = template.metadata
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    reserve = output_reserve(template, settings)
    bare = render(template, {**inputs, "context": ""})  # validates inputs before any search
    fixed = count_messages(bare)
    cap = meta.retrieval.max_context_tokens if meta.retrieval.enabled else None
    budget = budget_for(settings.llm_context_window, reserve, fixed, cap)
    if engine == "local":  # no model window: the template's cap (or a fair default) rules
        budget = cap or meta.retrieval.max_context_tokens
    if engine == "llm" and budget < 50 and (meta.retrieval.enabled or meta.task == "summarise"):
        raise SkillInputError(
            f"the input leaves no room for sources: the prompt is {fixed} tokens of a "
            f"{settings.llm_context_window}-token window with {reserve} reserved for the answer"
        )
    timings["render_ms"] = _ms(t0)

    sources: list[Source] = []
    all_sources: list[Source] = []
    context = ""
    dropped: list[tuple[str, str]] = []
    long_document = False
    text_query = retrieval_query(template, inputs, query)
    use_retrieval = meta.retrieval.enabled if retrieval is None else retrieval

    if meta.task == "summarise":
        text = str(inputs.get("text") or "")
        all_sources = list(documents) if documents else sources_from_text(text, title="input")
        if not all_sources:
            raise SkillInputError("there is nothing to summarise: the text is empty")
        context = fence(all_sources)  # a document's parts stay in document order
        sources = all_sources
        if engine == "llm" and count_tokens(context) > budget:
            long_document, context = True, ""  # map-reduce fences each part itself
    elif documents:
        # Sources the caller gives (a file, a mail to answer questions about): packed and
        # fenced like retrieved passages, in their own order of importance.
        given = [_as_result(s, rank) for rank, s in enumerate(documents)]
        packed = pack(given, budget_tokens=budget, count_tokens=count_tokens,
                      max_sources=max(len(given), 1))  # fmt: skip
        sources, dropped, context = packed.sources, packed.dropped, packed.text
        all_sources = sources
    elif use_retrieval and text_query:
        t1 = time.perf_counter()
        filters = SearchFilters(
            sources=tuple(meta.retrieval.sources), kinds=tuple(meta.retrieval.kinds)
        )
        try:
            results = search(workspace, user, text_query, k=meta.retrieval.k, filters=filters)
        except QueryError:
            results = []
        timings["search_ms"] = _ms(t1)
        t1 = time.perf_counter()
        packed = pack(results, budget_tokens=budget, count_tokens=count_tokens)
        sources, dropped, context = packed.sources, packed.dropped, packed.text
        all_sources = sources
        timings["pack_ms"] = _ms(t1)
    t1 = time.perf_counter()
    examples = few_shot(workspace, runs, skill, user, text_query)
    timings["examples_ms"] = _ms(t1)

    t2 = time.perf_counter()
    values = {**inputs, "context": context}
    if examples is not None:
        values["examples"] = examples
    messages = render(template, values)
    timings["final_render_ms"] = _ms(t2)
    timings["total_ms"] = _ms(t0)
    return Prepared(
        skill=skill,
        engine=engine,
        inputs=inputs,
        messages=messages,
        sources=sources,
        all_sources=all_sources,
        dropped=dropped,
        examples=examples
        if examples is not None
        else [e.model_dump() for e in meta.few_shot.examples],
        budget=budget,
        query=text_query or None,
        long_document=long_document,
        timings_ms=timings,
    )


def few_shot(
    workspace: Workspace, runs: RunStore, skill: StoredSkill, user: str, query: str
) -> list[dict[str, str]] | None:
    """Examples retrieved for this run, or None to keep the template's fixed ones.

    Retrieved examples are chosen for diversity (MMR) as well as relevance: three near-
    identical mails teach the model one phrasing, three different ones teach a voice.
    """
    spec = skill.template.metadata.few_shot
    fixed = [e.model_dump() for e in spec.examples]
    if not spec.retrieve_from or spec.k == 0 or not query:
        return None
    if spec.retrieve_from == "sent_mail":
        filters = SearchFilters(kinds=("mail",), folders=SENT_FOLDERS)
        try:
            found = diverse_search(workspace, user, query, k=spec.k, fetch_k=20, filters=filters)
        except QueryError:
            return None
        return fixed + [{"input": "", "output": r.text[:1500]} for r in found]
    if spec.retrieve_from == "approved_runs":
        approved = runs.approved(skill.id, user=user)[:MAX_APPROVED_CANDIDATES]
        if not approved:
            return None
        texts = [json.dumps(r.inputs, ensure_ascii=False)[:1000] for r in approved]
        vectors = workspace.embedder.embed_documents(texts)
        qvec = workspace.embedder.embed_query(query)
        candidates = [(str(i), np.asarray(v), 0.0) for i, v in enumerate(vectors)]
        chosen = [approved[int(i)] for i in mmr(qvec, candidates, spec.k)]
        return fixed + [
            {"input": texts[approved.index(r)], "output": r.edited_text or r.output} for r in chosen
        ]
    return None


def _as_result(source: Source, rank: int) -> SearchResult:
    return SearchResult(
        item_id=source.item_id,
        title=source.title,
        url=source.url,
        kind=source.kind,
        locator=source.locator,
        score=1.0 / (1 + rank),  # document order is the ranking
        snippet="",
        text=source.text,
        chunk_id=source.chunk_id,
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
