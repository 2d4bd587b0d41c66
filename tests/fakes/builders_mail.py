"""Small builders for test mail: well-formed messages via the stdlib, broken ones by hand."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default


def build_eml(
    body: str | None = "Hello Bob,\n\nThe report is ready.",
    *,
    html: str | None = None,
    subject: str = "Quarterly report",
    sender: str = "Alice Smith <alice@example.com>",
    to: str = "Bob Jones <bob@example.com>",
    cc: str | None = None,
    date: str = "Tue, 03 Mar 2025 10:12:00 +0100",
    message_id: str | None = "<m1@example.com>",
    in_reply_to: str | None = None,
    references: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A message as bytes; ``attachments`` are (filename, media type, data)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Date"] = date
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    if body is not None:
        msg.set_content(body)
    if html is not None:
        if body is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, media_type, data in attachments:
        if media_type == "message/rfc822":
            inner = BytesParser(policy=default).parsebytes(data)
            msg.add_attachment(inner, filename=filename)
            continue
        maintype, subtype = media_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def raw_eml(headers: dict[str, str], body: str, eol: str = "\r\n") -> bytes:
    """A message written by hand, for the broken ones the stdlib refuses to produce."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    return (eol.join(lines) + eol + eol + body.replace("\n", eol)).encode("utf-8")
