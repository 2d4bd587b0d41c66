"""Everything before the first model token: fit the budget, gather and pack the sources,
choose few-shot examples, render the template.

This is the part a user waits on before anything streams, so it is kept to one search,
one embedding of the query and one render (bench/skill_prep.py measures it), and it is
also exactly what a dry run shows: the messages that would leave the machine.

The engine matters here only through its ``window``: a model's window less the answer's
reserve is what the prompt may fill (``context_budget``); an engine with no window (the
local one) is bounded by the template's retrieval cap instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.index.filters import SearchFilters
from copilot.index.mmr import diverse_search, mmr
from copilot.index.search import QueryError, SearchResult, search
from copilot.llm.tokens import count_messages, count_tokens
from copilot.llm.types import Message
from copilot.skills import budget, questions
from copilot.skills.context import budget_for, pack
from copilot.skills.engines.base import Engine, EngineName
from copilot.skills.engines.local.text import sources_from_text
from copilot.skills.history import RunStore
from copilot.skills.library.store import StoredSkill
from copilot.skills.reply import given_texts, not_quoted, with_prefill
from copilot.skills.request import fit_inputs
from copilot.skills.size import Size, summary_size
from copilot.skills.source_block import fence, joined_given, uncited
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import reads, render
from copilot.skills.types import GivenInputs, Inputs, Source
from copilot.workspace import Workspace

# Input names that say what to search for, in the order they are tried.
QUERY_INPUTS = ("question", "query", "notes", "message", "text", "focus")
# Graph, IMAP and Outlook spellings of the sent folder, for "the user's voice" examples.
SENT_FOLDERS = ("Sent Items", "Sent", "Sent Mail", "Sent Messages", "INBOX.Sent")
MAX_APPROVED_CANDIDATES = 200
MIN_SOURCE_TOKENS = 50  # below this a skill that needs sources cannot be answered well
JOIN_TOKENS = 8  # see fit()
Example = dict[str, str]  # {"input": ..., "output": ...}


class SkillInputError(CopilotError, ValueError):
    """Inputs or options a skill cannot run with, in words the user can act on."""

    kind = "bad_skill_input"
    status = 400
    title = "I couldn't run that"


@dataclass
class Prepared:
    skill: StoredSkill
    engine: EngineName
    inputs: Inputs
    messages: list[Message]  # as rendered, before any redaction
    sources: list[Source]  # numbered, as given to the model
    all_sources: list[Source]  # for a long document: every part (map-reduce works on these)
    dropped: list[tuple[str, str]]
    examples: list[Example]
    budget: int
    query: str | None
    long_document: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    # True: the model was not asked for "[n]" markers; the runner attributes each
    # sentence to the source holding its words (``cites_after``).
    cite_after: bool = False
    # How long a summary should be, and where its answer stops (``skills.size``).
    size: Size | None = None

    @property
    def template(self) -> SkillTemplate:
        return self.skill.template


@dataclass
class Gathered:
    """The sources of one run and their fenced text for the template's ``context``."""

    sources: list[Source] = field(default_factory=list)
    all_sources: list[Source] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    context: str = ""
    long_document: bool = False  # map-reduce: each part is fenced on its own later


def prepare(
    workspace: Workspace,
    runs: RunStore,
    skill: StoredSkill,
    user: str,
    inputs: GivenInputs,
    *,
    engine: Engine,
    query: str | None = None,
    retrieval: bool | None = None,
    documents: Sequence[Source] | None = None,
) -> Prepared:
    """Render ``skill`` for ``user`` with its sources, examples and budget."""
    template = skill.template
    inputs = fit_inputs(template, inputs)  # checked, defaults filled: every engine sees them
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    sized = answer_size(template, inputs, documents)
    if sized is not None:  # the template's size for this text, in the budget's render too
        inputs = {**inputs, "size": sized.as_dict()}
    budget = fit(engine, template, inputs, workspace.settings)
    timings["render_ms"] = _ms(t0)

    text_query = retrieval_query(template, inputs, query)
    use_retrieval = template.metadata.retrieval.enabled if retrieval is None else retrieval
    after = cites_after(engine, template)
    if template.metadata.task == "summarise":
        gathered = document_sources(inputs, documents, engine, budget, numbered=not after)
    elif documents:
        gathered = given_sources(documents, budget)
    elif use_retrieval and text_query:
        gathered = retrieved_sources(
            workspace, user, template, text_query, budget, timings, exclude=given_texts(inputs)
        )
    else:
        gathered = Gathered()

    t1 = time.perf_counter()
    examples = few_shot(workspace, runs, skill, user, text_query)
    timings["examples_ms"] = _ms(t1)
    t2 = time.perf_counter()
    context = uncited(gathered.context) if after else gathered.context
    values = {**inputs, "context": context, "cite_after": after}
    if examples is not None:
        values["examples"] = examples
    # A reply starts with its greeting already written (metadata.prefill), so a small
    # model writes a reply rather than the received mail again.
    messages = with_prefill(render(template, values), template, inputs)
    timings["final_render_ms"] = _ms(t2)
    timings["total_ms"] = _ms(t0)
    return Prepared(
        skill=skill,
        engine=engine.name,
        inputs={k: v for k, v in inputs.items() if k != "size"},
        messages=messages,
        sources=gathered.sources,
        all_sources=gathered.all_sources,
        dropped=gathered.dropped,
        examples=examples if examples is not None else fixed_examples(template),
        budget=budget,
        query=text_query or None,
        long_document=gathered.long_document,
        timings_ms=timings,
        cite_after=after,
        size=sized,
    )


