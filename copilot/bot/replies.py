"""Sending replies and running blocking work for a turn: cards, typing, errors in plain words."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import CardFactory, MessageFactory, TurnContext

from copilot.api.problems import Problem
from copilot.bot import cards
from copilot.bot.files import FileError
from copilot.llm.errors import LLMError
from copilot.skills.request import InputError
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.mapreduce import Cancelled
from copilot.skills.prepare import SkillInputError
from copilot.skills.library.store import SkillError, SkillNotFound
from copilot.office.xlsx import WorkbookError

log = logging.getLogger("copilot.bot")
T = TypeVar("T")
TYPING_EVERY_S = 3.0


class RunTimeout(Exception):
    pass


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
            raise RunTimeout


def explain(exc: BaseException) -> tuple[str, str]:
    """A title and plain words for an error the person can act on."""
    if isinstance(exc, SkillNotFound):
        return "I don't know that skill", f"{exc}. Type `skills` to see yours."
    if isinstance(exc, FileError | WorkbookError):
        return "I couldn't use the file", str(exc)
    if isinstance(exc, InputError | SkillInputError | SkillError):
        return "I couldn't run that", str(exc)
    if isinstance(exc, LLMError):
        return "The language model didn't answer", str(exc)
    if isinstance(exc, LocalEngineError):
        return "The local engine can't do that", str(exc)
    if isinstance(exc, Problem) and exc.status == 429:
        return "Slow down a little", f"{exc.detail} (the limit is per person, per minute)"
    if isinstance(exc, RunTimeout | Cancelled):
        return "That took too long", "I stopped the skill. Try a shorter text or file."
    ref = uuid.uuid4().hex[:8]
    log.error("bot turn failed (ref %s)", ref, exc_info=exc)
    return "Something went wrong on my side", f"Please try again (reference {ref})."
