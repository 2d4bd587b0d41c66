"""The stand-in Bot Connector every bot test module talks to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.bot_connector import BotConnector


@pytest.fixture(scope="module")
def connector() -> Iterator[BotConnector]:
    """One Bot Connector per module; tests call ``connector.clear()`` to start empty."""
    with BotConnector() as server:
        yield server