def answer_size(
    template: SkillTemplate, inputs: GivenInputs, documents: Sequence[Source] | None
) -> Size | None:
    """How long a summary of the given text should be, for a summarise template that reads
    ``size`` (a share of the text: ``skills.size``); None otherwise."""
    if template.metadata.task != "summarise" or not reads(template, "size"):
        return None
    texts = [d.text for d in documents] if documents else [str(inputs.get("text") or "")]
    return summary_size(inputs, texts, reads_size=True)


def cites_after(engine: Engine, template: SkillTemplate) -> bool:
    """Whether the runner, not the model, cites the answer (the template's ``cite_after``):
    only on the embedded engine, for a template that reads ``cite_after`` (it words its
    instructions both ways); every other model is asked for "[n]" markers as before.
    Asked to, the 1.5B model wrote the marker where the answer belongs ("The $ value paid
    to Mixpanel is [1]."); not asked, it answered right more often (docs/benchmarks.md,
    "Prompt injection"), and the runner cites each sentence from the words it shares with
    a source (``skills.attribute``)."""
    return engine.name == "embedded" and reads(template, "cite_after")


# -- the budget ------------------------------------------------------------------------------


def output_reserve(template: SkillTemplate, settings: Settings) -> int:
    """Tokens kept free for the answer: the template's max_tokens, else the setting."""
    params = template.model.get("parameters") or template.model.get("options") or {}
    value = params.get("max_tokens") or params.get("maxOutputTokens")
    return int(value) if isinstance(value, int) and value > 0 else settings.llm_output_tokens


def context_budget(
    engine: Engine, template: SkillTemplate, settings: Settings, fixed: int = 0
) -> int:
    """Tokens the whole prompt may take on ``engine``: its window less the answer's reserve;
    0 for an engine without a model window.

    The one place that says how much prompt an engine gets: on a slow server also no more
    than it reads in the time a user will wait (``budget.context_budget``) — except for a
    summary, whose text is read whole whatever the budget: cut to the time budget, a
    300-word mail on a busy CPU went to map-reduce, which reads the same text in parts and
    then waits for every part's summary and a combining call (a first token at 33 s where
    one call took 5 s). A summary splits only at the window.
    """
    return budget.context_budget(
        engine, template, settings, output_reserve(template, settings), fixed_tokens=fixed,
        timed=template.metadata.task != "summarise",
    )  # fmt: skip


def fit(engine: Engine, template: SkillTemplate, inputs: GivenInputs, settings: Settings) -> int:
    """Tokens left for sources once the prompt without them is rendered (which also
    validates the inputs, before any search); an error when a skill that needs sources
    would get almost none."""
    meta = template.metadata
    # The sources are counted alone and the prompt whole: where they join (the blank line
    # after the sources) the whole counts a few tokens more.
    fixed = count_messages(render(template, {**inputs, "context": ""})) + JOIN_TOKENS
    if engine.window <= 0:  # no model window: the template's cap (or a fair default) rules
        return meta.retrieval.max_context_tokens
    cap = meta.retrieval.max_context_tokens if meta.retrieval.enabled else None
    budget = budget_for(context_budget(engine, template, settings, fixed), 0, fixed, cap)
    if budget < MIN_SOURCE_TOKENS and (meta.retrieval.enabled or meta.task == "summarise"):
        raise SkillInputError(
            f"the input leaves no room for sources: the prompt is {fixed} tokens of a "
            f"{engine.window}-token window with {output_reserve(template, settings)} reserved "
            "for the answer"
        )
    return budget


# -- the sources -----------------------------------------------------------------------------


def retrieval_query(template: SkillTemplate, inputs: GivenInputs, query: str | None) -> str:
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


