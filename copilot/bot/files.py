"""Files in Teams messages: which attachments are files, downloading them with a size cap,
and handing a produced file (the scored workbook) back through a short-lived link.

Downloads: in a personal chat Teams sends a file as an attachment of type
``application/vnd.microsoft.teams.file.download.info`` whose ``content.downloadUrl`` is a
pre-authenticated, short-lived SharePoint/OneDrive URL; other channels (Web Chat, the
Emulator) send ``contentUrl``. The URL comes from the authenticated Bot Connector activity,
but it is still checked: https only outside development mode, never an IP literal in a
private, loopback or link-local range (so a forged attachment cannot make the bot fetch
internal services), bounded redirects, and a byte cap enforced while streaming, not only
from Content-Length.

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
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

import httpx

TEAMS_FILE = "application/vnd.microsoft.teams.file.download.info"
LINK_TTL_S = 15 * 60
DOWNLOAD_TIMEOUT_S = 30.0
MAX_REDIRECTS = 3
SUPPORTED = (".docx", ".xlsx", ".xlsm", ".pdf", ".pptx", ".txt", ".md", ".csv", ".eml", ".msg")
WORKBOOKS = (".xlsx", ".xlsm")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


class FileError(ValueError):
    """A file the bot cannot use, said in plain words."""


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
        content = a.get("content") if isinstance(a.get("content"), dict) else {}
        if kind == TEAMS_FILE:
            url = content.get("downloadUrl")
        elif kind.startswith(("image/", "text/html", "application/vnd.microsoft.card")):
            continue
        else:
            url = a.get("contentUrl")
        if isinstance(url, str) and url:
            refs.append(FileRef(safe_name(a.get("name") or "attachment"), url))
    return refs


def check_url(url: str, *, allow_http: bool) -> None:
    """Refuse URLs the bot must not fetch (see the module docstring)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise FileError("The file's download link is not a valid URL.") from None
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        raise FileError("The file's download link is not an https:// link; I did not open it.")
    if not host:
        raise FileError("The file's download link has no host.")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: Teams' download hosts are public names
    if not allow_http and (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved):
        raise FileError("The file's download link points at a private address; I did not open it.")


def download(ref: FileRef, folder: Path, *, max_bytes: int, allow_http: bool = False) -> Path:
    """Download ``ref`` into ``folder`` (blocking: run it in a thread); FileError when it is
    too large, unreachable or refused."""
    if ref.suffix not in SUPPORTED:
        raise FileError(
            f"I can't read {ref.name}: I read Word, Excel, PowerPoint and PDF files "
            "(.docx, .xlsx, .pptx, .pdf) and plain text."
        )
    limit_mb = max_bytes / 1e6
    url = ref.url
    target = folder / ref.name
    with httpx.Client(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, allow_http=allow_http)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise FileError(
                            f"I couldn't download {ref.name} (the server answered "
                            f"{response.status_code}). Try sharing it again."
                        )
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise FileError(
                            f"{ref.name} is {declared / 1e6:.1f} MB; I read files up to "
                            f"{limit_mb:.1f} MB."
                        )
                    size = 0
                    with target.open("wb") as fh:
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise FileError(
                                    f"{ref.name} is over {limit_mb:.1f} MB; I read files up "
                                    f"to {limit_mb:.1f} MB."
                                )
                            fh.write(chunk)
                    return target
            except httpx.HTTPError as exc:
                raise FileError(f"I couldn't download {ref.name}: {type(exc).__name__}.") from None
    raise FileError(f"I couldn't download {ref.name}: too many redirects.")


class FileLinks:
    """Produced files behind short-lived random links; thread-safe."""

    def __init__(self, folder: Path, *, ttl_s: float = LINK_TTL_S) -> None:
        self.folder = folder
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Path, str, float]] = {}
        self._lock = threading.Lock()
        shutil.rmtree(folder, ignore_errors=True)  # links from an earlier process are dead
        folder.mkdir(parents=True, exist_ok=True)

    def new_path(self, name: str) -> tuple[str, Path]:
        """A fresh id and the path to write the file to."""
        self.expire()
        file_id = secrets.token_urlsafe(24)
        folder = self.folder / file_id
        folder.mkdir()
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
