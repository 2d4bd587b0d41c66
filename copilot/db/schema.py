"""Every table of the state database, in one ``MetaData``, created by one ``create_all``.

Why one module: the tables used to be declared beside the code that uses them and created
lazily by each store, so whether a table existed depended on which command ran first, and
no one place said what the database holds. Now ``copilot.db.engine.open_engine`` (the only
way the state database is opened) creates every missing table once, and the modules that
read and write a table import it from here.

The names of tables, columns and indexes are the database's contract with files written by
earlier versions: ``create_all`` only adds what is missing, so renaming anything here would
leave an existing database with an orphan table and an empty new one.

Who writes what: sync state (``items``, ``checkpoints``, ``failures``, ``texts``, ``syncs``)
by ``copilot.db.state``; ``skill_runs`` by ``copilot.skills.history``; ``personal_skills``,
``skill_versions`` and ``skill_samples`` by ``copilot.skills.library``; ``skill_models`` by
``copilot.finetune.overrides``; ``consents`` by ``copilot.finetune.consent``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Engine

metadata = MetaData()

# -- sync state ------------------------------------------------------------------------------

items = Table(
    "items",
    metadata,
    Column("owner", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("scope", String, nullable=False, index=True),
    Column("parent_id", String, index=True),
    Column("kind", String, nullable=False),
    Column("title", Text, nullable=False, default=""),
    Column("url", Text, nullable=False, default=""),
    Column("version", String, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("status", String, nullable=False),  # indexed | failed
    Column("chunks", Integer, nullable=False, default=0),
    Column("modified", Float),
    Column("indexed_at", Float, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("owner", String, primary_key=True),
    Column("scope", String, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

failures = Table(
    "failures",
    metadata,
    Column("owner", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("scope", String, nullable=False, index=True),
    Column("stage", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
)

texts = Table(
    "texts",
    metadata,
    Column("owner", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("text", Text, nullable=False),
)

syncs = Table(
    "syncs",
    metadata,
    Column("owner", String, primary_key=True),
    Column("scope", String, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String, nullable=False),  # running | done | cancelled | failed
    Column("counts", Text, nullable=False, default="{}"),
)

# -- skill runs --------------------------------------------------------------------------------

skill_runs = Table(
    "skill_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String, nullable=False),
    Column("skill_id", String, nullable=False),
    Column("skill_version", String, nullable=False),  # "builtin" or "v3"
    Column("engine", String, nullable=False),
    Column("model", String),
    Column("inputs", Text),  # JSON; NULL when inputs are not kept
    Column("inputs_hash", String, nullable=False),
    Column("messages", Text, nullable=False),  # JSON [{"role", "content"}]
    Column("output", Text, nullable=False),
    Column("data", Text),  # JSON
    Column("citations", Text, nullable=False),  # JSON
    Column("chunk_ids", Text, nullable=False),  # JSON
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("latency_ms", Float, nullable=False),
    Column("status", String, nullable=False),
    Column("error", Text),
    Column("redactions", Text, nullable=False),  # JSON {kind: count}
    Column("truncated", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("rating", Integer),
    Column("edited_text", Text),
    Column("comment", Text),
    Column("feedback_at", Float),
    Index("ix_skill_runs_owner_created", "owner", "created_at"),
    Index("ix_skill_runs_skill_rating", "skill_id", "rating"),
)

# -- personal skills ---------------------------------------------------------------------------

personal_skills = Table(
    "personal_skills",
    metadata,
    Column("owner", String, primary_key=True),
    Column("skill_id", String, primary_key=True),
    Column("latest", Integer, nullable=False),
    # Copied from the latest version's template so that listing needs no parsing.
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("task", String, nullable=False),
    Column("surfaces", Text, nullable=False),  # JSON list
    Column("forked_from", String),  # "builtin:summarise" or "notes@v3"
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

skill_versions = Table(
    "skill_versions",
    metadata,
    Column("owner", String, primary_key=True),
    Column("skill_id", String, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("model", String),
    Column("created_at", Float, nullable=False),
)

skill_samples = Table(
    "skill_samples",
    metadata,
    Column("owner", String, primary_key=True),
    Column("skill_id", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("inputs", Text, nullable=False),  # JSON object
    Column("created_at", Float, nullable=False),
)

# -- fine-tuning -------------------------------------------------------------------------------

skill_models = Table(
    "skill_models",
    metadata,
    Column("skill_id", String, primary_key=True),
    Column("model", String, nullable=False),
    Column("set_by", String, nullable=False),
    Column("at", Float, nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("user", String, primary_key=True),
    Column("purpose", String, primary_key=True),
    Column("granted_at", Float, nullable=False),
)


def create_all(engine: Engine) -> None:
    """Create every table (and index) the database lacks; existing ones are left as they are."""
    metadata.create_all(engine)
