"""The last touch on written answers: what a small model adds and the user never wants."""

from copilot.skills.shape import (
    shape_answer,
    subject_line,
    without_placeholders,
    without_unbacked_attachments,
)


def test_a_placeholder_signature_line_is_dropped_under_the_sign_off() -> None:
    draft = "Hi Maria,\n\n7 March works for us.\n\nBest regards,\n[Your Name]\n"
    assert without_placeholders(draft) == "Hi Maria,\n\n7 March works for us.\n\nBest regards,\n"


def test_a_to_do_placeholder_goes_too() -> None:
    draft = "Hi Tom,\n\nThe Q3 budget is higher.\n\nBest regards,\n[TODO: name]\n"
    assert without_placeholders(draft) == "Hi Tom,\n\nThe Q3 budget is higher.\n\nBest regards,\n"
    assert without_placeholders("Hi Tom,\n\nYes.\n\nBest regards,\n[User]") == (
        "Hi Tom,\n\nYes.\n\nBest regards,"
    )
    note = "[TODO: check the figures with Ana]"
    assert without_placeholders(note) == note  # a real to-do stays


def test_several_placeholder_lines_go_but_citations_links_and_words_stay() -> None:
    draft = "Yes [2].\nSee [the plan](https://x.example).\n\nRegards,\n[Your Name]\n[Your Position]"
    assert without_placeholders(draft) == "Yes [2].\nSee [the plan](https://x.example).\n\nRegards,"
    assert without_placeholders("[Note] the budget is final.") == "[Note] the budget is final."
    assert without_placeholders("[3]\n") == "[3]\n"


def test_a_subject_line_loses_its_label_quotes_and_further_lines() -> None:
    assert subject_line('Subject: "Atlas go-live moves to 21 March"\n\nIt moved.') == (
        "Atlas go-live moves to 21 March"
    )
    assert subject_line("**Subject:** Q3 travel budget") == "Q3 travel budget"
    assert (
        subject_line("Subject matter experts meet Friday") == "Subject matter experts meet Friday"
    )
    assert subject_line("Re: Q3 travel budget") == "Re: Q3 travel budget"  # a real subject


def test_the_style_decides_which_shaping_applies() -> None:
    assert shape_answer("Subject: Budget\n", "subject") == "Budget"
    assert shape_answer("Subject: Budget\n", "bullets") == "Subject: Budget\n"
    assert shape_answer("Thanks,\n[Your Name]", None) == "Thanks,"


def test_a_fence_element_echoed_from_the_prompt_is_taken_out() -> None:
    echoed = 'Hi Maria,\n\n<untrusted-1a2b3c4d name="notes">7 March works.</untrusted-1a2b3c4d>'
    assert shape_answer(echoed, None) == "Hi Maria,\n\n7 March works."


def test_a_summary_loses_sign_off_points_and_lines_of_bare_source_numbers() -> None:
    summary = (
        "- The go-live moves from 14 to 21 March. [2]\n"
        "- Best practice is to rehearse twice before go-live. [3]\n"
        "- Thank you and best regards, [5]\n"
        "  - Maria Lopez [1]\n"
        "[1], [2], [3], [4], [5]\n"
    )
    assert shape_answer(summary, "bullets") == (
        "- The go-live moves from 14 to 21 March. [2]\n"
        "- Best practice is to rehearse twice before go-live. [3]\n"
    )
    meta = "- The summary is based on sources [1], [2], [3]."
    for junk in ["- Hi Daniel, [2]", "- Regards", "- Thanks again!", "Sources: [1][2]", meta]:
        assert shape_answer(f"- Budget up by 6,000 EUR. [4]\n{junk}", "bullets") == (
            "- Budget up by 6,000 EUR. [4]"
        )
    # A name is dropped only under a sign-off; other styles and skills are left alone.
    assert shape_answer("- Owner:\n- Ana Silva [2]", "bullets") == "- Owner:\n- Ana Silva [2]"
    assert shape_answer("Thanks,\n[1], [2]", None) == "Thanks,\n[1], [2]"


def test_a_draft_loses_an_attachment_it_claims_unless_the_notes_speak_of_one() -> None:
    # The demo's draft on the embedded model: nothing is attached to a draft.
    draft = (
        "Hi Tom,\n\nThank you. I understand that Q3 travel is higher.\n\n"
        "Regarding the travel budget for Q3, please find it attached as [1].\n\nBest regards,"
    )
    assert without_unbacked_attachments(draft, "") == (
        "Hi Tom,\n\nThank you. I understand that Q3 travel is higher.\n\nBest regards,"
    )
    assert without_unbacked_attachments(draft, "Attach the Q3 budget.") == draft
    mixed = "Hi Ana,\n\nThanks for the attached report. I have attached v2.1 [2]. It is 6.5k.\n"
    assert without_unbacked_attachments(mixed, "") == (
        "Hi Ana,\n\nThanks for the attached report. It is 6.5k."
    )
    assert without_unbacked_attachments("Hi,\n\nAttached is the list. See you.", "") == (
        "Hi,\n\nSee you."
    )
    kept = "Hi,\n\nThe attachment did not open. Could you send it again?"
    assert without_unbacked_attachments(kept, "") == kept


def test_only_a_draft_is_checked_for_attachments() -> None:
    text = "The slides are attached. See you Monday."
    assert shape_answer(text, None) == text  # notes None: not a draft
    assert shape_answer(text, None, notes="") == "See you Monday."
