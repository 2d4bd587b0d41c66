"""Privacy redaction: what is replaced, what must be left alone, and that it stays fast."""

from __future__ import annotations

import time

import pytest

from copilot.config import get_settings
from copilot.llm.redact import (
    RedactionPolicy,
    Redactor,
    iban_ok,
    looks_like_phone,
    luhn_ok,
    redact_messages,
    scan_text,
)
from copilot.llm.types import Message


def redact(text: str, **policy: object) -> str:
    return Redactor(RedactionPolicy(**policy)).redact(text)  # type: ignore[arg-type]


def test_email_addresses():
    assert redact("Write to anna.berg+work@mail.example.co.uk today.") == (
        "Write to [EMAIL_1] today."
    )
    assert redact("not an address: user@localhost or @handle") == (
        "not an address: user@localhost or @handle"
    )


@pytest.mark.parametrize(
    "phone",
    [
        "+49 30 1234567",
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "030 1234567",
        "0171/1234567",
        "0049 30 12345678",
    ],
)
def test_phone_numbers(phone):
    assert redact(f"Call me at {phone}, thanks.") == "Call me at [PHONE_1], thanks."


def test_a_plain_digit_run_is_a_phone_only_when_labelled():
    assert redact("Tel: 5551234567") == "Tel: [PHONE_1]"
    assert redact("Order 5551234567 shipped") == "Order 5551234567 shipped"


@pytest.mark.parametrize(
    "text",
    [
        "Meeting on 2024-11-26 at 10:30:00.",
        "Due 26.11.2024, or 11/26/2024, or 01-02-2024.",
        "2024-11-26 10:30 in room 1234",
        "Version 10.0.19041.1234 and v1.2.3",
        "Server 192.168.100.200 is down",
        "Invoice 12345678 for 1 000 000 EUR, 1,234,567.89 USD, pi is 3.14159265",
        "Years 2019 2020 2021, call 12, extension 1234",
        "ISBN 978-3-16-148410-0",
    ],
)
def test_dates_times_versions_and_amounts_are_left_alone(text):
    assert redact(text) == text


def test_card_numbers_are_luhn_checked():
    assert redact("Visa 4111 1111 1111 1111 expires") == "Visa [CARD_1] expires"
    assert redact("MC 5555-5555-5555-4444.") == "MC [CARD_1]."
    assert redact("Amex 378282246310005") == "Amex [CARD_1]"
    # One digit off fails Luhn: a tracking number, not a card.
    assert redact("Tracking 4111 1111 1111 1112") == "Tracking 4111 1111 1111 1112"
    assert redact("zeros 0000 0000 0000 0000") == "zeros 0000 0000 0000 0000"
    assert luhn_ok("4012888888881881") and not luhn_ok("4012888888881882")


def test_ibans_are_mod97_checked():
    assert redact("IBAN DE89 3704 0044 0532 0130 00, thanks") == "IBAN [ACCOUNT_1], thanks"
    assert redact("GB82WEST12345698765432") == "[ACCOUNT_1]"
    # A trailing word of four capitals is not swallowed.
    assert redact("to DE89370400440532013000 BANK") == "to [ACCOUNT_1] BANK"
    # Wrong check digits: left alone.
    assert redact("DE89 3704 0044 0532 0130 01") == "DE89 3704 0044 0532 0130 01"
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE00370400440532013000")


def test_account_numbers_only_after_an_account_word():
    assert redact("Account no. 12345678 please") == "Account no. [ACCOUNT_1] please"
    assert redact("routing number 021000021") == "routing number [ACCOUNT_1]"
    assert redact("Konto: 1234 5678 90") == "Konto: [ACCOUNT_1]"
    assert redact("acct #987654321") == "acct #[ACCOUNT_1]"
    assert redact("Ticket 12345678") == "Ticket 12345678"


def test_names_case_insensitive_longest_first_and_possessive():
    policy = {"names": ("Anna", "Anna Berg", "Bob")}
    assert redact("Anna Berg's report, ANNA's notes; anna berg agreed.", **policy) == (
        "[NAME_1]'s report, [NAME_2]'s notes; [NAME_1] agreed."
    )
    assert redact("Annabel and Bobby stay; Bob goes.", **policy) == (
        "Annabel and Bobby stay; [NAME_1] goes."
    )


