"""Which requests come from this machine: loopback addresses, and loopback ``Host`` names.

Dev mode lets anyone sign in as any dev user, and the local admin token stands for the
account that runs the service; both are safe only on this machine. So dev mode listens
only on a loopback address (``check_dev_mode_binding``), answers only requests that name
it by a loopback name (``LoopbackHostOnly``: a web page that made its own name resolve to
127.0.0.1 still sends its own name), and the admin token is accepted only from a loopback
peer (``copilot.api.auth``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from copilot.config import Settings


def check_dev_mode_binding(settings: Settings, host: str) -> None:
    """Refuse to serve dev mode (anyone can be anyone) on an address others can reach."""
    if settings.auth != "dev":
        return
    if not is_loopback(host):
        raise RuntimeError(
            f"Dev mode (COPILOT_AUTH=dev) lets anyone sign in as any dev user, so it only "
            f"listens on a loopback address (127.0.0.1, ::1, localhost), not {host!r}. "
            "Use Entra ID authentication to serve other machines."
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or the name localhost) is this machine's loopback."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST_HEADER = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::[0-9]{1,5})?$")


def is_loopback_host_header(value: str) -> bool:
    """Whether a ``Host`` header names this machine by a loopback name (port optional).

    Only the exact names ``localhost``, ``127.0.0.1`` and ``[::1]``: a dev-mode server is
    reached by those, and a page on another site that made its own name resolve to
    127.0.0.1 (DNS rebinding) still sends its own name here and is refused.
    """
    match = _HOST_HEADER.match(value.strip())
    return match is not None and match.group(1).lower() in LOOPBACK_HOSTS


class LoopbackHostOnly:
    """ASGI middleware for dev mode: refuse any request whose ``Host`` is not a loopback
    name (400, before routing), so a rebinding web page cannot drive the local API with
    guessable ``dev:NAME`` tokens."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hosts = [v for k, v in scope.get("headers") or [] if k == b"host"]
        host = hosts[0].decode("latin-1") if len(hosts) == 1 else ""
        if is_loopback_host_header(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from copilot.api.problems import Problem  # here: this module stays framework-free

        shown = host[:100] if host else "(none)"
        problem = Problem(
            400,
            f"Host {shown!r} is not allowed: a development-mode server answers only "
            "localhost, 127.0.0.1 and [::1].",
            headers={"Connection": "close"},
        )
        await problem.response()(scope, receive, send)
