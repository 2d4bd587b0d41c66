"""Errors as RFC 9457 problem details, in words a person can act on.

Every error the API returns has the same shape (``application/problem+json``: type, title,
status, detail, ``code`` — the error's machine-readable kind —, plus fields such as ``line``
for a template error), and no error ever carries a stack trace, an internal path or a
token. Status, kind and words come from the error itself through
:func:`copilot.errors.describe` (wired in ``copilot/api/errors.py``); this module only
gives them their HTTP shape. The type is ``about:blank``, so the title is the status's own
phrase (RFC 9457 §4.2.1), whatever the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from copilot.errors import CopilotError, Described

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    502: "Language model error",
    503: "Not ready",
    504: "Timed out",
}


def title_of(status: int) -> str:
    return TITLES.get(status, "Error")


def problem_body(described: Described, type_: str = "about:blank") -> dict[str, Any]:
    return {
        "type": type_,
        "title": title_of(described.status),
        "status": described.status,
        "detail": described.detail,
        "code": described.kind,
        **described.fields,
    }


def problem_response(described: Described, type_: str = "about:blank") -> JSONResponse:
    return JSONResponse(
        problem_body(described, type_),
        status_code=described.status,
        headers=dict(described.headers),
        media_type=MEDIA_TYPE,
    )


class Problem(CopilotError):
    """Raise this from a route for what only HTTP knows (an unknown route or source, a bad
    header): it becomes a problem-details response. Domain code raises its own errors."""

    kind = "http_problem"  # every instance has its own, from ``code`` or the status
    title = "Error"

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        code = extra.pop("code", None)
        # Without a code, the kind is the status's phrase: 404 -> "not_found".
        kind = str(code) if code else title_of(status).lower().replace(" ", "_")
        super().__init__(detail, kind=kind, status=status)
        self.detail = detail
        self.type = type_
        self.title = title_of(status)
        self.headers = dict(headers or {})
        self.extra = extra

    def describe(self) -> Described:
        return Described(self.status, self.kind, self.title, self.detail, self.extra, self.headers)

    def body(self) -> dict[str, Any]:
        return problem_body(self.describe(), self.type)

    def response(self) -> JSONResponse:
        return problem_response(self.describe(), self.type)


def install(app: FastAPI) -> None:
    """Register the handlers for what HTTP itself refuses: raised problems, unknown routes
    and methods, and request bodies that do not match a route's schema."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else title_of(exc.status_code)
        headers = dict(exc.headers or {})
        return Problem(exc.status_code, detail, headers=headers).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "where": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"where": "body", "problem": "invalid"}
        detail = f"{first['where']}: {first['problem']}"
        return Problem(422, detail, errors=errors).response()
