"""Where Graph tokens come from: three MSAL flows, each a ``token_provider`` for GraphClient.

* ``device_code_provider``: the command line, as a person. ``copilot login`` shows a code
  to enter at the device-login page; the tokens (with a refresh token) are kept in a per-user
  MSAL cache file, so later syncs run without asking again.
* ``client_credentials_provider``: app-only, for an administrator syncing many mailboxes
  with the app's own permissions (``Mail.Read`` application permission, admin-consented).
* ``obo_provider``: the API, on behalf of the signed-in caller (``copilot.api.obo``).

Each returns ``Callable[[], str]``. GraphClient calls its provider before its first request
and again only after Graph answered 401, so every call after the first forces a fresh token
(a refresh, a new app token, a new exchange) instead of handing back the refused one: that is
how expiry or revocation mid-sync is handled. Build one provider per client.

Settings are an ``EntraSettings`` (``connectors.settings``): connectors never import
``copilot``, whose ``Settings`` fits that Protocol. The client secret is read only when it
is handed to MSAL.
Token caches hold refresh tokens, so they are written like ``copilot.api.obo`` writes its
own: folder 0700, file 0600, atomically (a crash leaves the old file, never half of one).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from connectors.errors import ConnectorError
from connectors.settings import EntraSettings, Secret

log = logging.getLogger(__name__)

GRAPH = "https://graph.microsoft.com"
GRAPH_DEFAULT_SCOPE = f"{GRAPH}/.default"
# Delegated permissions the command line asks for: explicit scopes, not ``.default``, so
# MSAL's cache matches the token it got back and refreshes only when it must.
DELEGATED_SCOPES = (f"{GRAPH}/Mail.Read", f"{GRAPH}/Files.Read.All", f"{GRAPH}/Sites.Read.All")
HTTP_TIMEOUT_S = 15.0
MAX_CACHE_BYTES = 4 * 1024 * 1024
DEVICE_FLOW_TIMEOUT_S = 900.0  # Entra's own device codes expire after 15 minutes


class GraphAuthError(ConnectorError):
    """No Graph token; the message says what to do about it (sign in, set a secret)."""

    kind = "graph_sign_in"


def authority_host(settings: EntraSettings) -> str:
    host = urlsplit(str(settings.entra_authority_host).strip())
    if host.scheme != "https" or not host.hostname:
        raise GraphAuthError("COPILOT_ENTRA_AUTHORITY_HOST must be an https:// URL.")
    return f"https://{host.netloc}"


def http_session(settings: EntraSettings) -> requests.Session:
    """MSAL's HTTP client: a timeout, and ``tls_ca_file`` as the CA bundle when set."""
    session = requests.Session()
    options: dict[str, Any] = {"timeout": HTTP_TIMEOUT_S}
    if settings.tls_ca_file is not None:
        # Per request, not ``session.verify``: REQUESTS_CA_BUNDLE would override that.
        options["verify"] = str(Path(settings.tls_ca_file).expanduser())
    # Deliberately set on the instance: the defaults apply to every call MSAL makes.
    session.request = functools.partial(session.request, **options)  # type: ignore[method-assign]
    return session


def _need(**values: str | Secret | None) -> None:
    """Raise, naming every setting of ``values`` that is unset or empty."""
    missing = [f"COPILOT_{name.upper()}" for name, value in values.items() if not _text(value)]
    if missing:
        raise GraphAuthError(f"Microsoft Graph sign-in needs {', '.join(missing)} to be set.")


def _text(value: str | Secret | None) -> str:
    """A setting's text; a secret's is read here, as it is handed to MSAL."""
    if value is None:
        return ""
    return value if isinstance(value, str) else value.get_secret_value()


def _unreachable(exc: Exception, host: str) -> GraphAuthError:
    return GraphAuthError(
        f"Microsoft Entra at {host} could not be reached ({type(exc).__name__}); "
        "check the network (and COPILOT_TLS_CA_FILE behind a proxy), then try again."
    )


