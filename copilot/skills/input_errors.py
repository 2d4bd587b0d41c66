"""A run's input that cannot be used: the errors every surface reports by name."""

from __future__ import annotations

from copilot.errors import CopilotError


class InputError(CopilotError, ValueError):
    """An input that cannot be used, named."""

    kind = "bad_input"
    status = 400
    title = "I couldn't run that"


class FileInputError(InputError):
    """A file that cannot be read as a skill's input (missing, too big, unsupported)."""


class ItemNotFound(InputError):
    """No indexed item with that id for that user."""

    kind = "item_not_found"
    status = 404
    title = "I can't find that item"

    def __init__(self, owner: str, item_id: str) -> None:
        super().__init__(f"no indexed item {item_id!r} for {owner}")
        self.owner, self.item_id = owner, item_id
