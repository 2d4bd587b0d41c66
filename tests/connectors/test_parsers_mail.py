"""Mail parsing: what an .eml or .msg turns into, and how damaged mail is survived."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import docx
import pytest

from connectors.parsers import mail
from connectors.parsers.mail import parse_eml, parse_msg
from connectors.types import ParseError
from tests.fakes.builders_mail import build_eml, raw_eml

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def body_text(parsed) -> str:
    return "\n\n".join(e.text for e in parsed.elements if e.kind == "paragraph")


def test_plain_and_html_alternatives_prefer_plain_and_fill_meta():
    data = build_eml(
        "Hello Bob,\n\nThe report is ready.\n\nIt covers Q3.",
        html="<p>HTML version</p>",
        cc="Carol <carol@example.com>, dan@example.com",
    )
    parsed = parse_eml(data, "report.eml")

    header, *paragraphs = parsed.elements
    assert header.kind == "mail_header" and header.group == "body"
    assert header.text.splitlines()[0] == "Subject: Quarterly report"
    assert [p.text for p in paragraphs] == ["Hello Bob,", "The report is ready.", "It covers Q3."]
    assert paragraphs[1].locator == {"message_id": "<m1@example.com>", "paragraph": 1}
    assert "HTML version" not in parsed.display_text
    assert parsed.meta["from"] == "alice@example.com"
    assert parsed.meta["from_name"] == "Alice Smith"
    assert parsed.meta["to"] == ["bob@example.com"]
    assert parsed.meta["cc"] == ["carol@example.com", "dan@example.com"]
    assert parsed.meta["date"] == "2025-03-03T10:12:00+01:00"
    assert parsed.meta["thread_id"] == "<m1@example.com>"
    assert parsed.meta["folder"] is None
    assert parsed.attachments == []


def test_html_only_is_converted_to_text_without_scripts():
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Hello <b>Bob</b>,</p>"
        "<div>Numbers attached.<br>See sheet 2.</div><script>alert('x')</script></body></html>"
    )
    parsed = parse_eml(build_eml(None, html=html), "h.eml")

    assert body_text(parsed) == "Hello Bob,\n\nNumbers attached.\nSee sheet 2."
    assert "alert" not in parsed.display_text and "color" not in parsed.display_text


def test_attachments_come_out_as_attachment_objects():
    docx = b"PK\x03\x04 pretend this is a docx"
    blob = bytes(range(256))
    data = build_eml(
        attachments=[
            ("plan.docx", DOCX, docx),
            ("data.bin", "application/octet-stream", blob),
        ]
    )
    parsed = parse_eml(data, "a.eml")

    assert [(a.name, a.media_type, a.data) for a in parsed.attachments] == [
        ("plan.docx", DOCX, docx),
        ("data.bin", "application/octet-stream", blob),
    ]
    assert "Hello Bob," in body_text(parsed)


def test_attached_message_is_serialised_back_to_eml_bytes():
    inner = build_eml("Inner words.", subject="Inner subject", message_id="<inner@x>")
    parsed = parse_eml(build_eml(attachments=[("fwd.eml", "message/rfc822", inner)]), "o.eml")

    (attachment,) = parsed.attachments
    assert attachment.media_type == "message/rfc822"
    assert attachment.name == "fwd.eml"
    assert parse_eml(attachment.data, attachment.name).meta["subject"] == "Inner subject"
    assert "Inner words" not in parsed.display_text


def test_oversized_attachment_is_listed_not_loaded(monkeypatch):
    monkeypatch.setattr(mail, "MAX_ATTACHMENT_BYTES", 100)
    data = build_eml(attachments=[("big.bin", "application/octet-stream", b"x" * 500)])
    parsed = parse_eml(data, "big.eml")

    assert parsed.attachments == []
    assert parsed.meta["skipped_attachments"][0]["name"] == "big.bin"
    assert "larger than" in parsed.meta["skipped_attachments"][0]["reason"]


def test_attachment_names_are_sanitised_and_inline_images_skipped():
    body = (
        "--b1\nContent-Type: text/plain\n\nSee attached.\n"
        "--b1\nContent-Type: application/pdf\n"
        'Content-Disposition: attachment; filename="../../etc/\x07passwd.pdf"\n'
        "Content-Transfer-Encoding: base64\n\nJVBERi0=\n"
        "--b1\nContent-Type: image/png\nContent-ID: <logo>\nContent-Disposition: inline\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0K\n--b1--\n"
    )
    headers = {"From": "a@example.com", "Subject": "s", "MIME-Version": "1.0"}
    headers["Content-Type"] = 'multipart/mixed; boundary="b1"'
    parsed = parse_eml(raw_eml(headers, body), "s.eml")

    assert [(a.name, a.data) for a in parsed.attachments] == [("passwd.pdf", b"%PDF-")]


def test_broken_boundary_still_yields_the_text():
    headers = {"From": "a@example.com", "Subject": "broken", "MIME-Version": "1.0"}
    headers["Content-Type"] = 'multipart/mixed; boundary="never-used"'
    body = "--other\nContent-Type: text/plain\n\nThe text survives.\n--other"
    parsed = parse_eml(raw_eml(headers, body), "broken.eml")

    assert "The text survives." in body_text(parsed)


def test_unknown_charset_falls_back_to_utf8():
    headers = {"From": "a@example.com", "Subject": "charset"}
    headers["Content-Type"] = "text/plain; charset=x-unknown-charset"
    parsed = parse_eml(raw_eml(headers, "Viele Grüße aus Köln"), "c.eml")

    assert body_text(parsed) == "Viele Grüße aus Köln"


def test_wrong_declared_charset_is_not_fatal():
    head = b"From: a@example.com\nSubject: s\nContent-Type: text/plain; charset=us-ascii\n\n"
    parsed = parse_eml(head + "Grüße".encode("latin-1"), "w.eml")
    assert body_text(parsed) == "Grüße"  # a guess, but never an exception


def test_cr_only_line_endings():
    headers = {"From": "a@example.com", "Subject": "Old Mac", "Message-ID": "<cr@x>"}
    parsed = parse_eml(raw_eml(headers, "First para.\n\nSecond para.", eol="\r"), "cr.eml")

    assert parsed.meta["subject"] == "Old Mac"
    assert [p.text for p in parsed.elements[1:]] == ["First para.", "Second para."]


def test_rfc2047_subject_and_sender_name_are_decoded():
    headers = {
        "From": "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>",
        "Subject": "=?utf-8?b?w5xiZXJwcsO8ZnVuZyDinJM=?=",
    }
    parsed = parse_eml(raw_eml(headers, "Text"), "n.eml")

    assert parsed.meta["subject"] == "Überprüfung ✓"
    assert parsed.meta["from_name"] == "Jürgen Müller"


def test_missing_message_id_gets_a_stable_derived_id():
    one = parse_eml(build_eml(message_id=None), "a.eml").meta["message_id"]
    again = parse_eml(build_eml(message_id=None).replace(b"\r\n", b"\n"), "b.eml")
    other = parse_eml(build_eml("Different body", message_id=None), "c.eml")

    assert one.startswith("<") and one.endswith("@derived>")
    assert again.meta["message_id"] == one
    assert other.meta["message_id"] != one


def test_reply_indexes_own_words_but_displays_the_thread():
    body = (
        "Friday works for me.\n\nBest regards,\nBob\n\n"
        "On Mon, 2 Mar 2025 at 09:00, Alice Smith <alice@example.com> wrote:\n"
        "> Can we meet on Friday?\n> Alice\n"
    )
    data = build_eml(
        body,
        subject="Re: Meeting",
        message_id="<r2@x>",
        in_reply_to="<r1@x>",
        references="<r0@x> <r1@x>",
    )
    parsed = parse_eml(data, "reply.eml")

    assert body_text(parsed) == "Friday works for me."
    assert "Can we meet on Friday?" in parsed.display_text
    assert parsed.meta["in_reply_to"] == "<r1@x>"
    assert parsed.meta["references"] == ["<r0@x>", "<r1@x>"]
    assert parsed.meta["thread_id"] == "<r0@x>"
    assert parsed.meta["quoted_chars_removed"] > 0
    assert "quote" in parsed.meta["removed"]


def test_unparseable_date_is_none():
    parsed = parse_eml(build_eml(date="the day after tomorrow"), "d.eml")
    assert parsed.meta["date"] is None


def test_huge_header_line_is_cut_not_choked_on():
    headers = {"From": "a@example.com", "Subject": "s" * 5_000_000, "Message-ID": "<h@x>"}
    start = time.monotonic()
    parsed = parse_eml(raw_eml(headers, "Body."), "huge.eml")

    assert time.monotonic() - start < 10
    assert len(parsed.meta["subject"]) <= mail.MAX_HEADER_LINE
    assert body_text(parsed) == "Body."


def test_deeply_nested_multipart_is_capped():
    depth = 300
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    tail = "".join(f"\n--b{i}--" for i in reversed(range(depth)))
    data = f"From: a@example.com\nSubject: deep\n{head}Content-Type: text/plain\n\nDeep.{tail}"
    try:
        parsed = parse_eml(data.encode(), "deep.eml")
    except ParseError as exc:
        assert "deep.eml" in str(exc)
    else:
        assert len(parsed.meta["skipped_attachments"]) == 1
        assert "nested deeper" in parsed.meta["skipped_attachments"][0]["reason"]


def test_thousands_of_parts_are_capped():
    part = "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment\n\nx\n"
    data = "From: a@x\nSubject: many\nContent-Type: multipart/mixed; boundary=b\n\n"
    parsed = parse_eml((data + part * 3000 + "--b--\n").encode(), "many.eml")

    assert len(parsed.attachments) < mail.MAX_PARTS
    assert len(parsed.meta["skipped_attachments"]) == 1


def test_stray_line_among_headers_does_not_hide_the_subject():
    data = b"From: a@example.com\ngarbage line\nSubject: Kept\nDate: x\n\nBody."
    parsed = parse_eml(data, "stray.eml")
    assert parsed.meta["subject"] == "Kept"
    assert body_text(parsed) == "Body."


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"\x00\x01\x02 binary junk \xff\xfe", "does not look like an e-mail")],
)
def test_not_mail_is_a_parse_error_naming_the_file(data, reason):
    with pytest.raises(ParseError, match=reason) as caught:
        parse_eml(data, "junk.eml")
    assert "junk.eml" in str(caught.value)


def test_msg_garbage_is_a_parse_error():
    with pytest.raises(ParseError, match=r"junk\.msg.*not an Outlook \.msg"):
        parse_msg(b"this is plain text, not a msg", "junk.msg")


def test_msg_that_is_another_ole_file_is_a_parse_error(tmp_path):
    """An encrypted .docx is an OLE container too, but holds no Outlook message."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO()
    docx.Document().save(plain)
    plain.seek(0)
    encrypted = io.BytesIO()
    OOXMLFile(plain).encrypt("secret", encrypted)
    data = encrypted.getvalue()
    assert data.startswith(b"\xd0\xcf\x11\xe0")

    with pytest.raises(ParseError, match=r"secret\.msg"):
        parse_msg(data, "secret.msg")


def test_msg_truncated_ole_header_is_a_parse_error():
    with pytest.raises(ParseError, match=r"cut\.msg"):
        parse_msg(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "cut.msg")


OFFICE_FILES = os.environ.get("COPILOT_OFFICE_FILES")


@pytest.mark.skipif(not OFFICE_FILES, reason="set COPILOT_OFFICE_FILES to a folder of real mail")
def test_real_msg_and_eml_files_parse_or_fail_cleanly():
    root = Path(OFFICE_FILES or ".")
    files = sorted([*root.rglob("*.msg"), *root.rglob("*.eml")])
    assert files, f"no .msg or .eml files under {root}"
    parsed = 0
    for path in files:
        parse = parse_msg if path.suffix == ".msg" else parse_eml
        try:
            result = parse(path.read_bytes(), path.name)
        except ParseError:
            continue
        parsed += 1
        assert result.elements[0].kind == "mail_header"
        for attachment in result.attachments:
            assert "/" not in attachment.name and "\\" not in attachment.name
    assert parsed >= len(files) * 0.8
