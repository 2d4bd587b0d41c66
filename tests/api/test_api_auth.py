"""The API in Entra ID mode over real HTTP: tokens from a fake Entra (HTTPS on loopback,
its own CA), the attack set refused on every kind of route, users kept apart by (tid, oid)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from tests.fakes.api_server import serving
from tests.fakes.entra_fake import (
    ANNA_OID,
    BOB_OID,
    OTHER_TENANT,
    TENANT,
    FakeEntra,
    hs256_token,
    make_token,
    new_key,
    unsigned_token,
)

ROUTES = [
    ("GET", "/v1/me", None),
    ("GET", "/v1/skills", None),
    ("POST", "/v1/search", {"query": "budget"}),
    ("POST", "/v1/skills/sentiment/run", {"inputs": {"text": "Great!"}, "engine": "local"}),
    ("GET", "/v1/runs", None),
    ("GET", "/v1/sync", None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with FakeEntra() as entra:
        settings = entra.settings(
            tmp_path_factory.mktemp("entra-api"), rate_limit_per_minute=10_000
        )
        with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
            yield {"entra": entra, "client": c}


def attack_tokens(entra: FakeEntra) -> dict[str, str]:
    key = entra.signing_key()
    good = entra.claims()
    now = int(time.time())

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "alg_none": unsigned_token(key.kid, **good),
        "hs256_with_public_key": hs256_token(key.public_pem, key.kid, **good),
        "forged_signature": make_token(new_key(slot=1), key.kid, **good),
        "expired": entra.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not_yet_valid": entra.token(nbf=now + 900, iat=now + 900),
        "wrong_audience": entra.token(aud="api://another-app"),
        "wrong_issuer": entra.token(iss=f"https://evil.example/{TENANT}/v2.0"),
        "unknown_key_id": make_token(new_key(slot=2), "kid-nobody-published", **good),
        "disallowed_tenant": entra.token(tenant=OTHER_TENANT),
        "missing_scope": entra.token(scp="User.Read"),
        "app_only": entra.token(scp=None, roles=["Files.Read.All"]),
        "malformed": "not.a.jwt",
        "bad_json": f"{b64(b'{nope')}.{b64(b'{}')}.c2ln",
        "oversized": "a" * 20_000 + "." + "b" * 20_000 + ".c",
        "dev_user_in_entra_mode": "dev:anna",
    }


EXPECTED = {"missing_scope": 403, "app_only": 403, "disallowed_tenant": 403}
ATTACKS = [
    "alg_none", "hs256_with_public_key", "forged_signature", "expired", "not_yet_valid",
    "wrong_audience", "wrong_issuer", "unknown_key_id", "disallowed_tenant", "missing_scope",
    "app_only", "malformed", "bad_json", "oversized", "dev_user_in_entra_mode",
]  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_token_is_refused_on_every_route(server: dict[str, Any], attack: str) -> None:
    client, entra = server["client"], server["entra"]
    token = attack_tokens(entra)[attack]
    for method, path, body in ROUTES:
        response = client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == EXPECTED.get(attack, 401), (attack, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert set(response.json()) <= {"type", "title", "status", "detail", "code"}
        assert token[:40] not in response.text


def test_no_token_and_wrong_scheme(server: dict[str, Any]) -> None:
    client = server["client"]
    assert client.get("/v1/me").status_code == 401
    basic = client.get("/v1/me", headers={"Authorization": "Basic YW5uYTpwdw=="})
    assert basic.status_code == 401
    assert client.get("/healthz").status_code == 200  # probes need no token


def test_users_are_tid_and_oid_and_kept_apart(server: dict[str, Any]) -> None:
    client, entra = server["client"], server["entra"]
    anna = {"Authorization": f"Bearer {entra.token(oid=ANNA_OID, name='Anna Lee')}"}
    bob = {"Authorization": f"Bearer {entra.token(oid=BOB_OID, name='Bob Roe')}"}
    me = client.get("/v1/me", headers=anna).json()
    assert me["user_id"] == f"{TENANT}:{ANNA_OID}" and me["name"] == "Anna Lee"

    forked = client.post("/v1/skills/sentiment/fork", json={"new_id": "annas-mood"}, headers=anna)
    assert forked.status_code == 201
    run = client.post("/v1/skills/annas-mood/run", json={"inputs": {"text": "Lovely."},
                      "engine": "local"}, headers=anna).json()  # fmt: skip
    assert client.get("/v1/skills/annas-mood", headers=bob).status_code == 404
    assert client.get(f"/v1/runs/{run['run_id']}", headers=bob).status_code == 404
    assert client.get("/v1/runs", headers=bob).json() == []
    assert client.get(f"/v1/runs/{run['run_id']}", headers=anna).status_code == 200
