"""Personal skills: fork a built-in, edit, history, revert, export/import, samples, isolation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import copilot.skills.library.store as store_module
from copilot.db.engine import open_engine
from copilot.db.schema import skill_versions
from copilot.skills.library.store import (
    MAX_VERSIONS,
    SampleNotFound,
    SkillError,
    SkillExists,
    SkillNotFound,
    SkillStore,
)
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import TemplateError, parse_template


def skill_text(name: str = "Summarise", points: int = 3, extra: str = "") -> str:
    return f"""\
---
name: {name}
description: Bullet points for a busy reader
model:
  api: chat
  configuration:
    type: openai
    name: gpt-4o-mini
inputs:
  document:
    type: string
  points:
    type: number
    default: {points}
  tags:
    type: array
    default: []
metadata:
  task: summarise
  surfaces: [word, cli]
---
system:
Write {{{{ points }}}} bullet points.{extra}
user:
{{{{ document }}}}
"""


SHIPPED = {
    "summarise": skill_text("Summarise"),
    "draft": skill_text("Draft").replace("surfaces: [word, cli]", "surfaces: [outlook]"),
}


def same_template(a: SkillTemplate, b: SkillTemplate) -> bool:
    """Equal in everything but the file name used in error messages."""
    return a.model_dump(exclude={"source"}) == b.model_dump(exclude={"source"})


@pytest.fixture
def fake_builtins(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two shipped skills of our own, so the tests do not follow the real files' edits."""

    def text(skill_id: str) -> str:
        if skill_id not in SHIPPED:
            raise KeyError(skill_id)
        return SHIPPED[skill_id]

    monkeypatch.setattr(store_module, "builtin_ids", lambda: sorted(SHIPPED))
    monkeypatch.setattr(store_module, "builtin_text", text)
    monkeypatch.setattr(store_module, "load_builtin", lambda i: parse_template(text(i), i))
    return SHIPPED


@pytest.fixture
def store(state_url: str, fake_builtins: dict[str, str]) -> Iterator[SkillStore]:
    """On a SQLite file and on a fresh PostgreSQL database (``state_url`` runs both)."""
    engine = open_engine(state_url)
    yield SkillStore(engine)
    engine.dispose()  # close the pool: an unclosed psycopg connection is a warning (an error)


def test_fork_a_builtin_edit_twice_history_and_revert(store: SkillStore) -> None:
    forked = store.fork("ann", "summarise")
    assert (forked.id, forked.source, forked.version) == ("summarise", "personal", 1)
    assert forked.forked_from == "builtin:summarise"
    assert forked.text == SHIPPED["summarise"]

    store.save("ann", "summarise", skill_text(points=5), message="five points")
    v3 = store.save("ann", "summarise", skill_text(points=7), message="seven")
    assert v3.version == 3 and v3.template.inputs["points"].default == 7

    history = store.history("ann", "summarise")
    assert [h.version for h in history] == [3, 2, 1]
    assert [h.message for h in history] == ["seven", "five points", "fork of builtin:summarise"]
    assert history[0].model == "gpt-4o-mini"
    assert history[0].size == len(skill_text(points=7).encode())

    reverted = store.revert("ann", "summarise", 2)
    assert reverted.version == 4 and reverted.message == "revert to v2"
    assert reverted.text == skill_text(points=5)
    assert [h.version for h in store.history("ann", "summarise")] == [4, 3, 2, 1]
    assert store.get("ann", "summarise", 1).text == SHIPPED["summarise"]  # history kept

    # The personal skill shadows the built-in, which stays reachable by its full name.
    assert store.get("ann", "summarise").source == "personal"
    shipped = store.get("ann", "builtin:summarise")
    assert (shipped.source, shipped.version, shipped.text) == (
        "builtin",
        None,
        SHIPPED["summarise"],
    )
    listed = {i.id: i for i in store.list("ann")}
    assert sorted(listed) == ["draft", "summarise"]  # listed once
    assert listed["summarise"].shadows_builtin and listed["summarise"].version == 4
    assert listed["draft"].source == "builtin" and not listed["draft"].shadows_builtin
    assert [i.id for i in store.list("ann", surface="outlook")] == ["draft"]


def test_identical_save_does_not_bump_the_version(store: SkillStore) -> None:
    first = store.save("ann", "notes", skill_text("Notes"))
    again = store.save("ann", "notes", skill_text("Notes"), message="no change")
    assert first.version == again.version == 1
    assert again.message == ""  # the stored version, not the ignored save
    assert len(store.history("ann", "notes")) == 1
    # Reverting to the version that is already latest adds nothing either.
    assert store.revert("ann", "notes", 1).version == 1


