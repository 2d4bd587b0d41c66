"""The local-folder connector: every supported file below a folder, recursively.

Why a full scan every run: ``stat`` is cheap and the pipeline skips any file whose
mtime and size are unchanged without reading it, so a scan of thousands of unchanged
files costs milliseconds, and it never misses a change the way an event watcher can
when the process is not running.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _reader(path: Path, size: int) -> Content:
    def read() -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    media_type = media_type_for(path.name) or "application/octet-stream"
    return Content(media_type=media_type, size=size, loader=read)


@dataclass
class LocalFolder:
    """Items for every supported file under ``root``, owned by ``owner``.

    ``include`` globs (matched against the file name and the path relative to the root)
    narrow the set; ``exclude`` globs prune files and whole folders. Symbolic links are
    followed, but each real folder is visited once, so a link loop cannot trap the scan.
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
        self, checkpoint: dict[str, Any] | None = None
    ) -> Iterator[Item | Failure | Checkpoint]:
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
                yield Checkpoint({"root": str(self.root), "scanned": count})
        self._seen = seen
        yield Checkpoint({"root": str(self.root), "scanned": count, "complete": True})

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

    def _file(self, path: Path) -> Item | Failure | None:
        item_id = self.item_id(path)
        media_type = media_type_for(path.name)
        if media_type is None:
            return None  # not a kind of file we index: not a failure either
        try:
            info = path.stat()
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
            content=_reader(path, info.st_size),
            meta={"path": str(path), "size": info.st_size},
        )
