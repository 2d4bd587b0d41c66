"""Where the task pane, the manifest templates and the icons are read from.

An installed wheel carries them as package data under ``copilot/deploy/assets/`` (copied
there from the repository's ``addins/office`` and ``manifest/`` by ``setup.py`` at build
time, so ``addins/`` stays the one source of the front-end). A checkout or an editable
install has no such copy and reads the repository folders instead. Either way callers ask
this module, never a path computed from ``__file__`` elsewhere: that is what made an
installed wheel silently serve no pane.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# Asset name → (folder inside the packaged assets, folder in a source checkout).
ASSETS: dict[str, tuple[str, str]] = {
    "addins": ("addins/office", "addins/office"),
    "templates": ("manifest/templates", "manifest/templates"),
    "icons": ("manifest/icons", "manifest/icons"),
}
_REPO = Path(__file__).resolve().parents[2]


def asset_dir(name: str) -> Path | None:
    """The folder holding asset ``name`` (see ``ASSETS``), or None when it is missing."""
    packaged_rel, source_rel = ASSETS[name]
    packaged = Path(str(resources.files("copilot.deploy").joinpath("assets", packaged_rel)))
    if packaged.is_dir():
        return packaged
    source = _REPO / source_rel
    return source if source.is_dir() else None
