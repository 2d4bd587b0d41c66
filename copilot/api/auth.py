"""Who is calling: Microsoft Entra ID v2 access tokens, or named users in dev mode.

Framework-free on purpose, so the HTTP API and the Teams bot share one validator: give
``Authenticator.authenticate`` the raw ``Authorization`` header and get a ``Principal`` or an
``AuthError`` that already carries its HTTP status and ``WWW-Authenticate`` value.

A token is checked in the order that costs an attacker the most and us the least: size and
shape first, then the header (RS256 only, a key id), then the tenant — a tenant that is not
allowed is refused before anything is fetched, so a token cannot make us request URLs of its
choosing — and only then the signature against that tenant's JWKS (cached by
:mod:`copilot.api.jwks`), followed by issuer, audience, lifetime, version, user ids and scope.

Two more callers are local users (``local:NAME``, see :mod:`copilot.db.owners`): in dev mode
``Bearer dev:NAME``, and in any mode the CLI of this machine, which presents the service's
*local admin token* (written by ``copilot serve`` to a 0600 file in ``COPILOT_HOME``) and
names its user in ``X-Copilot-User``. Whoever can read that file is the account that runs the
service (or root), so the token grants nothing they do not already have; it is still
accepted only from a loopback peer addressed by a loopback name.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from copilot.api.jwks import ALGORITHM, JwksCache, KeysUnavailable, https_fetcher, tls_context
from copilot.api.jwks import JWKS_MIN_REFRESH_S as JWKS_MIN_REFRESH_S  # re-exported
from copilot.api.jwks import JWKS_TTL_S as JWKS_TTL_S  # re-exported
from copilot.api.loopback import is_loopback, is_loopback_host_header
from copilot.config import Settings
from copilot.db.owners import NAME as _DEV_NAME
from copilot.db.owners import local_user_id
from copilot.errors import CopilotError

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 16 * 1024

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_HEADER_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")  # RFC 6750 error_description


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``user_id`` keys all of the user's data."""

    user_id: str  # "{tid}:{oid}" for Entra users, "local:{name}" for local users
    tenant_id: str | None
    object_id: str | None
    name: str
    upn: str | None
    scopes: frozenset[str]
    token: str | None = field(default=None, repr=False, compare=False)  # for OBO only
    machine: bool = False  # came with the local admin token: this machine's own CLI


class AuthError(CopilotError):
    """A refused request: ``status`` 401/403 (503 when Entra's keys cannot be fetched)."""

    kind = "not_signed_in"
    status = 401
    title = "You are not signed in"

    def __init__(self, status: int, code: str, message: str, *, scope: str | None = None):
        super().__init__(message, kind=code, status=status)
        self.code = code
        self.message = message
        self.www_authenticate = _challenge(status, code, message, scope)
        self.headers = {"WWW-Authenticate": self.www_authenticate}


def _challenge(status: int, code: str, message: str, scope: str | None) -> str:
    """The RFC 6750 ``WWW-Authenticate`` value; no error attributes when no token was sent."""
    if code == "missing_token":
        return 'Bearer realm="office-copilot"'
    error = "insufficient_scope" if code == "insufficient_scope" else "invalid_token"
    if status == 503:
        error = "temporarily_unavailable"
    description = _HEADER_UNSAFE.sub("", message)[:200]
    value = f'Bearer realm="office-copilot", error="{error}", error_description="{description}"'
    if scope:
        value += f', scope="{_HEADER_UNSAFE.sub("", scope)}"'
    return value


def _invalid(message: str) -> AuthError:
    return AuthError(401, "invalid_token", message)


