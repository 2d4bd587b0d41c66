"""Files in Teams messages: which attachments are files, downloading them with a size cap,
and handing a produced file (the scored workbook) back through a short-lived link.

Downloads: in a personal chat Teams sends a file as an attachment of type
``application/vnd.microsoft.teams.file.download.info`` whose ``content.downloadUrl`` is a
pre-authenticated, short-lived SharePoint/OneDrive URL; other channels (Web Chat, the
Emulator) send ``contentUrl``. The URL comes from the authenticated Bot Connector activity,
but it is still checked, at every redirect, so a forged attachment cannot make the bot fetch
internal services: https on port 443 to a SharePoint/OneDrive download host
(``DOWNLOAD_HOSTS``) outside development mode, and every address the name resolves to must
be a public unicast address: no loopback, private, link-local, shared, multicast, reserved
or unspecified address, whatever the notation (``127.1``, ``2130706433``, ``0x7f000001``,
``0177.0.0.1`` and ``[::ffff:127.0.0.1]`` all resolve to 127.0.0.1), and no IPv6 address
that embeds such an IPv4 address (mapped, 6to4, Teredo, NAT64). The connection then goes
to an address checked in that same resolution (``_CheckedBackend``), never to a second
lookup that DNS rebinding could answer differently; environment proxies are not used, as
they would resolve the name themselves. In development mode (the Emulator, tests) http and
loopback addresses are allowed too. Redirects are bounded, and a byte cap and a total
deadline are enforced while streaming, not only from Content-Length.

Sending a file back: Teams only accepts files from a bot through the file-consent card flow
(the user accepts, Teams gives an upload URL in an ``fileConsent/invoke``), which needs a
live Teams client. Instead the bot stores the file under a random 192-bit id and replies
with a link to ``GET /api/bot/files/{id}`` on the API, valid for ``LINK_TTL_S``. The id is
the capability (it is never derived from user data and is only shown to the conversation
the file came from); expired files are deleted. Links die with the process: they are
meant to be used at once.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore

from copilot.errors import CopilotError
from copilot.fileio import make_private_dir

TEAMS_FILE = "application/vnd.microsoft.teams.file.download.info"
LINK_TTL_S = 15 * 60
DOWNLOAD_TIMEOUT_S = 30.0  # to connect, and between two chunks
DOWNLOAD_DEADLINE_S = 120.0  # for the whole file
MAX_REDIRECTS = 3
# Where Teams and OneDrive/SharePoint hand out file downloads (commercial and sovereign
# clouds). A leading dot: the domain's subdomains; otherwise the exact host.
DOWNLOAD_HOSTS = (
    ".sharepoint.com",
    ".sharepoint.us",
    ".sharepoint-mil.us",
    ".sharepoint.de",
    ".sharepoint.cn",
    ".1drv.com",
    ".1drv.ms",
    ".livefilestore.com",
    "onedrive.live.com",
    ".botframework.com",
    "smba.trafficmanager.net",
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_NETWORK_ERRORS = (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError,
                   httpcore.UnsupportedProtocol)  # fmt: skip
SUPPORTED = (".docx", ".xlsx", ".xlsm", ".pdf", ".pptx", ".txt", ".md", ".csv", ".eml", ".msg")
WORKBOOKS = (".xlsx", ".xlsm")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


class FileError(CopilotError, ValueError):
    """A file the bot cannot use, said in plain words."""

    kind = "bad_file"
    status = 400
    title = "I couldn't use the file"


@dataclass(frozen=True)
class FileRef:
    name: str  # a safe file name (no folders), with the original extension
    url: str

    @property
    def suffix(self) -> str:
        return PurePath(self.name).suffix.lower()

    @property
    def is_workbook(self) -> bool:
        return self.suffix in WORKBOOKS


def safe_name(name: str) -> str:
    base = PurePath(str(name).replace("\\", "/")).name
    base = _SAFE_NAME.sub("_", base).strip(" .")[:120]
    return base or "attachment"


def file_attachments(attachments: list[dict[str, Any]] | None) -> list[FileRef]:
    """The files among a message's attachments (cards, images and the HTML copy of the
    message are not files to read)."""
    refs = []
    for a in attachments or []:
        if not isinstance(a, dict):
            continue
        kind = str(a.get("contentType") or "")
        content = a.get("content")
        content = content if isinstance(content, dict) else {}
        if kind == TEAMS_FILE:
            url = content.get("downloadUrl")
        elif kind.startswith(("image/", "text/html", "application/vnd.microsoft.card")):
            continue
        else:
            url = a.get("contentUrl")
        if isinstance(url, str) and url:
            refs.append(FileRef(safe_name(a.get("name") or "attachment"), url))
    return refs


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is a public unicast address, and so is any IPv4 address inside it."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64 or ip in _V4_COMPATIBLE:
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and not is_public(v4) for v4 in inner):
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_reserved or ip.is_loopback
        or ip.is_link_local or ip.is_unspecified
    )  # fmt: skip


def allowed_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, dev: bool) -> bool:
    """Public addresses; in development mode loopback too (the Emulator, test servers)."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if dev and (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
        return True
    return is_public(ip)