def document_sources(
    inputs: GivenInputs,
    documents: Sequence[Source] | None,
    engine: Engine,
    budget: int,
    *,
    numbered: bool = True,
) -> Gathered:
    """What summarise works on: the given document, else the text, in document order.

    Never cut to the budget: a document longer than the window is summarised part by
    part (map-reduce), which fences each part itself. Unless the model is to cite the
    pieces (``numbered``), a given text is fenced as one block (``joined_given``).
    """
    text = str(inputs.get("text") or "")
    sources = list(documents) if documents else sources_from_text(text)
    if not sources:
        raise SkillInputError("there is nothing to summarise: the text is empty")
    context = fence(sources if numbered else joined_given(sources))
    if engine.window > 0 and count_tokens(context) > budget:
        return Gathered(sources, sources, long_document=True)
    return Gathered(sources, sources, context=context)


def given_sources(documents: Sequence[Source], budget: int) -> Gathered:
    """Sources the caller gives (a file, a mail to answer questions about): packed and
    fenced like retrieved passages, in their own order of importance."""
    given = [_as_result(s, rank) for rank, s in enumerate(documents)]
    packed = pack(
        given,
        budget_tokens=budget,
        count_tokens=count_tokens,
        max_sources=max(len(given), 1),
        adjacent=False,  # a whole document in order: only pieces of one place are joined
    )
    return Gathered(packed.sources, packed.sources, packed.dropped, packed.text)


def retrieved_sources(
    workspace: Workspace,
    user: str,
    template: SkillTemplate,
    query: str,
    budget: int,
    timings: dict[str, float],
    *,
    exclude: Sequence[str] = (),
) -> Gathered:
    """The user's own passages for ``query``, searched with the template's filters; none
    that merely repeats one of the texts in ``exclude`` (the mail being answered)."""
    spec = template.metadata.retrieval
    t0 = time.perf_counter()
    filters = SearchFilters(sources=tuple(spec.sources), kinds=tuple(spec.kinds))
    rankings = []
    for text in questions.queries(query):  # a text asking several things: each as well
        try:
            rankings.append(search(
                workspace.store, workspace.embedder, user, text, k=spec.k, filters=filters
            ))  # fmt: skip
        except QueryError:
            continue
    results = questions.in_turns(rankings, spec.k)
    timings["search_ms"] = _ms(t0)
    t1 = time.perf_counter()
    results = not_quoted(results, list(exclude))
    packed = pack(results, budget_tokens=budget, count_tokens=count_tokens)
    timings["pack_ms"] = _ms(t1)
    return Gathered(packed.sources, packed.sources, packed.dropped, packed.text)


# -- few-shot examples -----------------------------------------------------------------------


def fixed_examples(template: SkillTemplate) -> list[Example]:
    return [e.model_dump() for e in template.metadata.few_shot.examples]


def few_shot(
    workspace: Workspace, runs: RunStore, skill: StoredSkill, user: str, query: str
) -> list[Example] | None:
    """Examples retrieved for this run, or None to keep the template's fixed ones.

    Retrieved examples are chosen for diversity (MMR) as well as relevance: three near-
    identical mails teach the model one phrasing, three different ones teach a voice.
    """
    spec = skill.template.metadata.few_shot
    if not spec.retrieve_from or spec.k == 0 or not query:
        return None
    if spec.retrieve_from == "sent_mail":
        found = sent_mail_examples(workspace, user, query, spec.k)
    else:
        found = approved_examples(workspace, runs, skill.id, user, query, spec.k)
    return None if found is None else fixed_examples(skill.template) + found


def sent_mail_examples(workspace: Workspace, user: str, query: str, k: int) -> list[Example] | None:
    """The user's own sent mail on the subject: their voice, as outputs to imitate."""
    filters = SearchFilters(kinds=("mail",), folders=SENT_FOLDERS)
    try:
        found = diverse_search(
            workspace.store, workspace.embedder, user, query, k=k, fetch_k=20, filters=filters
        )
    except QueryError:
        return None
    return [{"input": "", "output": r.text[:1500]} for r in found]


def approved_examples(
    workspace: Workspace, runs: RunStore, skill_id: str, user: str, query: str, k: int
) -> list[Example] | None:
    """Runs of this skill the user approved (their edit, if they made one), closest first."""
    approved = runs.approved(skill_id, user=user)[:MAX_APPROVED_CANDIDATES]
    if not approved:
        return None
    texts = [json.dumps(r.inputs, ensure_ascii=False)[:1000] for r in approved]
    vectors = workspace.embedder.embed_documents(texts)
    qvec = workspace.embedder.embed_query(query)
    candidates = [(str(i), np.asarray(v), 0.0) for i, v in enumerate(vectors)]
    chosen = [int(i) for i in mmr(qvec, candidates, k)]
    return [
        {"input": texts[i], "output": approved[i].edited_text or approved[i].output} for i in chosen
    ]


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
