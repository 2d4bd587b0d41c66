"""Cut a mail body down to the sender's own words.

A reply carries the whole thread below it, a signature, and often a legal disclaimer the
mail server appends. Indexed as-is, every message in a thread repeats its ancestors, so a
search for one sentence returns twenty copies and the chunk budget fills with boilerplate.
``clean_body`` keeps what the sender wrote in this message; the full text stays available
as the parser's ``display_text``.

Quote and forward detection leans on two maintained libraries and takes the earliest cut
either finds: quotequail (reply intros and forward markers, wrapped over two lines, several
languages) and mail-parser-reply (Outlook "From:/Sent:/To:" header blocks in a dozen
languages). Signatures and disclaimers are handled here, conservatively: only trailing
blocks of the right shape are removed, because eating a real paragraph is worse than
indexing a signature. ``bench/mail_clean.py`` measures the choice.

Forwards: the sender's words are what they wrote above the forwarded message. When they
wrote nothing, the forwarded body is what the message is about, so it is kept (cleaned).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import quotequail
from bs4 import BeautifulSoup

# A body this long is not a conversational mail; the pattern scans stay linear but we do
# not need to look for reply markers in the middle of a 10 MB log dump.
MAX_CLEAN_CHARS = 500_000
MAX_FORWARD_DEPTH = 3

FORWARD_MARKERS = re.compile(
    r"forwarded message|begin forwarded|weitergeleitete|message transf[ée]r[ée]|"
    r"message r[ée]exp[ée]di[ée]|mensaje reenviado|doorgestuurd bericht|"
    r"inoltrato|vidarebefordrat",
    re.IGNORECASE,
)

# "-- " on its own line is the RFC 3676 signature separator; many clients drop the space.
SIG_DASHES = re.compile(r"^-- ?$")
SENT_FROM = re.compile(
    r"^(sent from my |sent from outlook|get outlook for |sent from mail for |"
    r"von meinem .* gesendet|gesendet von meinem |gesendet mit |"
    r"envoy[ée] de mon |envoy[ée] depuis |enviado desde mi |enviado desde |"
    r"verzonden (vanaf|met) (mijn )?|inviato da |sendt fra min )",
    re.IGNORECASE,
)
VALEDICTION = re.compile(
    r"^(best|kind|warm|many thanks and|with best|with kind)? ?(regards|wishes)[,.!]?$|"
    r"^(thanks|thank you|many thanks|cheers|best|all the best|sincerely|yours|"
    r"yours sincerely|yours truly|take care)[,.!]?$|"
    r"^(mit )?(freundlichen|besten|herzlichen|liebe[n]?|viele[n]?|beste) gr(ü|ue)(ß|ss)en?[,.!]?$|"
    r"^(viele |liebe |beste |schöne )?gr(ü|ue)(ß|ss)e[,.!]?$|^(lg|vg|mfg|danke)[,.!]?$|"
    r"^(cordialement|bien cordialement|bien à vous|salutations|merci|"
    r"meilleures salutations|bonne journée)[,.!]?$|"
    r"^(saludos|un saludo|saludos cordiales|atentamente|gracias|un abrazo)[,.!]?$|"
    r"^(met )?(vriendelijke|hartelijke)? ?groet(en)?[,.!]?$|^(groetjes|bedankt)[,.!]?$",
    re.IGNORECASE,
)
# Phrases that only a disclaimer uses; "confidential" alone is too common in real text.
DISCLAIMER_STRONG = re.compile(
    r"intended (solely )?(only )?(for the )?(use of the )?(named )?(recipient|addressee)|"
    r"received this (e-?mail|message|communication) (in error|by mistake)|"
    r"if you are not the intended|notify the sender|disclaimer|confidentiality notice|"
    r"privileged|this (e-?mail|message) and any attachments|"
    r"consider the environment before printing|"
    r"nicht der (richtige |beabsichtigte )?(adressat|empfänger)|irrtümlich erhalten|"
    r"enthält vertrauliche|haftungsausschluss|"
    r"destinataire(s)? (exclusif|désigné|prévu)|reçu (ce|cet) (message|e-?mail) par erreur|"
    r"destinatario (previsto|indicado)|recibido (este|el) (mensaje|correo) por error|"
    r"niet de (beoogde )?geadresseerde|ten onrechte ontvangen",
    re.IGNORECASE,
)
DISCLAIMER_WEAK = re.compile(
    r"confidential|vertraulich|confidentiel|confidencial|vertrouwelijk", re.IGNORECASE
)
# The line that opens a forwarded or copied message: "---- Forwarded message ----", "____".
SEPARATOR = re.compile(r"^\s*([-_=*]{3,}.*[-_=*]{3,}|[-_]{10,})\s*$")
# Outlook's header block ("From: … Sent: … To: … Subject: …") in the languages we cover.
HEADER_LABEL = re.compile(
    r"^\s*\*?(from|sent|to|subject|date|cc|von|gesendet|an|betreff|datum|de|envoy[ée]|à|"
    r"objet|date|para|asunto|enviado el|enviado|fecha|van|verzonden|aan|onderwerp|verstuurd)"
    r"\s?:\*?(\s|$)",
    re.IGNORECASE,
)
FROM_LABEL = re.compile(r"^\s*\*?(from|von|de|van)\s?:\*?\s", re.IGNORECASE)
QUOTED_LINE = re.compile(r"^\s*>")
INTRO_LINE = re.compile(r":\s*$")


@dataclass
class CleanResult:
    """The sender's own words, and which kinds of text were cut to get them."""

    text: str
    removed: list[str] = field(default_factory=list)


