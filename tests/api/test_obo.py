"""Graph tokens on behalf of the signed-in user, exchanged with a fake Entra over HTTPS."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from copilot.api.auth import Authenticator, Principal
from copilot.api.obo import GraphTokenError, OnBehalfOf
from copilot.config import Settings
from tests.fakes.entra_fake import (
    ANNA_OID,
    BOB_OID,
    FakeEntra,
)

TOKEN_PATH = "/oauth2/v2.0/token"


@pytest.fixture
def settings(entra: FakeEntra, tmp_path: Path) -> Settings:
    return entra.settings(tmp_path / "home")


def sign_in(entra: FakeEntra, settings: Settings, oid: str = ANNA_OID) -> Principal:
    return Authenticator(settings).authenticate(f"Bearer {entra.token(oid=oid)}")


def test_exchanges_the_users_token_once(entra: FakeEntra, settings: Settings) -> None:
    anna = sign_in(entra, settings)
    obo = OnBehalfOf(settings)
    token = obo.graph_token(anna)
    assert token.startswith(f"graph-token.{ANNA_OID}.")
    sent = entra.token_requests[-1]
    assert sent["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert sent["requested_token_use"] == "on_behalf_of"
    assert sent["assertion"] == anna.token
    # The second call is served from the user's cache, also by a new process.
    assert obo.graph_token(anna) == token
    assert OnBehalfOf(settings).graph_token(anna) == token
    assert entra.hits(TOKEN_PATH) == 1


def test_a_token_near_expiry_is_replaced(entra: FakeEntra, settings: Settings) -> None:
    entra.graph_expires_in = 120  # inside the 5-minute margin
    anna = sign_in(entra, settings)
    obo = OnBehalfOf(settings)
    first = obo.graph_token(anna)
    assert obo.graph_token(anna) != first
    assert entra.hits(TOKEN_PATH) == 2


def test_caches_are_private_and_per_user(entra: FakeEntra, settings: Settings) -> None:
    obo = OnBehalfOf(settings)
    anna, bob = sign_in(entra, settings), sign_in(entra, settings, BOB_OID)
    anna_token, bob_token = obo.graph_token(anna), obo.graph_token(bob)
    assert anna_token != bob_token
    folder = settings.home_dir / "tokens"
    files = sorted(folder.iterdir())
    assert files == sorted([obo.cache_path(anna.user_id), obo.cache_path(bob.user_id)])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert ANNA_OID not in path.name  # user ids are hashed, never path parts
    anna_file = obo.cache_path(anna.user_id).read_text()
    bob_file = obo.cache_path(bob.user_id).read_text()
    assert anna_token in anna_file and bob_token not in anna_file
    assert bob_token in bob_file and anna_token not in bob_file
    assert json.loads(anna_file)["AccessToken"]


def test_a_damaged_cache_is_replaced(entra: FakeEntra, settings: Settings) -> None:
    anna = sign_in(entra, settings)
    obo = OnBehalfOf(settings)
    path = obo.cache_path(anna.user_id)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert obo.graph_token(anna).startswith("graph-token.")
    assert json.loads(path.read_text())["AccessToken"]


def test_forget_deletes_the_users_tokens(entra: FakeEntra, settings: Settings) -> None:
    anna = sign_in(entra, settings)
    obo = OnBehalfOf(settings)
    obo.graph_token(anna)
    assert obo.forget(anna.user_id) is True
    assert not obo.cache_path(anna.user_id).exists()
    assert obo.forget(anna.user_id) is False


def test_missing_consent_is_explained(entra: FakeEntra, settings: Settings) -> None:
    anna = sign_in(entra, settings)
    entra.require_consent()
    with pytest.raises(GraphTokenError) as caught:
        OnBehalfOf(settings).graph_token(anna)
    assert caught.value.code == "consent_required"
    assert "administrator must grant consent" in caught.value.message
    assert "AADSTS65001" in caught.value.message
    assert anna.token not in caught.value.message


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        ("interaction_required", 50076, "interaction_required"),
        ("invalid_client", 7000222, "server_misconfigured"),
        ("invalid_grant", 50013, "sign_in_again"),
        ("temporarily_unavailable", 90033, "refused"),
    ],
)
def test_other_entra_errors_are_explained(
    entra: FakeEntra, settings: Settings, error: str, code: int, expected: str
) -> None:
    anna = sign_in(entra, settings)
    entra.fail_next_token_request(error=error, code=code, description="scripted")
    with pytest.raises(GraphTokenError) as caught:
        OnBehalfOf(settings).graph_token(anna)
    assert caught.value.code == expected
    assert f"AADSTS{code}" in caught.value.message


def test_dev_users_have_no_graph_token(settings: Settings) -> None:
    dev_user = Principal("dev:anna", None, None, "anna", None, frozenset(), None)
    with pytest.raises(GraphTokenError) as caught:
        OnBehalfOf(settings).graph_token(dev_user)
    assert caught.value.code == "no_user_token"


def test_unreachable_entra_is_a_plain_error(entra: FakeEntra, settings: Settings) -> None:
    anna = sign_in(entra, settings)
    entra.stop()
    with pytest.raises(GraphTokenError) as caught:
        OnBehalfOf(settings).graph_token(anna)
    assert caught.value.code == "unavailable"


def test_needs_a_client_secret(tmp_path: Path, entra: FakeEntra) -> None:
    with pytest.raises(ValueError, match="COPILOT_ENTRA_CLIENT_SECRET"):
        OnBehalfOf(entra.settings(tmp_path, entra_client_secret=None))