def _refused(result: dict[str, Any], what_to_do: str) -> GraphAuthError:
    error = str(result.get("error") or "unknown_error")
    described = str(result.get("error_description") or "").split("\n")[0][:200]
    return GraphAuthError(f"Microsoft Entra refused the token request ({error}: {described}). "
                          f"{what_to_do}")  # fmt: skip


# -- device code (the command line, as a person) --------------------------------------------


def device_code_provider(
    settings: EntraSettings,
    cache_path: Path,
    *,
    prompt: Callable[[str], None],
    user: str = "USER",
    tenant: str | None = None,
    interactive: bool = True,
    scopes: Sequence[str] = DELEGATED_SCOPES,
    timeout_s: float = DEVICE_FLOW_TIMEOUT_S,
    http_client: requests.Session | None = None,
) -> Callable[[], str]:
    """Tokens of the person signed in with a device code, cached at ``cache_path``.

    The first call takes the cached account's token (MSAL refreshes it when it is within
    five minutes of expiry); with no usable account it runs the device-code flow when
    ``interactive`` — ``prompt`` shows Entra's message, then this waits (at most
    ``timeout_s``) for the person to sign in — or raises ``GraphAuthError`` saying to run
    ``copilot login --user USER``. Later calls force a refresh (Graph refused the token).
    ``tenant`` is only for a first sign-in; afterwards the account's own tenant is used.
    """
    _need(entra_client_id=settings.entra_client_id)
    host = authority_host(settings)
    http = http_client or http_session(settings)
    lock = threading.Lock()
    calls = 0
    login = f"run `copilot login --user {user}`"

    def token() -> str:
        nonlocal calls
        force, calls = calls > 0, calls + 1
        with lock:
            cache = load_cache(cache_path)
            realm = next(iter(_realms(cache)), None)
            where = realm or tenant or settings.entra_tenant_id or "organizations"
            try:
                app = msal.PublicClientApplication(  # fetches the tenant's configuration
                    settings.entra_client_id,
                    authority=f"{host}/{where}",
                    token_cache=cache,
                    http_client=http,
                    instance_discovery=False,
                )
                result = _silent(app, list(scopes), force)
                if result is None or "access_token" not in result:
                    if not interactive:
                        why = "nobody is signed in" if result is None else "the sign-in expired"
                        raise GraphAuthError(f"No Microsoft Graph token: {why}; {login} first.")
                    result = _device_flow(app, list(scopes), prompt, timeout_s, login)
            except requests.RequestException as exc:
                raise _unreachable(exc, host) from None
            if cache.has_state_changed:
                write_private(cache_path, cache.serialize())
        return str(result["access_token"])

    return token


def _realms(cache: msal.SerializableTokenCache) -> list[str]:
    accounts = cache.search(msal.TokenCache.CredentialType.ACCOUNT, query={})
    return [str(a["realm"]) for a in accounts if a.get("realm")]


def _silent(
    app: msal.PublicClientApplication, scopes: list[str], force: bool
) -> dict[str, Any] | None:
    """The cached account's token: None with no account, an error dict if refresh failed."""
    accounts = app.get_accounts()
    if not accounts:
        return None
    result: dict[str, Any] | None = app.acquire_token_silent_with_error(
        scopes, account=accounts[0], force_refresh=force
    )
    return result


def _device_flow(
    app: msal.PublicClientApplication,
    scopes: list[str],
    prompt: Callable[[str], None],
    timeout_s: float,
    login: str,
) -> dict[str, Any]:
    flow = app.initiate_device_flow(scopes=scopes)
    if "user_code" not in flow:
        raise _refused(flow, "Check COPILOT_ENTRA_CLIENT_ID and that the app registration "
                             "allows public client flows.")  # fmt: skip
    prompt(str(flow.get("message") or f"Enter the code {flow['user_code']} to sign in."))
    deadline = time.time() + min(timeout_s, float(flow.get("expires_in") or timeout_s))
    result: dict[str, Any] = app.acquire_token_by_device_flow(
        flow, exit_condition=lambda f: time.time() > deadline
    )
    if "access_token" in result:
        return result
    if result.get("error") in ("authorization_pending", "slow_down", "expired_token"):
        raise GraphAuthError(f"The sign-in code expired before the sign-in finished; {login} "
                             "again.")  # fmt: skip
    if result.get("error") == "authorization_declined":
        raise GraphAuthError("The sign-in was declined.")
    raise _refused(result, f"Then {login} again.")