def clean_body(text: str, html: str | None = None) -> CleanResult:
    """Return the message's own words: no quoted history, signature or disclaimer.

    ``html`` is used only when there is no plain text. Never returns empty text for a
    non-empty message: if cleaning would remove everything, the original text comes back.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip() and html:
        text = html_to_text(html)
    original = text.strip()
    if not original:
        return CleanResult(text="")
    removed: list[str] = []
    kept = _clean(original[:MAX_CLEAN_CHARS], removed, depth=0)
    if not kept.strip():
        return CleanResult(text=original, removed=[])
    return CleanResult(text=kept.strip(), removed=removed)


def _clean(text: str, removed: list[str], depth: int) -> str:
    lines = text.split("\n")
    cut = _history_start(lines)
    if cut is not None:
        top = "\n".join(lines[:cut])
        rest = lines[cut:]
        is_forward = any(FORWARD_MARKERS.search(line) for line in rest[:2])
        own = _strip_tail(top, [])
        if own.strip():
            removed.append("forward" if is_forward else "quote")
            return _strip_tail(top, removed)
        if is_forward and depth < MAX_FORWARD_DEPTH:
            # Nothing written above the forward: the forwarded message is the content.
            body = "\n".join(_skip_headers(rest))
            if body.strip():
                removed.append("forward-header")
                return _clean(body, removed, depth + 1)
        # Interleaved replies ("> question" / answer): keep the unquoted lines.
        unquoted = [line for line in rest[1:] if not QUOTED_LINE.match(line)]
        if "\n".join(unquoted).strip():
            removed.append("quote")
            return _strip_tail("\n".join(unquoted), removed)
        return text
    return _strip_tail(text, removed)


def _history_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted or forwarded history, or None."""
    candidates: list[int] = []
    found = quotequail.quote("\n".join(lines), limit=None, quote_intro_line=True)
    if len(found) > 1:
        candidates.append(found[0][1].count("\n") + 1 if found[0][1] else 0)
    header = _outlook_header_regex().search("\n".join(lines))
    if header:
        start = header.start() + (1 if header.group(0).startswith("\n") else 0)
        candidates.append("\n".join(lines)[:start].count("\n"))
    trailing = _trailing_quote_block(lines)
    if trailing is not None:
        candidates.append(trailing)
    block = _header_block(lines)
    if block is not None:
        candidates.append(block)
    if not candidates:
        return None
    cut = min(candidates)
    # Take the separator line above a header block with it ("-----Original Message-----").
    if cut > 0 and (SEPARATOR.match(lines[cut - 1]) or FORWARD_MARKERS.search(lines[cut - 1])):
        cut -= 1
    return cut


def _header_block(lines: list[str]) -> int | None:
    """First line of a "From:" line followed by two more header lines."""
    for i, line in enumerate(lines):
        if (
            FROM_LABEL.match(line)
            and i + 2 < len(lines)
            and HEADER_LABEL.match(lines[i + 1])
            and HEADER_LABEL.match(lines[i + 2])
        ):
            return i
    return None


