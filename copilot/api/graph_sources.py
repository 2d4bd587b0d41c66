"""The Microsoft 365 sources of ``POST /v1/sync/{source}``: outlook, onedrive, sharepoint.

Every connector made here reads Graph as the caller, with a token from the on-behalf-of
exchange of the caller's own API token, and writes into the caller's index only (the
owner is ``user.user_id``). Nothing in the request body can name another user's mailbox:
``folders`` are folder names of the caller's own mailbox, and ``drive`` must be one of the
SharePoint libraries the server's administrator listed in COPILOT_GRAPH_SITE_DRIVES.

Checks run here, in the request, so a bad request gets its problem at once; the token
exchange itself runs inside the job (its first Graph request), where a refusal becomes the
job's error in the user's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from connectors.base import Connector
from connectors.graph import GraphDrive, GraphMail, client_from_settings
from connectors.graph.auth import obo_provider
from copilot.api.auth import Principal
from copilot.api.problems import Problem

MAX_FOLDERS = 20
# Well-known folder names and Graph folder ids: letters, digits and - _ = + . (no "/",
# so a "folder" cannot walk the URL to another resource).
FOLDER = re.compile(r"^[A-Za-z0-9_=+-][A-Za-z0-9._=+-]{0,511}$")


def graph_connector_factory(
    api: Any, user: Principal, source: str, body: Any
) -> Callable[[], Connector]:
    """A function making the connector for ``source`` inside the job; ``Problem`` if not."""
    settings = api.settings
    if api.obo is None:
        raise Problem(
            503,
            "Graph is not configured: set COPILOT_ENTRA_CLIENT_SECRET (with "
            "COPILOT_ENTRA_CLIENT_ID and COPILOT_ENTRA_TENANT_ID) so the server can read "
            "Microsoft 365 on your behalf.",
        )
    if not user.token or not user.tenant_id or not user.object_id:
        raise Problem(403, "Microsoft 365 sources need a Microsoft Entra sign-in.")
    owner, obo = user.user_id, api.obo

    def client() -> Any:
        return client_from_settings(settings, obo_provider(obo, user))

    if source == "outlook":
        folders = _folders(body.folders or settings.graph_mail_folders)
        return lambda: GraphMail(
            client(), owner, folders=folders, max_mime_bytes=settings.max_file_bytes
        )
    if source == "onedrive":
        return lambda: GraphDrive(client(), owner, drive="me", max_bytes=settings.max_file_bytes)
    if source == "sharepoint":
        drive = _library(body.drive, list(settings.graph_site_drives))
        return lambda: GraphDrive(client(), owner, drive=drive, max_bytes=settings.max_file_bytes)
    raise Problem(404, f"Unknown source {source!r}: use outlook, onedrive or sharepoint.")


def _folders(folders: list[str]) -> list[str]:
    if len(folders) > MAX_FOLDERS:
        raise Problem(422, f"At most {MAX_FOLDERS} mail folders per sync.")
    for folder in folders:
        if not FOLDER.match(folder or ""):
            raise Problem(
                422,
                f"{folder[:80]!r} is not a mail folder name: use a well-known name "
                "(inbox, sentitems, archive) or a folder id.",
            )
    return list(folders)


def _library(drive: str | None, allowed: list[str]) -> str:
    if not allowed:
        raise Problem(
            403, "No SharePoint libraries are set up on this server (COPILOT_GRAPH_SITE_DRIVES)."
        )
    if not drive:
        raise Problem(422, f"Give the library to sync as `drive`: one of {', '.join(allowed)}.")
    if drive not in allowed:
        raise Problem(
            403,
            f"{drive[:80]!r} is not one of the SharePoint libraries this server syncs; "
            f"ask your administrator to add it to COPILOT_GRAPH_SITE_DRIVES.",
        )
    return drive
