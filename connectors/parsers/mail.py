"""Parse mail files (.eml, .msg) into a header element and the sender's own paragraphs.

Mail arrives damaged more often than any other format: wrong or invented charsets, bare CR
line endings, boundaries that never close, multiparts nested by broken clients. The stdlib
parser is lenient, so we let it parse, then read every value defensively and cap the walk.
The body is indexed cleaned (``mail_clean.clean_body``) so a thread does not repeat itself
in the index; ``display_text`` keeps the full text, quoted history included. A text part
not declared quoted-printable whose body still is ("goa= ls", "=20") is repaired first
(``mail_qp``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, TypeVar

from connectors.parsers.mail_clean import clean_body, html_to_text
from connectors.parsers.mail_qp import repair_qp
from connectors.types import Attachment, Element, Parsed, ParseError

T = TypeVar("T")
D = TypeVar("D")

MAX_MAIL_BYTES = 200 * 1024 * 1024
# A safety ceiling only: the pipeline applies the real, configurable cap (25 MB by default,
# COPILOT_GRAPH_MAX_ATTACHMENT_MB for Graph mail). The message itself is capped anyway.
MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024
MAX_DEPTH = 20
MAX_PARTS = 500
MAX_HEADER_LINE = 16 * 1024
MAX_TEXT_CHARS = 2_000_000
MAIL_HEADERS = ("from", "to", "subject", "date", "message-id", "received", "mime-version")
MSG_ID = re.compile(r"<[^<>\s]+>")
HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
OBS_HEADER = re.compile(rb"^([!-9;-~]+)[ \t]+:")  # RFC 822's "Subject  : …"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_AND_NEWLINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass
class MailParts:
    """What a walk over a message's MIME tree found."""

    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    parts: int = 0
    capped: bool = False


def parse_eml(data: bytes, name: str) -> Parsed:
    """Parse an RFC 5322 message. Raises ``ParseError`` for input that is not mail."""
    if not data.strip():
        raise ParseError(f"{name}: the file is empty")
    if len(data) > MAX_MAIL_BYTES:
        raise ParseError(f"{name}: the message is larger than {MAX_MAIL_BYTES >> 20} MiB")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(_normalise(data))
    except RecursionError:
        raise ParseError(f"{name}: the message is nested too deeply to read") from None
    except Exception as exc:
        raise ParseError(f"{name}: the message cannot be read ({exc})") from exc
    if not any(key.lower() in MAIL_HEADERS for key in msg):
        raise ParseError(f"{name}: this does not look like an e-mail (no mail headers found)")
    try:
        parts = MailParts()
        _walk(msg, parts, depth=0)
        return _build(_headers(msg), parts)
    except RecursionError:
        raise ParseError(f"{name}: the message is nested too deeply to read") from None


def _normalise(data: bytes) -> bytes:
    """LF line endings, and header lines cut to a sane length.

    Bare-CR files otherwise parse as one endless header; a megabyte-long header line makes
    the header parser crawl.
    """
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head, sep, body = data.partition(b"\n\n")
    lines = [OBS_HEADER.sub(rb"\1:", line[:MAX_HEADER_LINE]) for line in head.split(b"\n")]
    last = max((i for i, line in enumerate(lines) if HEADER_LINE.match(line)), default=-1)
    # A stray non-header line among the headers would end them early and push Subject,
    # From and Date into the body: drop it, unless it is where the body starts.
    kept = [
        line
        for i, line in enumerate(lines)
        if i > last or i == 0 or HEADER_LINE.match(line) or line[:1] in (b" ", b"\t")
    ]
    return b"\n".join(kept) + sep + body


