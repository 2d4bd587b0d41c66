"""The skill template format: what a `.prompty` file may say, as pydantic models.

Unknown keys are errors (``extra="forbid"``): a typo in a user's skill must be reported
with its line, not silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from copilot.llm.types import Message

__all__ = ["Message"]  # re-exported: templates render to the LLM's message shape

# --- the format -----------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrievalSettings(_Strict):
    enabled: bool = False
    k: int = Field(8, ge=1, le=100)
    sources: list[str] = []
    kinds: list[str] = []
    max_context_tokens: int = Field(2000, ge=0, le=200_000)


class Techniques(_Strict):
    persona: str | None = Field(None, max_length=4000)
    chain_of_thought: bool = False  # reason step by step; only the final answer is shown
    self_ask: bool = False
    tree_of_thoughts: bool = False


class Example(_Strict):
    input: str
    output: str


class FewShot(_Strict):
    examples: list[Example] = []
    # The user's own sent mail (their voice) or their past runs they rated well.
    retrieve_from: Literal["sent_mail", "approved_runs"] | None = None
    k: int = Field(3, ge=0, le=20)


class OutputSpec(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    format: Literal["text", "json"] = "text"
    # `schema` in the file; renamed here because it shadows a BaseModel attribute.
    json_schema: dict[str, Any] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _schema_needs_json(self) -> OutputSpec:
        if self.json_schema is not None and self.format != "json":
            raise ValueError("a schema is only allowed with format: json")
        return self


Task = Literal["summarise", "draft", "sentiment", "ask", "custom"]


class SkillMeta(_Strict):
    # What the skill does, so the local engine (no LLM) knows how to answer a fork of it.
    task: Task = "custom"
    retrieval: RetrievalSettings = RetrievalSettings()
    techniques: Techniques = Techniques()
    few_shot: FewShot = FewShot()
    output: OutputSpec = OutputSpec()
    # The answer's first words, written for the model, which continues from them (a reply
    # that starts "Hi Anna," is a reply, not a copy of Anna's mail). "{sender_first_name}"
    # and "{sender_name}" come from the message's From: line (skills.reply).
    prefill: str | None = Field(None, max_length=200)
    surfaces: list[Literal["word", "outlook", "teams", "cli"]] = ["cli"]
    authors: list[str] = []  # Prompty 2 keeps these under metadata
    tags: list[str] = []


InputType = Literal["string", "number", "boolean", "array", "object"]
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _is_type(value: Any, kind: str) -> bool:
    """Whether ``value`` is a JSON value of the declared ``kind`` (a bool is no number)."""
    if kind == "number" and isinstance(value, bool):
        return False
    return isinstance(value, PY_TYPES[kind])


class InputSpec(_Strict):
    """One declared input. Prompty 1 spells the type `type:`, Prompty 2 `kind:`; both work.

    ``enum`` (Prompty 2: ``enumValues``) lists the only values the input takes: a value
    outside it is refused with the allowed values named, on every engine.
    """

    type: InputType = "string"
    description: str | None = None
    default: Any = None
    required: bool | None = None  # None: required unless a default is given
    example: Any = None
    enum: list[Any] | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _enum_fits(self) -> InputSpec:
        if self.enum is not None:
            wrong = [v for v in self.enum if not _is_type(v, self.type)]
            if wrong:
                raise ValueError(f"enum values must be of type {self.type}: {wrong[0]!r} is not")
            if self.default not in (None, "") and self.default not in self.enum:
                raise ValueError(f"the default {self.default!r} is not one of the enum values")
        return self

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` cannot be input ``name``, in words that name what it can be; None
        if it can. ``None`` is "not given" (the default applies)."""
        if value is None:
            return None
        if not _is_type(value, self.type):
            return f"input {name!r} should be a {self.type}, got {type(value).__name__}"
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(str(v) for v in self.enum)
            shown = repr(value) if len(str(value)) <= 40 else f"{len(str(value))} characters"
            return f"input {name!r} is one of {allowed}; got {shown}"
        return None

    @model_validator(mode="before")
    @classmethod
    def _accept_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "enumValues" in data:  # Prompty 2's spelling of enum
            data = dict(data)
            data.setdefault("enum", data.pop("enumValues"))
        if isinstance(data, dict) and "kind" in data:
            data = dict(data)
            kind = data.pop("kind")
            data.setdefault("type", kind)
        elif data is not None and not isinstance(data, dict):
            data = {"example": data}  # Prompty shorthand `name: sample value`
        return data

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class SkillTemplate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    version: str | None = None
    model: dict[str, Any] = {}  # Prompty `model:`: api/configuration/parameters (v1) or v2 keys
    inputs: dict[str, InputSpec] = {}
    sample: dict[str, Any] | str | None = None
    metadata: SkillMeta = SkillMeta()
    # Other Prompty keys we carry but do not interpret.
    authors: list[str] = []
    tags: list[str] = []
    template: Any = None
    outputs: Any = None
    body: str = ""
    source: str | None = None
    body_line: int = 1  # file line of the body's first line, to name lines in render errors

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = {**data, "version": str(data["version"])}
        return data