# -- client credentials (app-only, an administrator) -----------------------------------------


def client_credentials_provider(
    settings: EntraSettings,
    *,
    tenant: str | None = None,
    http_client: requests.Session | None = None,
) -> Callable[[], str]:
    """App-only Graph tokens (``…/.default``) with the app's client secret.

    Needs COPILOT_ENTRA_CLIENT_ID, COPILOT_ENTRA_TENANT_ID (or ``tenant``) and
    COPILOT_ENTRA_CLIENT_SECRET. Tokens live in memory only: a new one costs one request.
    """
    _need(
        entra_client_id=settings.entra_client_id,
        entra_client_secret=settings.entra_client_secret,
    )
    tenant = tenant or settings.entra_tenant_id
    if not tenant:
        raise GraphAuthError("App-only Graph access needs COPILOT_ENTRA_TENANT_ID (or --tenant).")
    host = authority_host(settings)
    http = http_client or http_session(settings)
    discovery: dict[str, Any] = {}  # MSAL's discovery cache, kept across fresh apps
    lock = threading.Lock()
    state: dict[str, Any] = {"app": None}

    def token() -> str:
        with lock:
            # Every call after the first means Graph refused the last token: a new app
            # (with an empty token cache) asks Entra instead of returning the cached one.
            try:
                state["app"] = msal.ConfidentialClientApplication(
                    settings.entra_client_id,
                    client_credential=_text(settings.entra_client_secret),
                    authority=f"{host}/{tenant}",
                    token_cache=None if state["app"] is None else msal.TokenCache(),
                    http_client=http,
                    http_cache=discovery,
                    instance_discovery=False,
                )
                result = state["app"].acquire_token_for_client([GRAPH_DEFAULT_SCOPE]) or {}
            except requests.RequestException as exc:
                raise _unreachable(exc, host) from None
        if "access_token" not in result:
            raise _refused(result, "Check COPILOT_ENTRA_CLIENT_SECRET and that an administrator "
                                   "granted the app's Graph application permissions.")  # fmt: skip
        return str(result["access_token"])

    return token


# -- on behalf of (the API) -------------------------------------------------------------------


def obo_provider(obo: Any, principal: Any) -> Callable[[], str]:
    """``obo.graph_token(principal)`` (``copilot.api.obo.OnBehalfOf``), per GraphClient.

    A second call means Graph refused the cached token, so the user's cache is dropped
    and the exchange is made again with the token the request carried.
    """
    calls = 0

    def token() -> str:
        nonlocal calls
        if calls:
            obo.forget(principal.user_id)
        calls += 1
        return str(obo.graph_token(principal))

    return token


# -- the cache file -------------------------------------------------------------------------


def load_cache(path: Path) -> msal.SerializableTokenCache:
    """The cache at ``path``; a missing, oversized or damaged file means starting empty."""
    cache = msal.SerializableTokenCache()
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            raise ValueError("too large")
        cache.deserialize(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        log.warning("Ignoring an unreadable Graph token cache %s: %s", path.name, exc)
        cache = msal.SerializableTokenCache()
    return cache


def cached_username(path: Path) -> str | None:
    """The signed-in account's user name (UPN) in the cache at ``path``, if any."""
    accounts = load_cache(path).search(msal.TokenCache.CredentialType.ACCOUNT, query={})
    return next((str(a["username"]) for a in accounts if a.get("username")), None)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by this OS user only (folder 0700, file 0600).

    The connectors' one atomic writer: connectors must not import copilot, whose code uses
    ``copilot.fileio.write_atomically`` instead.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
