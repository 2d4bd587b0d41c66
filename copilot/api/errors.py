"""Every error the API answers with, from the error itself: no table of classes to keep.

A :class:`~copilot.errors.CopilotError` (or a connector's error) carries its own status,
kind and words; :func:`copilot.errors.describe` reads them, and this module turns them into
a problem response. Anything else is a bug: a 500 whose body holds only an error id, the
traceback logged under that id.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.errors import ConnectorError
from copilot.api.problems import Problem, problem_response
from copilot.errors import CopilotError, describe


def to_problem(exc: BaseException, *, where: str = "") -> Problem:
    """The problem for any exception (``where``: what was running, for the log line)."""
    if isinstance(exc, Problem):
        return exc
    described = describe(exc, where=where)
    return Problem(
        described.status,
        described.detail,
        headers=described.headers,
        code=described.kind,
        **described.fields,
    )


def install(app: FastAPI) -> None:
    """One handler for the copilot's errors and one for everything else (after
    ``problems.install``, which handles what HTTP itself refuses)."""

    async def expected(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(describe(exc))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(describe(exc, where=f"{request.method} {request.url.path}"))

    app.add_exception_handler(CopilotError, expected)
    app.add_exception_handler(ConnectorError, expected)
    app.add_exception_handler(Exception, unexpected)