def test_invalid_template_is_rejected_with_its_line_and_nothing_is_stored(
    store: SkillStore,
) -> None:
    bad = skill_text("Notes").replace("    type: number", "    type: nmber")
    with pytest.raises(TemplateError) as err:
        store.save("ann", "notes", bad)
    line = bad.splitlines().index("    type: nmber") + 1
    assert err.value.line == line == 13
    assert str(err.value).startswith("notes.prompty line 13: inputs.points.type:")
    with pytest.raises(SkillNotFound):
        store.get("ann", "notes")
    assert [i.id for i in store.list("ann")] == ["draft", "summarise"]

    store.save("ann", "notes", skill_text("Notes"))
    body_error = skill_text("Notes", extra=" {{ undeclared }}")
    with pytest.raises(TemplateError, match="undeclared") as err:
        store.save("ann", "notes", body_error)
    assert err.value.line == next(
        n for n, text in enumerate(body_error.splitlines(), 1) if "undeclared" in text
    )
    assert [h.version for h in store.history("ann", "notes")] == [1]


def test_export_import_round_trip(store: SkillStore) -> None:
    store.fork("ann", "summarise", "brief")
    store.save("ann", "brief", skill_text("Brief Notes!", points=2))
    text = store.export_text("ann", "brief")
    assert same_template(parse_template(text), store.get("ann", "brief").template)
    assert store.export_text("ann", "brief", 1) == SHIPPED["summarise"]

    imported = store.import_text("bob", text)
    assert imported.id == "brief-notes"  # the slug of the template's name
    assert (imported.version, imported.message) == (1, "imported")
    assert same_template(imported.template, parse_template(text))
    assert store.export_text("bob", "brief-notes") == text  # byte for byte

    renamed = store.import_text("bob", text, skill_id="mine")
    assert renamed.id == "mine"
    with pytest.raises(SkillError, match="cannot make a skill id"):
        store.import_text("bob", skill_text('"???"'))


def test_fork_refuses_to_overwrite_and_builtins_are_read_only(store: SkillStore) -> None:
    store.save("ann", "notes", skill_text("Notes"))
    with pytest.raises(SkillExists, match="already have a skill 'notes'"):
        store.fork("ann", "notes")
    copy = store.fork("ann", "notes", "notes-2")
    assert copy.forked_from == "notes@v1" and copy.version == 1
    with pytest.raises(SkillExists):
        store.fork("ann", "summarise", "notes")

    with pytest.raises(SkillError, match="built-in skill and cannot be deleted"):
        store.delete("ann", "summarise")
    with pytest.raises(SkillError, match="cannot be changed"):
        store.save("ann", "builtin:summarise", skill_text())
    with pytest.raises(SkillNotFound, match="fork it"):
        store.history("ann", "draft")

    store.fork("ann", "draft")
    store.delete("ann", "draft")  # the personal copy goes, the built-in shows again
    assert store.get("ann", "draft").source == "builtin"


def test_hostile_texts_get_clear_errors(store: SkillStore) -> None:
    with pytest.raises(TemplateError, match="over the 65536-byte limit"):
        store.save("ann", "big", skill_text(extra="x" * 70_000))
    with pytest.raises(TemplateError, match=r"big.prompty line 23: not valid Unicode"):
        store.save("ann", "big", skill_text(extra="\udcff"))
    with pytest.raises(SkillError, match="a skill is text, got bytes"):
        store.save("ann", "big", skill_text().encode())  # type: ignore[arg-type]
    with pytest.raises(SkillError, match="at most 500 characters"):
        store.save("ann", "big", skill_text(), message="m" * 501)
    with pytest.raises(SkillError, match="a user id"):
        store.list("")
    assert [i.id for i in store.list("ann")] == ["draft", "summarise"]
    # A mis-decoded sample value is kept exactly (as a JSON escape).
    store.save("ann", "notes", skill_text())
    store.add_sample("ann", "notes", "odd", {"document": "a\udcffb"})
    assert store.samples("ann", "notes") == {"odd": {"document": "a\udcffb"}}


@pytest.mark.parametrize("bad", ["Notes", "", "a b", "-x", "x" * 65, "../etc", "ß"])
def test_skill_ids_are_lowercase_slugs(store: SkillStore, bad: str) -> None:
    with pytest.raises(SkillError, match="invalid skill id"):
        store.save("ann", bad, skill_text())


