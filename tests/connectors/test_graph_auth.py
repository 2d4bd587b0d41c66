"""Graph token providers (connectors/graph/auth.py) against the fake Entra over HTTPS:
device-code sign-in with a cached refresh token, app-only client credentials, and OBO."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from connectors.graph.auth import (
    GraphAuthError,
    client_credentials_provider,
    device_code_provider,
    obo_provider,
)
from copilot.config import Settings
from tests.fakes.entra_fake import (
    BOB_OID,
    CLIENT_SECRET,
    DEVICE_CODE_GRANT,
    TENANT,
    FakeEntra,
)


@pytest.fixture
def settings(entra: FakeEntra, tmp_path: Path) -> Settings:
    return entra.settings(tmp_path / "home")


def signs_in_as(entra: FakeEntra, oid: str | None = None, shown: list[str] | None = None):
    """A prompt that plays the person: reads the code from Entra's message and approves it."""

    def prompt(message: str) -> None:
        if shown is not None:
            shown.append(message)
        code = re.search(r"enter the code (\S+)", message)
        assert code, message
        entra.approve(code.group(1), **({"oid": oid} if oid else {}))

    return prompt


def grants(entra: FakeEntra) -> list[str]:
    return [form.get("grant_type", "") for form in entra.token_requests]


def test_device_code_sign_in_is_cached_private_and_reused(
    entra: FakeEntra, settings: Settings, tmp_path: Path
) -> None:
    cache = tmp_path / "home" / "tokens" / "cli-anna.json"
    shown: list[str] = []
    token = device_code_provider(settings, cache, prompt=signs_in_as(entra, shown=shown))()
    assert token.startswith("graph-token.") and len(shown) == 1
    assert "devicelogin" in shown[0]
    assert grants(entra) == [DEVICE_CODE_GRANT]
    assert "client_secret" not in entra.token_requests[0], "a public client sends no secret"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert "graph-refresh." in cache.read_text()
    assert not list(cache.parent.glob(".tmp-*")), "atomic writes leave no temporary file"

    # A new process (a new provider) with the same cache: no prompt, no request at all.
    never = device_code_provider(settings, cache, prompt=lambda m: pytest.fail(m))
    assert never() == token
    assert grants(entra) == [DEVICE_CODE_GRANT]


def test_expired_access_token_is_refreshed_with_the_refresh_token(
    entra: FakeEntra, settings: Settings, tmp_path: Path
) -> None:
    entra.graph_expires_in = 60  # MSAL treats a token this close to expiry as expired
    cache = tmp_path / "tokens" / "cli-anna.json"
    first = device_code_provider(settings, cache, prompt=signs_in_as(entra))()
    second = device_code_provider(settings, cache, prompt=lambda m: pytest.fail(m))()
    assert second != first and second.startswith("graph-token.")
    assert grants(entra) == [DEVICE_CODE_GRANT, "refresh_token"]
    assert json.loads(cache.read_text())["RefreshToken"], "the rotated refresh token is kept"


def test_a_second_call_forces_a_refresh_because_graph_refused_the_token(
    entra: FakeEntra, settings: Settings, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens" / "cli-anna.json"
    device_code_provider(settings, cache, prompt=signs_in_as(entra))()
    provider = device_code_provider(settings, cache, prompt=lambda m: pytest.fail(m))
    cached = provider()
    assert provider() != cached  # what GraphClient does after a 401
    assert grants(entra)[-1] == "refresh_token"


def test_without_a_sign_in_the_error_says_to_run_copilot_login(
    entra: FakeEntra, settings: Settings, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens" / "cli-anna.json"
    provider = device_code_provider(
        settings, cache, prompt=lambda m: pytest.fail(m), user="anna", interactive=False
    )
    with pytest.raises(GraphAuthError, match=r"copilot login --user anna"):
        provider()
    entra.graph_expires_in = 60  # so the next call must use the refresh token
    device_code_provider(settings, cache, prompt=signs_in_as(entra))()
    entra.revoke_refresh_tokens()  # e.g. a password reset
    later = device_code_provider(
        settings, cache, prompt=lambda m: pytest.fail(m), user="anna", interactive=False
    )
    with pytest.raises(GraphAuthError, match=r"sign-in expired; run `copilot login --user anna`"):
        later()


def test_a_damaged_cache_file_means_signing_in_again(
    entra: FakeEntra, settings: Settings, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens" / "cli-anna.json"
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    token = device_code_provider(settings, cache, prompt=signs_in_as(entra, oid=BOB_OID))()
    assert token.startswith(f"graph-token.{BOB_OID}.")


def test_client_credentials_are_app_only_and_refresh_when_refused(
    entra: FakeEntra, settings: Settings
) -> None:
    provider = client_credentials_provider(settings)
    first = provider()
    assert first.startswith(f"app-token.{TENANT}.")
    sent = entra.token_requests[-1]
    assert sent["grant_type"] == "client_credentials" and sent["client_secret"] == CLIENT_SECRET
    assert sent["scope"] == "https://graph.microsoft.com/.default"
    assert provider() != first, "a second call (after a 401) gets a new token"


def test_client_credentials_name_the_missing_setting(entra: FakeEntra, tmp_path: Path) -> None:
    settings = entra.settings(tmp_path, entra_client_secret=None)
    with pytest.raises(GraphAuthError, match="COPILOT_ENTRA_CLIENT_SECRET"):
        client_credentials_provider(settings)
    wrong = entra.settings(tmp_path, entra_client_secret="wrong")
    with pytest.raises(GraphAuthError, match=r"invalid_client.*COPILOT_ENTRA_CLIENT_SECRET"):
        client_credentials_provider(wrong)()


def test_unreachable_entra_is_a_plain_error(entra: FakeEntra, settings: Settings) -> None:
    entra.stop()
    with pytest.raises(GraphAuthError, match="could not be reached"):
        client_credentials_provider(settings)()


def test_obo_provider_exchanges_again_after_a_refusal() -> None:
    calls: list[str] = []

    class Obo:
        def graph_token(self, principal: object) -> str:
            calls.append("token")
            return f"t{len(calls)}"

        def forget(self, user_id: str) -> bool:
            calls.append(f"forget {user_id}")
            return True

    class Who:
        user_id = "tid:oid"

    provider = obo_provider(Obo(), Who())
    assert provider() == "t1"
    assert provider() == "t3"
    assert calls == ["token", "forget tid:oid", "token"]
