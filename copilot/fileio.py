"""Files the copilot writes: never half-written, and private when they hold users' data.

This is the copilot package's one atomic-write helper: every file that is replaced in
place (result documents, manifests, sources.json, token caches, bot preferences, training
sets) goes through ``save_atomically``. The connectors package keeps its own
(``connectors.graph.auth.write_private``) because connectors must not import copilot.

Why explicit modes rather than trusting the umask: the home folder holds every user's mail
text (the state database) and their vectors (the index). With the common umask 022, files
come out 0644 and folders 0755, readable by every other account on the machine. So the
folders holding that data are created 0700 and its files 0600 whatever the umask, and
``warn_if_loose`` says so at start when someone has opened them up since.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = 0o077  # group and other bits
MAX_REPORTED = 5  # paths named in one warning; the rest are counted

log = logging.getLogger("copilot")


def save_atomically(save: Callable[[str], None], out: Path, *, mode: int = PRIVATE_FILE) -> None:
    """Call ``save(temp_path)`` on a file next to ``out``, then rename it over ``out``.

    The rename is atomic on one file system, so a reader sees the old file or the whole
    new one; the data is flushed to disk first, so a crash cannot leave an empty file under
    the final name. The file gets ``mode`` (0600 unless asked otherwise). On any error the
    temporary file is removed and the error re-raised. The folder must exist: a result file
    named by a user in a folder that is not there is a typo to report, not to create.
    """
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such folder to write {out.name} into.")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)  # 0600
    os.close(fd)
    try:
        save(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: str | bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically, with ``mode``.

    A missing folder is created: 0700 for a private file (``mode`` gives nothing to group
    or others), else with the usual permissions.
    """
    if mode & _OTHERS:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        make_private_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data

    def save(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(raw)

    save_atomically(save, path, mode=mode)


# -- private data ------------------------------------------------------------------------------


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents 0700, whatever the umask; returns ``path``.

    Folders that already exist are left as they are: a parent such as ``/srv`` is not ours
    to change, and one of ours that a user opened up is reported by ``warn_if_loose``.
    ``Path.mkdir(parents=True, mode=...)`` would not do: it creates the parents with the
    umask's permissions.
    """
    missing = []
    folder = path
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # created by another process meanwhile: theirs to set
            continue
        os.chmod(folder, PRIVATE_DIR)  # the umask may have removed bits of our own too
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty and 0600 unless it exists; True if it was created.

    For files that another library creates and then writes: SQLite gives its ``-wal`` and
    ``-shm`` files the permissions of the database file, so a database file that exists
    0600 before SQLite opens it keeps all three private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True


def tighten(root: Path) -> None:
    """Take every group and other permission off ``root`` and everything under it.

    For folders written by an engine that creates its files with the umask's permissions
    (Qdrant Edge's segments): call it after the engine wrote. Symbolic links are neither
    followed nor changed (chmod would change what they point to).
    """
    if not root.is_dir() or root.is_symlink():
        return
    _tighten_one(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            _tighten_one(Path(folder, name))


def loose(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """The paths that exist and give any permission to group or others, with their modes."""
    found = []
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & _OTHERS:
            found.append((path, stat.S_IMODE(info.st_mode)))
    return found


def warn_if_loose(paths: Iterable[Path], what: str) -> list[Path]:
    """Log one warning naming the paths among ``paths`` that other accounts can open.

    ``what`` says what they hold ("the state database"). Returns the loose paths. A warning
    rather than a silent chmod: someone chose those permissions, and should know the cost.
    """
    found = loose(paths)
    if found:
        shown = ", ".join(f"{p} ({m:04o})" for p, m in found[:MAX_REPORTED])
        more = f" and {len(found) - MAX_REPORTED} more" if len(found) > MAX_REPORTED else ""
        log.warning(
            "%s can be opened by other accounts on this machine: %s%s. It holds users' data; "
            "to make it private again run: chmod -R go-rwx %s",
            what,
            shown,
            more,
            " ".join(str(p) for p, _ in found[:MAX_REPORTED]),
        )
    return [p for p, _ in found]


def _tighten_one(path: Path) -> None:
    try:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & _OTHERS:
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~_OTHERS)
    except FileNotFoundError:  # removed by the engine meanwhile (a merged segment)
        pass
