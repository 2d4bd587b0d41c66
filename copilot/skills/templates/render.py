"""Skill templates: Prompty-compatible `.prompty` files, validated and rendered in a sandbox.

A template is YAML front matter between `---` lines followed by a Jinja2 body with Prompty
role markers (`system:`, `user:`, `assistant:` alone on a line). Our own settings live under
`metadata` so that Prompty tooling still reads the file. Templates come from users, so every
step is bounded (file size, front-matter length, YAML aliases refused, render output and loop
iterations capped) and every error names the file line, because a skill author fixing a typo
needs the line, not a stack trace. Rendering runs in ``sandbox`` (every operation priced
before it runs, a deadline) and every value the author did not write is fenced (``fence``).
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import yaml
from jinja2 import Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from pydantic import ValidationError

from copilot.errors import CopilotError
from copilot.llm.types import Role
from copilot.skills.templates import fence, sandbox
from copilot.skills.templates.models import (
    PY_TYPES,
    Message,
    SkillTemplate,
)
from copilot.skills.templates.sandbox import MAX_LOOP_ITERATIONS, MAX_OUTPUT_CHARS

__all__ = [
    "MAX_LOOP_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_TEMPLATE_BYTES",
    "Message",
    "SkillTemplate",
    "TemplateError",
    "check_template",
    "load_template",
    "parse_template",
    "reads",
    "render",
]

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_FRONT_MATTER_LINES = 200
# ``cite_after`` (a bool, false unless the runner says so): the model is not asked to write
# "[n]" markers, the runner cites the answer afterwards (``copilot.skills.prepare.cites_after``).
# ``size`` (``{"points", "words"}``, empty unless the runner sizes the answer): how long a
# summary of the given text should be (``copilot.skills.size``).
RESERVED_NAMES = frozenset({"cite_after", "context", "examples", "persona", "size", "user"})

# Prompty's marker: a line like `system:` or `# user:`, any case.
_ROLE_LINE = re.compile(r"^[ \t]*#?[ \t]*(system|user|assistant)[ \t]*:[ \t]*$", re.I | re.M)


class TemplateError(CopilotError, ValueError):
    """A template problem, with the file line when we know it."""

    kind = "template_error"
    status = 422
    title = "The skill's template has a problem"
    fields = ("line",)

    def __init__(self, message: str, line: int | None = None, source: str = "<string>") -> None:
        self.message = message
        self.line = line
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source} line {self.line}" if self.line else self.source
        return f"{where}: {self.message}"


# --- parsing --------------------------------------------------------------------------------


def load_template(path: Path) -> SkillTemplate:
    """Read and parse a `.prompty` file; the size is checked before the file is read."""
    source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise TemplateError(
                f"file is {size} bytes, over the {MAX_TEMPLATE_BYTES}-byte limit", None, source
            )
        with path.open("rb") as f:
            data = f.read(MAX_TEMPLATE_BYTES + 1)  # the file may grow between stat and read
    except OSError as e:
        raise TemplateError(f"cannot read the file: {e.strerror or e}", None, source) from e
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"file is over the {MAX_TEMPLATE_BYTES}-byte limit", None, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TemplateError(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})", line, source
        ) from e
    return parse_template(text, source)


def parse_template(text: str, source: str = "<string>") -> SkillTemplate:
    """Parse and validate a template; any problem raises TemplateError naming the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"template is over the {MAX_TEMPLATE_BYTES}-byte limit", None, source)
    front, body, body_line = _split(text.removeprefix("\ufeff"), source)
    root = _compose(front, source)
    try:
        data = yaml.safe_load(front) or {}
    except yaml.YAMLError as e:  # compose succeeded, so this is a construction problem
        raise TemplateError(f"invalid YAML: {e}", None, source) from e
    if not isinstance(data, dict):
        raise TemplateError("front matter must be a mapping of keys to values", 2, source)
    for reserved in ("body", "source", "body_line"):
        if reserved in data:
            raise TemplateError(f"unknown key {reserved!r}", _yaml_line(root, (reserved,)), source)
    try:
        template = SkillTemplate.model_validate(
            {**data, "body": body, "source": source, "body_line": body_line}
        )
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        field = ".".join(loc) or "front matter"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        raise TemplateError(f"{field}: {msg}", _yaml_line(root, loc), source) from e
    problems = _check(template)
    if problems:
        message, line = problems[0]
        raise TemplateError(message, line, source)
    return template


