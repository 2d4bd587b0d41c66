"""Reaching and logging in to an IMAP server: where the mailbox is, how to get in safely.

Why a module of its own: these are the parts that touch secrets and TLS, and whose errors
only a person can fix (a refused login, an untrusted certificate, a missing STARTTLS, plain
IMAP to a remote host). Keeping them apart from the sync logic in ``connectors.imap`` keeps
both small; ``connectors.imap`` re-exports the public names.

Messages never echo the password: imaplib's login error carries the server's answer only.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from connectors.errors import ConnectorError

Security = Literal["tls", "starttls", "plain"]
DEFAULT_PORTS: dict[Security, int] = {"tls": 993, "starttls": 143, "plain": 143}


class ImapError(ConnectorError):
    """The sync cannot go on until a person fixes something the message names."""

    kind = "imap_failed"


class ImapAuthError(ImapError):
    """The server refused the login."""

    kind = "imap_login_refused"


@dataclass(frozen=True)
class ImapSource:
    """Where a mailbox is and how to log in. ``password`` comes from the environment or
    the system keyring (``password_from``), never from a command line."""

    host: str
    port: int | None
    username: str
    security: Security = "tls"
    folders: tuple[str, ...] = ("INBOX",)
    password: str | None = field(default=None, repr=False)
    oauth2_token_provider: Callable[[], str] | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout_s: float = 30


def check_security(host: str, security: str) -> Security:
    """Refuse plain IMAP (password in clear text) to anything but this machine; else
    return ``security`` as the Security it names."""
    checked = next((s for s in DEFAULT_PORTS if s == security), None)
    if checked is None:
        raise ValueError(f"unknown IMAP security {security!r}: use tls, starttls or plain")
    if checked != "plain":
        return checked
    name = host.strip("[]").lower()
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"plain IMAP would send the password to {host} unencrypted; it is allowed only "
            "to a loopback host (127.0.0.1, ::1, localhost): use security tls or starttls"
        )
    return checked


def password_from(env_var: str | None, *, service: str, username: str) -> str:
    """The password from ``env_var`` if set, else from the system keyring."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    import keyring
    from keyring.errors import KeyringError

    try:
        password = keyring.get_password(service, username)
    except KeyringError as exc:
        password, problem = None, f" (the keyring failed: {exc})"
    else:
        problem = ""
    if not password:
        where = f"set the environment variable {env_var}, or " if env_var else ""
        raise ImapError(
            f"no password for {username}{problem}: {where}store one with "
            f"`keyring set {service} {username}`"
        )
    return password


def connect(source: ImapSource, port: int) -> IMAPClient:
    """A logged-in client; TLS and login problems become an ``ImapError`` naming the fix,
    while a dropped connection or a timeout propagates (``OSError``, imaplib's abort) so
    the caller can retry."""
    s = source
    where = f"{s.host}:{port}"
    context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
    client = None
    try:
        client = IMAPClient(
            s.host,
            port=port,
            ssl=s.security == "tls",
            ssl_context=context,
            timeout=s.timeout_s,
        )
        if s.security == "starttls":
            try:
                client.starttls(context)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise ImapError(f"{where} does not offer STARTTLS ({exc})") from None
        login(client, s, where)
    except ssl.SSLCertVerificationError as exc:
        close(client)
        raise ImapError(
            f"the TLS certificate of {where} is not trusted ({exc.verify_message}); if "
            "the server uses a private CA, set ca_file to that CA's certificate"
        ) from None
    except BaseException:
        close(client)
        raise
    client.normalise_times = False  # INTERNALDATE with its zone, not local naive time
    return client


def login(client: IMAPClient, source: ImapSource, where: str) -> None:
    """XOAUTH2 with a fresh token when a provider is given, else LOGIN with the password."""
    try:
        if source.oauth2_token_provider is not None:
            client.oauth2_login(source.username, source.oauth2_token_provider())
        elif source.password:
            client.login(source.username, source.password)
        else:
            raise ImapAuthError(f"no password or OAuth2 token for {source.username} at {where}")
    except LoginError as exc:
        # imaplib's message carries the server's answer, never the password we sent.
        raise ImapAuthError(f"IMAP login refused for {source.username} at {where}: {exc}") from None


def close(client: IMAPClient | None) -> None:
    """Drop the connection without a LOGOUT: for a client that is already broken."""
    if client is not None:
        with contextlib.suppress(Exception):  # already broken, closing anyway
            client.shutdown()
