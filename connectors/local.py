"""The local-folder connector: every supported file below a folder, recursively.

Why a full scan every run: ``stat`` is cheap and the pipeline skips any file whose
mtime and size are unchanged without reading it, so a scan of thousands of unchanged
files costs milliseconds, and it never misses a change the way an event watcher can
when the process is not running.

Why links are checked: the folder may be writable by others (a shared drive, a dev-mode
server), and a link inside it must not make the copilot index what lies outside it
(``notes -> /home/anna``). A link is followed only when its target resolves inside the
root; a file is read through its resolved path and must still be the file (device and
inode) the scan saw, so swapping a link between the scan and the read gains nothing.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.checkpoints import LocalCheckpoint, StoredCheckpoint
from connectors.parsers import MAIL_TYPES, media_type_for
from connectors.types import Checkpoint, Content, Failure, Item

DEFAULT_EXCLUDE = (
    ".*",  # hidden files and folders (.git, .DS_Store)
    "~$*",  # Office lock files
    "~*.tmp",
    "node_modules",
    "__pycache__",
)
BATCH = 200


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _reader(name: str, real: str, info: os.stat_result, max_bytes: int) -> Content:
    """Read ``real`` (a resolved path) only if it is still the regular file the scan saw:
    no link is followed at its last step, a FIFO swapped in cannot block the open, and a
    file grown past the cap since the scan is refused rather than read whole."""

    def read() -> bytes:
        try:
            fd = os.open(real, _OPEN_FLAGS | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link put there since the scan
                raise OSError(errno.ESTALE, f"{name} was replaced by a link") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(
                now.st_mode
            ):
                raise OSError(errno.ESTALE, f"{name} was replaced while the folder was synced")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise OSError(errno.EFBIG, f"{name} grew over the {_human(max_bytes)} size cap")
        return data

    media_type = media_type_for(name) or "application/octet-stream"
    return Content(media_type=media_type, size=info.st_size, loader=read)


@dataclass
class LocalFolder:
    """Items for every supported file under ``root``, owned by ``owner``.

    ``include`` globs (matched against the file name and the path relative to the root)
    narrow the set; ``exclude`` globs prune files and whole folders. Symbolic links are
    followed only to targets inside ``root`` (a link out is a failure naming it), and each
    real folder is visited once, so a link loop cannot trap the scan.
    """

    root: Path
    owner: str
    include: Sequence[str] = ()
    exclude: Sequence[str] = DEFAULT_EXCLUDE
    max_bytes: int = 50 * 1024 * 1024
    scope: str = field(init=False)
    _seen: set[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()
        self.scope = f"local:{self.root}"

    def item_id(self, path: Path) -> str:
        return f"local:{path}"

    def load(
        self, checkpoint: StoredCheckpoint | None = None
    ) -> Iterator[Item | Failure | Checkpoint]:
        """Every file, whatever ``checkpoint`` says: a scan is cheap (see the module)."""
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} is not a folder")
        seen: set[str] = set()
        count = 0
        for event in self._walk():
            if isinstance(event, Item):
                seen.add(event.id)
            else:
                seen.add(event.item)
            yield event
            count += 1
            if count % BATCH == 0:
                yield Checkpoint(LocalCheckpoint(root=str(self.root), scanned=count))
        self._seen = seen
        yield Checkpoint(LocalCheckpoint(root=str(self.root), scanned=count, complete=True))

    def list_ids(self) -> Iterable[str]:
        """Ids seen by the last complete ``load`` (or a fresh scan when there was none)."""
        if self._seen is None:
            for _ in self.load(None):
                pass
        assert self._seen is not None
        return set(self._seen)

    def _walk(self) -> Iterator[Item | Failure]:
        visited: set[tuple[int, int]] = set()
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                info = folder.stat()
            except OSError as exc:
                yield Failure(self.item_id(folder), "fetch", f"cannot open folder: {exc.strerror}")
                continue
            key = (info.st_dev, info.st_ino)
            if key in visited:
                continue  # a symlink loop, or a second link to a folder already scanned
            visited.add(key)
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                yield Failure(self.item_id(folder), "fetch", f"cannot list folder: {exc.strerror}")
                continue
            subfolders = []
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(self.root).as_posix()
                if _matches(rel, entry.name, self.exclude):
                    continue
                if entry.is_symlink() and not self._inside(path):
                    yield Failure(
                        self.item_id(path),
                        "fetch",
                        f"{rel} is a link to outside the synced folder; not followed",
                    )
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if is_dir:
                    subfolders.append(path)
                    continue
                if self.include and not _matches(rel, entry.name, self.include):
                    continue
                event = self._file(path)
                if event is not None:
                    yield event
            stack.extend(reversed(subfolders))

    def _inside(self, path: Path) -> bool:
        """Whether ``path`` (all its links resolved) lies inside the root."""
        try:
            return Path(os.path.realpath(path)).is_relative_to(self.root)
        except (OSError, ValueError):
            return False

    def _file(self, path: Path) -> Item | Failure | None:
        item_id = self.item_id(path)
        media_type = media_type_for(path.name)
        if media_type is None:
            return None  # not a kind of file we index: not a failure either
        real = os.path.realpath(path)
        if not Path(real).is_relative_to(self.root):  # a folder link swapped mid-scan
            return Failure(item_id, "fetch", f"{path.name} lies outside the synced folder")
        try:
            info = os.stat(real, follow_symlinks=False)
        except OSError as exc:  # a dangling symlink, or a file removed mid-scan
            return Failure(item_id, "fetch", f"cannot read {path.name}: {exc.strerror}")
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > self.max_bytes:
            return Failure(
                item_id,
                "fetch",
                f"{path.name} is {_human(info.st_size)}, over the "
                f"{_human(self.max_bytes)} size cap; skipped",
            )
        if not os.access(path, os.R_OK):
            return Failure(item_id, "fetch", f"cannot read {path.name}: permission denied")
        return Item(
            id=item_id,
            owner=self.owner,
            kind="mail" if media_type in MAIL_TYPES else "file",
            title=path.name,
            url=path.as_uri(),
            modified=datetime.fromtimestamp(info.st_mtime, UTC),
            version=f"{info.st_mtime_ns}-{info.st_size}",
            content=_reader(path.name, real, info, self.max_bytes),
            meta={"path": str(path), "size": info.st_size},
        )
