"""The local engine as the extractive fallback: what it must never do to a reader.

Found by using it on real Enron mail and PDFs as a new user would: a reply outline that
handed the incoming mail's own sentences back as the answer, summary bullets that began
mid-sentence where a PDF column broke a line, action items "owned" by "As", "II" and
"Owner?", and notes that did not say plainly that no language model wrote the text.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from copilot.skills.engines.local import cues
from copilot.skills.engines.local.engine import run_local
from copilot.skills.engines.local.sentences import sources_from_text, split_sentences
from copilot.skills.engines.local.subject import subject_line
from copilot.skills.engines.local.text import draft_outline, summarise
from copilot.skills.templates.builtin import load_builtin

INCOMING = """Martin,

Could you please e-mail me the floor plan you drew for the Riverside office?
I was preparing the lease renewal for the landlord and rather than redraw it I should just \
have you send it back to me to fill in the new room sizes.
Also, when is the next rent payment due to the landlord?
I think the next payment is due at the end of the month, but I am not sure.

Thanks,
Greta"""

LANDLORD_LETTER = (
    "The landlord confirmed that the rent payment for the Riverside office is due on "
    "15 November, by bank transfer to the usual account."
)

# Text as pypdf gives it for a two-column paper: every line of the column ends in "\n",
# most of them shorter than a mail's wrapped lines, some ending on "the" or "and".
PDF_PAGE = """Increasing Basic Patterns
In the above explanation, we have assumed that we
can obtain enough basic patterns from an article.
However, the actual number of basic patterns that
one can find from a single article is usually not
enough, because the number of sentences is rather
small in comparison to the variation of expressions.
So having two articles that share basic patterns is
unlikely. We therefore collect articles about the
same event and merge their patterns into one
cluster, which increases the number of patterns
per entity by a factor of three on our test set of
news articles about hurricanes and
elections."""

MEETING = """Project sync, 12 March

