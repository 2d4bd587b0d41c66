"""Sending replies and running blocking work for a turn: cards, typing, errors in plain words."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import CardFactory, MessageFactory, TurnContext

from copilot.bot import cards
from copilot.errors import Cancelled, CopilotError, describe

T = TypeVar("T")
TYPING_EVERY_S = 3.0


class RunTimeout(CopilotError):
    """A run passed the bot's deadline; it was told to stop and nobody waits for it."""

    kind = "run_timeout"
    status = 504
    title = "That took too long"

    def __init__(self) -> None:
        super().__init__("I stopped the skill. Try a shorter text or file.")


async def say(context: TurnContext, *card_list: dict[str, Any]) -> None:
    for card in card_list:
        await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))


async def notice(context: TurnContext, title: str, text: str, tone: str = "default") -> None:
    await say(context, cards.message_card(title, text, tone=tone))


async def blocking(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


async def with_typing(
    context: TurnContext, fn: Callable[[], T], *, timeout: float, cancel: threading.Event
) -> T:
    """``fn()`` in a thread, a typing indicator every few seconds until it returns."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(blocking(fn))
    deadline = loop.time() + timeout
    while True:
        await context.send_activity(Activity(type="typing"))
        wait = min(TYPING_EVERY_S, max(0.0, deadline - loop.time()))
        done, _ = await asyncio.wait({task}, timeout=wait)
        if done:
            return task.result()
        if loop.time() >= deadline:
            cancel.set()  # the runner stops at its next check; we do not wait for it
            raise RunTimeout()


# What to type next, where the bot's answer differs from the API's (a command, not a URL).
NEXT_STEP = {"skill_not_found": "Type `skills` to see yours."}


def explain(exc: BaseException) -> tuple[str, str]:
    """A title and plain words for an error: the same words the API and the CLI give
    (``copilot.errors.describe``), plus what to type next in the chat."""
    if isinstance(exc, Cancelled) or getattr(exc, "kind", None) == "cancelled":
        exc = RunTimeout()  # the bot cancels a run (and its model call) only at the deadline
    described = describe(exc, where="a bot turn")
    step = NEXT_STEP.get(described.kind)
    text = f"{described.detail.rstrip('.')}. {step}" if step else described.detail
    return described.title, text
