"""One root for the errors the copilot raises on purpose, and the one place they become words.

A :class:`CopilotError` carries what every surface needs to tell a person what happened:

- ``kind``: a machine-readable word code can act on (the API's problem ``code``);
- ``status``: the HTTP status the API answers with;
- ``title``: a short heading in the copilot's own voice (the bot's card title);
- its message: plain words that name the input and say what to do.

``kind``, ``status`` and ``title`` are class attributes, so a subclass states them once
beside its docstring; an instance may override ``kind`` and ``status`` when one class
covers several cases (``AuthError``: 401 or 403).

:func:`describe` turns any exception into those facts, once, for the CLI, the API
(RFC 9457 problem details) and the Teams bot. Anything that is not a CopilotError (or a
connector's :class:`~connectors.errors.ConnectorError`) is a bug: it becomes a 500 whose
words are only an error id, and the traceback is logged under that id, never shown.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from connectors.errors import ConnectorError

log = logging.getLogger("copilot.errors")
NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Described:
    """An error as every surface shows it."""

    status: int
    kind: str
    title: str
    detail: str  # what the person who asked may read
    fields: Mapping[str, Any] = field(default_factory=dict)  # more machine-readable facts
    # For an HTTP answer: Retry-After, WWW-Authenticate.
    headers: Mapping[str, str] = field(default_factory=dict)


class CopilotError(Exception):
    """Something the copilot refuses or cannot do, said so that a person can act on it."""

    kind: str = "error"
    status: int = 500
    title: str = "Something went wrong"
    # Names of attributes shown as machine-readable fields (a template error's ``line``).
    fields: ClassVar[tuple[str, ...]] = ()
    headers: Mapping[str, str] = NO_HEADERS

    def __init__(self, *args: object, kind: str | None = None, status: int | None = None) -> None:
        super().__init__(*args)
        if kind is not None:
            self.kind = kind
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        # The message as given: a KeyError subclass would print it in quotes.
        return BaseException.__str__(self)

    def describe(self) -> Described:
        """This error as the surfaces show it. Override only where the message must not be
        shown as it is (a model error names the server; the person gets advice instead)."""
        return Described(
            status=self.status,
            kind=self.kind,
            title=self.title,
            detail=str(self) or self.title,
            fields={name: getattr(self, name, None) for name in self.fields},
            headers=self.headers,
        )


class Cancelled(CopilotError, RuntimeError):
    """The caller went away or asked to stop; what was done is kept, nothing more is spent."""

    kind = "cancelled"
    status = 499  # "client closed request": nobody is waiting for an answer any more
    title = "Cancelled"

    def __init__(self, message: str = "The run was cancelled.") -> None:
        super().__init__(message)


def describe(exc: BaseException, *, where: str = "") -> Described:
    """Status, kind, title and words for any exception: the one mapping every surface uses.

    An unexpected exception is logged here with its traceback and an error id (``where``
    says what was running: a route, a bot turn); the person sees only the id to quote.
    """
    if isinstance(exc, CopilotError):
        return exc.describe()
    if isinstance(exc, ConnectorError):
        return Described(502, exc.kind, "A source failed", str(exc) or "A source failed.")
    error_id = secrets.token_hex(6)
    log.error("error %s%s", error_id, f" in {where}" if where else "", exc_info=exc)
    return Described(
        status=500,
        kind="internal_error",
        title="Something went wrong on my side",
        detail=f"Something went wrong on our side. Quote error id {error_id} when reporting it.",
        fields={"error_id": error_id},
    )
