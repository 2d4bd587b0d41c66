"""Source numbers attached after the answer: for list lines a small model left uncited, and
sentence by sentence for a model not asked to write "[n]" markers (``ask`` on a small model)."""

from copilot.skills.attribute import attribute_lines, attribute_sentences
from copilot.skills.types import Source


def source(n: int, text: str, kind: str = "file") -> Source:
    return Source(n, f"local:{n}", f"local:{n}#0", f"doc {n}", "", kind, {}, text)


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


# -- sentence by sentence (cite_after) ----------------------------------------------------


MAILS = [
    source(1, "Your Mercury debit card was preauthorized for $2,099.00 by MIXPANEL, INC.", "mail"),
    source(2, "The Atlas billing go-live moves from 14 March to 21 March.", "mail"),
]


def test_each_sentence_gets_the_source_that_holds_its_words() -> None:
    answer = "Mixpanel charged the debit card $2,099.00. The Atlas go-live moves to 21 March."
    assert attribute_sentences(answer, MAILS) == (
        "Mixpanel charged the debit card $2,099.00. [1] The Atlas go-live moves to 21 March. [2]"
    )


def test_a_sentence_no_source_backs_stays_uncited_rather_than_guessed() -> None:
    answer = "The team should hire two more testers next quarter. Mixpanel was paid $2,099.00."
    assert attribute_sentences(answer, MAILS) == (
        "The team should hire two more testers next quarter. Mixpanel was paid $2,099.00. [1]"
    )


def test_sentences_the_model_cited_keep_their_own_numbers() -> None:
    answer = "The go-live moves to 21 March [2]. Mixpanel paid $2,099.00 [2].\nAtlas billing moves."
    assert attribute_sentences(answer, MAILS) == (
        "The go-live moves to 21 March [2]. Mixpanel paid $2,099.00 [2].\nAtlas billing moves. [2]"
    )


def test_list_lines_and_short_sentences() -> None:
    answer = "Yes.\n- Mixpanel preauthorized $2,099.00\n- Ok"
    assert attribute_sentences(answer, MAILS) == (
        "Yes.\n- Mixpanel preauthorized $2,099.00 [1]\n- Ok"
    )


def test_a_line_that_only_introduces_a_list_is_not_cited() -> None:
    answer = "The Atlas billing go-live moves:\n1. From 14 March to 21 March for the billing"
    assert attribute_sentences(answer, MAILS) == (
        "The Atlas billing go-live moves:\n1. From 14 March to 21 March for the billing [2]"
    )


def test_an_answer_without_sources_is_left_alone() -> None:
    assert attribute_sentences("Mixpanel was paid $2,099.00.", []) == "Mixpanel was paid $2,099.00."
