"""The long-lived parts of a copilot (state store, embedder, index), opened on demand.

Why lazily: ``copilot status`` needs only the state database, and should not pay for
loading an embedding model; ``copilot search`` needs all three. One object that opens
each part the first time it is used keeps every command as cheap as it can be.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from copilot.config import Settings
from copilot.db.state import StateStore
from copilot.fileio import make_private_dir, warn_if_loose
from copilot.index.base import IndexStore
from copilot.index.embed import Embedder, get_embedder
from copilot.index.store import EdgeVectorStore


def open_home(settings: Settings) -> Path:
    """Create the home folder 0700 (whatever the umask) and warn if it or the index folders
    were opened up to other accounts: they hold every user's mail text and vectors. The
    state database checks its own files when it is opened (``copilot.db.engine``)."""
    home = make_private_dir(settings.home_dir)
    index = settings.index_dir
    shards = sorted(p for p in index.iterdir() if p.is_dir()) if index.is_dir() else []
    warn_if_loose([home, index, *shards], "the copilot home folder")
    return home


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        open_home(settings)

    def use_store(self, store: IndexStore) -> None:
        """Read the index through ``store`` (an API worker's ``RemoteIndex``) instead of
        opening this home's; before anything has used ``store``."""
        if "store" in self.__dict__:
            raise RuntimeError("the workspace's index is already open")
        self.__dict__["store"] = store  # the cached_property below is then never run

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.settings.state_url)

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings)

    @cached_property
    def store(self) -> IndexStore:
        # One collection per embedding model: vectors of two models never share a space.
        # COPILOT_QDRANT_URL moves the index to a Qdrant server (or qdrant-client local mode).
        fusion, feedback = self.settings.fusion, self.settings.search_feedback
        if self.settings.qdrant_url:
            from copilot.index.server_store import (
                ServerVectorStore,
                collection_name,
                open_client,
            )

            key = self.settings.qdrant_api_key
            client = open_client(self.settings.qdrant_url, key.get_secret_value() if key else None)
            collection = collection_name(self.embedder.model_id)
            return ServerVectorStore(
                client, collection, self.embedder.dim, fusion=fusion, feedback=feedback
            )
        path = self.settings.index_dir / self.embedder.model_id
        return EdgeVectorStore(path, self.embedder.dim, fusion=fusion, feedback=feedback)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "state" in self.__dict__:
            self.state.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
