"""What every ``copilot`` subcommand shares: the consoles, plain-words failure, settings."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from copilot.config import Settings, get_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (as text, never markup) on stderr; raise the returned Exit."""
    err.print(f"[red]{escape(message)}[/red]", highlight=False)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    """The configuration, or exit 2 naming the bad variable (pydantic's message does)."""
    try:
        return get_settings()
    except Exception as exc:
        raise fail(f"Invalid configuration: {exc}") from exc
