"""One Teams turn: who wrote, what they ask, where the answer may go, and the answer.

Privacy rule: in a group chat or a channel the bot answers only when mentioned, and a skill
that can read the person's private index (retrieval, or few-shot examples from their sent
mail: `ask`, `draft`, and personal skills that do the same) is never answered in the shared
conversation. The bot says "I'll answer you privately" there and sends the answer to a 1:1
chat it opens with that person (Bot Connector ``POST /v3/conversations``); if that fails, it
says so and posts nothing. Skills that only use what was posted (summarise or sentiment of
text or a shared file) answer in the group.

Skill runs block (model calls, parsing), so they run in a worker thread through the same
``SkillRunner`` as the API (``replies.with_typing``: a typing indicator every few seconds,
the API's run timeout).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from microsoft_agents.activity import ChannelAccount, ConversationParameters
from microsoft_agents.hosting.core import TurnContext

from copilot.bot import cards
from copilot.bot.commands import COMMANDS, Parsed, parse, replied_text, strip_mentions
from copilot.bot.files import FileError, FileLinks, FileRef, download, file_attachments
from copilot.bot.identity import NotSignedIn, Person, person_for
from copilot.bot.prefs import Defaults
from copilot.bot.replies import blocking, explain, notice, say, with_typing
from copilot.config import Settings
from copilot.db.owners import local_user_exists
from copilot.office.scoring import score_workbook
from copilot.office.xlsx import WorkbookError
from copilot.skills.history import RunNotFound
from copilot.skills.library.store import StoredSkill
from copilot.skills.prepare import SkillInputError
from copilot.skills.request import FileInputError, InputError, RunRequest, from_bot
from copilot.skills.runner import RunResult, SkillRunner
from copilot.skills.templates.models import SkillTemplate

log = logging.getLogger("copilot.bot")
BASE_URL: ContextVar[str] = ContextVar("copilot_bot_base_url", default="")
LOCAL_NOTE = (
    "No language model is configured, so the local engine answered: it picks and scores "
    "sentences from the sources but does not write new text."
)


@dataclass
class Bot:
    settings: Settings
    runner: Callable[[], SkillRunner]
    links: FileLinks
    defaults: Defaults
    adapter: Any  # the CloudAdapter, to open 1:1 chats
    app_id: str
    # The API's per-user rate limit (one allowance for the add-ins and the bot); raises
    # RateLimited (a CopilotError, 429) when used up. None: no limit (tests, tools).
    limit: Callable[[str], None] | None = None


def is_group(raw: dict[str, Any]) -> bool:
    conversation = raw.get("conversation") or {}
    kind = conversation.get("conversationType")
    return bool(conversation.get("isGroup")) or kind in ("groupChat", "channel")


def uses_private_data(template: SkillTemplate) -> bool:
    """Whether running it can read the user's own index (see the module docstring)."""
    meta = template.metadata
    searches = meta.retrieval.enabled and meta.task != "summarise"  # summarise never searches
    return searches or meta.few_shot.retrieve_from is not None


# -- the turn ------------------------------------------------------------------------------


async def on_message(bot: Bot, context: TurnContext) -> None:
    raw = context.activity.model_dump(by_alias=True, exclude_none=True, mode="json")
    value = raw.get("value")
    if isinstance(value, dict) and value.get("copilot"):  # a card button; never mentions
        await on_card_action(bot, context, raw, value)
        return
    group = is_group(raw)
    bot_id = (raw.get("recipient") or {}).get("id")
    text, mentioned = strip_mentions(raw.get("text") or "", bot_id, raw.get("entities"))
    if group and not mentioned:
        return  # group chats and channels: only messages addressed to the bot
    try:
        person = person_for(bot.settings, raw.get("from") or {}, raw.get("conversation") or {},
                            raw.get("channelData"), known=known_local_user(bot))  # fmt: skip
    except NotSignedIn as exc:
        await notice(context, "I can't tell who you are", str(exc), "error")
        return
    runner = bot.runner()
    try:
        infos = await blocking(partial(runner.skills.list, person.user_id))
        files = file_attachments(raw.get("attachments"))
        if not text and files:
            text = "summarise"
        parsed = parse(text, {i.id for i in infos}, default_skill=bot.defaults.get(person.user_id))
        if parsed.kind == "help":
            await say(context, help_card())
        elif parsed.kind == "skills":
            default = bot.defaults.get(person.user_id)
            await say(context, cards.skills_card(infos, default, shared=group))
        elif parsed.kind == "use":
            bot.defaults.set(person.user_id, parsed.skill_id or "")
            await notice(context, "Default skill set", f"Messages without a command now go to "
                         f"{parsed.skill_id}.", "good")  # fmt: skip
        elif parsed.kind == "unknown":
            hint = f" Did you mean **{parsed.suggestion}**?" if parsed.suggestion else ""
            await notice(context, "I don't know that command", f"'{parsed.word}' is not a "
                         f"command or one of your skills.{hint} Type `help` for the list.",
                         "warning")  # fmt: skip
        else:
            await run_command(bot, context, raw, person, parsed, files, group)
    except Exception as exc:  # every failure becomes a message, never a stack trace
        await notice(context, *explain(exc), "error")


