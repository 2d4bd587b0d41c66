"""Each user's default skill (``use SKILL``), kept in one small JSON file under the home.

A file rather than the Agents SDK's MemoryStorage so a restart does not forget it, and
keyed by the API's user id rather than the Teams user id so it follows the person.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from copilot.bot.commands import DEFAULT_SKILL
from copilot.fileio import write_atomically

MAX_USERS = 100_000


class Defaults:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._data = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self._data = {}

    def get(self, user_id: str) -> str:
        with self._lock:
            return self._data.get(user_id, DEFAULT_SKILL)

    def set(self, user_id: str, skill_id: str) -> None:
        with self._lock:
            if user_id not in self._data and len(self._data) >= MAX_USERS:
                raise ValueError("too many users have a default skill")
            self._data[user_id] = skill_id
            write_atomically(self.path, json.dumps(self._data, sort_keys=True))