def test_placeholders_are_consistent_across_messages():
    messages = [
        Message("system", "Reply for bob@example.com."),
        Message("user", "From: alice@example.com\nCc: BOB@example.com\nCall 030 1234567"),
        Message("user", "alice@example.com again, same 030 1234567"),
    ]
    redacted, report = redact_messages(messages, RedactionPolicy())
    assert [m.role for m in redacted] == ["system", "user", "user"]
    assert redacted[0].content == "Reply for [EMAIL_1]."
    assert redacted[1].content == "From: [EMAIL_2]\nCc: [EMAIL_1]\nCall [PHONE_1]"
    assert redacted[2].content == "[EMAIL_2] again, same [PHONE_1]"
    assert report == {"email": 2, "phone": 1}


def test_restore_puts_the_originals_back():
    redactor = Redactor(RedactionPolicy(names=("Anna Berg",)))
    redactor.redact("Anna Berg <anna@example.com>")
    assert redactor.restore("Dear [NAME_1], I wrote to [EMAIL_1]. [EMAIL_9]") == (
        "Dear Anna Berg, I wrote to anna@example.com. [EMAIL_9]"
    )


def test_policy_switches():
    text = "anna@example.com +49 30 1234567 4111 1111 1111 1111 Anna"
    assert redact(text, emails=False, phones=False, cards=False, names=("Anna",)) == (
        "anna@example.com +49 30 1234567 4111 1111 1111 1111 [NAME_1]"
    )


def test_policy_from_settings(tmp_path):
    assert RedactionPolicy.from_settings(get_settings(home=tmp_path, redact=False)) is None
    full = RedactionPolicy.from_settings(get_settings(home=tmp_path, redact=True))
    assert full == RedactionPolicy()
    names_only = RedactionPolicy.from_settings(get_settings(home=tmp_path, redact_names=["Jo"]))
    assert names_only is not None and names_only.names == ("Jo",) and not names_only.emails


@pytest.mark.parametrize(
    "unit",
    ["a", "1", "1 ", "1-", "a@", "a.", "+1 ", "(12) ", "DE89 ", "AAAA ", "account 1 ", "Anna "],
)
def test_hostile_megabyte_is_fast(unit):
    text = unit * (1_000_000 // len(unit))
    redactor = Redactor(RedactionPolicy(names=("Anna", "Anna Berg", "Bob")))
    started = time.perf_counter()
    redactor.redact(text)
    assert time.perf_counter() - started < 3.0


def test_looks_like_phone_needs_enough_digits():
    assert not looks_like_phone("030 12")
    assert not looks_like_phone("+1 234 567 890 123 456 789")
    assert looks_like_phone("5551234", before="phone: ")


def test_residual_scan_leaves_dates_prices_and_placeholders_alone():
    assert scan_text("On 2024-07-03 we paid 12,000.50 EUR; see [PHONE_1] and [EMAIL_2].") == []
    assert scan_text("version 1.2.3.4 and order 12345") == []
    assert [k for k, _ in scan_text("mobile 0171 2345678")] == ["phone"]


def test_residual_scan_finds_what_the_redactor_is_too_careful_to_touch():
    text = "Write to anna (at) example (dot) org, card 4111.1111.1111.1111."
    assert Redactor(RedactionPolicy()).redact(text) == text  # precise: leaves both alone
    assert sorted(kind for kind, _ in scan_text(text)) == ["card", "email"]


def test_names_match_whole_names_in_any_spacing_and_case():
    out = redact(
        "ANNA  berg wrote to Anna; anna.berg@x.example and Annabel did not.",
        names=("Anna Berg", "Anna"),
    )
    assert out.startswith("[NAME_1] wrote to [NAME_2];")
    assert "Annabel" in out and "[EMAIL_1]" in out


@pytest.mark.parametrize("unit", ["a", "1", "1 ", "1.", "a@", "a.", "+1 ", "(1", "a (at) "])
def test_residual_scan_of_a_hostile_megabyte_is_fast(unit):
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    scan_text(text)
    assert time.perf_counter() - started < 3.0
