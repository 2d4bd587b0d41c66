"""Citations attached after the answer, sentence by sentence, for a model not asked to
write "[n]" markers (the ``ask`` skill on a small model)."""

from copilot.skills.attribute import attribute_sentences
from copilot.skills.types import Source


def source(n: int, text: str) -> Source:
    return Source(n, f"local:{n}", f"local:{n}#0", f"doc {n}", "", "mail", {}, text)


SOURCES = [
    source(1, "Your Mercury debit card was preauthorized for $2,099.00 by MIXPANEL, INC."),
    source(2, "The Atlas billing go-live moves from 14 March to 21 March."),
]


def test_each_sentence_gets_the_source_that_holds_its_words() -> None:
    answer = "Mixpanel charged the debit card $2,099.00. The Atlas go-live moves to 21 March."
    assert attribute_sentences(answer, SOURCES) == (
        "Mixpanel charged the debit card $2,099.00. [1] The Atlas go-live moves to 21 March. [2]"
    )


def test_a_sentence_no_source_backs_stays_uncited_rather_than_guessed() -> None:
    answer = "The team should hire two more testers next quarter. Mixpanel was paid $2,099.00."
    assert attribute_sentences(answer, SOURCES) == (
        "The team should hire two more testers next quarter. Mixpanel was paid $2,099.00. [1]"
    )


def test_sentences_the_model_cited_keep_their_own_numbers() -> None:
    answer = "The go-live moves to 21 March [2]. Mixpanel paid $2,099.00 [2].\nAtlas billing moves."
    assert attribute_sentences(answer, SOURCES) == (
        "The go-live moves to 21 March [2]. Mixpanel paid $2,099.00 [2].\nAtlas billing moves. [2]"
    )


def test_list_lines_and_short_sentences() -> None:
    answer = "Yes.\n- Mixpanel preauthorized $2,099.00\n- Ok"
    assert attribute_sentences(answer, SOURCES) == (
        "Yes.\n- Mixpanel preauthorized $2,099.00 [1]\n- Ok"
    )


def test_an_answer_without_sources_is_left_alone() -> None:
    assert attribute_sentences("Mixpanel was paid $2,099.00.", []) == "Mixpanel was paid $2,099.00."
