"""`copilot sync imap` as a user types it, against the real Dovecot of tests/dovecot.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from copilot.cli.app import app
from tests.fakes.builders_mail import build_eml
from tests.fakes.dovecot import PASSWORD, Dovecot


def test_sync_imap_with_the_password_from_the_environment(
    cli: CliRunner, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    mails = [
        build_eml(subject=f"Report {i}", body=f"Quarterly report number {i}.") for i in range(3)
    ]
    user = dovecot.account("cli", {"INBOX": mails})
    monkeypatch.setenv("IMAP_PW", PASSWORD)
    args = ["sync", "imap", "--user", "anna", "--host", "127.0.0.1", "--port", str(dovecot.port),
            "--username", user, "--password-env", "IMAP_PW", "--plain", "--json"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["indexed"] == 3
    again = cli.invoke(app, args)
    assert json.loads(again.output)["indexed"] == 0  # incremental: nothing new


def test_plain_imap_is_refused_off_this_machine(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAP_PW", "secret")
    result = cli.invoke(app, ["sync", "imap", "--user", "anna", "--host", "imap.example.com",
                              "--password-env", "IMAP_PW", "--plain"])  # fmt: skip
    assert result.exit_code == 2 and "loopback" in result.output
    assert "secret" not in result.output


def test_a_missing_password_says_where_to_put_it(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    import keyring

    monkeypatch.setattr(keyring, "get_password", lambda service, username: None)
    result = cli.invoke(app, ["sync", "imap", "--user", "anna", "--host", "127.0.0.1",
                              "--password-env", "NO_SUCH_VAR", "--plain"])  # fmt: skip
    assert result.exit_code == 2
    assert "NO_SUCH_VAR" in result.output and "keyring" in result.output
