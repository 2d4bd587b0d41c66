"""The admin's per-skill model: ``copilot finetune use --skill ID --all-users``.

Why a table beside the skills rather than editing every user's skill: "all users" includes
users who never forked the built-in and users who join later; a per-user edit would reach
neither. The skill runner asks ``skill_model`` only when the template it runs names no
model itself, so the order is: the user's own skill's model (``finetune use --user``),
then this override, then ``settings.llm_model``. Clearing the row restores the default
for everyone; every change is one row with who set it and when.

The runner reads the table through ``copilot.skills.engines.select.skill_model`` (the
skills layer must not import this package, which sits above it); it is re-exported here.
"""

from __future__ import annotations

import time

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from copilot.db.schema import skill_models
from copilot.skills.engines.select import skill_model as skill_model  # re-exported


def check_model_name(model: str) -> str:
    """A model or deployment name: printable, no spaces, at most 200 characters."""
    if (
        not isinstance(model, str)
        or not 1 <= len(model) <= 200
        or any(c.isspace() or not c.isprintable() for c in model)
    ):
        raise ValueError(f"invalid model name {model!r}: 1-200 printable characters, no spaces")
    return model


def set_skill_model(engine: Engine, skill_id: str, model: str, set_by: str) -> None:
    """Point every user's runs of ``skill_id`` (whose template names no model) at ``model``."""
    check_model_name(model)
    if not isinstance(set_by, str) or not set_by:
        raise ValueError("set_by names the admin who made the change")
    row = {"skill_id": skill_id, "model": model, "set_by": set_by, "at": time.time()}
    with engine.begin() as conn:
        conn.execute(delete(skill_models).where(skill_models.c.skill_id == skill_id))
        conn.execute(skill_models.insert().values(**row))


def clear_skill_model(engine: Engine, skill_id: str) -> bool:
    """Back to the default model for everyone; True if there was an override."""
    with engine.begin() as conn:
        gone = conn.execute(delete(skill_models).where(skill_models.c.skill_id == skill_id))
        return bool(gone.rowcount)
