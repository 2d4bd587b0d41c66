"""Microsoft Graph tokens for the calling user: MSAL's on-behalf-of exchange, cached per user.

Connectors reach mail and files as the signed-in user, never as the app: the user's own API
token is exchanged for a Graph token (OAuth 2.0 on-behalf-of). MSAL keeps the result — an
access token plus a refresh token — in a token cache; each user gets their own cache file so
one user's tokens can never be handed to another, even by a bug in account lookup.

Cache files live in ``home/tokens/<sha256(user_id)>.json``: the folder is 0700, files 0600,
written atomically (a crash leaves the old file, never half a file). They hold refresh
tokens, so treat them like passwords; ``forget`` deletes a user's file (sign-out).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from connectors.graph.auth import load_cache
from copilot.api.auth import Principal
from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.fileio import write_atomically

log = logging.getLogger(__name__)

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
HTTP_TIMEOUT_S = 15.0
_LOCK_STRIPES = 64
_EXPIRY_MARGIN_S = 300  # a token this close to expiry is replaced, not handed out
_OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}

_CONSENT_CODES = {65001, 65004}
_INTERACTION_CODES = {50076, 50079, 50158, 53003, 50173}
_SIGN_IN_AGAIN_CODES = {50013, 500133, 700082, 50173}
_SERVER_CREDENTIAL_CODES = {7000215, 7000222, 700016, 700027}


class GraphTokenError(CopilotError):
    """No Graph token for this user; ``message`` says what to do, ``code`` what happened.

    Codes: consent_required, interaction_required, sign_in_again, server_misconfigured,
    no_user_token, unavailable, refused.
    """

    kind = "graph_token"
    status = 403
    title = "I can't reach your Microsoft 365 data"

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message, kind=code)
        self.message = message
        self.code = code


class OnBehalfOf:
    """Exchanges API tokens for Graph tokens; one instance per process, thread-safe."""

    def __init__(
        self, settings: Settings, *, cache_dir: Path | None = None, http_client: Any = None
    ) -> None:
        missing = [
            name
            for name, value in (
                ("COPILOT_ENTRA_CLIENT_ID", settings.entra_client_id),
                ("COPILOT_ENTRA_TENANT_ID", settings.entra_tenant_id),
                ("COPILOT_ENTRA_CLIENT_SECRET", settings.entra_client_secret),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"Graph access on behalf of users needs {', '.join(missing)}.")
        host = urlsplit(settings.entra_authority_host.strip())
        if host.scheme != "https" or not host.hostname:
            raise ValueError("COPILOT_ENTRA_AUTHORITY_HOST must be an https:// URL.")
        self._authority_host = f"https://{host.netloc}"
        self._client_id = settings.entra_client_id
        self._secret = settings.entra_client_secret
        self._home_tenant = settings.entra_tenant_id
        self._dir = cache_dir or settings.home_dir / "tokens"
        self._http = http_client or _session(settings)
        self._http_cache: dict[str, Any] = {}  # MSAL's discovery cache, shared by all users
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def graph_token(
        self, principal: Principal, scopes: Sequence[str] = (GRAPH_DEFAULT_SCOPE,)
    ) -> str:
        """A Graph access token for ``principal``: from their cache while it is fresh."""
        if not principal.token or not principal.tenant_id or not principal.object_id:
            raise GraphTokenError(
                "Microsoft Graph needs a Microsoft Entra sign-in; dev-mode users have none.",
                code="no_user_token",
            )
        path = self.cache_path(principal.user_id)
        with self._lock_for(principal.user_id):
            cache = load_cache(path)
            try:
                result = self._acquire(principal, list(scopes), cache)
            except (requests.RequestException, ValueError, OSError) as exc:
                raise GraphTokenError(
                    "Microsoft Entra could not be reached for a Graph token "
                    f"({type(exc).__name__}); try again soon.",
                    code="unavailable",
                ) from None
            if cache.has_state_changed:
                write_atomically(path, cache.serialize())  # 0600, in a 0700 folder
        if "access_token" in result:
            return str(result["access_token"])
        raise _graph_error(result)

    def forget(self, user_id: str) -> bool:
        """Delete the user's cached Graph tokens (sign-out); True if there were any."""
        path = self.cache_path(user_id)
        with self._lock_for(user_id):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def cache_path(self, user_id: str) -> Path:
        """Hashed, so a user id never becomes part of a path."""
        return self._dir / f"{hashlib.sha256(user_id.encode()).hexdigest()}.json"

    def _acquire(
        self, principal: Principal, scopes: list[str], cache: msal.SerializableTokenCache
    ) -> dict[str, Any]:
        cached = _fresh_access_token(cache, self._client_id, principal, scopes)
        if cached:
            return {"access_token": cached}
        app = msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=self._secret.get_secret_value() if self._secret else None,
            authority=f"{self._authority_host}/{principal.tenant_id or self._home_tenant}",
            token_cache=cache,
            http_client=self._http,
            http_cache=self._http_cache,
            instance_discovery=False,  # no call to the public cloud's discovery endpoint
        )
        return app.acquire_token_on_behalf_of(principal.token, scopes) or {}

    def _lock_for(self, user_id: str) -> threading.Lock:
        digest = hashlib.sha256(user_id.encode()).digest()
        return self._locks[digest[0] % _LOCK_STRIPES]


