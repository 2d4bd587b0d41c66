"""Citations a person can read without opening anything, on real mail: each mail named by
its subject, sender and date, snippets from the body (never "Subject: From: …"), one
number per passage, and Message-IDs that redaction leaves alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.skills.citations import citation_line, cite, more_sources
from copilot.skills.engines.local.sentences import sources_from_text
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace
from tests.fakes.llm_server import Reply, ScriptedLLM
from tests.skills.mailbox import HESS_ID, HESS_SENTENCES, KAY_ID, USER, indexed_mailbox

HEADER_TEXT = re.compile(r"\b(Subject|From|To|Cc|Date):")


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with indexed_mailbox(tmp_path_factory.mktemp("mailbox")) as ws:
        yield ws


def test_a_mail_is_cited_by_subject_sender_and_date(mailbox: Workspace) -> None:
    result = SkillRunner(mailbox).run(
        USER, "ask", {"question": "Should we get outside counsel for Westinghouse?"},
        engine="local", record=False,
    )  # fmt: skip

    assert "outside counsel" in result.text and result.text.count("[1]") == 1
    (kay,) = result.citations
    assert (kay.kind, kay.subject, kay.sender) == (
        "mail", "siemens westinghouse damaged generator", "Kay Mann",
    )  # fmt: skip
    assert kay.date.startswith("2001-03-14") and kay.where == "Kay Mann, 14 Mar 2001"
    assert kay.label == "siemens westinghouse damaged generator — Kay Mann, 14 Mar 2001"
    assert kay.snippet.startswith("I think it is appropriate to get outside counsel")
    assert kay.locator["message_id"] == KAY_ID  # the link back to the mail stays exact
    assert citation_line(kay).startswith("[1] siemens westinghouse damaged generator — Kay")


def test_no_snippet_starts_with_or_holds_header_text(mailbox: Workspace) -> None:
    result = SkillRunner(mailbox).run(
        USER, "ask", {"question": "What did Kay Mann say about legal questions and counsel?"},
        engine="local", record=False,
    )  # fmt: skip
    shown = [*result.citations, *more_sources(result.sources, result.citations)]

    assert len(shown) >= 3
    for c in shown:
        assert c.snippet and not HEADER_TEXT.search(c.snippet), c
        assert "@enron.com" not in c.label  # people by name, not by address
        assert "message_id" not in c.where and "<" not in c.where


def test_chunks_of_one_long_mail_are_one_numbered_source(mailbox: Workspace) -> None:
    prep = SkillRunner(mailbox).prepare(
        USER, "ask", {"question": "What did Amerada Hess decide about the ISDA Master Agreement?"},
        engine="local",
    )  # fmt: skip

    hess = [s for s in prep.sources if s.locator.get("message_id") == HESS_ID]
    assert len(hess) == 1  # before: one number per chunk, all "paragraph 0"
    assert len({s.item_id for s in prep.sources}) == len(prep.sources)
    merged = [reason for _, reason in prep.dropped if reason.startswith("merged into")]
    assert merged  # the long mail really was several chunks
    said = [hess[0].text.count(sentence) for sentence in HESS_SENTENCES[:14]]
    assert max(said) <= 3 and sum(said) > 14  # each part once: no overlap repeated
    assert hess[0].sender == "Tana Jones" and hess[0].title == "Amerada Hess ISDA status"


def test_pieces_of_one_typed_paragraph_are_cited_as_one() -> None:
    paragraph = " ".join(HESS_SENTENCES)  # too long for one source: cut into pieces
    sources = sources_from_text(paragraph, title="input")
    assert len(sources) > 2 and len({str(s.locator) for s in sources}) == 1

    cited = cite("The collateral threshold is 5,000,000 dollars [3][2]. Hess chose [1].", sources)

    assert cited.text == "The collateral threshold is 5,000,000 dollars [1]. Hess chose [1]."
    assert [c.n for c in cited.citations] == [1]
    assert cited.citations[0].label == "your text — paragraph 1"
    assert "threshold" in cited.citations[0].snippet  # the sentence the answer leans on
    assert cited.uncited == []


def test_redaction_leaves_message_ids_and_redacts_people(mailbox: Workspace) -> None:
    redactor = Redactor(RedactionPolicy())
    text = (
        "Message-ID: <jones-t_sent_438.54@enron.com>\n"
        "References: <a.1@enron.com> <b.2@enron.com>\n"
        "From: Tana Jones <tana.jones@enron.com>\n"
        'where="message_id &lt;mann-k_sent_1100.34@enron.com&gt;"\n'
        "Write to kay.mann@enron.com or <richard.sanders@enron.com>."
    )
    out = redactor.redact(text)

    for kept in ("<jones-t_sent_438.54@enron.com>", "<a.1@enron.com> <b.2@enron.com>",
                 "&lt;mann-k_sent_1100.34@enron.com&gt;"):  # fmt: skip
        assert kept in out
    for gone in ("tana.jones@", "kay.mann@", "richard.sanders@"):
        assert gone not in out
    assert redactor.report() == {"email": 3}


def test_with_redaction_on_the_prompt_has_no_message_id_and_citations_keep_it(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    with indexed_mailbox(
        tmp_path, llm_base_url=llm.base_url, llm_timeout_s=5, llm_max_retries=0, redact=True
    ) as ws:
        llm.script(Reply.text("Kay wants outside counsel on the Westinghouse issues [1]."))
        result = SkillRunner(ws).run(
            USER, "ask", {"question": "Should we get outside counsel for Westinghouse?"},
            engine="llm", record=False,
        )  # fmt: skip

    prompt = "\n".join(m["content"] for m in llm.requests[-1].json["messages"])
    assert "message_id" not in prompt and "mann-k_sent_1100" not in prompt
    assert 'from="Kay Mann" date="14 Mar 2001"' in prompt
    assert "[EMAIL_" in prompt and "kay.mann@enron.com" not in prompt  # the From: line
    (kay,) = result.citations
    assert kay.locator["message_id"] == KAY_ID and kay.sender == "Kay Mann"
    assert kay.subject == "siemens westinghouse damaged generator"
