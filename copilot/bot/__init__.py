"""The Teams bot: chat commands for every skill, on the Microsoft 365 Agents SDK.

``mount_bot(app, settings, runner_getter)`` adds ``POST /api/messages`` to the API's app.
The SDK is imported only when the bot is mounted: ``copilot.bot.commands`` (the command
list the Teams manifest builder reads) stays cheap to import.
"""

from __future__ import annotations

from typing import Any


def mount_bot(app: Any, settings: Any, runner_getter: Any) -> None:
    from copilot.bot.app import mount_bot as mount

    mount(app, settings, runner_getter)


__all__ = ["mount_bot"]