def check_template(template: SkillTemplate) -> list[str]:
    """Static checks of the body: syntax, and every variable it reads is a declared input."""
    return [
        str(TemplateError(message, line, template.source or "<string>"))
        for message, line in _check(template)
    ]


def _split(text: str, source: str) -> tuple[str, str, int]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise TemplateError("the file must start with a '---' line (YAML front matter)", 1, source)
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            if i - 1 > MAX_FRONT_MATTER_LINES:
                raise TemplateError(
                    f"front matter has {i - 1} lines, over the {MAX_FRONT_MATTER_LINES}-line limit",
                    1,
                    source,
                )
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    raise TemplateError("the front matter is not closed by a '---' line", 1, source)


def _compose(front: str, source: str) -> yaml.Node | None:
    try:
        root = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 2 if mark else None
        raise TemplateError(f"invalid YAML: {e.problem or e}", line, source) from e
    except yaml.YAMLError as e:
        raise TemplateError(f"invalid YAML: {e}", None, source) from e
    # Refuse aliases: a few lines of anchors can expand to billions of values downstream.
    for event in yaml.parse(front, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 2
            raise TemplateError("YAML anchors and aliases are not allowed", line, source)
    return root


def _yaml_line(root: yaml.Node | None, loc: tuple[str, ...]) -> int | None:
    """File line of a pydantic error location, found by walking the YAML node tree."""
    if root is None:
        return None
    node: yaml.Node = root
    line: int = root.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line, match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line
        else:
            break
    return line + 2  # +1 for 1-based lines, +1 for the opening '---'


# --- the body -------------------------------------------------------------------------------


def _check(template: SkillTemplate) -> list[tuple[str, int | None]]:
    try:
        ast = sandbox.ENV.parse(template.body)
    except TemplateSyntaxError as e:
        return [(f"template syntax error: {e.message}", _body_line(template, e.lineno))]
    problems: list[tuple[str, int | None]] = [
        ("a skill cannot include, import or extend other templates", _body_line(template, n.lineno))
        for n in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
    ]
    problems += [  # `loop(…)` would start loops the iteration budget never sees
        ("recursive loops are not available in skill templates", _body_line(template, n.lineno))
        for n in ast.find_all(nodes.For)
        if n.recursive
    ]
    problems += [
        (
            f"the {n.name!r} filter is not available in skill templates",
            _body_line(template, n.lineno),
        )
        for n in ast.find_all(nodes.Filter)
        if n.name not in sandbox.ENV.filters
    ]
    problems += [
        (f"there is no test named {n.name!r}", _body_line(template, n.lineno))
        for n in ast.find_all(nodes.Test)
        if n.name not in sandbox.ENV.tests
    ]
    if problems:
        return problems
    allowed = set(template.inputs) | RESERVED_NAMES
    try:
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError as e:  # anything else the code generator refuses
        return [(f"template syntax error: {e.message}", _body_line(template, e.lineno))]
    for name in sorted(undeclared - allowed):
        first = min((n.lineno for n in ast.find_all(nodes.Name) if n.name == name), default=None)
        problems.append(
            (
                f"the body uses {name!r}, which is not a declared input",
                _body_line(template, first),
            )
        )
    return problems


def _body_line(template: SkillTemplate, lineno: int | None) -> int | None:
    return template.body_line + lineno - 1 if lineno else None


def render(template: SkillTemplate, inputs: dict[str, Any]) -> list[Message]:
    """Render the body with the given inputs and split it into chat messages.

    Input values are passed as data: Jinja inside a value is never evaluated, and every
    value the template's author did not write is fenced when printed (``fence``; the first
    system message then says once what the fence is). The render is bounded in time and
    memory (``sandbox``). The reserved names (`cite_after`, `context`, `examples`,
    `persona`, `size`, `user`) may be passed by the skill runner; a ``Fenced`` context is printed
    as it is.
    """
    source = template.source or "<string>"
    unknown = sorted(set(inputs) - set(template.inputs) - RESERVED_NAMES)
    if unknown:
        raise TemplateError(f"unknown input(s): {', '.join(unknown)}", None, source)
    values: dict[str, Any] = {
        "cite_after": False,
        "context": "",
        "examples": [e.model_dump() for e in template.metadata.few_shot.examples],
        "persona": template.metadata.techniques.persona or "",
        "size": {},
        "user": {},
    }
    for name, spec in template.inputs.items():
        if name in inputs:
            value = inputs[name]
            if value is not None and (
                not isinstance(value, PY_TYPES[spec.type])
                or (spec.type == "number" and isinstance(value, bool))
            ):
                raise TemplateError(
                    f"input {name!r} should be a {spec.type}, got {type(value).__name__}",
                    None,
                    source,
                )
            values[name] = value
        elif spec.is_required:
            raise TemplateError(f"missing required input {name!r}", None, source)
        else:
            values[name] = spec.default
    values.update((k, v) for k, v in inputs.items() if k in RESERVED_NAMES)
    values.update(sandbox.helpers())

    budget = sandbox.Budget(trusted=_trusted(template))
    try:
        compiled, marker = _compile(template.body)
        parts, size = [], 0
        with sandbox.rendering(budget):
            for chunk in compiled.generate(values):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"rendered text is over {MAX_OUTPUT_CHARS} characters")
                parts.append(chunk)
    except TemplateSyntaxError as e:
        line = _body_line(template, e.lineno)
        raise TemplateError(f"template syntax error: {e.message}", line, source) from e
    except UndefinedError as e:
        line = _error_line(template, e.__traceback__)
        raise TemplateError(f"undefined variable: {e.message}", line, source) from e
    except SecurityError as e:
        line = _error_line(template, e.__traceback__)
        raise TemplateError(f"blocked by the sandbox: {e}", line, source) from e
    except OverflowError as e:  # the sandbox's range() cap
        line = _error_line(template, e.__traceback__)
        raise TemplateError(f"blocked by the sandbox: {e}", line, source) from e
    except RecursionError as e:
        raise TemplateError("template recursion too deep", None, source) from e
    except (TypeError, ValueError, ArithmeticError, LookupError) as e:
        line = _error_line(template, e.__traceback__)
        raise TemplateError(f"render failed: {type(e).__name__}: {e}", line, source) from e
    messages = _split_messages("".join(parts), marker)
    return _with_note(messages, budget.nonce) if budget.fenced else messages