As to the timing, the vendor will confirm the dates next week.
Phase II will start once the budget is approved.
However, we need to check the hotel rates before we book anything.
Email will be down on Saturday for maintenance, so send your email updates by Friday.
Mark, please send the revised budget to the finance team by Thursday.
joy.wagner@example.com will collect the RSVPs for the offsite.
@anna please book the large meeting room for the kick-off.
Sherri Lee will present the results to the board on Monday."""


def _pieces(text: str) -> list[str]:
    return [" ".join(text[s:e].split()) for s, e in split_sentences(text)]


# --- a reply outline never answers a mail with its own sentences ----------------------------


def test_the_outline_never_offers_the_incoming_mails_sentences_as_the_answer(embedder):
    # Retrieval found the mail being answered (as it does: it is the best match for its own
    # questions) beside the landlord's letter.
    facts = [
        replace(sources_from_text(INCOMING)[0], n=1, text=INCOMING),
        replace(sources_from_text(LANDLORD_LETTER)[0], n=2),
    ]
    result = draft_outline(INCOMING, facts, embedder)

    answers = [line.split("” — ", 1)[1] for line in result.text.splitlines() if "” — " in line]
    assert len(answers) == 2  # the e-mail request and the question
    for sentence in _pieces(INCOMING):
        assert all(sentence not in answer for answer in answers), sentence
    assert any("15 November" in answer and answer.endswith("[2]") for answer in answers)
    assert result.sources_used == [2]


def test_a_quoted_copy_of_the_mail_in_the_thread_is_not_an_answer_either(embedder):
    quoted = "> " + INCOMING.replace("\n", "\n> ")  # the same mail, quoted in a reply
    facts = [replace(sources_from_text(quoted)[0], n=1, text=quoted)]
    result = draft_outline(INCOMING, facts, embedder)
    assert "end of the month" not in result.text
    assert result.sources_used == []
    assert result.text.count("(no information found — answer yourself)") == 2


# --- PDF lines are joined into sentences before anything is selected ------------------------


def test_pdf_column_lines_are_joined_into_whole_sentences():
    pieces = _pieces(PDF_PAGE)
    assert pieces[0] == "Increasing Basic Patterns"  # a heading stays apart
    assert (
        "In the above explanation, we have assumed that we can obtain enough basic patterns "
        "from an article." in pieces
    )
    assert not [p for p in pieces if p[:1].islower()]  # no sentence starts mid-way
    assert pieces[-1].startswith("We therefore collect articles about the same event")
    assert pieces[-1].endswith("hurricanes and elections.")


def test_summary_bullets_of_a_pdf_page_are_whole_sentences(embedder):
    result = summarise(sources_from_text(PDF_PAGE), embedder, style="bullets", length="long")
    bullets = [line[2:] for line in result.text.splitlines()]
    assert bullets and all(b[:1].isupper() for b in bullets)
    assert all(re.search(r"[.!?] \[\d+\]$", b) for b in bullets)


def test_mail_and_bullets_still_break_where_they_should():
    mail = "Hi team,\nThe budget is approved.\nPlease send your figures.\n- item one\n- item two"
    assert _pieces(mail) == [
        "Hi team,",
        "The budget is approved.",
        "Please send your figures.",
        "item one",
        "item two",
    ]


# --- owners only where the text names a person ----------------------------------------------


def test_action_items_name_owners_only_from_names_and_addresses(embedder):
    result = summarise(sources_from_text(MEETING), embedder, style="action_items", length="long")
    lines = result.text.splitlines()

    def line_of(words: str) -> str:
        return next(line for line in lines if words in line)

    assert line_of("revised budget").startswith("- Mark (by Thursday) — Mark, please send")
    assert line_of("RSVPs").startswith("- joy.wagner@example.com — ")
    assert line_of("meeting room").startswith("- @anna — ")
    assert line_of("present the results").startswith("- Sherri Lee — ")
    assert line_of("hotel rates").startswith("- However, we need")  # no owner in front
    assert line_of("Email will be down").startswith("- (by Friday) — Email will")
    heads = {line[2:].split(" — ")[0] for line in lines if " — " in line}
    assert heads == {"Mark (by Thursday)", "joy.wagner@example.com", "@anna", "Sherri Lee",
                     "(by Friday)"}  # fmt: skip
    assert "Owner?" not in result.text


@pytest.mark.parametrize(
    "sentence",
    [
        "As to the timing, we will decide next week.",
        "II will follow the same plan.",
        "IT will reset every password tonight.",
        "We will send the contract tomorrow.",
        "Ability to work under demanding time lines.",
        "Hope to see you there.",
    ],
)
def test_words_that_are_not_names_are_not_owners(sentence):
    assert cues.owner(sentence) == ""


def test_a_word_the_document_writes_in_lower_case_is_not_a_name():
    sentence = "Credit will add this to the next spreadsheets."
    assert cues.owner(sentence) == "Credit"  # alone, it could be a name …
    common = cues.lowercase_words("Please check the credit limits. " + sentence)
    assert cues.owner(sentence, common) == ""  # … but the document says "credit"


def test_small_talk_is_not_an_action_item():
    assert not cues.is_action("Let me know if you have any questions.")
    assert cues.is_action("Let me know by Friday whether the Houston office can host us.")


# --- the note says plainly what this is and what would write instead -----------------------


@pytest.mark.parametrize(
    ("skill", "inputs"),
    [
        ("summarise", {"style": "bullets"}),
        ("summarise", {"style": "action_items"}),
        ("summarise", {"style": "subject"}),
        ("ask", {"question": "When is the next rent payment due?"}),
        ("draft", {"message": INCOMING}),
    ],
)
def test_every_text_answer_says_it_is_the_extractive_fallback(embedder, skill, inputs):
    outcome = run_local(load_builtin(skill), inputs, sources_from_text(INCOMING), embedder)
    assert outcome.note.startswith("Extractive fallback of the local engine")
    assert "no language model wrote this" in outcome.note
    assert "`copilot model install`" in outcome.note


# --- a subject line: the lead sentence, shortened ------------------------------------------


def test_the_subject_is_the_lead_sentence_shortened(embedder):
    result = summarise(sources_from_text(INCOMING), embedder, style="subject")
    assert result.text == "E-mail floor plan drew Riverside office"
    assert result.sources_used == [1]
    assert "lead sentence" in result.note


@pytest.mark.parametrize(
    ("lead", "subject"),
    [
        (
            "Hi Sandra, This message is to confirm our call with you on Monday, March 3rd "
            "from 2:00 pm - 3:00 pm.",
            "Call Monday March 3rd 2:00 pm - 3:00 pm",
        ),
        (
            "Tom/Lena: Please approve the following travel requests for March.",
            "Approve following travel requests March",
        ),
        ("Attached is the signed contract for the new warehouse in Leeds.",
         "Signed contract new warehouse Leeds"),
        ("It is what it is.", ""),
    ],
)  # fmt: skip
def test_subject_lines_drop_greetings_openers_and_function_words(lead, subject):
    assert subject_line(lead) == subject


def test_small_talk_is_passed_over_for_the_subject(embedder):
    mail = "Hope you are well.\nThe Q3 budget review moves to Thursday at 10 am in room 4.2."
    result = summarise(sources_from_text(mail), embedder, style="subject")
    assert result.text == "Q3 budget review moves Thursday 10 room 4.2"
