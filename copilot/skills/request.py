"""Turning what a person types or points at into a run request: the one place for it.

The CLI (``copilot run``), the API (``POST /v1/skills/{id}/run``) and the Teams bot each
call one function here (``from_cli``, ``from_api``, ``from_bot``) and hand the
``RunRequest`` it returns to ``SkillRunner.run_request``; the size limits are here too.

`--set key=value` strings get the type the template declares; `--text` goes to the
skill's main input; a file or an indexed mail becomes numbered sources whose locators are
the file's own (page, paragraphs, cell range), so a summary's citations open the right
place rather than "paragraph 3 of some pasted text". With a file or mail, `--text` is what
to do with it: the question (ask), the focus (summarise) or the notes (draft).

``fit_inputs`` is the last check before any engine runs (``prepare`` calls it): every
value of the declared type and, where the template lists them, one of its ``enum``
values; and every declared default filled in, so each engine (the local one too) sees the
same complete inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from copilot.db.state import StateStore
from copilot.skills.documents import read_item, sources_from_file
from copilot.skills.input_errors import FileInputError as FileInputError  # re-exported
from copilot.skills.input_errors import InputError as InputError
from copilot.skills.input_errors import ItemNotFound as ItemNotFound
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.types import JSON, Inputs, Source

# Which declared input receives --text, in order of preference.
MAIN_INPUTS = ("text", "question", "message", "notes", "query")
QUESTION_INPUTS = ("question", "query")
# Which one receives --text when a file or mail is the skill's material.
ABOUT_INPUTS = ("question", "query", "focus", "notes")
# A text rendered into the prompt as is. Only summarise takes more: it splits a long
# document into parts (map-reduce); a file is bounded by settings.max_file_bytes.
MAX_TEXT_CHARS = 400_000
# Earlier turns of a conversation (the pane's follow-up questions): the last few, clipped,
# so a long chat cannot crowd the sources out of the prompt.
CONVERSATION_INPUT = "conversation"
MAX_TURNS = 6
MAX_TURN_QUESTION_CHARS = 1_000
MAX_TURN_ANSWER_CHARS = 2_000
MAX_CONVERSATION_CHARS = 8_000


@dataclass
class RunRequest:
    """One skill run as asked for, on any surface, with its inputs fitted to the skill."""

    skill_id: str
    inputs: Inputs
    documents: list[Source] | None = None  # given sources (a file, a mail), not searched ones
    query: str | None = None  # what to search for instead of the inputs
    engine: str = "auto"
    retrieval: bool | None = None  # None: as the skill says
    dry_run: bool = False


def from_cli(
    template: SkillTemplate,
    skill_id: str,
    *,
    state: StateStore,
    owner: str,
    max_file_bytes: int,
    text: str | None = None,
    file: Path | None = None,
    item_id: str | None = None,
    sets: Sequence[str] = (),
    query: str | None = None,
    engine: str = "auto",
    retrieval: bool | None = None,
    dry_run: bool = False,
) -> RunRequest:
    """``copilot run``: ``--set`` options; ``--text``; at most one of ``--file`` or
    ``--mail`` (an indexed item) as the skill's material. Alone, the text is the skill's
    main input; with a file or mail, it says what to do with it (``about_input``): ask
    ``--file report.pdf --text "When is the go-live?"``."""
    inputs = parse_sets(template, list(sets))
    documents = None
    body = None
    if file is not None:
        body, documents = sources_from_file(file, max_bytes=max_file_bytes)
    elif item_id is not None:
        body, documents = read_item(state, owner, item_id)
    if body is not None:
        check_size(template, [body])
        documents = attach(template, inputs, body, documents)
        if text is not None:
            inputs[about_input(template)] = text
        elif main_input(template) in QUESTION_INPUTS and main_input(template) not in inputs:
            raise InputError(
                f'ask a question about it: --text "your question" (or --set '
                f"{main_input(template)}=…)"
            )
    elif text is not None:  # typed text: the skill's main input (the question, for ask)
        check_size(template, [text])
        inputs[main_input(template)] = text
    return RunRequest(skill_id, inputs, documents, query, engine, retrieval, dry_run)


def from_api(
    template: Callable[[], SkillTemplate],
    skill_id: str,
    *,
    state: StateStore,
    owner: str,
    inputs: Mapping[str, JSON],
    item_id: str | None = None,
    query: str | None = None,
    engine: str = "auto",
    retrieval: bool | None = None,
    dry_run: bool = False,
    conversation: Sequence[tuple[str, str]] = (),
) -> RunRequest:
    """The API's run and preview: typed inputs (JSON), optionally an indexed item.

    ``template`` is looked up only when the inputs need it (an item to attach, a text
    over the limit, a conversation): a run of an unknown skill then fails in the run
    itself, as a streamed error event, like every other failure of a run.

    ``conversation`` is the earlier (question, answer) turns of a follow-up question: it
    becomes the template's ``conversation`` input (``conversation_text``; the renderer
    fences it like any input) and, unless a query is given, the search is for the last
    earlier question and this one together ("and when was it approved?" alone finds little).
    """
    given = dict(inputs)
    if conversation:
        skill = template()
        if CONVERSATION_INPUT not in skill.inputs:
            raise InputError(f"the skill {skill.name!r} takes no conversation (earlier turns)")
        given[CONVERSATION_INPUT] = conversation_text(conversation)
        asked = next(
            (v for k, v in given.items() if k in QUESTION_INPUTS and isinstance(v, str)), ""
        )
        query = query or f"{conversation[-1][0][:MAX_TURN_QUESTION_CHARS]} {asked}".strip()[:2000]
    documents = None
    if item_id is not None:
        text, documents = read_item(state, owner, item_id)
        documents = attach(template(), given, text, documents)
    texts = [v for v in given.values() if isinstance(v, str)]
    if max(map(len, texts), default=0) > MAX_TEXT_CHARS:
        check_size(template(), texts)
    return RunRequest(skill_id, given, documents, query, engine, retrieval, dry_run)


def from_bot(
    template: SkillTemplate,
    skill_id: str,
    *,
    max_file_bytes: int,
    options: Mapping[str, str],
    text: str,
    quote: str | None = None,
    file: Path | None = None,
) -> RunRequest:
    """A Teams message: its text, the message it replies to and an attached file.

    A question about a file keeps the file as fenced sources; any other skill works on
    the file's text, with the typed words as its focus. A draft answers the quoted
    message with the typed words as notes.
    """
    inputs: Inputs = {name: coerce(template, name, raw) for name, raw in options.items()}
    main = main_input(template)
    documents = None
    if file is not None:
        body, documents = sources_from_file(file, max_bytes=max_file_bytes)
        if main not in QUESTION_INPUTS:
            if text and "focus" in template.inputs:
                inputs.setdefault("focus", text)
            text = body
            if template.metadata.task != "summarise":
                documents = None  # the text itself is the input (fenced by the template)
    if template.metadata.task == "draft" and {"message", "notes"} <= set(template.inputs):
        if quote:
            inputs.setdefault("message", quote)
        if text:
            inputs.setdefault("notes", text)
        if not quote and "kind" in template.inputs:
            inputs.setdefault("kind", "mail")
    elif text or quote:
        inputs.setdefault(main, text or quote)
    if not any(isinstance(v, str) and v.strip() for v in inputs.values()) and not documents:
        raise InputError(
            f"Tell me what to {template.name.lower()}: put the text after the command, reply "
            "to a message, or attach a file."
        )
    check_size(template, [v for v in inputs.values() if isinstance(v, str)])
    return RunRequest(skill_id, inputs, documents)


def conversation_text(turns: Sequence[tuple[str, str]]) -> str:
    """The last ``MAX_TURNS`` turns as plain text, oldest first, each side clipped, and
    older turns dropped until the whole is under ``MAX_CONVERSATION_CHARS``."""
    blocks = [
        f"Question: {_clip(q, MAX_TURN_QUESTION_CHARS)}\nAnswer: {_clip(a, MAX_TURN_ANSWER_CHARS)}"
        for q, a in list(turns)[-MAX_TURNS:]
    ]
    while len(blocks) > 1 and sum(len(b) + 2 for b in blocks) > MAX_CONVERSATION_CHARS:
        blocks.pop(0)
    return "\n\n".join(blocks)[:MAX_CONVERSATION_CHARS]


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def check_size(template: SkillTemplate, texts: Sequence[str]) -> None:
    """Refuse a text over ``MAX_TEXT_CHARS`` for any skill but summarise."""
    longest = max(map(len, texts), default=0)
    if template.metadata.task != "summarise" and longest > MAX_TEXT_CHARS:
        raise InputError(
            f"the text is {longest:,} characters; over {MAX_TEXT_CHARS:,} only the summarise "
            "skill (map-reduce) can take it"
        )


def main_input(template: SkillTemplate) -> str:
    for name in MAIN_INPUTS:
        if name in template.inputs:
            return name
    strings = [n for n, spec in template.inputs.items() if spec.type == "string"]
    required = [n for n in strings if template.inputs[n].is_required]
    if required or strings:
        return (required or strings)[0]
    raise InputError(f"the skill {template.name!r} has no text input")


def about_input(template: SkillTemplate) -> str:
    """The input that says what to do with a given file or mail: the question (ask), the
    focus (summarise), the notes (draft); an error naming the inputs when there is none."""
    main = main_input(template)
    for name in ABOUT_INPUTS:
        if name in template.inputs and (name == main or main not in QUESTION_INPUTS):
            return name
    known = ", ".join(template.inputs) or "none"
    raise InputError(
        f"the skill {template.name!r} works on the file or mail itself and takes no question "
        f"or focus beside it; set one of its inputs with --set NAME=VALUE ({known})"
    )


def fit_inputs(template: SkillTemplate, inputs: Mapping[str, JSON]) -> Inputs:
    """``inputs`` checked against the template's declarations and completed with its
    defaults: what every engine runs with.

    A value of the wrong type, or outside the input's ``enum``, is refused with the
    allowed values named (``--set style=nonsense`` must not run as "bullets"). Names the
    template does not declare are left for ``render`` to refuse, so the reserved names
    the runner passes (``context``) still pass through.
    """
    fitted: Inputs = dict(inputs)
    for name, spec in template.inputs.items():
        value = inputs.get(name)
        problem = spec.problem(name, value)
        if problem is not None:
            raise InputError(problem)
        if value is None and spec.default is not None:
            fitted[name] = spec.default
    return fitted


def attach(
    template: SkillTemplate,
    inputs: Inputs,
    text: str,
    documents: list[Source] | None,
) -> list[Source] | None:
    """Give a document's (or mail's) text to the skill; return the sources to run with.

    A skill that answers a question (``ask``) gets the document as its sources, fenced as
    data, and the question stays the user's: the document's text must never become the
    question itself, outside the fence. Any other skill takes the text as its main input
    (summarise also gets the sources, for citations to the right passages).
    """
    main = main_input(template)
    if main in QUESTION_INPUTS:
        return documents
    inputs[main] = text
    return documents if template.metadata.task == "summarise" else None


def coerce(template: SkillTemplate, name: str, raw: str) -> JSON:
    """``raw`` as the type the template declares for input ``name``."""
    spec = template.inputs.get(name)
    if spec is None:
        known = ", ".join(template.inputs) or "none"
        raise InputError(f"the skill has no input {name!r} (its inputs: {known})")
    if spec.type == "string":
        problem = spec.problem(name, raw)
        if problem is not None:
            raise InputError(problem)
        return raw
    if spec.type == "boolean":
        low = raw.strip().lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise InputError(f"input {name!r} is yes/no; got {raw!r}")
    if spec.type == "number":
        try:
            number = float(raw)
        except ValueError:
            raise InputError(f"input {name!r} is a number; got {raw!r}") from None
        value_n = int(number) if number.is_integer() and "." not in raw else number
        problem = spec.problem(name, value_n)
        if problem is not None:
            raise InputError(problem)
        return value_n
    try:
        value: JSON = json.loads(raw)
    except ValueError:
        raise InputError(f"input {name!r} needs JSON ({spec.type}); got {raw!r}") from None
    expected = list if spec.type == "array" else dict
    if not isinstance(value, expected):
        raise InputError(f"input {name!r} needs a JSON {spec.type}")
    return value


def parse_sets(template: SkillTemplate, sets: list[str]) -> Inputs:
    out: Inputs = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set needs key=value; got {item!r}")
        out[key.strip()] = coerce(template, key.strip(), value)
    return out