def test_samples_are_validated_against_the_declared_inputs(store: SkillStore) -> None:
    store.save("ann", "notes", skill_text("Notes"))
    store.add_sample("ann", "notes", "q3 report", {"document": "Revenue rose.", "points": 2})
    store.add_sample("ann", "notes", "tags", {"document": "x", "tags": ["a", "b"]})
    store.add_sample("ann", "notes", "tags", {"document": "y"})  # same name: replaced
    assert store.samples("ann", "notes") == {
        "q3 report": {"document": "Revenue rose.", "points": 2},
        "tags": {"document": "y"},
    }

    problems = [
        ({"document": "x", "pionts": 2}, "no input(s) 'pionts'; its inputs are: document"),
        ({"document": 42}, "input 'document' should be a string, got int"),
        ({"document": "x", "points": True}, "should be a number, got bool"),
        ({"document": "x", "tags": "a"}, "should be a array, got str"),
        ({"points": 1}, "missing the required input 'document'"),
        ({"document": "x", "points": float("nan")}, "plain JSON"),
        ({"document": "x" * 300_000}, "over the 262144-byte limit"),
        (["document"], "must be a mapping"),
    ]
    for inputs, message in problems:
        with pytest.raises(SkillError, match=message.replace("(", r"\(").replace(")", r"\)")):
            store.add_sample("ann", "notes", "bad", inputs)  # type: ignore[arg-type]
    with pytest.raises(SkillError, match="invalid sample name"):
        store.add_sample("ann", "notes", "", {"document": "x"})
    assert set(store.samples("ann", "notes")) == {"q3 report", "tags"}

    store.delete_sample("ann", "notes", "tags")
    with pytest.raises(SampleNotFound, match="no sample 'tags'"):
        store.delete_sample("ann", "notes", "tags")
    # Samples of a built-in are the user's own too, and survive nothing else.
    store.add_sample("ann", "summarise", "short", {"document": "x"})
    assert store.samples("ann", "builtin:summarise") == {"short": {"document": "x"}}
    store.delete("ann", "notes")
    store.save("ann", "notes", skill_text("Notes"))
    assert store.samples("ann", "notes") == {}  # deleting a skill deletes its samples


def test_another_users_skill_looks_exactly_like_a_missing_one(store: SkillStore) -> None:
    store.save("ann", "secret-plan", skill_text("Secret"))
    store.save("ann", "secret-plan", skill_text("Secret", points=4))
    store.add_sample("ann", "secret-plan", "s1", {"document": "confidential"})

    assert "secret-plan" not in {i.id for i in store.list("bob")}
    calls = {
        "get": lambda sid: store.get("bob", sid),
        "get v1": lambda sid: store.get("bob", sid, 1),
        "history": lambda sid: store.history("bob", sid),
        "revert": lambda sid: store.revert("bob", sid, 1),
        "export": lambda sid: store.export_text("bob", sid),
        "delete": lambda sid: store.delete("bob", sid),
        "samples": lambda sid: store.samples("bob", sid),
        "add_sample": lambda sid: store.add_sample("bob", sid, "s2", {"document": "x"}),
        "delete_sample": lambda sid: store.delete_sample("bob", sid, "s1"),
        "fork": lambda sid: store.fork("bob", sid, "stolen"),
    }
    for name, call in calls.items():
        with pytest.raises(SkillNotFound) as theirs:
            call("secret-plan")
        with pytest.raises(SkillNotFound) as missing:
            call("no-such-one")
        assert str(theirs.value) == str(missing.value).replace("no-such-one", "secret-plan"), name

    # Bob's own skill of the same id is separate, and Ann's is untouched.
    store.save("bob", "secret-plan", skill_text("Bob's"))
    assert store.get("bob", "secret-plan").template.name == "Bob's"
    assert store.get("ann", "secret-plan").version == 2
    assert store.samples("ann", "secret-plan") == {"s1": {"document": "confidential"}}
    assert store.samples("bob", "secret-plan") == {}


def test_version_cap_refuses_with_a_clear_message(
    store: SkillStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_VERSIONS", 3)
    for points in (1, 2, 3):
        store.save("ann", "notes", skill_text(points=points))
    with pytest.raises(SkillError, match="3 versions, the most kept; nothing was saved"):
        store.save("ann", "notes", skill_text(points=4))
    assert [h.version for h in store.history("ann", "notes")] == [3, 2, 1]  # nothing dropped
    assert MAX_VERSIONS == 100

    monkeypatch.setattr(store_module, "MAX_SKILLS", 1)
    with pytest.raises(SkillError, match="1 personal skills, the most allowed"):
        store.save("ann", "other", skill_text())
    store.save("bob", "other", skill_text())  # the cap is per user


def test_concurrent_saves_get_distinct_versions(store: SkillStore) -> None:
    errors: list[BaseException] = []

    def edit(worker: int) -> None:
        try:
            for i in range(8):
                store.save("ann", "notes", skill_text(points=worker * 100 + i))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=edit, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [h.version for h in store.history("ann", "notes")] == list(range(32, 0, -1))
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(skill_versions)).scalar_one()
    assert count == 32
    assert {i.id: i.version for i in store.list("ann")}["notes"] == 32


def test_the_shipped_summarise_can_be_forked_and_edited(tmp_path: Path) -> None:
    store = SkillStore(open_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    forked = store.fork("ann", "summarise", "my-summary")
    edited = forked.text.rstrip("\n") + "\nAnswer in English.\n"  # one more line in the body
    saved = store.save("ann", "my-summary", edited)
    assert saved.version == 2 and saved.template.body.endswith("Answer in English.\n")
    assert {"summarise", "my-summary"} <= {i.id for i in store.list("ann")}