def help_card() -> dict[str, Any]:
    footer = ("In group chats and channels, mention me first: @Copilot summarise … "
              "Your own skills run by their name. Answers that may use your mail or files "
              "are sent to you privately.")  # fmt: skip
    return cards.list_card("What I can do", COMMANDS, footer)


async def run_command(
    bot: Bot,
    context: TurnContext,
    raw: dict[str, Any],
    person: Person,
    parsed: Parsed,
    files: list[FileRef],
    group: bool,
) -> None:
    runner = bot.runner()
    stored = await blocking(partial(runner.skills.get, person.user_id, parsed.skill_id or ""))
    html = [a.get("content") for a in raw.get("attachments") or [] if
            str(a.get("contentType", "")).startswith("text/html")]  # fmt: skip
    quote = replied_text(html)

    async def answer(ctx: TurnContext) -> None:
        try:
            await produce(bot, ctx, person, stored, parsed, files, quote)
        except Exception as exc:
            await notice(ctx, *explain(exc), "error")

    if not (group and uses_private_data(stored.template)):
        await answer(context)
        return
    await notice(context, "I'll answer you privately", f"{person.name}: `{stored.id}` can use "
                 "your own mail and files, so I'm sending the answer to our 1:1 chat rather "
                 "than posting it here.")  # fmt: skip
    try:
        await open_private_chat(bot, raw, answer)
    except Exception as exc:
        log.warning("could not open a 1:1 chat: %s", exc)
        await notice(context, "I couldn't reach you privately", "I couldn't open a 1:1 chat "
                     "with you, so I did not post the answer. Message me directly (add me in "
                     "Chat) and ask there.", "warning")  # fmt: skip


def _account(raw: dict[str, Any]) -> ChannelAccount:
    """The activity's JSON for an account, validated: a missing id or name raises."""
    return ChannelAccount.model_validate({"id": raw.get("id"), "name": raw.get("name")})


async def open_private_chat(
    bot: Bot, raw: dict[str, Any], callback: Callable[[TurnContext], Awaitable[None]]
) -> None:
    sender, recipient = raw.get("from") or {}, raw.get("recipient") or {}
    tenant = (raw.get("conversation") or {}).get("tenantId") or (
        ((raw.get("channelData") or {}).get("tenant") or {}).get("id")
    )
    tenant_fields: dict[str, Any] = {}
    if tenant:  # Teams needs it; a dev-mode conversation may have none
        tenant_fields = {"tenant_id": tenant, "channel_data": {"tenant": {"id": tenant}}}
    params = ConversationParameters(
        is_group=False,
        agent=_account(recipient),
        members=[_account(sender)],
        **tenant_fields,
    )
    await bot.adapter.create_conversation(
        bot.app_id, raw.get("channelId") or "msteams", raw.get("serviceUrl"),
        "https://api.botframework.com", params, callback,
    )  # fmt: skip


async def produce(
    bot: Bot,
    context: TurnContext,
    person: Person,
    stored: StoredSkill,
    parsed: Parsed,
    files: list[FileRef],
    quote: str | None,
) -> None:
    """Run the skill (or score the workbook) and send the answer to ``context``."""
    if bot.limit is not None:
        bot.limit(person.user_id)
    runner, settings = bot.runner(), bot.settings
    template = stored.template
    cancel = threading.Event()
    with tempfile.TemporaryDirectory(prefix="copilot-bot-") as tmp:
        folder = Path(tmp)
        local_files: list[Path] = []
        for ref in files[:1]:  # one file per request: the first
            get = partial(download, ref, folder, max_bytes=settings.max_file_bytes,
                          dev=settings.auth == "dev")  # fmt: skip
            local_files.append(await blocking(get))
        if template.metadata.task == "sentiment" and files and files[0].is_workbook:
            await score_file(bot, context, person, stored, local_files[0], parsed.text, cancel)
            return
        request = build_request(stored, parsed, quote, local_files, settings)
        run = partial(runner.run_request, person.user_id, request, cancel=cancel)
        try:
            result = await with_typing(context, run, timeout=settings.run_timeout_s,
                                       cancel=cancel)  # fmt: skip
        except (InputError, SkillInputError, FileError) as exc:
            raise type(exc)(str(exc).replace(f"{folder}/", "")) from None
    await say(context, *answer_cards(stored, result))


