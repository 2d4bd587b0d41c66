"""Per-user opt-in to having their approved runs used as fine-tuning data.

Why a table and not a setting: consent is each person's own decision, given and withdrawn
at a time we must be able to show. Only users with a row here contribute to a dataset;
revoking deletes the row, so the next dataset built leaves them out (a file already
written is not changed: delete it, or build it again).
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from copilot.db.schema import consents

PURPOSE = "finetune"


def _check_user(user: str) -> None:
    if not isinstance(user, str) or not user.strip() or len(user) > 256:
        raise ValueError("a user id is a non-empty string of at most 256 characters")


def grant(engine: Engine, user: str, purpose: str = PURPOSE) -> float:
    """Record the user's opt-in; granting again keeps the first time. Returns granted_at."""
    _check_user(user)
    c = consents.c
    with engine.begin() as conn:
        found = conn.execute(
            select(c.granted_at).where(c.user == user, c.purpose == purpose)
        ).scalar_one_or_none()
        if found is not None:
            return float(found)
        now = time.time()
        try:
            conn.execute(consents.insert().values(user=user, purpose=purpose, granted_at=now))
        except IntegrityError:  # granted concurrently: the same outcome
            return now
        return now


def revoke(engine: Engine, user: str, purpose: str = PURPOSE) -> bool:
    """Withdraw the opt-in; True if there was one."""
    _check_user(user)
    c = consents.c
    with engine.begin() as conn:
        gone = conn.execute(delete(consents).where(c.user == user, c.purpose == purpose))
        return bool(gone.rowcount)


def consenting(engine: Engine, purpose: str = PURPOSE) -> dict[str, float]:
    """Every opted-in user and when they opted in."""
    c = consents.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.user, c.granted_at).where(c.purpose == purpose))
        return {r.user: float(r.granted_at) for r in rows}
