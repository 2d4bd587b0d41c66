"""The API's request and response bodies: one place for the contract the add-ins and the
Teams bot are written against (and the OpenAPI document is generated from)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from copilot.skills.request import MAX_TURNS
from copilot.skills.templates.render import MAX_OUTPUT_CHARS

Engine = Literal["auto", "llm", "embedded", "local"]  # what `--engine` takes (select.py)

# Skill inputs are refused by size before anything else looks at them (a 20 MB text once
# cost 8 s of CPU in redaction and token counting before a later check refused it).
MAX_INPUT_CHARS = MAX_OUTPUT_CHARS  # one string: no more than a whole rendered prompt
MAX_INPUTS_CHARS = 2 * MAX_OUTPUT_CHARS  # all inputs of one request together
MAX_INPUT_VALUES = 10_000  # strings, numbers, list items and keys, all inputs together
MAX_INPUT_DEPTH = 8  # lists and objects inside each other
RUNS_PAGE = 100  # runs a GET /v1/runs answers at most (page on with `before`)


def _bounded_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` as given, or a 422 naming the input and the limit it is over."""
    total, values = 0, 0
    stack: list[tuple[str, Any, int]] = [(name, value, 1) for name, value in inputs.items()]
    while stack:
        where, value, depth = stack.pop()
        values += 1
        if values > MAX_INPUT_VALUES:
            raise PydanticCustomError(
                "too_many_values", f"more than {MAX_INPUT_VALUES:,} values in the inputs"
            )
        if isinstance(value, str):
            if len(value) > MAX_INPUT_CHARS:
                raise PydanticCustomError(
                    "too_long",
                    f"{where} is {len(value):,} characters, over the "
                    f"{MAX_INPUT_CHARS:,}-character limit",
                )
            total += len(value)
        elif isinstance(value, list | dict):
            if depth > MAX_INPUT_DEPTH:
                raise PydanticCustomError(
                    "too_deep", f"{where} nests more than {MAX_INPUT_DEPTH} levels"
                )
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in pairs:
                total += len(str(key))
                stack.append((f"{where}.{key}", item, depth + 1))
        if total > MAX_INPUTS_CHARS:
            raise PydanticCustomError(
                "too_long", f"the inputs are over {MAX_INPUTS_CHARS:,} characters together"
            )
    return inputs


