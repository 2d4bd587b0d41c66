"""The built-in skills: `.prompty` files shipped in this folder of the package."""

from __future__ import annotations

from functools import cache
from importlib import resources

from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import parse_template


def builtin_ids() -> list[str]:
    """Ids of the shipped skills: the file names without `.prompty`, sorted."""
    return list(_builtin_ids())


@cache
def _builtin_ids() -> tuple[str, ...]:
    """Read once: the package's files do not change while it runs, and listing them on
    every skill lookup showed up under API load (py-spy, 20 concurrent runs)."""
    folder = resources.files(__package__)
    return tuple(
        sorted(
            p.name.removesuffix(".prompty") for p in folder.iterdir() if p.name.endswith(".prompty")
        )
    )


def builtin_text(skill_id: str) -> str:
    """The file text of a shipped skill; KeyError when there is none by that id."""
    if skill_id not in builtin_ids():
        raise KeyError(skill_id)
    return resources.files(__package__).joinpath(f"{skill_id}.prompty").read_text("utf-8")


@cache
def load_builtin(skill_id: str) -> SkillTemplate:
    """The parsed, validated template of a shipped skill (parsed once per process)."""
    return parse_template(builtin_text(skill_id), f"{skill_id}.prompty")
