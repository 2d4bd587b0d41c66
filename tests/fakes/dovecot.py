"""A real Dovecot IMAP server for the tests, on loopback ports, in its own temp folder.

Why a real server rather than a fake: the IMAP connector's hard parts (UIDVALIDITY,
EXPUNGE, a folder deleted under us, TLS and STARTTLS, the login delay) are exactly what a
fake would get subtly wrong. Dovecot starts in well under a second with a config of our
own (``base_dir``, ``state_dir`` and log in the temp folder, so it never touches the
system's), serves three ways at once: plain and STARTTLS on one port, implicit TLS on a
second with a self-signed certificate whose CA the tests hand to the connector.

Every account gets its own Maildir, so tests sharing the one server never see each
other's changes. ``CuttingProxy`` sits between a test and Dovecot to drop a session
mid-fetch. When the ``dovecot`` binary is missing (a dev machine without
``make system-deps``) the fixture skips with a reason instead of failing.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from tests.fakes.tls import write_tls

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
)
PASSWORD = "s3cret-pass"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
{users}
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
"""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together, so no two are the same)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _log(root: Path) -> str:
    path = root / "dovecot.log"
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Dovecot:
    """A running Dovecot; ``account()`` makes a fresh user with seeded folders."""

    root: Path
    port: int
    tls_port: int
    ca_file: Path
    uid: int
    gid: int
    host: str = "127.0.0.1"
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def account(self, name: str, folders: dict[str, list[bytes]] | None = None) -> str:
        """Create user ``name-N`` (password ``PASSWORD``) with ``folders`` seeded as Maildir
        files; returns the user name. Seeded messages are unread, as new mail would be."""
        user = f"{name}-{next(self._counter)}"
        maildir = self.root / "home" / user / "Maildir"
        for folder, messages in (folders or {"INBOX": []}).items():
            box = maildir if folder == "INBOX" else maildir / f".{folder}"
            for sub in ("cur", "new", "tmp"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            for n, data in enumerate(messages):
                (box / "cur" / f"{1700000000 + n}.M{n}P1.seed:2,").write_bytes(data)
        subscriptions = [f for f in (folders or {}) if f != "INBOX"]
        (maildir / "subscriptions").write_text("".join(f"{f}\n" for f in subscriptions))
        for path in [maildir.parent, *maildir.parent.rglob("*")]:
            os.chown(path, self.uid, self.gid)
        # One passwd-file per user: Dovecot rereads a changed file at most once a second,
        # so users appended to one shared file would stay unknown for up to a second.
        passwd = self.root / "passwd" / user
        passwd.write_text(f"{user}:{{PLAIN}}{PASSWORD}::::::\n")
        passwd.chmod(0o644)
        return user

    def client(self, user: str) -> IMAPClient:
        """A plain loopback IMAP session as ``user``, for tests to change the mailbox."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def log(self) -> str:
        return _log(self.root)


def _wait_for_port(port: int, root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"Dovecot did not answer on port {port} in {START_TIMEOUT_S} s:\n{_log(root)}"
    )


def _master_pid(root: Path) -> int | None:
    try:
        return int((root / "run" / "master.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _stop(config: Path, root: Path) -> None:
    """``dovecot stop``, then wait (bounded) for the master to go; SIGKILL as a last resort."""
    assert DOVECOT is not None
    pid = _master_pid(root)
    subprocess.call(
        [DOVECOT, "-c", str(config), "stop"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=STOP_TIMEOUT_S,
    )
    if pid is None:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


def start_dovecot(root: Path) -> Dovecot:
    """Write a config under ``root`` and start Dovecot on two free loopback ports."""
    assert DOVECOT is not None
    ca_file = write_tls(root / "tls")
    (root / "home").mkdir()
    (root / "passwd").mkdir()
    if os.geteuid() == 0:
        uid, gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
        users = login_chroot = ""
    else:  # Dovecot runs unprivileged when every service runs as the calling user
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid).gr_name
        users = f"default_login_user = {me}\ndefault_internal_user = {me}\n"
        users += f"default_internal_group = {group}\n"
        users += "service anvil {\n  chroot =\n}\n"
        login_chroot = "chroot ="  # chroot needs root
    # Dovecot's login and mail processes (nobody, dovenull) must reach into the folder.
    for path in (root, root / "home", root / "tls", root / "passwd"):
        path.chmod(0o755)
    port, tls_port = free_ports(2)
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root,
            users=users,
            login_chroot=login_chroot,
            uid=uid,
            gid=gid,
            port=port,
            tls_port=tls_port,
        )
    )
    # Output to a file, not a pipe: the daemon keeps its inherited descriptors open.
    with open(root / "start.log", "wb") as out:
        code = subprocess.call(
            [DOVECOT, "-c", str(config)], stdout=out, stderr=out, timeout=START_TIMEOUT_S
        )
    if code != 0:
        raise RuntimeError(f"dovecot failed to start: {(root / 'start.log').read_text()}")
    try:  # the master binds every listener before it forks: one port answering is enough
        _wait_for_port(port, root)
    except BaseException:
        _stop(config, root)
        raise
    return Dovecot(root, port, tls_port, ca_file, uid, gid)


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """A Dovecot in a temporary folder, stopped and removed afterwards (the ``dovecot``
    fixture in tests/conftest.py runs one for the session)."""
    root = Path(tempfile.mkdtemp(prefix="copilot-dovecot-"))
    try:
        server = start_dovecot(root)
        try:
            yield server
        finally:
            _stop(server.config, server.root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class CuttingProxy:
    """Forwards loopback connections to Dovecot; cuts the first one after ``cut_after`` bytes
    from the server, the way a flaky network drops a session mid-fetch."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.upstream, self.cut_after, self.connections = port, cut_after, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            limit = self.cut_after if self.connections == 0 else None
            self.connections += 1
            for src, dst, cap in ((client, server, None), (server, client, limit)):
                threading.Thread(target=self._pump, args=(src, dst, cap), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, cap: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if cap is not None and sent > cap:
                    break
        except OSError:
            pass
        for sock in (src, dst):
            sock.close()

    def close(self) -> None:
        self.listener.close()
