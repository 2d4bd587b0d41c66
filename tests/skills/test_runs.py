"""Skill runs: record, read back, page through, rate, collect the approved ones, erase."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.db.engine import open_engine
from copilot.llm.types import Message
from copilot.skills.history import (
    MAX_MESSAGES_BYTES,
    MAX_OUTPUT_BYTES,
    RunNotFound,
    RunRecord,
    RunStore,
    inputs_hash,
)


def make_run(user: str = "ann", skill_id: str = "summarise", **changes: Any) -> RunRecord:
    inputs = changes.pop("inputs", {"text": "Revenue rose 12%. Costs rose 4%.", "style": "tldr"})
    run = RunRecord(
        user=user,
        skill_id=skill_id,
        skill_version="v3",
        engine="llm",
        model="gpt-4o-mini",
        inputs=inputs,
        inputs_hash="",
        messages=[
            {"role": "system", "content": "Summarise in one line."},
            {"role": "user", "content": str(inputs.get("text", "") if inputs else "")},
        ],
        output="Revenue up 12%, costs up 4% [1].",
        data=None,
        citations=[{"n": 1, "item_id": "doc-1", "title": "Q3 report", "url": "file:///q3.docx"}],
        chunk_ids=["doc-1#0", "doc-1#3"],
        prompt_tokens=120,
        completion_tokens=14,
        cost_usd=0.00004,
        latency_ms=812.5,
        status="ok",
        redactions={"email": 1},
    )
    for key, value in changes.items():
        setattr(run, key, value)
    return run


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def runs(state_url: str) -> Iterator[RunStore]:
    """On a SQLite file and on a fresh PostgreSQL database (``state_url`` runs both)."""
    engine = open_engine(state_url)
    yield RunStore(engine)
    engine.dispose()  # close the pool: an unclosed psycopg connection is a warning (an error)


def test_a_recorded_run_reads_back_as_it_was(runs: RunStore) -> None:
    run = make_run()
    run_id = runs.record(run)
    assert run.id == run_id and len(run_id) == 32 and run.created_at > 0

    back = runs.get("ann", run_id)
    assert back == run  # every field, including the exact messages sent
    assert back.inputs_hash == inputs_hash(run.inputs)
    assert back.truncated is False and back.rating is None


def test_inputs_hash_is_canonical() -> None:
    assert inputs_hash({"a": 1, "b": [1, "é"]}) == inputs_hash({"b": [1, "é"], "a": 1})
    assert inputs_hash({"a": 1}) != inputs_hash({"a": 2})
    assert len(inputs_hash({})) == 64
    with pytest.raises(ValueError, match="plain JSON"):
        inputs_hash({"a": object()})


def test_message_objects_are_stored_as_plain_dicts(runs: RunStore) -> None:
    run = make_run(messages=[Message("system", "Be brief."), Message("user", "Hi")])
    back = runs.get("ann", runs.record(run))
    assert back.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_list_is_newest_first_with_keyset_pagination(runs: RunStore) -> None:
    ids = [runs.record(make_run(skill_id="draft" if i % 3 == 0 else "summarise")) for i in range(7)]
    runs.record(make_run(user="bob"))

    seen: list[str] = []
    page = runs.list("ann", limit=3)
    while page:
        seen += [r.id for r in page]
        page = runs.list("ann", limit=3, before=page[-1].created_at)
    assert seen == ids[::-1]  # all of Ann's, none of Bob's, no run twice or skipped

    drafts = runs.list("ann", skill_id="draft")
    assert [r.id for r in drafts] == [ids[6], ids[3], ids[0]]
    with pytest.raises(ValueError, match="limit"):
        runs.list("ann", limit=0)
    with pytest.raises(ValueError, match="before must be"):
        runs.list("ann", before="yesterday")  # type: ignore[arg-type]


def test_feedback_and_approved_runs(runs: RunStore) -> None:
    liked = runs.record(make_run(output="draft one"))
    edited = runs.record(make_run(output="draft two"))
    disliked = runs.record(make_run(output="draft three"))
    failed = runs.record(make_run(status="error", error="timeout", output=""))
    other_skill = runs.record(make_run(skill_id="draft"))
    bobs = runs.record(make_run(user="bob", output="bob's draft"))

    rated = runs.feedback("ann", liked, rating=1)
    assert rated.rating == 1 and rated.feedback_at is not None
    runs.feedback("ann", edited, rating=1, edited_text="Draft two, as I would say it.")
    runs.feedback("ann", edited, comment="tone was too formal")  # rating kept
    runs.feedback("ann", disliked, rating=-1, comment="wrong figures")
    for run_id in (failed, other_skill):
        runs.feedback("ann", run_id, rating=1)
    runs.feedback("bob", bobs, rating=1)

    kept = runs.get("ann", edited)
    assert (kept.rating, kept.comment) == (1, "tone was too formal")
    assert kept.output == "draft two"  # the run itself keeps what the model said

    approved = runs.approved("summarise", user="ann")
    assert [r.id for r in approved] == [edited, liked]  # not disliked, failed, other skill
    assert approved[0].output == "Draft two, as I would say it."  # the edit wins
    assert approved[1].output == "draft one"
    everyone = runs.approved("summarise")
    assert {r.id for r in everyone} == {edited, liked, bobs}
    assert runs.approved("summarise", user="ann", min_rating=2) == []

    for bad in (0, 5, True, 1.0, "1"):
        with pytest.raises(ValueError, match="rating must be -1"):
            runs.feedback("ann", liked, rating=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no feedback given"):
        runs.feedback("ann", liked)
    with pytest.raises(ValueError, match="edited text is over"):
        runs.feedback("ann", liked, edited_text="x" * (MAX_OUTPUT_BYTES + 1))


def test_users_cannot_read_rate_or_erase_each_others_runs(runs: RunStore) -> None:
    anns = runs.record(make_run())
    with pytest.raises(RunNotFound) as theirs:
        runs.get("bob", anns)
    with pytest.raises(RunNotFound) as missing:
        runs.get("bob", "0" * 32)
    assert str(theirs.value) == str(missing.value).replace("0" * 32, anns)
    with pytest.raises(RunNotFound):
        runs.feedback("bob", anns, rating=-1)
    assert runs.list("bob") == []
    assert runs.approved("summarise", user="bob") == []
    assert runs.delete_user("bob") == 0
    assert runs.get("ann", anns).rating is None


def test_delete_user_erases_all_their_runs(runs: RunStore) -> None:
    for _ in range(3):
        runs.record(make_run())
    kept = runs.record(make_run(user="bob"))
    assert runs.delete_user("ann") == 3
    assert runs.list("ann") == []
    assert runs.get("bob", kept).user == "bob"


def test_keep_inputs_false_stores_only_the_hash(db: Path) -> None:
    runs = RunStore(open_engine(f"sqlite:///{db}"), keep_inputs=False)
    secret = {"text": "salary of J. Smith is 91,000", "style": "tldr"}
    run = make_run(inputs=secret, messages=[{"role": "system", "content": "Summarise."}])
    back = runs.get("ann", runs.record(run))
    assert back.inputs == {} and back.inputs_hash == inputs_hash(secret)
    # Not in the database file at all (the messages here do not quote the inputs).
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT inputs FROM skill_runs").fetchone()
        dump = "\n".join(conn.iterdump())
    assert stored is None and "91,000" not in dump


def test_oversized_runs_are_truncated_and_flagged_never_approved(runs: RunStore) -> None:
    document = "word " * 400_000  # 2 MB in the user message
    run = make_run(
        inputs={"text": document},
        output="y" * (MAX_OUTPUT_BYTES + 10),
        data={"big": "z" * 200_000},
        chunk_ids=[f"c{i}" for i in range(5000)],
    )
    back = runs.get("ann", runs.record(run))
    assert run.truncated and back.truncated
    system, user = back.messages
    assert system["content"] == "Summarise in one line."  # the short message is untouched
    assert "truncated by copilot" in user["content"]
    assert sum(len(m["content"].encode()) for m in back.messages) <= MAX_MESSAGES_BYTES
    assert len(back.output.encode()) <= MAX_OUTPUT_BYTES and back.output.startswith("yyy")
    assert back.inputs == {} and back.inputs_hash == inputs_hash({"text": document})
    assert back.data is None and len(back.chunk_ids) == 1000
    runs.feedback("ann", back.id, rating=1)
    assert runs.approved("summarise") == []


def test_hostile_run_fields_get_clear_errors_or_are_made_storable(runs: RunStore) -> None:
    problems = [
        ({"status": "done"}, "status must be ok, error or cancelled"),
        ({"prompt_tokens": -1}, "prompt_tokens must be a whole number"),
        ({"user": ""}, "user must be a non-empty string"),
        ({"messages": [{"role": "user"}]}, "text role and a text content"),
        ({"data": {"x": float("inf")}}, "data must be plain JSON"),
        ({"inputs": None}, "inputs must be a mapping"),
    ]
    for changes, message in problems:
        with pytest.raises(ValueError, match=message):
            runs.record(make_run(**changes))
    assert runs.list("ann") == []

    broken = "bad \udcff surrogate"  # what a mis-decoded file can produce
    run = make_run(inputs={"text": broken}, output=broken)
    back = runs.get("ann", runs.record(run))
    assert back.output == "bad \ufffd surrogate"
    assert back.inputs == {"text": broken}  # JSON escapes keep it exactly
