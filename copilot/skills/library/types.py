"""The skill store's vocabulary: what it returns, what it refuses, and the errors it raises.

Kept apart from the store (``store.py`` re-exports the public names) so that the samples
module (``samples.py``) can raise the same errors without importing the store that uses it,
and so that code that only handles skills need not know about the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from copilot.errors import CopilotError
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import TemplateError, parse_template

BUILTIN_PREFIX = "builtin:"  # "builtin:summarise" always means the shipped skill
MAX_MESSAGE_CHARS = 500

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SURROGATE = re.compile("[\ud800-\udfff]")  # what a mis-decoded file leaves behind


class SkillNotFound(CopilotError, KeyError):
    """No such skill (or version) for this user; also what another user's skill looks like."""

    kind = "skill_not_found"
    status = 404
    title = "I don't know that skill"

    def __init__(self, skill_id: str, version: int | None = None, hint: str = "") -> None:
        self.skill_id = skill_id
        self.version = version
        where = f"{skill_id!r}" + (f" version {version}" if version is not None else "")
        super().__init__(f"no skill {where}" + (f" ({hint})" if hint else ""))

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class SampleNotFound(CopilotError, KeyError):
    kind = "sample_not_found"
    status = 404
    title = "I can't find that sample"

    def __str__(self) -> str:
        return str(self.args[0])


class SkillError(CopilotError, ValueError):
    """A request the store refuses: bad id, a cap reached, a built-in changed, a bad sample."""

    kind = "bad_skill"
    status = 400
    title = "I couldn't run that"


class SkillExists(SkillError):
    """A fork or import would overwrite an existing personal skill."""

    kind = "skill_exists"
    status = 409
    title = "That skill already exists"


@dataclass(frozen=True)
class SkillInfo:
    id: str
    name: str
    description: str
    source: Literal["builtin", "personal"]
    version: int | None
    surfaces: list[str]
    task: str
    forked_from: str | None
    updated_at: float | None
    shadows_builtin: bool


@dataclass(frozen=True)
class StoredSkill:
    id: str
    source: Literal["builtin", "personal"]
    version: int | None
    text: str
    template: SkillTemplate
    created_at: float | None
    message: str
    forked_from: str | None


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: float
    message: str
    size: int
    model: str | None


def check_skill_id(skill_id: str) -> str:
    """A skill id is a lowercase slug; it names files, URLs and CLI arguments."""
    if not isinstance(skill_id, str) or not _ID.fullmatch(skill_id):
        raise SkillError(
            f"invalid skill id {skill_id!r}: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return skill_id


def check_user(user: str) -> None:
    if not isinstance(user, str) or not user or len(user) > 256:
        raise SkillError("a user id is a non-empty string of at most 256 characters")


def check_writable(skill_id: str) -> None:
    """Built-ins are read-only: the ``builtin:`` spelling can never be saved to."""
    if isinstance(skill_id, str) and skill_id.startswith(BUILTIN_PREFIX):
        raise SkillError(
            f"{skill_id!r} is a built-in skill and cannot be changed: fork it to edit a copy"
        )
    check_skill_id(skill_id)


def check_message(message: str) -> None:
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        raise SkillError(f"a version message is text of at most {MAX_MESSAGE_CHARS} characters")


def slugify(name: str) -> str:
    """The default id of an imported skill: its `name`, lowercased, other characters → '-'."""
    slug = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")[:64].rstrip("-_")
    if not slug:
        raise SkillError(f"cannot make a skill id from the name {name!r}: pass an id")
    return slug


def parse_text(text: str, source: str) -> SkillTemplate:
    """The template in ``text``, refusing what a UTF-8 column could not store."""
    if not isinstance(text, str):
        raise SkillError(f"a skill is text, got {type(text).__name__}")
    bad = SURROGATE.search(text)
    if bad:  # parse_template accepts them, but a UTF-8 column cannot store them
        line = text.count("\n", 0, bad.start()) + 1
        raise TemplateError("not valid Unicode text (a lone surrogate)", line, source)
    return parse_template(text, source)
