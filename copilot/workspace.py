"""The long-lived parts of a copilot (state store, embedder, index), opened on demand.

Why lazily: ``copilot status`` needs only the state database, and should not pay for
loading an embedding model; ``copilot search`` needs all three. One object that opens
each part the first time it is used keeps every command as cheap as it can be.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from copilot.config import Settings
from copilot.index.embed import Embedder, get_embedder
from copilot.index.store import EdgeVectorStore
from copilot.db.state import StateStore

if TYPE_CHECKING:
    from copilot.index.server_store import ServerVectorStore


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.settings.state_url)

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings)

    @cached_property
    def store(self) -> EdgeVectorStore | ServerVectorStore:
        # One collection per embedding model: vectors of two models never share a space.
        # COPILOT_QDRANT_URL moves the index to a Qdrant server (or qdrant-client local mode).
        if self.settings.qdrant_url:
            from copilot.index.server_store import (
                ServerVectorStore,
                collection_name,
                open_client,
            )

            client = open_client(self.settings.qdrant_url, self.settings.qdrant_api_key)
            return ServerVectorStore(
                client, collection_name(self.embedder.model_id), self.embedder.dim
            )
        path = self.settings.index_dir / self.embedder.model_id
        return EdgeVectorStore(path, self.embedder.dim)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "state" in self.__dict__:
            self.state.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
