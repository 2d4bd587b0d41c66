"""The domain's errors, each mapped once to a status and a message a person can act on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from copilot.api.problems import Problem
from copilot.index.search import QueryError
from copilot.llm.errors import LLMError
from copilot.skills.request import InputError
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.mapreduce import Cancelled
from copilot.skills.prepare import SkillInputError
from copilot.skills.history import RunNotFound
from copilot.skills.library.store import SampleNotFound, SkillError, SkillExists, SkillNotFound
from copilot.skills.templates.render import TemplateError
from copilot.office.xlsx import WorkbookError

# What the caller can do about a failed model call.
LLM_STATUS = {
    "auth": (502, "The language model server refused the copilot's credentials: tell your admin."),
    "config": (500, "The language model is not configured correctly: tell your admin."),
    "rate_limit": (503, "The language model is busy: try again in a minute."),
    "timeout": (504, "The language model took too long to answer: try again."),
    "server": (502, "The language model server failed: try again later."),
    "bad_request": (502, "The language model server refused the request."),
    "bad_response": (502, "The language model's answer was not usable: try again."),
    "cancelled": (499, "The run was cancelled."),
}


def to_problem(exc: Exception) -> Problem:
    """The problem for a domain error (anything else is a 500, handled elsewhere)."""
    if isinstance(exc, SkillNotFound | SampleNotFound | RunNotFound):
        return Problem(404, _text(exc))
    if isinstance(exc, SkillExists):
        return Problem(409, str(exc))
    if isinstance(exc, TemplateError):
        return Problem(422, str(exc), line=exc.line, code="template_error")
    if isinstance(exc, SkillError | SkillInputError | InputError | LocalEngineError):
        return Problem(400, str(exc))
    if isinstance(exc, QueryError | WorkbookError):
        return Problem(400, str(exc))
    if isinstance(exc, Cancelled):
        return Problem(499, "The run was cancelled.")
    if isinstance(exc, LLMError):
        status, message = LLM_STATUS.get(exc.kind, (502, "The language model failed."))
        return Problem(status, message, code=f"llm_{exc.kind}")
    raise TypeError(f"not a domain error: {type(exc).__name__}")


DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    SkillNotFound,
    SampleNotFound,
    RunNotFound,
    SkillError,
    TemplateError,
    SkillInputError,
    InputError,
    LocalEngineError,
    QueryError,
    WorkbookError,
    Cancelled,
    LLMError,
)


def install(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return to_problem(exc).response()

    for cls in DOMAIN_ERRORS:
        app.add_exception_handler(cls, handle)


def _text(exc: Exception) -> str:
    """A KeyError's message without the quotes ``str(KeyError("x"))`` adds."""
    return str(exc.args[0]) if exc.args else "Not found."
