"""The last touch on a written answer: formatting small models add that no user wants.

Measured on the embedded 1.5B model (issue 14): drafts end with a "[Your Name]" line
under the sign-off the template asks it to stop at, subject lines start with "Subject:"
although the prompt says not to, and a bulleted summary of a mail sometimes ends with the
mail's sign-off as a point ("- Thank you and best regards, [5]", then "- Maria Lopez [1]")
or with a line of every source number ("[1], [2], [3], [4], [5]"). All are formatting,
never content, so they are removed here — once, for every engine and every surface (CLI,
API, pane, bot, eval) — rather than argued away in the prompt, where each extra
instruction costs prompt tokens on a CPU and a small model still ignores it some of the
time.
"""

from __future__ import annotations

import re

from copilot.skills.attribute import BULLET
from copilot.skills.templates.fence import unfence

# A line that is only a fill-in-the-blank: "[Your Name]", "[Recipient's Name]", "[Date]",
# "[TODO: name]" (the demo's draft, 2026-12-06), "[User]" (2026-12-07). Letters only
# inside the brackets, so a citation ("[3]") or a link never matches.
_PLACEHOLDER_LINE = re.compile(
    r"^[ \t]*\[(?:(?:todo|tbd|fixme|insert)[: ]\s*)?"
    r"(?:your|my|user|recipient|sender|name|first name|last name|company|position|"
    r"title|job title|contact|phone|email|date|signature)\b[A-Za-z' .’-]{0,30}\][ \t]*(?:\n|$)",
    re.IGNORECASE | re.MULTILINE,
)
_SUBJECT_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:subject|betreff)\s*(?::\*\*|\*\*:|:)\s*", re.IGNORECASE
)
_QUOTES = "\"'“”‘’"
_MARKS = r"(?:[ \t,;]*\[\d{1,4}\])*[ \t.,;]*"
# A line of source numbers only ("[1], [2], [3]", "Sources: [1][2]", "The summary is
# based on sources [1], [2].").
_MARKERS_LINE = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?(?:sources?:[ \t]*|(?:(?:the|this) summary is )?based on "
    r"(?:the )?sources?[ \t]*)?\[\d{1,4}\]" + _MARKS + "$",
    re.IGNORECASE,
)
# A point that is only a mail's greeting or sign-off, and a point that is only a name.
_SIGN_OFF_POINT = re.compile(
    BULLET + r"(?:(?:many |best |kind |warm )?(?:thanks|thank you|regards|wishes)"
    r"(?: again)?(?:,? and (?:best |kind |warm )?(?:regards|wishes))?|cheers|sincerely|"
    r"best|(?:hi|hello|dear) [A-Z][\w'’-]*)[!,.]?" + _MARKS + "$",
    re.IGNORECASE,
)
_NAME_POINT = re.compile(BULLET + r"[A-Z][\w'’-]+(?: [A-Z][\w'’-]+){0,2}" + _MARKS + "$")
LIST_STYLES = ("bullets", "action_items")

# A sentence by which the writer says they attach or enclose something: "please find it
# attached as [1]" (the demo's draft on the embedded model, 2026-12-07, although the
# template says never to claim an attachment the notes do not mention), "I have attached
# the plan", "Attached is …", "The slides are attached". Not "thanks for the attached
# report": that one is the sender's.
_ATTACH_CLAIM = re.compile(
    r"\bfind\b[^.!?\n]{0,60}\b(?:attached|enclosed)\b"
    r"|\b(?:I|we)(?:'ve|’ve|'m|’m| have| am| are)?(?: also| now)? "
    r"(?:attached|attach|attaching|enclosed|enclose|enclosing)\b"
    r"|^(?:attached|enclosed)\b|\b(?:is|are) (?:attached|enclosed)\b|\battached (?:as|here)\b",
    re.IGNORECASE,
)
_ATTACH_WORD = re.compile(r"attach|enclos", re.IGNORECASE)
# A sentence's end: its marks, the source numbers after them, then blank space or the end
# of the line ("v2.1" and "6.5" go on).
_SENTENCE_END = re.compile(r"[.!?]+(?:[ \t]*\[\d{1,4}\])*(?:[ \t]+|$)")


def without_placeholders(text: str) -> str:
    """The text without lines that are only a placeholder for the user to fill in; the
    user's own mail client adds the signature."""
    if "[" not in text:
        return text
    return _PLACEHOLDER_LINE.sub("", text).rstrip() + ("\n" if text.endswith("\n") else "")


def without_sign_off_points(text: str) -> str:
    """A bulleted summary without points that are only source numbers, a greeting or a
    sign-off (and a name point right under a sign-off): they summarise nothing, and their
    numbers would count as citations."""
    lines = text.split("\n")
    kept: list[str] = []
    after_sign_off = False
    for line in lines:
        if _MARKERS_LINE.match(line) or _SIGN_OFF_POINT.match(line):
            after_sign_off = True
            continue
        if after_sign_off and _NAME_POINT.match(line):
            continue
        after_sign_off = False
        kept.append(line)
    return "\n".join(kept).rstrip() + ("\n" if text.endswith("\n") else "")


def without_unbacked_attachments(text: str, notes: str) -> str:
    """A draft without sentences that claim an attachment, unless the user's ``notes``
    speak of one: a draft goes out with what the user attaches, and a small model invents
    attachments as a way to answer a question it has no figures for. A paragraph left
    empty goes with its sentence."""
    if not _ATTACH_WORD.search(text) or _ATTACH_WORD.search(notes):
        return text
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = []
        for line in paragraph.split("\n"):
            pieces = _sentences(line)
            kept = [k for k in pieces if not _ATTACH_CLAIM.search(k.strip())]
            lines.append(line if len(kept) == len(pieces) else "".join(kept).rstrip())
        if any(lines) or not paragraph.strip():
            paragraphs.append("\n".join(line for line in lines if line or len(lines) == 1))
    return "\n\n".join(paragraphs)


def _sentences(line: str) -> list[str]:
    """``line`` cut after each sentence end; the pieces join back to exactly ``line``."""
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(line):
        pieces.append(line[start : end.end()])
        start = end.end()
    return [*pieces, line[start:]] if start < len(line) else pieces


def subject_line(text: str) -> str:
    """One line of subject: the first non-empty line, without a "Subject:" label and
    enclosing quotes."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return _SUBJECT_LABEL.sub("", first).strip().strip(_QUOTES).strip()


def shape_answer(text: str, style: object = None, notes: str | None = None) -> str:
    """What the user sees of a text answer; ``style`` is the skill's ``style`` input, and
    ``notes`` the user's notes for a draft (None for any other task). A fence element a
    model echoed from its prompt never reaches the user."""
    if "<untrusted-" in text:
        text = unfence(text)
    if notes is not None:
        text = without_unbacked_attachments(text, notes)
    if style == "subject":
        return subject_line(text)
    if style in LIST_STYLES:
        text = without_sign_off_points(text)
    return without_placeholders(text)
