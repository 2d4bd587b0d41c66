"""Entra ID token validation against a fake Entra over real HTTPS, and dev mode."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from copilot.api.auth import (
    JWKS_MIN_REFRESH_S,
    JWKS_TTL_S,
    MAX_TOKEN_BYTES,
    Authenticator,
    AuthError,
    Principal,
)
from copilot.api.loopback import check_dev_mode_binding
from copilot.config import Settings
from tests.fakes.entra_fake import (
    ANNA_OID,
    APP_ID_URI,
    OTHER_TENANT,
    REQUIRED_SCOPE,
    TENANT,
    FakeEntra,
    hs256_token,
    make_token,
    new_key,
    unsigned_token,
)

KEYS_PATH = "/discovery/v2.0/keys"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(entra: FakeEntra, tmp_path: Path, clock: Clock) -> Authenticator:
    return Authenticator(entra.settings(tmp_path), clock=clock)


def refused(auth: Authenticator, header: str | None) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(header)
    return caught.value


def test_a_valid_token_names_the_user(auth: Authenticator, entra: FakeEntra) -> None:
    token = entra.token()
    user = auth.authenticate(f"Bearer {token}")
    assert user == Principal(
        user_id=f"{TENANT}:{ANNA_OID}",
        tenant_id=TENANT,
        object_id=ANNA_OID,
        name="Anna Example",
        upn="anna@contoso.example",
        scopes=frozenset({REQUIRED_SCOPE, "openid"}),
    )
    assert user.token == token
    assert token not in repr(user)
    # The scheme is case-insensitive, the app id URI is an accepted audience, and the
    # keys are cached: one JWKS fetch for all of it.
    auth.authenticate(f"bearer {entra.token(aud=APP_ID_URI, upn='a@x.example')}")
    assert entra.hits(KEYS_PATH) == 1


def test_upn_and_name_fall_back(auth: Authenticator, entra: FakeEntra) -> None:
    user = auth.authenticate(
        f"Bearer {entra.token(preferred_username=None, upn='anna@upn.example', name=None)}"
    )
    assert (user.upn, user.name) == ("anna@upn.example", "anna@upn.example")


def test_leeway_allows_small_clock_skew(auth: Authenticator, entra: FakeEntra) -> None:
    now = int(time.time())
    token = entra.token(nbf=now + 30, iat=now + 30, exp=now - 30 + 3600)
    assert auth.authenticate(f"Bearer {token}").object_id == ANNA_OID
    assert auth.authenticate(f"Bearer {entra.token(exp=now - 30)}").object_id == ANNA_OID


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("attack", "status", "code", "words"),
    [
        ("alg_none", 401, "invalid_token", "RS256"),
        ("hs256_public_key", 401, "invalid_token", "RS256"),
        ("forged_signature", 401, "invalid_token", "signature"),
        ("no_kid", 401, "invalid_token", "key id"),
        ("expired", 401, "invalid_token", "expired"),
        ("not_yet_valid", 401, "invalid_token", "not valid yet"),
        ("wrong_audience", 401, "invalid_token", "another application"),
        ("wrong_issuer", 401, "invalid_token", "issued"),
        ("issuer_of_other_tenant", 401, "invalid_token", "issued"),
        ("v1_token", 401, "invalid_token", "v2.0"),
        ("missing_exp", 401, "invalid_token", "'exp'"),
        ("missing_oid", 401, "invalid_token", "object id"),
        ("missing_tid", 401, "invalid_token", "tenant id"),
        ("missing_scope", 403, "insufficient_scope", REQUIRED_SCOPE),
        ("app_only", 403, "insufficient_scope", "App-only"),
        ("garbage", 401, "invalid_token", "well-formed"),
        ("two_segments", 401, "invalid_token", "well-formed"),
        ("bad_base64", 401, "invalid_token", "well-formed"),
        ("bad_json", 401, "invalid_token", "well-formed"),
        ("dev_token", 401, "invalid_token", "well-formed"),
    ],
)
def test_hostile_tokens_are_refused(
    auth: Authenticator, entra: FakeEntra, attack: str, status: int, code: str, words: str
) -> None:
    key = entra.signing_key()
    now = int(time.time())
    good = entra.claims()
    tokens = {
        "alg_none": lambda: unsigned_token(key.kid, **good),
        "hs256_public_key": lambda: hs256_token(key.public_pem, key.kid, **good),
        "forged_signature": lambda: make_token(new_key(slot=1), key.kid, **good),
        "no_kid": lambda: make_token(key, "", **good),
        "expired": lambda: entra.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not_yet_valid": lambda: entra.token(nbf=now + 600, iat=now + 600),
        "wrong_audience": lambda: entra.token(aud="api://someone-else"),
        "wrong_issuer": lambda: entra.token(iss=f"https://evil.example/{TENANT}/v2.0"),
        "issuer_of_other_tenant": lambda: entra.token(iss=f"{entra.base_url}/{OTHER_TENANT}/v2.0"),
        "v1_token": lambda: entra.token(ver="1.0"),
        "missing_exp": lambda: entra.token(exp=None),
        "missing_oid": lambda: entra.token(oid=None),
        "missing_tid": lambda: entra.token(tid=None),
        "missing_scope": lambda: entra.token(scp="User.Read openid"),
        "app_only": lambda: entra.token(scp=None, roles=["Sync.All"], name=None),
        "garbage": lambda: "not a jwt at all!",
        "two_segments": lambda: ".".join(entra.token().split(".")[:2]),
        "bad_base64": lambda: "eyJhbGciOi=.e30.c2ln",
        "bad_json": lambda: f"{_b64(b'{not json')}.{_b64(b'{}')}.c2ln",
        "dev_token": lambda: "dev:anna",
    }
    error = refused(auth, f"Bearer {tokens[attack]()}")
    assert (error.status, error.code) == (status, code)
    assert words in error.message
    assert error.www_authenticate.startswith("Bearer ")
    expected = "insufficient_scope" if status == 403 else "invalid_token"
    assert f'error="{expected}"' in error.www_authenticate


def test_missing_header_and_wrong_scheme(auth: Authenticator, entra: FakeEntra) -> None:
    for header in (None, "", "Bearer ", "   "):
        error = refused(auth, header)
        assert (error.status, error.code) == (401, "missing_token")
        assert "error=" not in error.www_authenticate  # RFC 6750 §3.1: no error without a token
    for header in (f"Basic {entra.token()}", f"Token {entra.token()}", "Bearer"):
        error = refused(auth, header)
        assert error.status == 401 and error.code in ("invalid_token", "missing_token")
    assert entra.hits(KEYS_PATH) == 0


def test_oversized_tokens_are_refused_before_parsing(auth: Authenticator, entra: FakeEntra) -> None:
    huge = entra.token(padding="x" * MAX_TOKEN_BYTES)
    error = refused(auth, f"Bearer {huge}")
    assert (error.status, error.code) == (401, "invalid_token")
    assert "larger than 16 KB" in error.message
    assert entra.hits(KEYS_PATH) == 0


def test_error_messages_never_echo_the_token(auth: Authenticator, entra: FakeEntra) -> None:
    token = entra.token(aud='api://x"\\evil')
    error = refused(auth, f"Bearer {token}")
    assert token not in error.message and token not in error.www_authenticate
    assert error.www_authenticate.count('"') % 2 == 0


def test_disallowed_tenant_is_refused_without_fetching(
    auth: Authenticator, entra: FakeEntra
) -> None:
    error = refused(auth, f"Bearer {entra.token(OTHER_TENANT)}")
    assert (error.status, error.code) == (403, "tenant_not_allowed")
    assert entra.hits(KEYS_PATH) == 0  # a token never makes us fetch an arbitrary tenant


def test_allowed_tenants_widen_the_home_tenant(
    entra: FakeEntra, tmp_path: Path, clock: Clock
) -> None:
    settings = entra.settings(tmp_path, entra_allowed_tenants=[TENANT, OTHER_TENANT])
    auth = Authenticator(settings, clock=clock)
    user = auth.authenticate(f"Bearer {entra.token(OTHER_TENANT)}")
    assert user.user_id == f"{OTHER_TENANT}:{ANNA_OID}"
    assert entra.hits(f"/{OTHER_TENANT}{KEYS_PATH}") == 1
    # A token of one tenant signed with another tenant's key is still refused.
    other_key = new_key("key-1", slot=2)
    entra.publish(other_key, OTHER_TENANT)
    forged = make_token(other_key, **entra.claims(OTHER_TENANT, tid=TENANT))
    assert refused(auth, f"Bearer {forged}").code == "invalid_token"


def test_unknown_key_ids_refetch_at_most_once_per_window(
    auth: Authenticator, entra: FakeEntra, clock: Clock
) -> None:
    auth.authenticate(f"Bearer {entra.token()}")
    assert entra.hits(KEYS_PATH) == 1
    clock.now += JWKS_MIN_REFRESH_S + 1
    for n in range(5):  # random kids cannot make us hammer Entra
        stranger = make_token(new_key(f"random-{n}", slot=1), **entra.claims())
        error = refused(auth, f"Bearer {stranger}")
        assert (error.status, error.code) == (401, "invalid_token")
        assert "unknown key" in error.message
    assert entra.hits(KEYS_PATH) == 2
    auth.authenticate(f"Bearer {entra.token()}")  # known keys still work meanwhile
    assert entra.hits(KEYS_PATH) == 2


def test_rotated_keys_are_picked_up(auth: Authenticator, entra: FakeEntra, clock: Clock) -> None:
    auth.authenticate(f"Bearer {entra.token()}")
    rotated = new_key("key-2", slot=1)
    entra.publish(rotated)
    token = entra.token(key=rotated)
    assert refused(auth, f"Bearer {token}").code == "invalid_token"  # within the window
    clock.now += JWKS_MIN_REFRESH_S + 1
    assert auth.authenticate(f"Bearer {token}").object_id == ANNA_OID
    assert entra.hits(KEYS_PATH) == 2


def test_keys_expire_after_a_day(auth: Authenticator, entra: FakeEntra, clock: Clock) -> None:
    auth.authenticate(f"Bearer {entra.token()}")
    clock.now += JWKS_TTL_S + 1
    auth.authenticate(f"Bearer {entra.token()}")
    assert entra.hits(KEYS_PATH) == 2


def test_unreachable_entra_keeps_the_last_keys(
    auth: Authenticator, entra: FakeEntra, clock: Clock, tmp_path: Path
) -> None:
    auth.authenticate(f"Bearer {entra.token()}")
    fresh = Authenticator(entra.settings(tmp_path), clock=clock)
    token = entra.token()
    entra.stop()
    clock.now += JWKS_TTL_S + 1
    assert auth.authenticate(f"Bearer {token}").object_id == ANNA_OID
    # With no keys at all, the caller hears "try again", not "your token is bad".
    error = refused(fresh, f"Bearer {token}")
    assert (error.status, error.code) == (503, "keys_unavailable")


def test_untrusted_certificate_is_refused(entra: FakeEntra, tmp_path: Path) -> None:
    auth = Authenticator(entra.settings(tmp_path, tls_ca_file=None))
    assert refused(auth, f"Bearer {entra.token()}").code == "keys_unavailable"


def test_plain_http_key_sets_are_refused(tmp_path: Path) -> None:
    with FakeEntra(tls=False) as plain:
        with pytest.raises(ValueError, match="https"):
            Authenticator(plain.settings(tmp_path))
        assert sum(plain.hits_by_path.values()) == 0


def test_entra_mode_refuses_to_start_half_configured(tmp_path: Path) -> None:
    base = {"home": tmp_path, "auth": "entra"}
    with pytest.raises(ValueError, match=r"tenant id.*COPILOT_AUTH=dev"):  # the way out named
        Authenticator(Settings(**base, entra_client_id="c"))
    with pytest.raises(ValueError, match="client id"):
        Authenticator(Settings(**base, entra_tenant_id=TENANT))
    with pytest.raises(ValueError, match="GUID"):
        Authenticator(Settings(**base, entra_tenant_id="contoso.com", entra_client_id="c"))
    with pytest.raises(ValueError, match="CA bundle"):
        Authenticator(
            Settings(
                **base, entra_tenant_id=TENANT, entra_client_id="c",
                tls_ca_file=tmp_path / "missing.pem",
            )
        )  # fmt: skip
    assert Authenticator(Settings(**base, entra_tenant_id=TENANT, entra_audiences=[APP_ID_URI]))


# --- dev mode ---------------------------------------------------------------------------


@pytest.fixture
def dev(tmp_path: Path) -> Authenticator:
    return Authenticator(Settings(home=tmp_path, auth="dev", dev_users=["anna", "bob"]))


def test_dev_mode_accepts_named_users(dev: Authenticator) -> None:
    user = dev.authenticate("Bearer dev:anna")
    assert (user.user_id, user.name, user.token) == ("local:anna", "anna", None)
    assert user.tenant_id is None
    assert REQUIRED_SCOPE in user.scopes


def test_dev_mode_refuses_strangers_and_real_tokens(dev: Authenticator, entra: FakeEntra) -> None:
    for header in (
        "Bearer dev:mallory",
        f"Bearer {entra.token()}",
        "Bearer anna",
        "Basic dev:anna",
    ):
        assert refused(dev, header).status == 401
    assert entra.hits(KEYS_PATH) == 0


def test_only_a_key_to_fetch_or_a_user_to_look_up_makes_authentication_wait(
    auth: Authenticator, dev: Authenticator, entra: FakeEntra, clock: Clock
) -> None:
    # The API authenticates on its event loop unless this says the call may wait on I/O.
    header = f"Bearer {entra.token()}"
    assert auth.may_wait(header)  # no signing keys in memory yet: a fetch
    auth.authenticate(header)
    assert not auth.may_wait(header) and not auth.may_wait(f"Bearer {entra.token()}")
    rotated = new_key("key-9", slot=1)
    assert auth.may_wait(f"Bearer {entra.token(key=rotated)}")  # an unknown key id
    clock.now += JWKS_TTL_S + 1
    assert auth.may_wait(header)  # due for a refresh
    # Refused without any I/O: no header, another scheme, junk, a tenant not allowed.
    for refused_at_once in (None, "Basic abc", "Bearer x.y", f"Bearer {entra.token(OTHER_TENANT)}"):
        assert not auth.may_wait(refused_at_once)
    assert entra.hits(KEYS_PATH) == 1  # asking fetched nothing
    assert not dev.may_wait("Bearer dev:anna")  # a configured dev user
    assert dev.may_wait("Bearer dev:carol")  # looked up among the local users with data


def test_dev_mode_is_off_unless_chosen(auth: Authenticator) -> None:
    assert refused(auth, "Bearer dev:anna").code == "invalid_token"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com", ""])
def test_dev_mode_refuses_reachable_addresses(tmp_path: Path, host: str) -> None:
    with pytest.raises(RuntimeError, match="loopback"):
        check_dev_mode_binding(Settings(home=tmp_path, auth="dev"), host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_dev_mode_serves_loopback(tmp_path: Path, host: str) -> None:
    check_dev_mode_binding(Settings(home=tmp_path, auth="dev"), host)


def test_entra_mode_serves_any_address(tmp_path: Path) -> None:
    check_dev_mode_binding(Settings(home=tmp_path, auth="entra"), "0.0.0.0")
