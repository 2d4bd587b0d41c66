"""Errors as RFC 9457 problem details, in words a person can act on.

Every error the API returns has the same shape (``application/problem+json``: type, title,
status, detail, plus fields such as ``line`` for a template error), and no error ever
carries a stack trace, an internal path or a token: an unexpected exception becomes a
500 with an error id that is logged server-side next to the traceback.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("copilot.api")
MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
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


class Problem(Exception):
    """Raise this from a route: it becomes a problem-details response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(), status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE
        )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = secrets.token_hex(6)
        log.exception("error %s on %s %s", error_id, request.method, request.url.path)
        return Problem(
            500,
            f"Something went wrong on our side. Quote error id {error_id} when reporting it.",
            error_id=error_id,
        ).response()
