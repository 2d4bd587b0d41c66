"""The Teams bot on the API's FastAPI app: ``POST /api/messages`` on the Microsoft 365
Agents SDK, and ``GET /api/bot/files/{id}`` for files the bot hands back.

Authentication is the SDK's, as for any Bot Connector bot: every request to /api/messages
carries a Bot Connector (or Entra) token for the bot's app id, which the SDK's
``JwtTokenValidator`` checks (signature from the Bot Framework / Entra keys, audience =
the bot's app id, issuer-tenant binding); without one the answer is 401. Only in
development mode (``COPILOT_AUTH=dev``) are anonymous requests accepted, and then only from
a loopback client with a loopback ``serviceUrl`` (so a dev bot never posts anywhere else).

The bot's app registration is the API's (``COPILOT_ENTRA_CLIENT_ID`` / ``_TENANT_ID`` /
``_CLIENT_SECRET``): one registration, exposed as the API and enabled as a Teams bot. The
secret is what the SDK uses (MSAL, client credentials) to post replies.

Mounting adds routes only: no middleware, so /v1 and the rest of the app are untouched.

Messages are acknowledged (202) once authenticated and answered in a background task
through the serviceUrl, because Teams waits only ~15 s for the HTTP answer; invokes and
``expectReplies`` requests are answered inline, in the response body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from microsoft_agents.activity import Activity
from microsoft_agents.activity import InvokeResponse as InvokeBody
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    AnonymousTokenProvider,
    ConnectionManager,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.fastapi import (
    CloudAdapter,
    jwt_authorization_decorator,
    start_agent_process,
)

from copilot.bot import turns
from copilot.bot.files import FileLinks
from copilot.bot.prefs import Defaults
from copilot.config import Settings
from copilot.skills.runner import SkillRunner

log = logging.getLogger("copilot.bot")
MAX_ACTIVITY_BYTES = 1024 * 1024  # an activity is JSON text; files come by URL


class DevTokenProvider(AnonymousTokenProvider):
    """Development mode's outbound "token": a placeholder, since there is no app
    registration. (The SDK refuses an empty token when it opens a conversation.) Dev mode
    only ever posts to a loopback serviceUrl."""

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        return "development-mode"


def connections(settings: Settings) -> tuple[AgentAuthConfiguration, Any]:
    """The SDK's auth configuration and connection manager for ``settings``."""
    if settings.auth == "dev":
        config = AgentAuthConfiguration(anonymous_allowed=True)
        manager = ConnectionManager(
            lambda _config: DevTokenProvider(),
            connections_configurations={"SERVICE_CONNECTION": config},
        )
        return config, manager
    config = AgentAuthConfiguration(
        client_id=settings.entra_client_id,
        tenant_id=settings.entra_tenant_id,
        client_secret=(
            settings.entra_client_secret.get_secret_value()
            if settings.entra_client_secret
            else None
        ),
        anonymous_allowed=False,
    )
    return config, MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": config})


def build_agent(bot: turns.Bot, manager: Any) -> AgentApplication[TurnState]:
    agent = AgentApplication[TurnState](
        storage=MemoryStorage(),
        connection_manager=manager,
        remove_recipient_mention=False,  # we strip it ourselves, after checking it was there
        start_typing_timer=False,  # we send typing only while a skill runs
    )

    @agent.activity("message")
    async def on_message(context: TurnContext, state: TurnState) -> None:
        await turns.on_message(bot, context)

    @agent.activity("invoke")
    async def on_invoke(context: TurnContext, state: TurnState) -> None:
        """``adaptiveCard/action`` (Action.Execute): the same feedback as Action.Submit."""
        raw = context.activity.model_dump(by_alias=True, exclude_none=True, mode="json")
        action = (raw.get("value") or {}).get("action") or {}
        if raw.get("name") != "adaptiveCard/action" or not isinstance(action.get("data"), dict):
            body = InvokeBody(status=400, body={"error": "unsupported invoke"})
        else:
            reply = await turns.on_card_action(bot, context, raw, action["data"])
            body = InvokeBody(status=200, body={
                "statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                "value": reply,
            })  # fmt: skip
        await context.send_activity(Activity(type="invokeResponse", value=body))

    return agent


