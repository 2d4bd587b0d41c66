"""Configured sources: what ``copilot watch`` keeps in sync, in ``COPILOT_HOME/sources.json``.

Why a file of its own rather than the checkpoints in the state store: a checkpoint says where
a sync stopped, not how to reach the source again (which folders, which mailbox, app-only or
signed in, which SharePoint library). So a source is remembered when a sync of it succeeds
(``copilot sync outlook|onedrive|sharepoint``), listed with ``copilot sources list`` and
forgotten with ``copilot sources remove ID``. The file holds no secret: tokens stay in the
per-user token caches, the app secret in the environment.

The format is a JSON list of objects with the fields of ``Source``; it may be edited by
hand (a ``local`` source is ``{"user": "anna", "kind": "local", "path": "/docs"}``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from copilot.errors import CopilotError
from copilot.fileio import write_atomically

Kind = Literal["outlook", "onedrive", "sharepoint", "local"]
KINDS = ("outlook", "onedrive", "sharepoint", "local")
MAX_FILE_BYTES = 1024 * 1024


class SourcesError(CopilotError):
    """The sources file cannot be used; the message names the file and the problem."""

    kind = "bad_sources"
    status = 400
    title = "The sources file cannot be used"


@dataclass(frozen=True)
class Source:
    """How to reach one source again. ``user`` owns what it indexes."""

    user: str
    kind: Kind
    mailbox: str = "me"  # outlook: "me", or a user id / UPN (app-only, shared mailboxes)
    folders: tuple[str, ...] = ()  # outlook: empty means COPILOT_GRAPH_MAIL_FOLDERS
    app_only: bool = False  # outlook, sharepoint: the app's own permissions
    drive: str = "me"  # onedrive: "me"; sharepoint: the library's drive id
    path: str = ""  # local: the folder

    @property
    def id(self) -> str:
        target = {"outlook": self.mailbox, "local": self.path}.get(self.kind, self.drive)
        return f"{self.user}:{self.kind}:{target}"


def sources_path(settings: Any) -> Path:
    return settings.home_dir / "sources.json"


def _source(entry: Any, where: str) -> Source:
    if not isinstance(entry, dict):
        raise SourcesError(f"{where} is not an object")
    known = {f.name for f in fields(Source)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise SourcesError(f"{where} has unknown fields: {', '.join(unknown)}")
    if entry.get("kind") not in KINDS:
        raise SourcesError(f"{where}: kind must be one of {', '.join(KINDS)}")
    if not isinstance(entry.get("user"), str) or not entry["user"].strip():
        raise SourcesError(f"{where}: user is missing")
    if entry["kind"] == "local" and not entry.get("path"):
        raise SourcesError(f"{where}: a local source needs a path")
    values = dict(entry)
    folders = values.get("folders", ())
    if not isinstance(folders, list | tuple) or not all(isinstance(f, str) for f in folders):
        raise SourcesError(f"{where}: folders must be a list of names")
    values["folders"] = tuple(folders)
    for name in ("mailbox", "drive", "path", "user"):
        if name in values and not isinstance(values[name], str):
            raise SourcesError(f"{where}: {name} must be a string")
    values["app_only"] = bool(values.get("app_only", False))
    return Source(**values)


def load_sources(settings: Any) -> list[Source]:
    """Every configured source; none if the file does not exist yet."""
    path = sources_path(settings)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SourcesError(f"{path} is larger than 1 MiB; it cannot be a list of sources")
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SourcesError(f"{path} cannot be read ({exc}); fix or delete it") from None
    if not isinstance(entries, list):
        raise SourcesError(f"{path} must hold a JSON list of sources")
    return [_source(entry, f"{path.name} entry {n + 1}") for n, entry in enumerate(entries)]


def _save(settings: Any, sources: list[Source]) -> None:
    rows = [{**asdict(s), "folders": list(s.folders)} for s in sources]
    write_atomically(sources_path(settings), json.dumps(rows, indent=2) + "\n")


def remember(settings: Any, source: Source) -> None:
    """Add ``source``, or replace the one with the same id (new folders, say)."""
    kept = [s for s in load_sources(settings) if s.id != source.id]
    _save(settings, [*kept, source])


def forget(settings: Any, source_id: str) -> bool:
    """Remove the source with this id; False if there was none. Its index stays."""
    sources = load_sources(settings)
    kept = [s for s in sources if s.id != source_id]
    if len(kept) == len(sources):
        return False
    _save(settings, kept)
    return True