def resolve(host: str, port: int, *, dev: bool) -> list[str]:
    """The addresses ``host`` resolves to, all of them checked; FileError if any is refused
    (a name with one internal address among public ones is refused as a whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FileError(f"The file's download host {host} could not be found.") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # no IPv6 zone id
        ip = ipaddress.ip_address(text)
        if not allowed_address(ip, dev=dev):
            raise FileError(
                "The file's download link points at a private or reserved address; "
                "I did not open it."
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise FileError(f"The file's download host {host} could not be found.")
    return addresses


def _allowed_host(host: str, hosts: Iterable[str]) -> bool:
    return any(host.endswith(h) if h.startswith(".") else host == h for h in hosts)


def check_url(url: str, *, dev: bool) -> tuple[str, int]:
    """The host and port of ``url`` if the bot may fetch it (see the module docstring);
    FileError saying why not."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FileError("The file's download link is not a valid URL.") from None
    if parts.scheme != "https" and not (dev and parts.scheme == "http"):
        raise FileError("The file's download link is not an https:// link; I did not open it.")
    if not host:
        raise FileError("The file's download link has no host.")
    if not dev and (port != 443 or not _allowed_host(host, DOWNLOAD_HOSTS)):
        raise FileError(
            f"The file's download link goes to {host}, not to SharePoint or OneDrive; "
            "I did not open it."
        )
    resolve(host, port, dev=dev)
    return host, port


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses checked in the same resolution (no second lookup)."""

    def __init__(self, *, dev: bool) -> None:
        self.dev = dev

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in resolve(host, port, dev=self.dev):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # that address is down: try the next
                last = exc
        assert last is not None
        raise last


def download(ref: FileRef, folder: Path, *, max_bytes: int, dev: bool = False) -> Path:
    """Download ``ref`` into ``folder`` (blocking: run it in a thread); FileError when it is
    too large, slow, unreachable or refused. ``dev``: development mode (see the docstring)."""
    if ref.suffix not in SUPPORTED:
        raise FileError(
            f"I can't read {ref.name}: I read Word, Excel, PowerPoint and PDF files "
            "(.docx, .xlsx, .pptx, .pdf) and plain text."
        )
    url = ref.url
    timeouts = {"timeout": {k: DOWNLOAD_TIMEOUT_S for k in ("connect", "read", "write", "pool")}}
    context = ssl.create_default_context(cafile=certifi.where())
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    with httpcore.ConnectionPool(ssl_context=context, network_backend=_CheckedBackend(dev=dev),
                                 max_connections=1) as pool:  # fmt: skip
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, dev=dev)
            try:
                with pool.stream("GET", url, extensions=timeouts) as response:
                    location = _header(response.headers, b"location")
                    if response.status in (301, 302, 303, 307, 308) and location:
                        url = urljoin(url, location)
                        continue
                    return _save(ref, response, folder / ref.name, max_bytes, deadline)
            except _NETWORK_ERRORS as exc:
                raise FileError(f"I couldn't download {ref.name}: {type(exc).__name__}.") from None
    raise FileError(f"I couldn't download {ref.name}: too many redirects.")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _save(ref: FileRef, response: Any, target: Path, max_bytes: int, deadline: float) -> Path:
    limit_mb = max_bytes / 1e6
    if response.status != 200:
        raise FileError(
            f"I couldn't download {ref.name} (the server answered {response.status}). "
            "Try sharing it again."
        )
    try:
        declared = int(_header(response.headers, b"content-length") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise FileError(
            f"{ref.name} is {declared / 1e6:.1f} MB; I read files up to {limit_mb:.1f} MB."
        )
    size = 0
    with target.open("wb") as fh:
        for chunk in response.iter_stream():
            size += len(chunk)
            if size > max_bytes:
                raise FileError(
                    f"{ref.name} is over {limit_mb:.1f} MB; I read files up to {limit_mb:.1f} MB."
                )
            if time.monotonic() > deadline:
                raise FileError(
                    f"I couldn't download {ref.name}: it took over {DOWNLOAD_DEADLINE_S:g} s."
                )
            fh.write(chunk)
    return target


class FileLinks:
    """Produced files behind short-lived random links; thread-safe."""

    def __init__(self, folder: Path, *, ttl_s: float = LINK_TTL_S) -> None:
        self.folder = folder
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Path, str, float]] = {}
        self._lock = threading.Lock()
        shutil.rmtree(folder, ignore_errors=True)  # links from an earlier process are dead
        make_private_dir(folder)  # users' files: never readable by other accounts

    def new_path(self, name: str) -> tuple[str, Path]:
        """A fresh id and the path to write the file to."""
        self.expire()
        file_id = secrets.token_urlsafe(24)
        folder = self.folder / file_id
        make_private_dir(folder)
        return file_id, folder / safe_name(name)

    def publish(self, file_id: str, path: Path, name: str) -> None:
        with self._lock:
            self._entries[file_id] = (path, safe_name(name), time.monotonic() + self.ttl_s)

    def discard(self, file_id: str) -> None:
        """Drop a file that was never published (its producer failed)."""
        if _ID.match(file_id or ""):
            shutil.rmtree(self.folder / file_id, ignore_errors=True)

    def get(self, file_id: str) -> tuple[Path, str] | None:
        if not _ID.match(file_id or ""):
            return None
        with self._lock:
            entry = self._entries.get(file_id)
        if entry is None or entry[2] < time.monotonic() or not entry[0].is_file():
            return None
        return entry[0], entry[1]

    def expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [k for k, (_, _, until) in self._entries.items() if until < now]
            for key in gone:
                del self._entries[key]
        for key in gone:
            shutil.rmtree(self.folder / key, ignore_errors=True)
