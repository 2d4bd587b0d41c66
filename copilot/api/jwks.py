"""Entra ID signing keys (JWKS) per tenant: fetched over HTTPS only, cached, refetched sparingly.

The cache is our own (~80 lines) rather than PyJWT's ``PyJWKClient``: the project allows
PyJWT 2.8, whose client refetches on every unknown key id; and we also want a back-off after
failed fetches and to keep serving the last good keys while Entra is unreachable.

It knows nothing of HTTP answers: ``JwksCache.key`` returns None for an unknown key id and
raises ``KeysUnavailable`` when it has no keys at all; :mod:`copilot.api.auth` turns those
into 401 and 503.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from copilot.config import Settings
from copilot.errors import CopilotError

log = logging.getLogger(__name__)

JWKS_TTL_S = 24 * 3600.0  # Entra publishes new keys weeks ahead; a day is plenty fresh
JWKS_MIN_REFRESH_S = 300.0  # an unknown kid refetches at most this often per tenant
JWKS_RETRY_AFTER_FAILURE_S = 30.0  # with no keys at all, how soon a failed fetch is retried
JWKS_TIMEOUT_S = 10.0
JWKS_MAX_BYTES = 1024 * 1024
ALGORITHM = "RS256"


class KeysUnavailable(CopilotError):
    """No signing keys for the tenant: never fetched successfully, and the last try failed."""

    kind = "keys_unavailable"
    status = 503
    title = "Sign-in is unavailable"


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system CAs plus ``settings.tls_ca_file`` (a proxy's or a test's CA)."""
    context = ssl.create_default_context()
    if settings.tls_ca_file is not None:
        path = settings.tls_ca_file.expanduser()
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"COPILOT_TLS_CA_FILE {path} is not a readable CA bundle.") from exc
    return context


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could lead to plain HTTP or another host: refuse it


def https_fetcher(
    context: ssl.SSLContext, *, timeout: float = JWKS_TIMEOUT_S, max_bytes: int = JWKS_MAX_BYTES
) -> Callable[[str], bytes]:
    """A GET that only speaks HTTPS, follows no redirects and reads a bounded body."""
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )

    def fetch(url: str) -> bytes:
        if urlsplit(url).scheme != "https":
            raise ValueError(f"refusing to fetch signing keys over plain HTTP: {url}")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with opener.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ValueError(f"the key set at {url} is larger than {max_bytes} bytes")
        return body

    return fetch


@dataclass
class _TenantKeys:
    keys: dict[str, Any] | None = None  # kid -> public key, from the last good fetch
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Per-tenant signing keys: kept a day, refetched on an unknown kid at most every 5 min."""

    def __init__(self, host: str, fetch: Callable[[str], bytes], clock: Callable[[], float]):
        self._host = host
        self._fetch = fetch
        self._clock = clock
        self._tenants: dict[str, _TenantKeys] = {}
        self._lock = threading.Lock()

    def key(self, tenant: str, kid: str) -> Any | None:
        """The public key ``kid`` of ``tenant``; None if the tenant has no such key."""
        with self._lock:
            entry = self._tenants.setdefault(tenant, _TenantKeys())
        with entry.lock:
            now = self._clock()
            since_attempt = now - entry.attempted_at
            stale = entry.keys is None or now - entry.fetched_at >= JWKS_TTL_S
            unknown = entry.keys is not None and kid not in entry.keys
            if (stale and since_attempt >= JWKS_RETRY_AFTER_FAILURE_S) or (
                unknown and since_attempt >= JWKS_MIN_REFRESH_S
            ):
                self._refresh(tenant, entry, now)
            if entry.keys is None:
                raise KeysUnavailable(f"no signing keys for tenant {tenant}")
            return entry.keys.get(kid)

    def cached(self, tenant: str, kid: str) -> bool:
        """Whether ``key`` would answer from memory, without a fetch: the tenant's keys are
        fresh and hold ``kid``."""
        entry = self._tenants.get(tenant)
        keys = entry.keys if entry is not None else None
        fresh = entry is not None and self._clock() - entry.fetched_at < JWKS_TTL_S
        return keys is not None and kid in keys and fresh

    def _refresh(self, tenant: str, entry: _TenantKeys, now: float) -> None:
        """Fetch the tenant's JWKS; on failure keep whatever keys we had."""
        entry.attempted_at = now
        url = f"{self._host}/{tenant}/discovery/v2.0/keys"
        try:
            keys = parse_jwks(self._fetch(url))
        except Exception as exc:  # network, TLS, HTTP status, JSON: all mean "no new keys"
            log.warning("Could not fetch Entra signing keys from %s: %s", url, exc)
            return
        log.info("Fetched %d Entra signing keys for tenant %s", len(keys), tenant)
        entry.keys = keys
        entry.fetched_at = now


def parse_jwks(body: bytes) -> dict[str, Any]:
    """``{kid: public key}`` of the RSA signing keys in a JWKS document; ValueError if none."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, Any] = {}
    for item in document["keys"]:
        if not isinstance(item, dict) or item.get("kty") != "RSA":
            continue
        if item.get("use", "sig") != "sig" or not isinstance(item.get("kid"), str):
            continue
        try:
            keys[item["kid"]] = jwt.PyJWK(item, algorithm=ALGORITHM).key
        except jwt.PyJWKError:
            continue
    if not keys:
        raise ValueError("the JWKS document has no usable RSA signing keys")
    return keys