def reads(template: SkillTemplate, name: str) -> bool:
    """Whether the template's body uses the variable ``name``: the runner changes what it
    does after the answer (``cite_after``) only for a template that words its prompt
    both ways."""
    return name in _names(template.body)


@lru_cache(maxsize=64)
def _names(body: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(sandbox.ENV.parse(body)))
    except TemplateSyntaxError:  # render reports it, with its line
        return frozenset()


@lru_cache(maxsize=64)
def _compile(body: str) -> tuple[Template, str]:
    """The sandboxed, rewritten template for a body, and the role-marker token it splits on.

    Role markers become a random token before parsing and messages are split on that token
    only; values cannot write it (the fence rule turns their ``<`` into ``‹``), so an input
    containing "system:" cannot start a message. Compiled once per body: a workbook scored
    row by row renders the same template thousands of times.
    """
    marker = secrets.token_hex(8)
    body = _ROLE_LINE.sub(lambda m: f"<|{marker}:{m.group(1).lower()}|>", body)
    return sandbox.ENV.from_string(sandbox.rewrite(sandbox.ENV.parse(body))), marker


def _trusted(template: SkillTemplate) -> frozenset[str]:
    """Text the template's author wrote: printed as is, never fenced."""
    texts = {template.metadata.techniques.persona or ""}
    texts.update(s.default for s in template.inputs.values() if isinstance(s.default, str))
    for example in template.metadata.few_shot.examples:
        texts.update(v for v in example.model_dump().values() if isinstance(v, str))
    return frozenset(t for t in texts if t)


def _with_note(messages: list[Message], nonce: str) -> list[Message]:
    """Say once, in the system message, what this render's fence elements are."""
    if messages and messages[0].role == "system":
        first = messages[0]
        return [Message("system", f"{first.content}\n\n{fence.note(nonce)}"), *messages[1:]]
    return [Message("system", fence.note(nonce)), *messages]


def _error_line(template: SkillTemplate, tb: TracebackType | None) -> int | None:
    """Jinja rewrites tracebacks so template frames carry template line numbers."""
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return _body_line(template, lineno)


_ROLES: dict[str, Role] = {role: role for role in get_args(Role)}


def _split_messages(text: str, nonce: str) -> list[Message]:
    """Split rendered text on this render's role tokens; text before the first one is a
    system message, as in Prompty. Empty messages are dropped."""
    messages = []
    role: Role = "system"
    start = 0
    for match in re.finditer(rf"<\|{nonce}:(system|user|assistant)\|>", text):
        content = text[start : match.start()].strip()
        if content:
            messages.append(Message(role, content))
        role, start = _ROLES[match.group(1)], match.end()
    content = text[start:].strip()
    if content:
        messages.append(Message(role, content))
    return messages