def _skip_headers(lines: list[str]) -> list[str]:
    """The forwarded message's body: past the separator and its header block."""
    i = 0
    while i < len(lines) and (
        not lines[i].strip() or SEPARATOR.match(lines[i]) or FORWARD_MARKERS.search(lines[i])
    ):
        i += 1
    while i < len(lines) and HEADER_LABEL.match(lines[i]):
        i += 1
    return lines[i:]


@lru_cache(maxsize=1)
def _outlook_header_regex() -> re.Pattern[str]:
    """mail-parser-reply's header patterns (Outlook blocks, "On … wrote:"), all languages."""
    from mailparser_reply.parser import EmailMessage

    message = EmailMessage(text="", languages=["en", "de", "fr", "es", "nl", "it", "sv", "da"])
    pattern: re.Pattern[str] = message.HEADER_REGEX
    return pattern


def _trailing_quote_block(lines: list[str]) -> int | None:
    """Start of a run of "> " lines that reaches the end, with its intro line if any."""
    i = len(lines)
    while i > 0 and (not lines[i - 1].strip() or QUOTED_LINE.match(lines[i - 1])):
        i -= 1
    if i == len(lines) or not any(QUOTED_LINE.match(line) for line in lines[i:]):
        return None
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i > 0 and INTRO_LINE.search(lines[i - 1]) and len(lines[i - 1]) < 200:
        i -= 1
    return i


def _strip_tail(text: str, removed: list[str]) -> str:
    """Drop trailing disclaimers and a trailing signature block."""
    text = _strip_disclaimers(text, removed)
    text = _strip_signature(text, removed)
    return _strip_disclaimers(text, removed)


def _strip_disclaimers(text: str, removed: list[str]) -> str:
    paragraphs = re.split(r"\n\s*\n", text.strip())
    cut = len(paragraphs)
    while cut > 1 and _is_disclaimer(paragraphs[cut - 1]):
        cut -= 1
    if cut == len(paragraphs):
        return text
    removed.append("disclaimer")
    return "\n\n".join(paragraphs[:cut])


def _is_disclaimer(paragraph: str) -> bool:
    if DISCLAIMER_STRONG.search(paragraph):
        return True
    return len(paragraph) >= 150 and len(DISCLAIMER_WEAK.findall(paragraph)) >= 1


def _strip_signature(text: str, removed: list[str]) -> str:
    """Cut at a signature marker found near the end, keeping everything above it.

    A valediction ("Best regards", "Mit freundlichen Grüßen") only counts when what follows
    looks like a signature block: a few short lines and nothing else.
    """
    lines = text.rstrip().split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i == 0:
            continue
        tail = [t for t in lines[i + 1 :] if t.strip()]
        if SIG_DASHES.match(line) and len(tail) <= 15:
            return _cut(lines, i, removed)
        if SENT_FROM.match(stripped) and len(stripped) < 80 and len(tail) <= 2:
            return _cut(lines, i, removed)
        if VALEDICTION.match(stripped.rstrip(" ,")) and _looks_like_signature(tail):
            return _cut(lines, i, removed)
    return text


def _looks_like_signature(tail: list[str]) -> bool:
    """A name, a title, a phone number: short lines, none of them a sentence."""
    if len(tail) > 8:
        return False
    for line in tail:
        words = line.split()
        if len(line.strip()) > 70 or len(words) >= 8:
            return False
        if len(words) >= 5 and line.rstrip()[-1:] in ".?!:":
            return False
    return True


def _cut(lines: list[str], i: int, removed: list[str]) -> str:
    removed.append("signature")
    return "\n".join(lines[:i]).rstrip()


BLOCK_TAGS = (
    "p",
    "div",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "pre",
    "hr",
    "section",
    "article",
)


def html_to_text(html: str) -> str:
    """Readable text from a mail's HTML body; blockquotes become "> " lines.

    Marking blockquotes keeps an HTML-only reply's history recognisable to ``clean_body``.
    Scripts, styles and the head never reach the text.
    """
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "head", "noscript", "template", "title"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for quote in soup.find_all("blockquote"):
        quote.insert_before("\n\x02")
        quote.insert_after("\x03\n")
    raw = soup.get_text()
    out: list[str] = []
    depth = 0
    for line in raw.split("\n"):
        depth += line.count("\x02")
        clean = " ".join(line.replace("\x02", "").replace("\x03", "").split())
        if clean or (out and out[-1]):
            out.append(("> " * depth + clean) if clean else "")
        depth = max(0, depth - line.count("\x03"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
