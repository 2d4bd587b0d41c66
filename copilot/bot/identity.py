"""Who wrote a Teams message, as the same user id the API gives that person.

The API keys a person's data by ``"{tid}:{oid}"`` (their Entra tenant and object id, from
their access token). Teams puts the same two ids on every message the Bot Connector
delivers: ``from.aadObjectId`` and the tenant (``conversation.tenantId`` or
``channelData.tenant.id``). The Bot Connector's signed token vouches for the activity, so
the bot may act for that person on the skills, runs and index the API would give them.

Development mode (``COPILOT_AUTH=dev``, loopback only) has no Entra: a message from
``from.id`` (or ``from.name``) equal to a configured dev user, or to a local user who has
data, is that local user, ``local:NAME``, as with the API's ``Bearer dev:NAME`` and the
CLI's ``--user NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from copilot.config import Settings
from copilot.db.owners import NAME, local_user_id
from copilot.errors import CopilotError

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class NotSignedIn(CopilotError):
    """The message cannot be tied to a user of this copilot; the text says why, plainly."""

    kind = "not_signed_in"
    status = 401
    title = "I can't tell who you are"


@dataclass(frozen=True)
class Person:
    user_id: str  # the API's user id
    name: str


def tenant_of(conversation: Mapping[str, Any], channel_data: Any) -> str | None:
    tid = conversation.get("tenantId")
    if not tid and isinstance(channel_data, Mapping):
        tenant = channel_data.get("tenant")
        tid = tenant.get("id") if isinstance(tenant, Mapping) else None
    return tid if isinstance(tid, str) and tid else None


def person_for(
    settings: Settings,
    sender: Mapping[str, Any],
    conversation: Mapping[str, Any],
    channel_data: Any = None,
    *,
    known: Callable[[str], bool] = lambda name: False,
) -> Person:
    """The user behind ``sender`` (the activity's ``from``), or NotSignedIn. ``known``
    says whether a local user has data (dev mode admits them too)."""
    name = str(sender.get("name") or "")[:128]
    if settings.auth == "dev":
        for candidate in (sender.get("id"), sender.get("name")):
            if not isinstance(candidate, str) or not NAME.match(candidate):
                continue
            if candidate in settings.dev_users or known(candidate):
                return Person(local_user_id(candidate), name or candidate)
        users = ", ".join(settings.dev_users)
        raise NotSignedIn(
            f"In development mode I only know the dev users ({users}); this message came "
            "from someone else."
        )
    oid = sender.get("aadObjectId")
    tid = tenant_of(conversation, channel_data)
    if not (isinstance(oid, str) and _GUID.match(oid) and tid and _GUID.match(tid)):
        raise NotSignedIn(
            "I can't tell which work account you use, so I can't reach your skills, mail or "
            "files. Use me from Microsoft Teams while signed in with your work account "
            "(guests and anonymous users can't use the copilot)."
        )
    tenants = settings.entra_allowed_tenants or [settings.entra_tenant_id or ""]
    allowed = {t.lower() for t in tenants if t}
    if tid.lower() not in allowed:
        raise NotSignedIn("Your organisation is not set up to use this copilot.")
    return Person(f"{tid.lower()}:{oid.lower()}", name or "you")