def mount_bot(app: FastAPI, settings: Settings, runner_getter: Callable[[], SkillRunner]) -> None:
    """Add the bot's routes to ``app``; skills run through ``runner_getter()`` (the API's
    runner, read per turn because it exists only once the app has started)."""
    config, manager = connections(settings)
    adapter = CloudAdapter(connection_manager=manager)
    adapter.on_turn_error = _on_turn_error  # the SDK's default sends the exception text
    bot_dir = settings.home_dir / "bot"
    bot = turns.Bot(
        settings=settings,
        runner=runner_getter,
        links=FileLinks(bot_dir / "files"),
        defaults=Defaults(bot_dir / "defaults.json"),
        adapter=adapter,
        app_id=(settings.entra_client_id or "") if settings.auth != "dev" else "",
        limit=lambda user_id: app.state.api.limiter.check(user_id),
    )
    agent = build_agent(bot, manager)
    app.state.agent_configuration = config  # read by the SDK's JWT check
    process = partial(start_agent_process, agent_application=agent, adapter=adapter)

    pending: set[asyncio.Task[Any]] = set()  # strong references until each turn ends

    @jwt_authorization_decorator
    async def authorised(request: Request) -> Response | None:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not _answer_later(body):
            return await process(request)
        task = asyncio.create_task(_in_background(process, request))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return Response(status_code=202)

    @app.post("/api/messages", include_in_schema=False, response_model=None)
    async def messages(request: Request) -> Response | None:
        """The Bot Connector's endpoint (Teams messages, card actions)."""
        if int(request.headers.get("content-length") or 0) > MAX_ACTIVITY_BYTES:
            return JSONResponse({"error": "activity too large"}, status_code=413)
        if settings.auth == "dev":
            refusal = await _dev_refusal(request)
            if refusal is not None:
                return refusal
        token = turns.BASE_URL.set(str(request.base_url))
        try:
            return await authorised(request)
        finally:
            turns.BASE_URL.reset(token)

    @app.get("/api/bot/files/{file_id}", include_in_schema=False)
    def bot_file(file_id: str) -> Response:
        """A file the bot produced, while its link is valid (see copilot.bot.files)."""
        found = bot.links.get(file_id)
        if found is None:
            return JSONResponse({"error": "This link has expired."}, status_code=404)
        path, name = found
        return FileResponse(path, filename=name, headers={"Cache-Control": "no-store"})


def _answer_later(body: Any) -> bool:
    """Whether to acknowledge at once and answer through the serviceUrl: Teams gives a bot
    about 15 seconds to answer the HTTP request, and a skill run can take longer. Invokes
    (their answer is the response body) and expectReplies requests are answered inline."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return False
    conversation = body.get("conversation")
    has_target = (
        isinstance(conversation, dict) and conversation.get("id") and body.get("serviceUrl")
    )
    return bool(has_target) and body.get("deliveryMode") != "expectReplies"


async def _in_background(process: Callable[[Request], Awaitable[Any]], request: Request) -> None:
    try:
        await process(request)
    except Exception:  # nobody awaits this task: log, or it would vanish
        log.exception("bot turn failed after it was acknowledged")


async def _dev_refusal(request: Request) -> Response | None:
    """Development mode answers anonymous loopback callers only, and only replies to a
    loopback serviceUrl."""
    client = request.client.host if request.client else ""
    if not _loopback(client):
        return JSONResponse({"error": "development mode serves loopback only"}, status_code=403)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    service_url = body.get("serviceUrl") if isinstance(body, dict) else None
    if service_url and not _loopback(urlsplit(str(service_url)).hostname or ""):
        return JSONResponse(
            {"error": "in development mode the serviceUrl must be a loopback address"},
            status_code=400,
        )
    return None


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _on_turn_error(context: TurnContext, error: Exception) -> None:
    ref = format(id(error), "x")[-8:]
    log.error("bot turn failed (ref %s)", ref, exc_info=error)
    try:
        await turns.notice(context, "Something went wrong on my side",
                           f"Please try again (reference {ref}).", "error")  # fmt: skip
    except Exception:  # the channel itself may be what failed
        log.warning("could not tell the user about error %s", ref)


__all__ = ["connections", "mount_bot"]
