"""The local admin token (this machine's CLI) and the local users of dev mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.api.auth import Authenticator, AuthError
from copilot.config import Settings
from tests.fakes.entra_fake import TENANT

TOKEN = "t" * 43
HERE = {"peer": "127.0.0.1", "host": "127.0.0.1:8765"}


def refused(auth: Authenticator, header: str, **kwargs: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(header, **kwargs)
    return caught.value


@pytest.fixture(params=["dev", "entra"])
def auth(request: pytest.FixtureRequest, tmp_path: Path) -> Authenticator:
    if request.param == "dev":
        settings = Settings(home=tmp_path, auth="dev", dev_users=["anna"])
    else:
        settings = Settings(home=tmp_path, entra_tenant_id=TENANT, entra_client_id="api")
    made = Authenticator(settings)
    made.allow_admin_token(TOKEN)
    return made


def test_the_admin_token_acts_as_the_named_local_user(auth: Authenticator) -> None:
    user = auth.authenticate(f"Bearer {TOKEN}", local_user="ann", **HERE)
    assert (user.user_id, user.name, user.machine, user.token) == ("local:ann", "ann", True, None)
    for host in ("localhost", "[::1]:8765"):
        assert auth.authenticate(f"Bearer {TOKEN}", local_user="ann", peer="::1", host=host)


def test_the_admin_token_is_refused_from_elsewhere_or_without_a_user(auth: Authenticator) -> None:
    header = f"Bearer {TOKEN}"
    for peer, host in [("10.0.0.7", "127.0.0.1"), ("127.0.0.1", "evil.example"),
                       (None, "127.0.0.1"), ("127.0.0.1", None)]:  # fmt: skip
        error = refused(auth, header, local_user="ann", peer=peer, host=host)  # type: ignore[arg-type]
        assert (error.status, error.code) == (403, "not_local")
    for name in (None, "", "a b", "../etc", "x" * 200):
        assert refused(auth, header, local_user=name, **HERE).status == 401  # type: ignore[arg-type]
    assert refused(auth, f"Bearer {TOKEN[:-1]}", local_user="ann", **HERE).status == 401
    with pytest.raises(ValueError):
        auth.allow_admin_token("short")


def test_dev_mode_admits_configured_and_existing_local_users(tmp_path: Path) -> None:
    auth = Authenticator(Settings(home=tmp_path, auth="dev", dev_users=["anna"]))
    assert auth.authenticate("Bearer dev:anna").user_id == "local:anna"
    assert refused(auth, "Bearer dev:ann").status == 401  # no such user yet
    auth.local_user_exists = lambda name: name == "ann"  # the app: ann has data (the CLI's)
    ann = auth.authenticate("Bearer dev:ann")
    assert (ann.user_id, ann.machine) == ("local:ann", False)
    assert refused(auth, "Bearer dev:zed").status == 401
    assert auth.dev_users() == {"anna"}
