"""The last touch on a written answer: formatting small models add that no user wants.

Measured on the embedded 1.5B model (issue 14): drafts end with a "[Your Name]" line
under the sign-off the template asks it to stop at, and subject lines start with
"Subject:" although the prompt says not to. Both are formatting, never content, so they
are removed here — once, for every engine and every surface (CLI, API, pane, bot, eval) —
rather than argued away in the prompt, where each extra instruction costs prompt tokens
on a CPU and a small model still ignores it some of the time.
"""

from __future__ import annotations

import re

from copilot.skills.templates.fence import unfence

# A line that is only a fill-in-the-blank: "[Your Name]", "[Recipient's Name]", "[Date]".
# Letters only inside the brackets, so a citation ("[3]") or a link never matches.
_PLACEHOLDER_LINE = re.compile(
    r"^[ \t]*\[(?:your|my|recipient|sender|name|first name|last name|company|position|"
    r"title|job title|contact|phone|email|date|signature)\b[A-Za-z' .’-]{0,30}\][ \t]*(?:\n|$)",
    re.IGNORECASE | re.MULTILINE,
)
_SUBJECT_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:subject|betreff)\s*(?::\*\*|\*\*:|:)\s*", re.IGNORECASE
)
_QUOTES = "\"'“”‘’"


def without_placeholders(text: str) -> str:
    """The text without lines that are only a placeholder for the user to fill in; the
    user's own mail client adds the signature."""
    if "[" not in text:
        return text
    return _PLACEHOLDER_LINE.sub("", text).rstrip() + ("\n" if text.endswith("\n") else "")


def subject_line(text: str) -> str:
    """One line of subject: the first non-empty line, without a "Subject:" label and
    enclosing quotes."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return _SUBJECT_LABEL.sub("", first).strip().strip(_QUOTES).strip()


def shape_answer(text: str, style: object = None) -> str:
    """What the user sees of a text answer; ``style`` is the skill's ``style`` input.
    A fence element a model echoed from its prompt never reaches the user."""
    if "<untrusted-" in text:
        text = unfence(text)
    if style == "subject":
        return subject_line(text)
    return without_placeholders(text)
