"""What every ``copilot`` subcommand shares: the consoles, plain-words failure, settings.

Imports here and in every ``copilot/cli`` module that ``app.py`` loads stay light (typer,
rich's console): the configuration (pydantic-settings), the index and the models are
imported inside the commands that use them, so ``copilot --help`` starts fast
(``tests/cli/test_startup.py`` checks the import set, ``bench/cli_startup.py`` the time).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from copilot.config import Settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (as text, never markup) on stderr; raise the returned Exit."""
    err.print(f"[red]{escape(message)}[/red]", highlight=False)
    return typer.Exit(code)


def fail_for(exc: BaseException, code: int | None = None) -> typer.Exit:
    """The plain-words failure for ``exc``, from the same mapping as the API and the bot.

    The words are the error's own message: for most errors what the API and the bot show,
    and for a model error more (the server, the model, the setting to change), because
    whoever runs the CLI is the one who can change it. The exit code is 1 when the copilot
    or a service failed (status 500 and up), 2 when the command can be fixed; ``code``
    overrides it.
    """
    from connectors.errors import ConnectorError
    from copilot.errors import CopilotError, describe

    described = describe(exc, where="a command")
    expected = isinstance(exc, CopilotError | ConnectorError) and str(exc)
    message = str(exc) if expected else described.detail
    return fail(message, code if code is not None else 1 if described.status >= 500 else 2)


def settings_or_exit() -> Settings:
    """The configuration, or exit 2 naming the bad variable (pydantic's message does)."""
    from copilot.config import get_settings

    try:
        return get_settings()
    except Exception as exc:
        raise fail(f"Invalid configuration: {exc}") from exc


def show_kept(streamed: str, kept: str, out: Console = console, notes: Console = err) -> None:
    """After an answer streamed to the terminal: the answer as the copilot kept it, when
    that differs from what streamed (a placeholder signature, an attachment the notes do
    not mention, a citation that no source backs: ``skills.shape``). A terminal cannot take
    back what it showed, and the kept text is what is recorded, written to a file and shown
    in the pane."""
    if streamed.split() == kept.split():
        return
    notes.print("[dim]The answer as kept (what streamed above was cleaned up):[/dim]")
    out.print(kept, highlight=False, markup=False)


def event_note(kind: str, data: Mapping[str, Any]) -> str | None:
    """What a run's progress event tells a person; None for the events that are the answer
    itself (``sources``, ``delta``) or that it does not know. One place for these words:
    ``copilot run`` and the demo show them, the pane has its own in its language."""
    if kind == "queue":
        ahead = int(data.get("position") or 0)
        return f"waiting for the model: {ahead} answer{'s' if ahead != 1 else ''} ahead"
    if kind == "progress" and data.get("steps"):
        step, steps = data.get("step"), data.get("steps")
        if data.get("phase") == "combine":
            return f"combining the summaries of the parts: {step} of {steps}"
        return f"reading the document in parts: part {step} of {steps}"
    if kind == "writing":
        return f"writing the answer: {data.get('characters', 0)} characters"
    return None


class Notes:
    """A run's progress on stderr while its answer is on its way.

    On a terminal one line is rewritten in place and wiped before the answer prints; piped
    (a log, CI), each kind of note is a line of its own, and the running count of a
    structured answer only once, so a log holds steps, not a ticker."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False
        self._last_kind = ""

    def show(self, kind: str, data: Mapping[str, Any]) -> None:
        note = event_note(kind, data)
        if note is None:
            return
        if self.live:
            self.stream.write(f"\r\x1b[2K{note}…")
            self._shown = True
        elif kind != "writing" or self._last_kind != "writing":
            self.stream.write(f"{note}…\n")
        self._last_kind = kind
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the live line (before the answer, or anything else, prints)."""
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