def _walk(part: Message, found: MailParts, depth: int) -> None:
    found.parts += 1
    if found.parts > MAX_PARTS or depth > MAX_DEPTH:
        if not found.capped:
            found.capped = True
            reason = f"more than {MAX_PARTS} parts or nested deeper than {MAX_DEPTH}: rest ignored"
            found.skipped.append({"name": "", "reason": reason})
        return
    ctype = _safe(part.get_content_type, "text/plain")
    if ctype in ("message/rfc822", "message/global"):
        _attach_message(part, found)
        return
    if ctype.startswith("message/"):
        return  # delivery-status, disposition-notification: machinery, not a message
    if part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _walk(sub, found, depth + 1)
        return
    disposition = _safe(part.get_content_disposition, None)
    filename = _safe(part.get_filename, None)
    if ctype.startswith("multipart/") or (
        ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
    ):
        # A multipart whose boundary never appears arrives as one text part: read it as text.
        text = _decode_text(part)
        if ctype == "text/html":
            found.html = found.html if found.html is not None else text
        elif found.plain is None:
            found.plain = text
        return
    is_inline = disposition == "inline" or (disposition is None and part.get("Content-ID"))
    if ctype.startswith("image/") and is_inline:
        return  # logos and pasted screenshots: not documents anyone searches for
    if disposition != "attachment" and not filename:
        return  # calendar alternatives, delivery-status parts and other machinery
    data = _safe(lambda: _decoded_payload(part), None) or b""
    _add_attachment(found, _safe_filename(filename, ctype, len(found.attachments)), ctype, data)


def _attach_message(part: Message, found: MailParts) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else payload
    message = inner if isinstance(inner, Message) else None
    data: bytes | None
    try:
        data = message.as_bytes() if message is not None else str(inner).encode()
    except Exception:  # as_bytes() refused it (a malformed header): its text, lossily
        data = None
        if message is not None:
            data = _safe(lambda: message.as_string().encode("utf-8", "replace"), None)
        if data is None:
            found.skipped.append({"name": "attached message", "reason": "cannot be re-encoded"})
            return
    subject = ""
    if message is not None:
        subject = _safe(lambda: str(message.get("Subject", "") or ""), "")
    filename = _safe(part.get_filename, None) or (f"{subject}.eml" if subject else None)
    name = _safe_filename(filename, "message/rfc822", len(found.attachments))
    _add_attachment(found, name, "message/rfc822", data)


def _add_attachment(found: MailParts, name: str, media_type: str, data: bytes) -> None:
    if len(data) > MAX_ATTACHMENT_BYTES:
        reason = f"larger than {MAX_ATTACHMENT_BYTES >> 20} MiB"
        found.skipped.append(
            {"name": name, "size": len(data), "cap": MAX_ATTACHMENT_BYTES, "reason": reason,
             "media_type": media_type}  # the pipeline reports what it would have indexed
        )  # fmt: skip
        return
    found.attachments.append(Attachment(name=name, media_type=media_type, data=data))


def _decoded_payload(part: Message) -> bytes | None:
    """The payload with its transfer encoding undone (the stdlib gives None for a multipart)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _decode_text(part: Message) -> str:
    """A text part's payload as str, whatever its declared charset claims."""
    raw = _safe(lambda: _decoded_payload(part), None)
    if raw is None:
        payload = part.get_payload()
        raw = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
    charset = _safe(lambda: part.get_content_charset(), None)
    text = decode_bytes(raw[: MAX_TEXT_CHARS * 4], charset)
    encoding = str(_safe(lambda: part.get("Content-Transfer-Encoding", ""), "") or "")
    if encoding.strip().lower() == "quoted-printable":
        return text  # the stdlib decoded it: an "=" left is the sender's own
    return repair_qp(text, charset)


def decode_bytes(raw: bytes, charset: str | None) -> str:
    """Declared charset, then UTF-8, then a guess, then Windows-1252.

    A guess needs text to work on; for a few bytes Windows-1252, the commonest charset
    mislabelled in Western mail, is the better bet.
    """
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return raw.decode(candidate).replace("\x00", "")
            except (LookupError, UnicodeDecodeError, ValueError):
                pass
    if len(raw) >= 256:
        from charset_normalizer import from_bytes

        best = from_bytes(raw[:1_000_000]).best()
        if best is not None:
            try:
                return raw.decode(best.encoding, "replace").replace("\x00", "")
            except LookupError:
                pass
    return raw.decode("cp1252", "replace").replace("\x00", "")


