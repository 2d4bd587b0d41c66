"""A streamed answer's chunks as plain dicts, read from the SDK's raw response.

Why not the SDK's own ``Stream``: it turns every chunk into pydantic objects, and with 20
answers streaming through one API process that was the largest single cost of the process's
interpreter time (py-spy, ``--gil``: 14 % of it, more than the search engine's), paid once
per token. The SDK still makes the request — auth, connection retries, HTTP status errors
as ``openai.APIStatusError`` — through ``with_streaming_response``; only the body is read
here, with the event-stream rules the servers we talk to use (``data:`` lines up to a blank
line; comments and other fields ignored; ``[DONE]`` ends it; an ``error`` object in the
stream raised as ``openai.APIError``, as the SDK does). ``named_events`` is also how the CLI
reads the copilot service's own event streams (``copilot.cli.client``), so it imports no SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from types import SimpleNamespace
from typing import Any

Chunk = dict[str, Any]


class ChunkStream:
    """One streamed response: iterate for its chunks; ``close`` hangs up.

    ``response`` is the HTTP response (``copilot.llm.streaming`` shuts its socket down to
    stop a read from another thread).
    """

    def __init__(self, manager: AbstractContextManager[Any]) -> None:
        self._manager = manager
        self.response = manager.__enter__().http_response  # sends; raises status errors

    def __iter__(self) -> Iterator[Chunk]:
        request = self.response.request
        for data in events(self.response.iter_lines()):
            if data.startswith("[DONE]"):
                return
            chunk = json.loads(data)
            if isinstance(chunk, dict) and chunk.get("error"):
                import openai  # only on this path: the CLI imports this module too

                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else None
                if not isinstance(message, str) or not message:
                    message = "An error occurred during streaming"
                raise openai.APIError(message, request, body=error)
            if isinstance(chunk, dict):
                yield chunk

    def close(self) -> None:
        self._manager.__exit__(None, None, None)


def named_events(lines: Iterable[str], *, last: bool = False) -> Iterator[tuple[str, str]]:
    """``(event, data)`` of each server-sent event in ``lines``: multi-line data joined by
    newlines, comments and other fields skipped, ``message`` when no event is named. An
    event is complete at its blank line; ``last`` also gives one the stream ended without."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if last and data:
        yield event, "\n".join(data)


def events(lines: Iterable[str]) -> Iterator[str]:
    """The data of each event in ``lines``, the last one even without its blank line."""
    return (data for _, data in named_events(lines, last=True))


def usage_object(usage: Any) -> Any:
    """A chunk's ``usage`` dict as attributes (what ``copilot.llm.usage`` reads)."""
    return SimpleNamespace(**usage) if isinstance(usage, dict) else None
