"""A Teams answer card lists what the answer cites, named for people, states once which
engine answered, and keeps the passages it did not cite behind "More sources". Every card
is checked against the Adaptive Card 1.5 schema (``tests.fakes.teams.valid``)."""

from __future__ import annotations

from typing import Any

from copilot.bot import cards
from copilot.bot.turns import LOCAL_NOTE, answer_cards
from copilot.skills.citations import cite
from copilot.skills.engines.local.text import NOTE_ANSWER
from copilot.skills.library.types import StoredSkill
from copilot.skills.result import RunResult
from copilot.skills.templates.builtin import load_builtin
from copilot.skills.types import Source
from tests.fakes.teams import card_text, valid

KAY = Source(
    n=1,
    item_id="mail:kay",
    chunk_id="c1",
    title="siemens westinghouse damaged generator",
    url="https://outlook.office.com/mail/id/AAMk1",
    kind="mail",
    locator={"message_id": "<mann-k_sent_1100.34@enron.com>", "paragraph": 1},
    text="Subject: siemens westinghouse damaged generator\nFrom: Kay Mann <kay.mann@enron.com>\n"
    "Date: 2001-03-14T15:12:00+00:00\nI think it is appropriate to get outside counsel to "
    "look at the two Westinghouse issues we have.",
    sender="Kay Mann",
    date="2001-03-14T15:12:00+00:00",
)
OTHERS = [
    Source(n, f"item-{n}", f"c{n}", title, "", kind, locator, text)
    for n, (title, kind, locator, text) in enumerate(
        [
            ("W-2 2000.pdf", "pdf", {"page": 2}, "Wages, tips, other compensation 48,112.00"),
            ("Condolences", "mail", {"message_id": "<x.2@enron.com>"},
             "Subject: Condolences\nFrom: a@enron.com\nOur thoughts are with you."),
            ("Budget.xlsx", "xlsx", {"sheet": "Q3", "range": "A2:F7"}, "Travel 12,000"),
            ("Notes.docx", "docx", {"section": "Risks", "paragraph": 4}, "Vendor lock-in."),
            ("Mexico advice", "mail", {"message_id": "<y.3@enron.com>"}, "Legal advice…"),
            ("Holiday", "mail", {"message_id": "<z.4@enron.com>"}, "Holiday party."),
            ("Minutes.pdf", "pdf", {"page": 9}, "The board met."),
        ],
        start=2,
    )
]  # fmt: skip
SOURCES = [KAY, *OTHERS]


def actions_named(card: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [a for a in card.get("actions", []) if a.get("title", "").startswith(prefix)]


def test_only_cited_sources_are_listed_and_the_rest_are_behind_more_sources() -> None:
    cited = cite("Kay wants outside counsel on the Westinghouse issues [1].", SOURCES)

    (card,) = cards.result_cards("Ask", cited.text, citations=cited.citations,
                                 sources=SOURCES, run_id="r1", note=NOTE_ANSWER)  # fmt: skip

    valid(card)
    body = [b.get("text", "") for b in card["body"]]
    listed = [t for t in body if t.startswith("[")]
    assert listed == [
        "[1] [siemens westinghouse damaged generator](https://outlook.office.com/mail/id/AAMk1)"
        " — Kay Mann, 14 Mar 2001"
    ]
    assert any(t.startswith("I think it is appropriate to get outside counsel") for t in body)
    assert not any(t.startswith(("Subject:", "From:")) for t in body)
    (more,) = actions_named(card, "More sources")
    assert more["title"] == "More sources (7)" and not actions_named(card, "Show sources")
    panel = card_text(more["card"])
    for hidden in ("W-2 2000.pdf", "Condolences", "Budget.xlsx", "Q3!A2:F7", "page 9"):
        assert hidden in panel
    assert "siemens" not in panel  # a cited source is not repeated behind the button
    assert "Subject:" not in panel and "From:" not in panel


def test_nothing_uncited_means_no_more_sources_button() -> None:
    cited = cite("Kay wants outside counsel [1].", [KAY])
    (card,) = cards.result_cards("Ask", cited.text, citations=cited.citations, sources=[KAY])
    valid(card)
    assert "actions" not in card


def _stored() -> StoredSkill:
    return StoredSkill("ask", "builtin", None, "", load_builtin("ask"), None, "", None)


def _result(engine: str, note: str) -> RunResult:
    cited = cite("Kay wants outside counsel [1].", SOURCES)
    return RunResult(
        skill_id="ask", skill_version="builtin", engine=engine, model=None, text=cited.text,
        data=None, citations=cited.citations, invalid_citations=[], sources=SOURCES,
        messages=[], note=note, run_id="r9",
    )  # fmt: skip


def test_the_engine_note_is_said_once() -> None:
    (card,) = answer_cards(_stored(), _result("local", NOTE_ANSWER))
    text = card_text(valid(card))
    assert text.count("local engine") == 1 and LOCAL_NOTE not in text

    (bare,) = answer_cards(_stored(), _result("local", ""))  # an engine without its own note
    assert card_text(valid(bare)).count("local engine") == 1

    (written,) = answer_cards(_stored(), _result("llm", ""))
    assert "local engine" not in card_text(valid(written))
