"""Personal skills: each user's own `.prompty` texts, with version history and sample inputs.

Why versions are rows that are never rewritten: a user who breaks a skill must be able to get
yesterday's text back, and a run records the version it used, so that version must still
exist. Editing, reverting and forking all append a version; only `delete` removes history.

Why refuse at the caps instead of dropping old versions: silently losing a user's history
is worse than a clear "fork it to keep editing". The caps are per user: MAX_SKILLS personal
skills, MAX_VERSIONS versions per skill, MAX_USER_BYTES of template text over all versions,
and saved samples have their own caps (``samples.py``).

Isolation: every query filters by the owner, and another user's skill raises the same
SkillNotFound as a skill that does not exist, so ids never leak between users.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError

from copilot.db.schema import personal_skills, skill_versions
from copilot.skills.library import samples as saved
from copilot.skills.library.types import (
    BUILTIN_PREFIX,
    SkillInfo,
    VersionInfo,
    check_message,
    check_skill_id,
    check_user,
    check_writable,
    parse_text,
    slugify,
)

# The `X as X` imports re-export what the store returns and raises: its interface.
from copilot.skills.library.types import SampleNotFound as SampleNotFound
from copilot.skills.library.types import SkillError as SkillError
from copilot.skills.library.types import SkillExists as SkillExists
from copilot.skills.library.types import SkillNotFound as SkillNotFound
from copilot.skills.library.types import StoredSkill as StoredSkill
from copilot.skills.templates.builtin import builtin_ids, builtin_text, load_builtin
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import parse_template

MAX_SKILLS = 200
MAX_VERSIONS = 100
MAX_USER_BYTES = 32 * 1024 * 1024

T = TypeVar("T")


def model_name(template: SkillTemplate) -> str | None:
    """The model a template asks for: Prompty 2 `model.id`, Prompty 1 `configuration`."""
    conf = template.model.get("configuration")
    conf = conf if isinstance(conf, dict) else {}
    names = [template.model.get("id")] + [conf.get(k) for k in ("name", "azure_deployment")]
    return next((n[:200] for n in names if isinstance(n, str) and n), None)


class SkillStore:
    """Built-in plus personal skills as one user sees them; every method takes the user."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    # -- reading -------------------------------------------------------------------------
    def list(self, user: str, *, surface: str | None = None) -> list[SkillInfo]:
        """Built-ins plus the user's skills, by id; a personal skill hides a built-in's row."""
        check_user(user)
        query = select(personal_skills).where(personal_skills.c.owner == user)
        with self.engine.connect() as conn:
            personal = {r.skill_id: r for r in conn.execute(query)}
        shipped = set(builtin_ids())
        infos = [_personal_info(r, r.skill_id in shipped) for r in personal.values()]
        infos += [_builtin_info(skill_id) for skill_id in shipped - personal.keys()]
        if surface is not None:
            infos = [i for i in infos if surface in i.surfaces]
        return sorted(infos, key=lambda i: i.id)

    def get(self, user: str, skill_id: str, version: int | None = None) -> StoredSkill:
        """The user's skill of that id if any, else the built-in; a version only if personal."""
        found = self._read(user, skill_id, version)
        if found is None:
            return _builtin(skill_id.removeprefix(BUILTIN_PREFIX))
        head, row = found
        template = parse_template(row.text, f"{skill_id} v{row.version}")
        fields = (row.version, row.text, template, row.created_at, row.message, head.forked_from)
        return StoredSkill(skill_id, "personal", *fields)

    def export_text(self, user: str, skill_id: str, version: int | None = None) -> str:
        """The stored text as saved, unparsed: exporting works even if the parser changed."""
        found = self._read(user, skill_id, version)
        if found is None:
            return builtin_text(skill_id.removeprefix(BUILTIN_PREFIX))
        text: str = found[1].text
        return text

    def history(self, user: str, skill_id: str) -> builtins.list[VersionInfo]:
        """The user's versions of a skill, newest first."""
        check_user(user)
        check_skill_id(skill_id)
        v = skill_versions.c
        query = (
            select(v.version, v.created_at, v.message, v.size, v.model)
            .where(v.owner == user, v.skill_id == skill_id)
            .order_by(v.version.desc())
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            hint = "a built-in: fork it to keep versions" if skill_id in builtin_ids() else ""
            raise SkillNotFound(skill_id, hint=hint)
        return [VersionInfo(r.version, r.created_at, r.message, r.size, r.model) for r in rows]

    # -- writing -------------------------------------------------------------------------
    def save(self, user: str, skill_id: str, text: str, *, message: str = "") -> StoredSkill:
        """Validate and store `text` as the next version; identical text adds no version.

        An invalid template raises TemplateError (naming the line) and stores nothing.
        """
        check_user(user)
        check_writable(skill_id)
        check_message(message)
        template = parse_text(text, f"{skill_id}.prompty")
        version = self._transaction(
            lambda conn: self._append(conn, user, skill_id, text, template, message, None)
        )
        return self.get(user, skill_id, version)

    def fork(self, user: str, source_id: str, new_id: str | None = None) -> StoredSkill:
        """Copy a built-in or one of the user's skills as version 1 of a new personal skill.

        The default id is the source's own id, so forking `summarise` shadows the built-in.
        An existing personal skill of the new id is never overwritten (SkillExists).
        """
        source = self.get(user, source_id)
        target = source.id if new_id is None else new_id
        check_writable(target)
        origin = f"builtin:{source.id}" if source.source == "builtin" else None
        origin = origin or f"{source.id}@v{source.version}"
        version = self._transaction(
            lambda conn: self._append(
                conn, user, target, source.text, source.template, f"fork of {origin}", origin
            )
        )
        return self.get(user, target, version)

    def revert(self, user: str, skill_id: str, version: int) -> StoredSkill:
        """Save version `version`'s text as a new version; history is never rewritten.

        If that text is already the latest, nothing is added and the latest is returned.
        """
        check_writable(skill_id)
        old = self.get(user, skill_id, version)
        return self.save(user, skill_id, old.text, message=f"revert to v{version}")

    def import_text(
        self, user: str, text: str, *, skill_id: str | None = None, message: str = "imported"
    ) -> StoredSkill:
        """Save an exported `.prompty` text; the id defaults to the slug of its `name`.

        Importing onto an existing personal skill adds a version to it (history keeps the
        old text), which is how "export, edit elsewhere, import" updates a skill.
        """
        if skill_id is None:
            skill_id = slugify(parse_text(text, "<import>").name)
        return self.save(user, skill_id, text, message=message)

    def delete(self, user: str, skill_id: str) -> None:
        """Delete a personal skill and all its versions; a shadowed built-in shows again.

        Saved samples go too, unless a built-in of that id remains for them to belong to.
        """
        check_user(user)
        check_writable(skill_id)
        shipped = skill_id in builtin_ids()

        def remove(conn: Connection) -> None:
            p = personal_skills.c
            gone = conn.execute(
                delete(personal_skills).where(p.owner == user, p.skill_id == skill_id)
            ).rowcount
            if not gone:
                if shipped:
                    raise SkillError(
                        f"{skill_id!r} is a built-in skill and cannot be deleted "
                        "(fork it to make your own copy)"
                    )
                raise SkillNotFound(skill_id)
            v = skill_versions.c
            conn.execute(delete(skill_versions).where(v.owner == user, v.skill_id == skill_id))
            if not shipped:
                saved.delete_samples(conn, user, skill_id)

        self._transaction(remove)

    # -- samples -------------------------------------------------------------------------
    def add_sample(self, user: str, skill_id: str, name: str, inputs: dict[str, Any]) -> None:
        """Save (or replace) named sample inputs, checked against the skill's declared inputs."""
        skill = self.get(user, skill_id)
        data = saved.sample_json(skill.template, skill.id, name, inputs)
        self._transaction(
            lambda conn: saved.put_sample(conn, self.dialect, user, skill.id, name, data)
        )

    def samples(self, user: str, skill_id: str) -> dict[str, dict[str, Any]]:
        """The skill's saved samples by name (they may not fit a later version's inputs)."""
        skill = self.get(user, skill_id)
        with self.engine.connect() as conn:
            return saved.read_samples(conn, user, skill.id)

    def delete_sample(self, user: str, skill_id: str, name: str) -> None:
        skill = self.get(user, skill_id)
        with self.engine.begin() as conn:
            saved.delete_sample(conn, user, skill.id, name)

    # -- internals -----------------------------------------------------------------------
    def _read(
        self, user: str, skill_id: str, version: int | None
    ) -> tuple[Row[Any], Row[Any]] | None:
        """The personal head and version rows, None for a built-in, else SkillNotFound."""
        check_user(user)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise SkillError(f"a version is a whole number, got {version!r}")
        if isinstance(skill_id, str) and skill_id.startswith(BUILTIN_PREFIX):
            bare = skill_id.removeprefix(BUILTIN_PREFIX)
            if version is not None or bare not in builtin_ids():
                raise SkillNotFound(skill_id, version)
            return None
        check_skill_id(skill_id)
        p, v = personal_skills.c, skill_versions.c
        with self.engine.connect() as conn:
            head = conn.execute(
                select(personal_skills).where(p.owner == user, p.skill_id == skill_id)
            ).first()
            if head is None:
                if version is not None or skill_id not in builtin_ids():
                    raise SkillNotFound(skill_id, version)
                return None
            row = conn.execute(
                select(skill_versions).where(
                    v.owner == user, v.skill_id == skill_id, v.version == (version or head.latest)
                )
            ).first()
        if row is None:
            raise SkillNotFound(skill_id, version)
        return head, row

    def _append(
        self,
        conn: Connection,
        user: str,
        skill_id: str,
        text: str,
        template: SkillTemplate,
        message: str,
        forked_from: str | None,
    ) -> int:
        """Add the next version inside a transaction; return the version now latest."""
        p, v = personal_skills.c, skill_versions.c
        # FOR UPDATE: on PostgreSQL concurrent saves wait for the head row instead of racing
        # to the same version number (SQLite's single writer serialises them already).
        head = conn.execute(
            select(personal_skills).where(p.owner == user, p.skill_id == skill_id).with_for_update()
        ).first()
        if head is not None and forked_from is not None:
            raise SkillExists(
                f"you already have a skill {skill_id!r}: edit it, or fork to a new id"
            )
        if head is not None:
            where = (v.owner == user, v.skill_id == skill_id, v.version == head.latest)
            if conn.execute(select(v.text).where(*where)).scalar_one() == text:
                latest: int = head.latest
                return latest
        size = len(text.encode("utf-8", "surrogatepass"))
        _check_room(conn, user, skill_id, head, size)
        now, version = time.time(), 1 if head is None else head.latest + 1
        summary = {
            "latest": version,
            "name": template.name,
            "description": template.description,
            "task": template.metadata.task,
            "surfaces": json.dumps(list(template.metadata.surfaces)),
            "updated_at": now,
        }
        if head is None:
            ids = {"owner": user, "skill_id": skill_id}
            conn.execute(
                personal_skills.insert().values(
                    **ids, **summary, forked_from=forked_from, created_at=now
                )
            )
        else:
            conn.execute(
                personal_skills.update()
                .where(p.owner == user, p.skill_id == skill_id, p.latest == head.latest)
                .values(**summary)
            )
        row = {"owner": user, "skill_id": skill_id, "version": version, "text": text}
        row.update(message=message, size=size, model=model_name(template), created_at=now)
        conn.execute(skill_versions.insert().values(**row))
        return version

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction, retrying when a concurrent writer got there first
        (two saves racing for the same version number, or SQLite's writer lock)."""
        for attempt in range(8):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as e:
                transient = isinstance(e, IntegrityError) or "locked" in str(e) or "busy" in str(e)
                if not transient or attempt == 7:
                    raise
                time.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")


def _personal_info(r: Row[Any], shadows: bool) -> SkillInfo:
    surfaces = json.loads(r.surfaces)
    fields = (r.latest, surfaces, r.task, r.forked_from, r.updated_at, shadows)
    return SkillInfo(r.skill_id, r.name, r.description, "personal", *fields)


def _builtin_info(skill_id: str) -> SkillInfo:
    t = load_builtin(skill_id)
    surfaces: list[str] = list(t.metadata.surfaces)
    fields = (None, surfaces, t.metadata.task, None, None, False)
    return SkillInfo(skill_id, t.name, t.description, "builtin", *fields)


def _builtin(skill_id: str) -> StoredSkill:
    return StoredSkill(
        skill_id, "builtin", None, builtin_text(skill_id), load_builtin(skill_id), None, "", None
    )


def _check_room(
    conn: Connection, user: str, skill_id: str, head: Row[Any] | None, size: int
) -> None:
    """The per-user caps, checked before a version is added: refuse rather than drop."""
    p, v = personal_skills.c, skill_versions.c
    if head is not None and head.latest >= MAX_VERSIONS:
        raise SkillError(
            f"skill {skill_id!r} has {MAX_VERSIONS} versions, the most kept; nothing was saved. "
            "Fork it to a new id to keep editing, or export, delete and import it"
        )
    if head is None:
        count = conn.execute(select(func.count()).where(p.owner == user)).scalar_one()
        if count >= MAX_SKILLS:
            raise SkillError(
                f"you have {MAX_SKILLS} personal skills, the most allowed; nothing was saved. "
                "Delete one first"
            )
    used = conn.execute(select(func.coalesce(func.sum(v.size), 0)).where(v.owner == user))
    if used.scalar_one() + size > MAX_USER_BYTES:
        raise SkillError(
            f"your skills would take over {MAX_USER_BYTES // 2**20} MB in total; nothing was "
            "saved. Delete skills you no longer use"
        )
