"""A question's punctuation and casing never change what is found or answered: "…advice?"
once answered "I found nothing" while "…advice" quoted the right mail, because the dense
embedding (and the local engine's relevance threshold) saw the question mark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from copilot.index.search import QueryError, clean_query, query_text, search
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace
from tests.skills.mailbox import USER, indexed_mailbox

QUESTION = "What did Kay Mann say about outside legal advice"
VARIANTS = [
    f"{QUESTION}?",
    QUESTION,
    f'"{QUESTION}?"',
    f"“{QUESTION}”",
    f"{QUESTION.upper()}?",
    QUESTION.lower(),
    f"  {QUESTION} ?! ",
    f"'{QUESTION}'...",
]


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with indexed_mailbox(tmp_path_factory.mktemp("variants")) as ws:
        yield ws


def test_every_variant_is_searched_as_one_query() -> None:
    assert {query_text(v) for v in VARIANTS} == {QUESTION.lower()}
    # Punctuation inside words is meaning, not decoration: it stays.
    assert query_text("Q3/Q4 e-mail to kay.mann@enron.com?") == "q3/q4 e-mail to kay.mann@enron.com"
    with pytest.raises(QueryError):
        clean_query(' ?! "" ')


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_variants_find_the_same_top_sources(mailbox: Workspace, mode: str) -> None:
    def top(question: str) -> list[tuple[str, float]]:
        hits = search(mailbox.store, mailbox.embedder, USER, question, k=5, mode=mode)
        return [(h.item_id, round(h.score, 6)) for h in hits]

    first = top(VARIANTS[0])
    assert first
    for variant in VARIANTS[1:]:
        assert top(variant) == first, variant


def test_variants_get_the_same_answer_and_citations(mailbox: Workspace) -> None:
    runner = SkillRunner(mailbox)

    def asked(question: str) -> tuple[str, list[str], list[str]]:
        result = runner.run(USER, "ask", {"question": question}, engine="local", record=False)
        answer = result.text.replace(question.strip(), "<question>")  # "nothing about …"
        return answer, [c.label for c in result.citations], [s.chunk_id for s in result.sources]

    first = asked(VARIANTS[0])
    assert "outside counsel" in first[0] or "legal questions" in first[0]
    assert first[1] and all("Kay Mann" in label for label in first[1])
    for variant in VARIANTS[1:]:
        assert asked(variant) == first, variant