def build_request(
    stored: StoredSkill,
    parsed: Parsed,
    quote: str | None,
    local_files: list[Path],
    settings: Settings,
) -> RunRequest:
    """The run request from the typed text, the quoted message and an attached file
    (``copilot.skills.request.from_bot`` says how they become inputs)."""
    path = local_files[0] if local_files else None
    try:
        return from_bot(
            stored.template,
            stored.id,
            max_file_bytes=settings.max_file_bytes,
            options=parsed.options,
            text=parsed.text,
            quote=quote,
            file=path,
        )
    except FileInputError as exc:
        name = path.name if path is not None else ""
        raise FileError(str(exc).replace(str(path), name)) from None


def answer_cards(stored: StoredSkill, result: RunResult) -> list[dict[str, Any]]:
    # One note on how it was answered: the engine's own, else the generic local one.
    note = result.note or (LOCAL_NOTE if result.engine == "local" else "")
    title = stored.template.name + (" (yours)" if stored.source == "personal" else "")
    return cards.result_cards(
        title, result.text, citations=result.citations, sources=result.sources,
        run_id=result.run_id, note=note,
    )  # fmt: skip


async def score_file(
    bot: Bot,
    context: TurnContext,
    person: Person,
    stored: StoredSkill,
    path: Path,
    column: str,
    cancel: threading.Event,
) -> None:
    """Sentiment of a workbook column, answered with a link to the scored workbook."""
    asked = column.strip()
    file_id, out = bot.links.new_path(f"{path.stem}-scored.xlsx")
    # No column named: "\x00" matches no header, so the error lists the headers found.
    work = partial(score_workbook, bot.runner(), person.user_id, stored.id, path,
                   asked or "\x00", out=out, cancel=cancel)  # fmt: skip
    try:
        summary = await with_typing(context, work, timeout=bot.settings.run_timeout_s,
                                    cancel=cancel)  # fmt: skip
    except BaseException as exc:
        bot.links.discard(file_id)
        if not isinstance(exc, WorkbookError):
            raise
        message = str(exc)
        if not asked:
            message = (
                "Tell me which column to score, e.g. `sentiment Comments`; "
                + (message.split("; ", 1)[-1])
            )
        raise WorkbookError(message) from None
    bot.links.publish(file_id, out, out.name)
    url = f"{BASE_URL.get().rstrip('/')}/api/bot/files/{file_id}"
    facts = [("Rows scored", str(summary.get("rows", 0)))]
    facts += [
        (k.replace("_", " ").capitalize(), _fact(v))
        for k, v in summary.items()
        if k not in ("rows", "sheet", "column") and isinstance(v, int | float | str)
    ]
    minutes = int(bot.links.ttl_s // 60)
    await say(context, cards.download_card(
        f"Sentiment of {path.name}", f"Column {summary.get('column')} of sheet "
        f"{summary.get('sheet')!r}, scored. The link works for {minutes} minutes.", url,
        facts=facts[:12],
    ))  # fmt: skip


def _fact(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def known_local_user(bot: Bot) -> Callable[[str], bool]:
    """Whether a local user has data (dev mode admits them beside COPILOT_DEV_USERS)."""
    return lambda name: local_user_exists(bot.runner().workspace.state.engine, name)


# -- card buttons ----------------------------------------------------------------------------


async def on_card_action(
    bot: Bot, context: TurnContext, raw: dict[str, Any], value: dict[str, Any]
) -> str:
    """A feedback button (Action.Submit message or Action.Execute invoke); returns the
    reply text, which it has also sent."""
    try:
        person = person_for(bot.settings, raw.get("from") or {}, raw.get("conversation") or {},
                            raw.get("channelData"), known=known_local_user(bot))  # fmt: skip
    except NotSignedIn as exc:
        await notice(context, "I can't tell who you are", str(exc), "error")
        return str(exc)
    run_id, rating = value.get("run_id"), value.get("rating")
    if (
        value.get("copilot") != cards.FEEDBACK
        or not isinstance(run_id, str)
        or rating not in (1, -1)
    ):
        reply = "That button is not one I know."
    else:
        feedback = partial(bot.runner().runs.feedback, person.user_id, run_id, rating=rating)
        try:
            await blocking(feedback)
            reply = f"Thanks, {person.name}: I recorded your {'👍' if rating == 1 else '👎'}."
        except RunNotFound:
            reply = "Only the person who asked can rate this answer."
    if raw.get("type") != "invoke":
        await notice(context, "Feedback", reply)
    return reply