def _headers(msg: Message) -> dict[str, Any]:
    message_id = _first_id(_header(msg, "Message-ID"))
    references = MSG_ID.findall(_header(msg, "References"))[:200]
    in_reply_to = _first_id(_header(msg, "In-Reply-To"))
    from_name, from_addr = (_addresses(_header(msg, "From")) or [("", "")])[0]
    return {
        "message_id": message_id,
        "subject": _header(msg, "Subject"),
        "from": from_addr,
        "from_name": from_name,
        "to": [addr for _, addr in _addresses(_header(msg, "To"))],
        "cc": [addr for _, addr in _addresses(_header(msg, "Cc"))],
        "to_header": _header(msg, "To"),
        "from_header": _header(msg, "From"),
        "date": parse_date(_header(msg, "Date")),
        "in_reply_to": in_reply_to,
        "references": references,
    }


def _header(msg: Message, name: str) -> str:
    """A header's decoded value, or its raw text if the typed parser chokes on it."""
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
        text = str(raw)
    return " ".join(_printable(text).split())


def _addresses(value: str) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses([value])
    except Exception:
        return [("", value)] if value else []
    seen: dict[str, tuple[str, str]] = {}
    for n, a in pairs:
        if (a or n) and a.lower() not in seen:
            seen[a.lower()] = (n, a)
    return list(seen.values())[:1000] or ([("", value)] if value else [])


def _first_id(value: str) -> str | None:
    found = MSG_ID.search(value) or MSG_ID.search("".join(value.split()))
    return found.group(0) if found else ("".join(value.split()) or None)


def parse_date(value: str | None) -> str | None:
    """ISO 8601 for an RFC 5322 date; a date without a zone is taken as UTC."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


def _build(meta: dict[str, Any], parts: MailParts) -> Parsed:
    """Header element + cleaned body paragraphs; shared by the .eml and .msg parsers."""
    full = (parts.plain or "").replace("\r\n", "\n").replace("\r", "\n")
    html = parts.html
    if not full.strip() and html:
        full = html_to_text(html[: MAX_TEXT_CHARS * 2])
    full = _printable(full[:MAX_TEXT_CHARS], keep_newlines=True).strip()
    if not meta.get("message_id"):
        seed = "\n".join(
            [meta["subject"], meta["from"], str(meta["date"]), meta["to_header"], full]
        )
        meta["message_id"] = f"<{hashlib.sha256(seed.encode()).hexdigest()[:32]}@derived>"
    mid = meta["message_id"]
    meta["thread_id"] = (meta["references"] or [None])[0] or meta["in_reply_to"] or mid
    meta["folder"] = None
    cleaned = clean_body(full)
    meta["body_chars"] = len(full)
    meta["quoted_chars_removed"] = len(full) - len(cleaned.text)
    meta["removed"] = sorted(set(cleaned.removed))
    meta["skipped_attachments"] = parts.skipped
    header_lines = [
        f"Subject: {meta['subject']}",
        f"From: {meta.pop('from_header') or meta['from']}",
    ]
    to_header = meta.pop("to_header")
    if to_header:
        header_lines.append(f"To: {to_header}")
    if meta["cc"]:
        header_lines.append(f"Cc: {', '.join(meta['cc'])}")
    if meta["date"]:
        header_lines.append(f"Date: {meta['date']}")
    header_text = "\n".join(header_lines)
    elements = [Element(header_text, {"message_id": mid}, kind="mail_header", group="body")]
    for i, para in enumerate(p.strip() for p in re.split(r"\n\s*\n", cleaned.text)):
        if para:
            locator = {"message_id": mid, "paragraph": i}
            elements.append(Element(para, locator, kind="paragraph", group="body"))
    return Parsed(
        elements=elements,
        display_text=f"{header_text}\n\n{full}".strip(),
        meta=meta,
        attachments=parts.attachments,
    )


def _printable(text: str, keep_newlines: bool = False) -> str:
    """Drop control characters (other than newline and tab) that break display and JSON."""
    return (CONTROL if keep_newlines else CONTROL_AND_NEWLINE).sub("", text)


def _safe_filename(filename: str | None, media_type: str, index: int) -> str:
    """A name safe to show and to save: no directories, no control characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _printable(name).strip().lstrip(".")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    if not name:
        tail = ".eml" if media_type == "message/rfc822" else mimetypes.guess_extension(media_type)
        name = f"attachment-{index + 1}{tail or '.bin'}"
    return name


