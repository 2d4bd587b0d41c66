"""Security headers: ``nosniff`` on every response, a Content Security Policy on the add-in.

The task pane (addins/office) has no inline script and sets styles only through the CSSOM,
so its policy allows scripts from this origin and Office.js's CDN only. Inline *styles* are
allowed because Office.js itself injects some (OfficeDev/office-js#1687); they cannot run
code. ``frame-ancestors`` lists the Office on the web hosts that frame a task pane (Outlook
and Office on the web, SharePoint and OneDrive, the new cloud.microsoft domains); the
desktop hosts load the pane in a top-level web view, which ``frame-ancestors`` does not
restrict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ADDIN_PREFIX = "/addins/"
OFFICE_SCRIPTS = ("https://appsforoffice.microsoft.com", "https://ajax.aspnetcdn.com")
SIGN_IN = ("https://login.microsoftonline.com",)  # MSAL's token and popup endpoints
OFFICE_FRAME_ANCESTORS = (
    "https://*.office.com",
    "https://*.office365.com",
    "https://*.officeapps.live.com",
    "https://*.microsoft.com",
    "https://*.cloud.microsoft",
    "https://*.microsoft365.com",
    "https://*.sharepoint.com",
    "https://onedrive.live.com",
)


def addin_csp(connect: Iterable[str] = ()) -> str:
    """The task pane's policy; ``connect`` adds origins it may call (a separate API host)."""
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", *OFFICE_SCRIPTS],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *SIGN_IN, *connect],
        "frame-src": [*SIGN_IN],
        "frame-ancestors": ["'self'", *OFFICE_FRAME_ANCESTORS],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def api_origin(addins: Path | None) -> list[str]:
    """The origin of ``apiBase`` in the pane's config.json, when it points elsewhere."""
    if addins is None:
        return []
    try:
        base = json.loads((addins / "config.json").read_text(encoding="utf-8")).get("apiBase")
    except (OSError, ValueError, AttributeError):
        return []
    parts = urlsplit(base) if isinstance(base, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    return [f"{parts.scheme}://{parts.netloc}"]


class SecurityHeaders:
    """ASGI middleware: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy`` on every
    HTTP response, and ``csp`` as the Content-Security-Policy of everything under /addins/."""

    def __init__(self, app: Any, csp: str) -> None:
        self.app = app
        self.csp = csp.encode("ascii")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if str(scope.get("path", "")).startswith(ADDIN_PREFIX):
            extra.append((b"content-security-policy", self.csp))

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers") or []}
                headers = list(message.get("headers") or [])
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