class Authenticator:
    """Validates ``Authorization`` headers for one process; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``http(url) -> body`` fetches a JWKS (default: HTTPS with the configured CAs);
        ``clock`` drives the key cache (tests move it forward)."""
        self._dev = settings.auth == "dev"
        self._scope = settings.entra_required_scope.strip()
        self._admin_token: str | None = None
        # Whether a local user has data; set by the app once the state store is open, so
        # dev mode also admits the users the CLI created.
        self.local_user_exists: Callable[[str], bool] = lambda name: False
        if self._dev:
            self._dev_users = _checked_dev_users(settings.dev_users)
            log.warning("Dev-mode authentication: local test users only, no real sign-in.")
            return
        if not self._scope or " " in self._scope:
            raise ValueError("COPILOT_ENTRA_REQUIRED_SCOPE must be one scope name.")
        self._host = _checked_authority(settings.entra_authority_host)
        home = _checked_tenant(settings.entra_tenant_id, "COPILOT_ENTRA_TENANT_ID")
        allowed = settings.entra_allowed_tenants or [home]
        self._tenants = {
            _checked_tenant(t, "COPILOT_ENTRA_ALLOWED_TENANTS").lower() for t in allowed
        }
        self._audiences = [a for a in [settings.entra_client_id, *settings.entra_audiences] if a]
        if not self._audiences:
            raise ValueError(
                "Entra authentication needs the API's client id (COPILOT_ENTRA_CLIENT_ID) "
                "or its app id URI (COPILOT_ENTRA_AUDIENCES) to check token audiences."
            )
        self._leeway = settings.entra_leeway_s
        fetch = http or https_fetcher(tls_context(settings))
        self._keys = JwksCache(self._host, fetch, clock)

    def allow_admin_token(self, token: str) -> None:
        """Accept ``token`` from this machine's CLI (``copilot serve`` makes one per start)."""
        if len(token) < 32:
            raise ValueError("a local admin token must be at least 32 characters")
        self._admin_token = token

    def is_admin_token(self, authorization: str | None) -> bool:
        """Whether the header carries this service's local admin token (the service's own
        API workers call its internal routes with it, ``copilot.api.internal``)."""
        try:
            return self._is_admin(_bearer_token(authorization))
        except AuthError:
            return False

    def _is_admin(self, token: str) -> bool:
        return self._admin_token is not None and hmac.compare_digest(
            token.encode(), self._admin_token.encode()
        )

    def authenticate(
        self,
        authorization: str | None,
        *,
        local_user: str | None = None,
        peer: str | None = None,
        host: str | None = None,
    ) -> Principal:
        """The caller of a request with this ``Authorization`` header. ``local_user`` (the
        ``X-Copilot-User`` header), ``peer`` (the client address) and ``host`` (the
        ``Host`` header) matter only for the local admin token."""
        token = _bearer_token(authorization)
        if self._is_admin(token):
            return self._machine_principal(local_user, peer, host)
        if self._dev:
            return self._dev_principal(token)
        return self._entra_principal(token)

    def may_wait(self, authorization: str | None) -> bool:
        """Whether ``authenticate`` may wait on I/O for this header: a database lookup for
        a dev name not in COPILOT_DEV_USERS, or an Entra signing key not in memory (or due
        for a refresh). The API authenticates those in a worker thread and the rest on the
        event loop: under 20 streaming runs that thread hop per request queued behind the
        runs' threads for the GIL. A header refused without I/O says False."""
        try:
            token = _bearer_token(authorization)
        except AuthError:
            return False
        if self._is_admin(token):
            return False
        if self._dev:
            return not (token.startswith("dev:") and token[4:] in self._dev_users)
        try:
            kid, tenant = _checked_header(token), _unverified_tenant(token).lower()
        except AuthError:
            return False
        return tenant in self._tenants and not self._keys.cached(tenant, kid)

    def dev_users(self) -> frozenset[str]:
        """The configured dev users (COPILOT_DEV_USERS); empty outside dev mode."""
        return self._dev_users if self._dev else frozenset()

    def _dev_principal(self, token: str) -> Principal:
        name = token.removeprefix("dev:") if token.startswith("dev:") else None
        known = name is not None and (
            name in self._dev_users
            or (bool(_DEV_NAME.match(name)) and self.local_user_exists(name))
        )
        if name is None or not known:
            raise _invalid(
                "Dev mode accepts only 'dev:NAME' tokens for a configured dev user "
                "(COPILOT_DEV_USERS) or a local user with data."
            )
        return self._local(name)

    def _machine_principal(
        self, local_user: str | None, peer: str | None, host: str | None
    ) -> Principal:
        if not (peer and is_loopback(peer) and host and is_loopback_host_header(host)):
            raise AuthError(
                403, "not_local", "The local admin token is accepted only from this machine."
            )
        name = (local_user or "").strip()
        if not _DEV_NAME.match(name):
            raise _invalid("Name the local user in the X-Copilot-User header (letters, digits).")
        return self._local(name, machine=True)

    def _local(self, name: str, *, machine: bool = False) -> Principal:
        return Principal(
            user_id=local_user_id(name), tenant_id=None, object_id=None, name=name, upn=None,
            scopes=frozenset({self._scope}), token=None, machine=machine,
        )  # fmt: skip

    def _entra_principal(self, token: str) -> Principal:
        kid = _checked_header(token)
        tid = _unverified_tenant(token)
        if tid.lower() not in self._tenants:
            raise AuthError(403, "tenant_not_allowed", "Users of this tenant may not use the API.")
        try:
            key = self._keys.key(tid.lower(), kid)
        except KeysUnavailable:
            raise AuthError(
                503, "keys_unavailable",
                "The sign-in service's signing keys could not be fetched; try again soon.",
            ) from None  # fmt: skip
        if key is None:
            raise _invalid("The token was signed with an unknown key.")
        claims = self._verified_claims(token, key, tid)
        if claims.get("ver") != "2.0":
            raise _invalid("Only Entra ID v2.0 access tokens are accepted.")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not _GUID.match(oid):
            raise _invalid("The token has no valid user object id (oid).")
        scopes = _scopes(claims)
        if self._scope not in scopes:
            raise AuthError(
                403, "insufficient_scope",
                f"The token does not grant the '{self._scope}' scope.", scope=self._scope,
            )  # fmt: skip
        upn = _short_str(claims.get("preferred_username")) or _short_str(claims.get("upn"))
        return Principal(
            user_id=f"{tid.lower()}:{oid.lower()}",
            tenant_id=tid.lower(),
            object_id=oid.lower(),
            name=_short_str(claims.get("name")) or upn or oid.lower(),
            upn=upn,
            scopes=scopes,
            token=token,
        )

    def _verified_claims(self, token: str, key: Any, tid: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audiences,
                issuer=f"{self._host}/{tid}/v2.0",
                leeway=self._leeway,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("The token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise _invalid("The token was issued for another application.") from None
        except jwt.InvalidIssuerError:
            raise _invalid("The token was not issued by the user's Entra tenant.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"The token lacks the '{exc.claim}' claim.") from None
        except jwt.InvalidSignatureError:
            raise _invalid("The token's signature is not valid.") from None
        except jwt.InvalidTokenError:
            raise _invalid("The token is not valid.") from None


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise AuthError(401, "missing_token", "Sign in: this request carries no access token.")
    if len(authorization) > MAX_TOKEN_BYTES + 16:
        raise _invalid(f"The token is larger than {MAX_TOKEN_BYTES // 1024} KB.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _invalid("The Authorization header must use the Bearer scheme.")
    token = token.strip()
    if not token:
        raise AuthError(401, "missing_token", "Sign in: this request carries no access token.")
    return token


def _checked_header(token: str) -> str:
    """The key id of a token shaped like a JWS whose header asks for RS256; else 401."""
    if not _JWT_SHAPE.match(token):
        raise _invalid("The token is not a well-formed JWT.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _invalid("The token is not a well-formed JWT.") from None
    if header.get("alg") != ALGORITHM:
        raise _invalid(f"Only {ALGORITHM}-signed tokens are accepted.")
    if "crit" in header:
        raise _invalid("The token uses critical header extensions the API does not support.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 128:
        raise _invalid("The token has no key id (kid).")
    return kid


def _unverified_tenant(token: str) -> str:
    """The ``tid`` claim before the signature is checked: it only picks whose keys to use."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _invalid("The token is not a well-formed JWT.") from None
    tid = claims.get("tid")
    if not isinstance(tid, str) or not _GUID.match(tid):
        raise _invalid("The token has no valid tenant id (tid).")
    return tid


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scp = claims.get("scp")
    if not isinstance(scp, str):
        if "roles" in claims:
            raise AuthError(
                403, "insufficient_scope",
                "App-only tokens are not accepted; the API acts for a signed-in user.",
            )  # fmt: skip
        return frozenset()
    return frozenset(scp.split())


def _short_str(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


# --- configuration checks --------------------------------------------------------------


def _checked_tenant(value: str | None, name: str) -> str:
    if not value:
        raise ValueError(
            f"Entra authentication needs the tenant id ({name}); see docs/deploy.md. "
            "For local users on this machine only, set COPILOT_AUTH=dev."
        )
    if not _GUID.match(value):
        raise ValueError(
            f"{name} must be a tenant id (a GUID, the directory id), not {value!r}: "
            "issuers and tokens name tenants by GUID."
        )
    return value


def _checked_authority(host: str) -> str:
    parts = urlsplit(host.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/"):
        raise ValueError(
            "COPILOT_ENTRA_AUTHORITY_HOST must be an https:// URL with no path "
            f"(e.g. https://login.microsoftonline.com), not {host!r}: signing keys are only "
            "fetched over HTTPS."
        )
    return f"https://{parts.netloc}"


def _checked_dev_users(users: list[str]) -> frozenset[str]:
    if not users:
        raise ValueError("Dev mode needs at least one user name (COPILOT_DEV_USERS).")
    for name in users:
        if not _DEV_NAME.match(name):
            raise ValueError(
                f"Dev user names are letters, digits, '.', '_', '-', '@': not {name!r}."
            )
    return frozenset(users)