def _safe(fn: Callable[[], T], default: D) -> T | D:
    """Call a stdlib accessor that may raise on malformed input; fall back quietly."""
    try:
        return fn()
    except Exception:
        return default


def parse_msg(data: bytes, name: str) -> Parsed:
    """Parse an Outlook .msg file. Raises ``ParseError`` for damaged or encrypted files."""
    if not data.strip():
        raise ParseError(f"{name}: the file is empty")
    if not data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise ParseError(f"{name}: this is not an Outlook .msg file (not an OLE container)")
    import extract_msg

    try:
        msg = extract_msg.openMsg(data, delayAttachments=True)
    except Exception as exc:
        raise ParseError(f"{name}: this is not a readable Outlook message ({exc})") from exc
    try:
        return _from_msg(msg, name)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"{name}: the Outlook message is damaged ({exc})") from exc
    finally:
        _safe(msg.close, None)


def _from_msg(msg: Any, name: str) -> Parsed:
    if not hasattr(msg, "body"):
        raise ParseError(f"{name}: this Outlook item is a {type(msg).__name__}, not a message")
    header = _safe(lambda: msg.header, None)
    date = _safe(lambda: msg.date, None)
    sender = _safe(lambda: msg.sender, None) or ""
    (from_name, from_addr) = (_addresses(sender) or [("", "")])[0]
    # Outlook joins recipients with "; ", which the RFC 5322 address parser does not split on.
    to = (_safe(lambda: msg.to, "") or "").replace(";", ",")
    cc = (_safe(lambda: msg.cc, "") or "").replace(";", ",")
    refs = _safe(lambda: header.get("References", ""), "") if header is not None else ""
    meta: dict[str, Any] = {
        "message_id": _first_id(_safe(lambda: msg.messageId, "") or ""),
        "subject": " ".join(_printable(_safe(lambda: msg.subject, "") or "").split()),
        "from": from_addr,
        "from_name": from_name,
        "to": [addr for _, addr in _addresses(to)],
        "cc": [addr for _, addr in _addresses(cc)],
        "to_header": " ".join(to.split()),
        "from_header": " ".join(sender.split()),
        "date": date.isoformat() if isinstance(date, datetime) else parse_date(str(date or "")),
        "in_reply_to": _first_id(_safe(lambda: msg.inReplyTo, "") or ""),
        "references": MSG_ID.findall(str(refs or ""))[:200],
    }
    parts = MailParts(plain=repair_qp(_safe(lambda: msg.body, None) or "") or None)
    if not (parts.plain or "").strip():  # htmlBody may be rebuilt from RTF: slow, so only then
        html = _safe(lambda: msg.htmlBody, None)
        html = decode_bytes(html, None) if isinstance(html, bytes) else html
        parts.html = repair_qp(html) if isinstance(html, str) else html
    for index, att in enumerate(_safe(lambda: msg.attachments, []) or []):
        _msg_attachment(att, index, parts)
    return _build(meta, parts)


def _msg_attachment(att: Any, index: int, parts: MailParts) -> None:
    name = _safe(lambda: att.getFilename(), None) or _safe(lambda: att.longFilename, None)
    if _safe(lambda: att.hidden, False):
        return  # inline images referenced from the HTML body
    data = _safe(lambda: att.data, None)
    if isinstance(data, bytes):
        media_type = _safe(lambda: att.mimetype, None) or (
            mimetypes.guess_type(name or "")[0] or "application/octet-stream"
        )
        _add_attachment(parts, _safe_filename(name, media_type, index), media_type, data)
        return
    inner = data  # an embedded message: hand it on as its own .msg bytes
    blob = _safe(lambda: inner.exportBytes(), None) if inner is not None else None
    if not blob:
        parts.skipped.append({"name": name or "", "reason": "embedded item cannot be exported"})
        return
    media = "application/vnd.ms-outlook"
    _add_attachment(parts, _safe_filename(name or "message.msg", media, index), media, blob)
