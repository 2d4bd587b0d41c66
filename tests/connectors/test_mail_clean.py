"""Mail cleaning: the sender's own words stay, history and boilerplate go."""

from __future__ import annotations

import pytest

from connectors.parsers.mail_clean import clean_body, html_to_text

OWN_EN = "Hi Bob,\n\nThe budget looks fine. Please send the final numbers by Friday."
OWN_DE = "Hallo Bob,\n\ndas Budget passt so. Bitte schick mir die Zahlen bis Freitag."


@pytest.mark.parametrize(
    ("own", "history"),
    [
        (OWN_EN, "On Tue, Mar 3, 2025 at 10:12 AM Bob <bob@example.com> wrote:\n> Budget?\n> Bob"),
        (OWN_DE, "Am Di., 3. März 2025 um 10:12 Uhr schrieb Bob <bob@example.com>:\n> Budget?"),
        (OWN_EN, "> Can you check the budget?\n> It is attached."),
        (
            OWN_EN,
            "-----Original Message-----\nFrom: Bob <bob@example.com>\nSent: Tuesday, March 3, "
            "2025 10:12 AM\nTo: Alice <alice@example.com>\nSubject: Budget\n\nCan you check?",
        ),
        (
            OWN_EN,
            "From: Bob <bob@example.com>\nSent: Tuesday, March 3, 2025 10:12 AM\n"
            "To: Alice <alice@example.com>\nSubject: Budget\n\nCan you check?",
        ),
        (
            OWN_DE,
            "Von: Bob <bob@example.com>\nGesendet: Dienstag, 3. März 2025 10:12\n"
            "An: Alice <alice@example.com>\nBetreff: Budget\n\nKannst du das prüfen?",
        ),
        (
            OWN_DE,
            "-----Ursprüngliche Nachricht-----\nVon: Bob <bob@example.com>\n"
            "Gesendet: Dienstag, 3. März 2025 10:12\nAn: Alice\nBetreff: Budget\n\nPrüfen?",
        ),
    ],
)
def test_quoted_history_is_removed(own, history):
    result = clean_body(f"{own}\n\n{history}\n")
    assert result.text == own
    assert result.removed == ["quote"]


@pytest.mark.parametrize(
    ("own", "marker"),
    [
        (OWN_EN, "---------- Forwarded message ---------"),
        (OWN_DE, "---------- Weitergeleitete Nachricht ----------"),
        (OWN_DE, "Anfang der weitergeleiteten E-Mail:"),
    ],
)
def test_forward_keeps_what_the_sender_wrote_above_it(own, marker):
    forwarded = "From: Carol <carol@example.com>\nDate: Mon, 2 Mar 2025\nSubject: Plan\n\nPlan."
    result = clean_body(f"{own}\n\n{marker}\n{forwarded}")
    assert result.text == own
    assert result.removed == ["forward"]


def test_bare_forward_keeps_the_forwarded_body():
    text = (
        "---------- Forwarded message ---------\nFrom: Carol <carol@example.com>\n"
        "Date: Mon, 2 Mar 2025\nSubject: Plan\nTo: Alice <alice@example.com>\n\n"
        "The plan is ready.\n\nOn Sun, Dan wrote:\n> older history"
    )
    result = clean_body(text)
    assert result.text == "The plan is ready."
    assert "quote" in result.removed


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nAlice Smith\nExample Corp",
        "Sent from my iPhone",
        "Best regards,\nAlice Smith\nProject Manager\nPhone: +1 555 0100",
        "Thanks,\nAlice",
        "Von meinem iPhone gesendet",
        "Mit freundlichen Grüßen\nAlice Müller\nProjektleiterin\nTel. +49 30 1234567",
        "Viele Grüße\nAlice",
    ],
)
def test_signature_is_removed(signature):
    result = clean_body(f"{OWN_EN}\n\n{signature}")
    assert result.text == OWN_EN
    assert result.removed == ["signature"]


@pytest.mark.parametrize(
    "disclaimer",
    [
        "CONFIDENTIALITY NOTICE: This e-mail and any attachments are intended only for the named "
        "recipient. If you have received this email in error, please notify the sender.",
        "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat "
        "sind oder diese E-Mail irrtümlich erhalten haben, informieren Sie bitte den Absender.",
    ],
)
def test_trailing_disclaimer_is_removed(disclaimer):
    result = clean_body(f"{OWN_DE}\n\n{disclaimer}")
    assert result.text == OWN_DE
    assert result.removed == ["disclaimer"]


def test_everything_at_once_in_a_german_reply():
    text = (
        f"{OWN_DE}\n\nMit freundlichen Grüßen\nAlice Müller\n\n"
        "Diese E-Mail enthält vertrauliche Informationen und ist nur für den Empfänger "
        "bestimmt. Wenn Sie nicht der richtige Adressat sind, informieren Sie den Absender.\n\n"
        "Von: Bob\nGesendet: Montag\nAn: Alice\nBetreff: Budget\n\nBitte prüfen."
    )
    result = clean_body(text)
    assert result.text == OWN_DE
    assert set(result.removed) == {"quote", "signature", "disclaimer"}


def test_confidential_in_the_middle_is_real_content():
    text = (
        "The merger is confidential until the board meets on Monday.\n\n"
        "Please treat the attached privileged draft carefully.\n\n"
        "I will call you tomorrow to discuss the next steps."
    )
    assert clean_body(text).text == text


def test_a_sign_off_word_followed_by_sentences_is_not_a_signature():
    text = "Hi Bob,\n\nThanks!\nThe figures match now and I have sent them to finance."
    assert clean_body(text).text == text
    text = "Regards to your team.\n\nCheers\nto everyone who helped with the launch this week."
    assert clean_body(text).text == text


def test_a_short_confidential_remark_at_the_end_stays():
    text = "Here are the numbers for Q3.\n\nThis is confidential, please do not share."
    assert clean_body(text).text == text


def test_interleaved_replies_keep_the_answers():
    text = (
        "On Mon, Bob wrote:\n> Can you do Friday?\nYes, Friday is fine.\n> And the room?\nRoom 4."
    )
    assert clean_body(text).text == "Yes, Friday is fine.\nRoom 4."


def test_never_empty_for_a_non_empty_message():
    text = "On Mon, Bob wrote:\n> Only quoted text here.\n> Nothing else."
    assert clean_body(text).text == text
    assert clean_body("Sent from my iPhone").text == "Sent from my iPhone"
    assert clean_body("").text == ""


def test_html_is_used_when_there_is_no_plain_text():
    html = (
        "<div>Works for me.</div><div class='gmail_quote'>On Mon, Bob wrote:"
        "<blockquote>Friday?</blockquote></div>"
    )
    assert clean_body("", html=html).text == "Works for me."


def test_html_to_text_marks_blockquotes_and_drops_scripts():
    html = (
        "<p>Top</p><blockquote>Quoted<blockquote>Deeper</blockquote></blockquote><script>x</script>"
    )
    assert html_to_text(html) == "Top\n\n> Quoted\n> > Deeper"
