"""A fake Microsoft Entra ID for tests: real HTTPS on 127.0.0.1, keys and tokens on demand.

    with FakeEntra() as entra:                    # entra.base_url == "https://127.0.0.1:PORT"
        settings = entra.settings(home=tmp_path)  # authority, tenant, client id, CA bundle set
        token = entra.token(name="Anna")          # a valid v2 access token for the API
        Authenticator(settings).authenticate(f"Bearer {token}")
        entra.hits("/discovery/v2.0/keys")        # how many JWKS fetches were made

It serves what the copilot (and MSAL) ask of Entra: ``/{tenant}/discovery/v2.0/keys``,
``/{tenant}/v2.0/.well-known/openid-configuration`` and, at ``/{tenant}/oauth2/v2.0/token``,
the on-behalf-of, device-code, refresh-token and client-credentials grants (the device code
itself comes from ``/{tenant}/oauth2/v2.0/devicecode``; a test plays the user with
``entra.approve(user_code)``). The TLS certificate comes from a throwaway CA written to a
temporary folder (``entra.ca_file``), so clients verify it the normal way instead of turning
verification off. ``FakeEntra(tls=False)`` serves plain HTTP, to prove that is refused.

The module-level helpers (``make_token``, ``unsigned_token``, ``hs256_token``,
``valid_claims``) build the hostile tokens the tests throw at the validator. The ``entra``
fixture (tests/conftest.py) runs one for a test.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from copilot.config import Settings
from tests.fakes.tls import tls_material

TENANT = "7c3f1e2a-0b4d-4c5e-9f60-1a2b3c4d5e6f"
OTHER_TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT_ID = "5d2c4b1a-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
APP_ID_URI = f"api://{CLIENT_ID}"
ANNA_OID = "11111111-2222-4333-8444-555555555555"
BOB_OID = "66666666-7777-4888-9999-aaaaaaaaaaaa"
CLIENT_SECRET = "fake-secret-for-tests"
REQUIRED_SCOPE = "access_as_user"
HANDLER_TIMEOUT_S = 5.0
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRAPH_CONSENTED = ("https://graph.microsoft.com/Mail.Read", "https://graph.microsoft.com/User.Read")


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with its key id, like one entry of a tenant's JWKS."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }


@functools.lru_cache(maxsize=8)
def _rsa_key(slot: int) -> rsa.RSAPrivateKey:
    """RSA generation is the slow part of these tests; reuse a few keys per process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_key(kid: str | None = None, *, slot: int = 0) -> SigningKey:
    return SigningKey(kid or f"kid-{uuid.uuid4().hex[:12]}", _rsa_key(slot))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def make_token(key: SigningKey, kid: str | None = None, **claims: Any) -> str:
    """An RS256 JWT signed with ``key``; ``kid`` defaults to the key's own id, "" omits it."""
    kid = key.kid if kid is None else kid
    return jwt.encode(
        claims, key.private_key, algorithm="RS256", headers={"kid": kid} if kid else {}
    )


def unsigned_token(kid: str, **claims: Any) -> str:
    """The ``alg: none`` attack: claims with no signature at all."""
    return f"{_b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64json(claims)}."


