"""What every ``copilot`` subcommand shares: the consoles, plain-words failure, settings."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from connectors.errors import ConnectorError
from copilot.config import Settings, get_settings
from copilot.errors import CopilotError, describe

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
    described = describe(exc, where="a command")
    expected = isinstance(exc, CopilotError | ConnectorError) and str(exc)
    message = str(exc) if expected else described.detail
    return fail(message, code if code is not None else 1 if described.status >= 500 else 2)


def settings_or_exit() -> Settings:
    """The configuration, or exit 2 naming the bad variable (pydantic's message does)."""
    try:
        return get_settings()
    except Exception as exc:
        raise fail(f"Invalid configuration: {exc}") from exc
