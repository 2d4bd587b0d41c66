"""Source numbers for list lines a small model left uncited."""

from copilot.skills.attribute import attribute_lines
from copilot.skills.types import Source


def source(n: int, text: str) -> Source:
    return Source(n, f"local:{n}", f"local:{n}#0", f"doc {n}", "", "file", {}, text)


SOURCES = [
    source(1, "The go-live of the Atlas billing migration moves from 14 March to 21 March."),
    source(2, "Finance asks whether the March invoices can still go out in April."),
]


def test_an_uncited_bullet_gets_the_source_that_holds_its_words() -> None:
    answer = (
        "- Atlas billing go-live moves to 21 March\n- Finance asks about the March invoices [2]"
    )
    assert attribute_lines(answer, SOURCES) == (
        "- Atlas billing go-live moves to 21 March [1]\n- Finance asks about the March invoices [2]"
    )


def test_a_line_no_source_backs_stays_uncited_rather_than_guessed() -> None:
    answer = "- The team should hire two more testers next quarter\n- Ok"
    assert attribute_lines(answer, SOURCES) == answer


def test_prose_and_answers_without_sources_are_left_alone() -> None:
    prose = "The Atlas billing go-live moves to 21 March."
    assert attribute_lines(prose, SOURCES) == prose
    assert attribute_lines("- Atlas billing go-live moves", []) == "- Atlas billing go-live moves"