def _fresh_access_token(
    cache: msal.SerializableTokenCache,
    client_id: str | None,
    principal: Principal,
    scopes: list[str],
) -> str | None:
    """A cached token for ``scopes`` valid for 5 more minutes, or None.

    Not ``acquire_token_silent``: Entra answers a ``…/.default`` request with the consented
    scopes (``…/Mail.Read …``), so MSAL's scope match misses and it would redeem the refresh
    token on every call. Here ``…/.default`` matches a token whose scopes are all that API's.
    """  # fmt: skip
    home_account = f"{principal.object_id}.{principal.tenant_id}"
    now = time.time()
    entries = cache.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN,
        query={"client_id": client_id, "home_account_id": home_account},
    )
    for entry in entries:
        try:
            expires_on = int(entry.get("expires_on", 0))
        except (TypeError, ValueError):
            continue
        granted = {t.lower() for t in str(entry.get("target", "")).split()} - _OIDC_SCOPES
        if expires_on - now > _EXPIRY_MARGIN_S and granted and _covers(granted, scopes):
            return str(entry.get("secret") or "") or None
    return None


def _covers(granted: set[str], scopes: list[str]) -> bool:
    for scope in (s.lower() for s in scopes if s.lower() not in _OIDC_SCOPES):
        if scope.endswith("/.default"):
            resource = scope.removesuffix(".default")
            if not all(g.startswith(resource) for g in granted):
                return False
        elif scope not in granted:
            return False
    return True


def _session(settings: Settings) -> requests.Session:
    """One connection pool for all users; ``tls_ca_file`` is the CA bundle when set."""
    session = requests.Session()
    options: dict[str, Any] = {"timeout": HTTP_TIMEOUT_S}
    if settings.tls_ca_file is not None:
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session-wide ``verify``.
        options["verify"] = str(settings.tls_ca_file.expanduser())
    # Deliberately set on the instance: the defaults apply to every call MSAL makes.
    session.request = functools.partial(session.request, **options)  # type: ignore[method-assign]
    return session


def _graph_error(result: dict[str, Any]) -> GraphTokenError:
    """Plain words for Entra's error; AADSTS codes kept so an admin can look them up."""
    codes = {c for c in result.get("error_codes") or [] if isinstance(c, int)}
    error = str(result.get("error") or "unknown_error")
    suberror = result.get("suberror")
    ref = f" ({', '.join(f'AADSTS{c}' for c in sorted(codes))})" if codes else ""
    if codes & _CONSENT_CODES or suberror == "consent_required":
        return GraphTokenError(
            "This app has not been allowed to read your Microsoft 365 data: an administrator "
            f"must grant consent to its Microsoft Graph permissions in Entra ID{ref}.",
            code="consent_required",
        )
    if codes & _INTERACTION_CODES or error == "interaction_required":
        return GraphTokenError(
            "Your organisation requires you to sign in again (for example multi-factor "
            f"authentication) before the copilot can reach your mail and files{ref}.",
            code="interaction_required",
        )
    if codes & _SERVER_CREDENTIAL_CODES or error in ("invalid_client", "unauthorized_client"):
        return GraphTokenError(
            "The copilot server's Entra ID credentials were refused (client secret wrong or "
            f"expired): an administrator must renew them{ref}.",
            code="server_misconfigured",
        )
    if codes & _SIGN_IN_AGAIN_CODES or error == "invalid_grant":
        return GraphTokenError(
            f"Your sign-in could not be used to reach Microsoft Graph; sign in again{ref}.",
            code="sign_in_again",
        )
    return GraphTokenError(
        f"Microsoft Entra refused the Graph token request ({error}){ref}.", code="refused"
    )