Inputs = Annotated[dict[str, Any], AfterValidator(_bounded_inputs)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Me(BaseModel):
    user_id: str
    name: str
    upn: str | None
    tenant_id: str | None
    engine: Literal["llm", "local"] = Field(description="What answers skills by default.")
    model: str | None


class InputField(BaseModel):
    """One input of a skill, for a generated form."""

    name: str
    type: str
    description: str | None
    default: Any = None
    required: bool


class SkillSummary(BaseModel):
    id: str
    name: str
    description: str
    source: Literal["builtin", "personal"]
    version: int | None
    surfaces: list[str]
    task: str
    forked_from: str | None = None
    shadows_builtin: bool = False


class SkillDetail(SkillSummary):
    text: str = Field(description="The `.prompty` file.")
    inputs: list[InputField]
    output_format: Literal["text", "json"]
    retrieval: bool


class SkillVersion(BaseModel):
    version: int
    created_at: float
    message: str
    size: int
    model: str | None


class SaveSkill(_In):
    text: str = Field(max_length=64 * 1024, description="The whole `.prompty` file.")
    message: str = Field("", max_length=500)


class ImportSkill(_In):
    text: str = Field(max_length=64 * 1024)
    id: str | None = Field(None, description="Default: made from the template's name.")


class ForkSkill(_In):
    new_id: str | None = Field(None, description="Default: the same id, replacing the built-in.")


class RevertSkill(_In):
    version: int = Field(ge=1)


class SaveSample(_In):
    inputs: Inputs


class TestSkill(_In):
    candidate_text: str | None = Field(None, max_length=64 * 1024)
    engine: Engine = "auto"


class Turn(_In):
    """One earlier question and its answer, sent with a follow-up question."""

    question: str = Field(max_length=4_000)
    answer: str = Field(max_length=20_000)


class RunSkill(_In):
    inputs: Inputs = Field(default_factory=dict)
    conversation: list[Turn] = Field(
        default_factory=list,
        max_length=20,
        description="Earlier turns, oldest first, for a follow-up question: the last "
        f"{MAX_TURNS} reach the model, clipped, as data.",
    )
    query: str | None = Field(None, max_length=2000, description="What to search for instead.")
    item_id: str | None = Field(
        None, description="An indexed item (e.g. a mail thread) whose text is the main input."
    )
    engine: Engine = "auto"
    retrieval: bool | None = Field(None, description="Override the skill's retrieval switch.")


class SourceOut(BaseModel):
    n: int
    item_id: str
    title: str
    url: str
    kind: str
    locator: dict[str, Any]
    text: str
    where: str = ""
    sender: str = ""
    date: str = ""


class CitationOut(BaseModel):
    """A source as people see it (``copilot.skills.types.Citation``): a mail by subject,
    sender and date, a file by title and place."""

    n: int
    item_id: str
    title: str
    url: str
    link: str
    locator: dict[str, Any]
    where: str
    snippet: str
    label: str = ""
    kind: str = ""
    subject: str = ""
    sender: str = ""
    date: str = ""
    cited: bool = True


class Usage(BaseModel):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


class RunOut(BaseModel):
    run_id: str | None
    skill_id: str
    skill_version: str
    engine: str
    model: str | None
    text: str
    data: Any = None
    citations: list[CitationOut]
    invalid_citations: list[int]
    sources: list[SourceOut]
    more_sources: list[CitationOut] = Field(
        [], description="Sources the answer was given but did not cite, named like citations."
    )
    usage: Usage
    latency_ms: float
    note: str


class MessageOut(BaseModel):
    role: str
    content: str


class PreviewOut(BaseModel):
    engine: str
    model: str | None
    messages: list[MessageOut] = Field(description="Exactly what would be sent, redacted.")
    redactions: dict[str, int]
    sources: list[SourceOut]
    budget_tokens: int


class ReadAheadOut(BaseModel):
    status: Literal["read", "busy", "not_needed", "too_long", "failed"] = Field(
        description="read: the model has read the prompt; busy: it was working, nothing was "
        "read; not_needed: the engine gains nothing from it (a cloud model, or none); "
        "too_long: reading it would hold the model too long; failed: a model error (the run "
        "will report it)."
    )


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    kinds: list[Literal["mail", "file"]] = []
    sources: list[str] = Field([], max_length=20)


class SearchHit(BaseModel):
    item_id: str
    title: str
    url: str
    kind: str
    locator: dict[str, Any]
    where: str
    score: float
    snippet: str
    sender: str = ""
    date: str = ""


class SyncIn(_In):
    path: str | None = Field(None, description="local only (development mode): a folder.")
    folders: list[str] | None = Field(None, description="outlook: mail folders to sync.")
    drive: str | None = Field(None, description="sharepoint: the document library's drive id.")


class JobOut(BaseModel):
    id: str
    source: str
    status: str
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any]
    failures: list[dict[str, Any]]
    error: str | None


class SyncStatus(BaseModel):
    jobs: list[JobOut]
    items: int
    chunks: int
    failures: list[dict[str, Any]]


class RunRecordOut(BaseModel):
    id: str
    skill_id: str
    skill_version: str
    engine: str
    model: str | None
    created_at: float
    status: str
    output: str
    citations: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    rating: int | None
    edited_text: str | None
    comment: str | None = None  # the user's words with a rating (feedback)
    error: str | None = None
    messages: list[dict[str, Any]] | None = None


class FeedbackIn(_In):
    rating: Literal[-1, 1] | None = None
    edited_text: str | None = Field(None, max_length=200_000)
    comment: str | None = Field(None, max_length=2000)