def hs256_token(secret: bytes, kid: str, **claims: Any) -> str:
    """The key-confusion attack: HS256 with the public key's PEM used as the HMAC secret."""
    signing_input = f"{_b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def valid_claims(
    authority: str, *, tenant: str = TENANT, oid: str | None = ANNA_OID, **overrides: Any
) -> dict[str, Any]:
    """The claims of a good delegated v2 access token; an override of None drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": CLIENT_ID,
        "iss": f"{authority}/{tenant}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "ver": "2.0",
        "tid": tenant,
        "oid": oid,
        "sub": f"sub-{(oid or 'none')[:8]}",
        "azp": "add-in-client-id",
        "scp": f"{REQUIRED_SCOPE} openid",
        "name": "Anna Example",
        "preferred_username": "anna@contoso.example",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# --- TLS material -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tls_material() -> tuple[bytes, bytes, bytes]:
    """(CA cert, server cert, server key) PEMs, made once per test session."""
    return tls_material("Fake Entra Test CA")


# --- the server -------------------------------------------------------------------------


class FakeEntra:
    """The fake identity provider; a context manager that starts it on a free port."""

    def __init__(self, *, tls: bool = True, tenants: tuple[str, ...] = (TENANT, OTHER_TENANT)):
        self.tls = tls
        self.hits_by_path: Counter[str] = Counter()
        self.token_requests: list[dict[str, str]] = []  # form fields of each token POST
        self.keys: dict[str, list[SigningKey]] = {t: [new_key("key-1")] for t in tenants}
        self.graph_expires_in = 3599  # lifetime of the Graph tokens the OBO grant issues
        self._obo_errors: deque[dict[str, Any]] = deque()
        self._issued = 0
        self.device_interval = 1  # seconds MSAL waits between device-code polls
        self._devices: dict[str, dict[str, Any]] = {}  # device code -> pending sign-in
        self._refresh: dict[str, dict[str, Any]] = {}  # refresh token -> (tenant, user)
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="fake-entra-"))
        self.ca_file = self._dir / "ca.pem"
        ca_pem, cert_pem, key_pem = _tls_material()
        self.ca_file.write_bytes(ca_pem)
        (self._dir / "server.pem").write_bytes(cert_pem + key_pem)
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._dir / "server.pem")
            self._server.tls = context
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle

    def __enter__(self) -> FakeEntra:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Stop answering (Entra is down); the CA file stays for clients still configured."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- what tests use

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def settings(self, home: Path, **overrides: Any) -> Settings:
        """Settings of an API that trusts this fake as its Entra."""
        values: dict[str, Any] = {
            "home": home,
            "auth": "entra",
            "entra_tenant_id": TENANT,
            "entra_client_id": CLIENT_ID,
            "entra_audiences": [APP_ID_URI],
            "entra_authority_host": self.base_url,
            "entra_client_secret": CLIENT_SECRET,
            "tls_ca_file": self.ca_file,
        }
        values.update(overrides)
        return Settings(**values)

    def signing_key(self, tenant: str = TENANT) -> SigningKey:
        return self.keys[tenant][-1]

    def claims(self, tenant: str = TENANT, **overrides: Any) -> dict[str, Any]:
        return valid_claims(self.base_url, tenant=tenant, **overrides)

    def token(self, tenant: str = TENANT, *, key: SigningKey | None = None, **claims: Any) -> str:
        """A valid access token for the API; keyword claims override (None drops one)."""
        return make_token(key or self.signing_key(tenant), **self.claims(tenant, **claims))

    def publish(self, key: SigningKey, tenant: str = TENANT) -> None:
        """Add a key to the tenant's JWKS (key rotation)."""
        with self._lock:
            self.keys[tenant].append(key)

    def hits(self, path_suffix: str) -> int:
        """Requests so far whose path ends with ``path_suffix``."""
        with self._lock:
            return sum(n for path, n in self.hits_by_path.items() if path.endswith(path_suffix))

    def fail_next_token_request(
        self, *, error: str, code: int, description: str, suberror: str | None = None
    ) -> None:
        """Answer the next token request with an Entra error (HTTP 400)."""
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": "2025-01-01 00:00:00Z",
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
        if suberror:
            body["suberror"] = suberror
        with self._lock:
            self._obo_errors.append(body)

    def require_consent(self) -> None:
        """The next OBO exchange fails as Entra does when nobody granted Graph consent."""
        self.fail_next_token_request(
            error="invalid_grant",
            code=65001,
            description="The user or administrator has not consented to use the application.",
            suberror="consent_required",
        )

    def approve(self, user_code: str, *, oid: str = ANNA_OID, name: str = "Anna Example",
                upn: str = "anna@contoso.example") -> None:  # fmt: skip
        """The user opens the device-login page, enters ``user_code`` and signs in."""
        with self._lock:
            for pending in self._devices.values():
                if pending["user_code"] == user_code:
                    pending["user"] = {"oid": oid, "name": name, "upn": upn}
                    return
        raise KeyError(f"no pending device sign-in with code {user_code}")

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token stops working (password reset, admin revocation)."""
        with self._lock:
            self._refresh.clear()

    # -- request handling (called from the handler threads)

    def _count(self, path: str) -> None:
        with self._lock:
            self.hits_by_path[path] += 1

    def _jwks(self, tenant: str) -> tuple[int, Any]:
        with self._lock:
            keys = self.keys.get(tenant)
            if keys is None:
                return 400, {"error": "invalid_tenant", "error_codes": [90002]}
            return 200, {"keys": [k.jwk() for k in keys]}

    def _openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }

    def _token(self, tenant: str, form: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.token_requests.append(form)
            if self._obo_errors:
                return 400, self._obo_errors.popleft()
        grant = form.get("grant_type")
        if form.get("client_id") != CLIENT_ID or (
            # Public-client grants (device code, its refresh) carry no secret; others must.
            form.get("client_secret") != CLIENT_SECRET
            and (grant not in (DEVICE_CODE_GRANT, "refresh_token") or "client_secret" in form)
        ):
            return 401, {"error": "invalid_client", "error_codes": [7000215]}
        if grant == DEVICE_CODE_GRANT:
            return self._device_token(tenant, form)
        if grant == "refresh_token":
            return self._refresh_token(form)
        if grant == "client_credentials":
            return self._client_token(tenant, form)
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or (
            form.get("requested_token_use") != "on_behalf_of"
        ):
            return 400, {"error": "unsupported_grant_type", "error_codes": [70003]}
        try:  # the assertion must be one of our own tokens for this API
            key = jwt.PyJWK(self.signing_key(tenant).jwk(), algorithm="RS256")
            user = jwt.decode(
                form.get("assertion", ""), key.key, algorithms=["RS256"],
                audience=[CLIENT_ID, APP_ID_URI], issuer=f"{self.base_url}/{tenant}/v2.0",
            )  # fmt: skip
        except (jwt.InvalidTokenError, KeyError):
            return 400, {"error": "invalid_grant", "error_codes": [50013]}
        return self._user_tokens(tenant, user, form.get("scope", ""))

    def _user_tokens(self, tenant: str, user: dict[str, Any], scope: str) -> tuple[int, Any]:
        """Graph access + refresh token, id token and client info for a signed-in user."""
        with self._lock:
            self._issued += 1
            serial = self._issued
        now = int(time.time())
        scopes = [s for s in scope.split() if "graph" in s]
        if scopes == [GRAPH_DEFAULT]:  # like Entra: .default stands for the consented scopes
            scopes = list(GRAPH_CONSENTED)
        id_claims = {
            "aud": CLIENT_ID, "iss": f"{self.base_url}/{tenant}/v2.0", "iat": now, "nbf": now,
            "exp": now + 3600, "tid": user["tid"], "oid": user["oid"], "sub": user["sub"],
            "name": user.get("name", ""), "preferred_username": user.get("preferred_username", ""),
            "ver": "2.0",
        }  # fmt: skip
        return 200, {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": self.graph_expires_in,
            "ext_expires_in": self.graph_expires_in,
            "access_token": f"graph-token.{user['oid']}.{serial}",
            "refresh_token": self._remember_refresh(tenant, user, scopes, serial),
            "id_token": make_token(self.signing_key(tenant), **id_claims),
            "client_info": _b64json({"uid": user["oid"], "utid": user["tid"]}),
        }

    def _remember_refresh(
        self, tenant: str, user: dict[str, Any], scopes: list[str], serial: int
    ) -> str:
        token = f"graph-refresh.{user['oid']}.{serial}"
        with self._lock:
            self._refresh[token] = {"tenant": tenant, "user": user, "scope": " ".join(scopes)}
        return token

    def _device_code(self, tenant: str, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client", "error_codes": [700016]}
        with self._lock:
            self._issued += 1
            user_code = f"FAKE{self._issued:04d}"
            device_code = uuid.uuid4().hex
            self._devices[device_code] = {
                "tenant": tenant, "user_code": user_code, "scope": form.get("scope", ""),
                "user": None,
            }  # fmt: skip
        page = f"{self.base_url}/devicelogin"
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": page,
            "expires_in": 900,
            "interval": self.device_interval,
            "message": f"To sign in, use a web browser to open the page {page} and enter "
            f"the code {user_code} to authenticate.",
        }

    def _device_token(self, tenant: str, form: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            pending = self._devices.get(form.get("device_code", ""))
            if pending is None or pending["tenant"] != tenant:
                return 400, {"error": "expired_token", "error_codes": [70020]}
            if pending["user"] is None:
                return 400, {"error": "authorization_pending", "error_codes": [70016]}
            del self._devices[form["device_code"]]
        who = pending["user"]
        user = {"tid": tenant, "oid": who["oid"], "sub": f"sub-{who['oid'][:8]}",
                "name": who["name"], "preferred_username": who["upn"]}  # fmt: skip
        return self._user_tokens(tenant, user, pending["scope"])

    def _refresh_token(self, form: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            known = self._refresh.pop(form.get("refresh_token", ""), None)  # rotated
        if known is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "AADSTS50173: The provided grant has expired.",
                "error_codes": [50173],
            }
        return self._user_tokens(known["tenant"], known["user"], form.get("scope", ""))

    def _client_token(self, tenant: str, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("scope") != GRAPH_DEFAULT:
            return 400, {"error": "invalid_scope", "error_codes": [1002012]}
        with self._lock:
            self._issued += 1
            serial = self._issued
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.graph_expires_in,
            "access_token": f"app-token.{tenant}.{serial}",
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshakes happen here, in the request's thread, never in the accept loop."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDLER_TIMEOUT_S)
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that did not trust us, or hung up: nothing to answer
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request is not a test failure


def _handler_for(entra: FakeEntra) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = entra

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: FakeEntra
    protocol_version = "HTTP/1.0"
    timeout = HANDLER_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.owner._count(path)
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["discovery", "v2.0", "keys"]:
            self._send(*self.owner._jwks(parts[0]))
        elif len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._send(200, self.owner._openid_configuration(parts[0]))
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.owner._count(path)
        length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            self._send(*self.owner._token(parts[0], form))
        elif len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            self._send(*self.owner._device_code(parts[0], form))
        else:
            self._send(404, {"error": "not_found"})

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)
