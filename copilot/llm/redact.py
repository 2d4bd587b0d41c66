"""Privacy redaction: personal data replaced by placeholders before text goes to a remote LLM.

Placeholders are consistent for a whole run (one ``Redactor``): the same e-mail address is
``[EMAIL_1]`` in every message, so the model can still tell people apart and refer to them,
and ``Redactor.restore`` can put the originals back into the answer on our side.

Precision matters as much as recall: redacting a date, a price or an order number breaks the
prompt. So every candidate is checked before it is replaced: card numbers by Luhn, IBANs by
their mod-97 check, phone numbers by shape (an international ``+`` prefix, an area code in
parentheses, a national number starting with 0, the US 3-3-4 shape, or a "phone"/"tel" label
just before a plain digit run) and never a date. Every pattern is bounded, and starts only
where a word starts, so matching is linear in the text length even on hostile input.

This module is the one set of privacy rules: the fine-tuning scrubber
(``copilot.finetune.privacy``) redacts with the same ``Redactor``, matches names with the
same ``name_pattern``, and checks what is left with ``scan_text``, whose looser patterns
(any ``x@y.z``, ``at``/``dot`` spellings, Luhn-valid digit runs with any separator, long
digit groups) list what a person should look at before a file leaves the organisation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from copilot.config import Settings
from copilot.llm.types import Message

KINDS = ("EMAIL", "ACCOUNT", "CARD", "PHONE", "NAME")
# A placeholder this module wrote: kind and number as groups.
PLACEHOLDER = re.compile(r"\[(EMAIL|ACCOUNT|CARD|PHONE|NAME)_(\d{1,6})\]")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# Country code, check digits, then 11-30 more letters/digits in groups of four.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_ACCOUNT = re.compile(
    r"(?i)\b(?:account|acct|a/c|routing|aba|konto(?:nummer)?|kto)\.?"
    r"(?:[ \t]{0,3}(?:no\.?|nr\.?|num\.?|number|#))?[ \t]{0,3}[:#]?[ \t]{0,3}"
    r"(\d(?:[ -]?\d){5,19})(?![\d-])"
)
_PHONE = re.compile(
    r"(?<![\w+(])(?:\+\d{1,3}|\(\d{1,5}\)|\d{1,15})"
    r"(?:(?:[ .-]|[ ]?/[ ]?){1,2}(?:\(\d{1,5}\)|\d{1,15})){0,6}(?![\w@])"
)
_PHONE_LABEL = re.compile(
    r"(?i)\b(?:tel|phone|mobile|mob|cell|fax|handy|telefon|call)\b[^\w\n]{0,4}"
    r"(?:no|nr|number)?[^\w\n]{0,4}$"
)
# The end of a line just before a Message-ID: its label, then maybe other ids of a list.
_MESSAGE_ID_BEFORE = re.compile(
    r"(?i)\b(?:message[-_ ]?id|in-reply-to|references)[\s:=\"']{0,4}"
    r"(?:(?:<|&lt;)[^\s<>&]{1,250}(?:>|&gt;)[\s,]{0,3}){0,50}(?:<|&lt;)$"
)
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})")
_NANP = re.compile(r"\d{3}[-. ]\d{3}[-. ]\d{4}")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

# The residual scan's looser patterns (see ``scan_text``).
_LOOSE_EMAIL = re.compile(
    r"(?i)(?<![\w.+-])[\w.+-]{1,64}\s{0,2}(?:@|\(at\)|\[at\]|\s at\s)\s{0,2}[a-z0-9-]{1,63}"
    r"(?:\s{0,2}(?:\.|\(dot\)|\[dot\]|\s dot\s)\s{0,2}[a-z0-9-]{1,63}){1,6}"
)
_LOOSE_CARD = re.compile(r"(?<![\d])\d(?:[ .\-/]?\d){12,18}(?![\d])")
_LOOSE_PHONE = re.compile(r"(?<![\w+])(?:\+|\(\d)?\d[\d ()./\-]{5,22}\d(?![\w])")


@dataclass(frozen=True)
class RedactionPolicy:
    emails: bool = True
    phones: bool = True
    cards: bool = True
    accounts: bool = True
    names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedactionPolicy | None:
        """The policy the settings ask for; None when nothing is to be redacted."""
        names = tuple(n for n in settings.redact_names if n.strip())
        if settings.redact:
            return cls(names=names)
        if names:
            return cls(emails=False, phones=False, cards=False, accounts=False, names=names)
        return None


@dataclass
class Redactor:
    """Redacts texts with one set of placeholders; keep one per run."""

    policy: RedactionPolicy
    mapping: dict[str, str] = field(default_factory=dict)  # normalised original -> placeholder
    counts: dict[str, int] = field(default_factory=dict)  # kind -> distinct values seen
    originals: dict[str, str] = field(default_factory=dict)  # placeholder -> first spelling

    def __post_init__(self) -> None:
        self._names = name_pattern(self.policy.names)

    def redact(self, text: str) -> str:
        policy = self.policy
        if policy.emails:
            text = _EMAIL.sub(lambda m: self._email(m, text), text)
        if policy.accounts:
            text = _IBAN.sub(self._iban, text)
        if policy.cards:
            text = _CARD.sub(self._card, text)
        if policy.accounts:
            text = _ACCOUNT.sub(self._account, text)
        if policy.phones:
            text = _PHONE.sub(lambda m: self._phone(m, text), text)
        if self._names is not None:
            text = self._names.sub(
                lambda m: self._placeholder("NAME", m.group(), " ".join(m.group().lower().split())),
                text,
            )
        return text

    def restore(self, text: str) -> str:
        """Put the original values back in place of placeholders (e.g. in a drafted reply)."""
        if not self.originals:
            return text
        return PLACEHOLDER.sub(lambda m: self.originals.get(m.group(), m.group()), text)

    def report(self) -> dict[str, int]:
        """Kind (lower case) -> how many distinct values were redacted."""
        return {kind.lower(): n for kind, n in self.counts.items() if n}

    def _placeholder(self, kind: str, original: str, key: str) -> str:
        key = f"{kind}:{key}"
        placeholder = self.mapping.get(key)
        if placeholder is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            placeholder = f"[{kind}_{self.counts[kind]}]"
            self.mapping[key] = placeholder
            self.originals[placeholder] = original
        return placeholder

    def _email(self, match: re.Match[str], text: str) -> str:
        if is_message_id(text, match.start(), match.end()):
            return match.group()  # it names a message, not a person
        return self._placeholder("EMAIL", match.group(), match.group().lower())

    def _iban(self, match: re.Match[str]) -> str:
        # The greedy match may have swallowed a following word of four capitals: back off
        # group by group until the check digits agree.
        text = match.group()
        while len(text.replace(" ", "")) >= 15:
            compact = text.replace(" ", "")
            if iban_ok(compact):
                return self._placeholder("ACCOUNT", text, compact) + match.group()[len(text) :]
            cut = max(text.rfind(" "), len(text) - 4)
            text = text[:cut].rstrip()
        return match.group()

    def _card(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if not luhn_ok(digits) or len(set(digits)) == 1:
            return match.group()
        return self._placeholder("CARD", match.group(), digits)

    def _account(self, match: re.Match[str]) -> str:
        number = match.group(1)
        digits = re.sub(r"\D", "", number)
        start = match.start(1) - match.start()
        placeholder = self._placeholder("ACCOUNT", number, digits)
        return match.group()[:start] + placeholder

    def _phone(self, match: re.Match[str], text: str) -> str:
        candidate = match.group()
        if not looks_like_phone(candidate, text[max(0, match.start() - 30) : match.start()]):
            return candidate
        digits = re.sub(r"\D", "", candidate)
        return self._placeholder("PHONE", candidate, digits)


def is_message_id(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]``, shaped like an address, is a Message-ID: in angle
    brackets (or their HTML escapes) on a line labelled Message-ID, In-Reply-To, References
    or a locator's ``message_id``. It identifies a message, so redacting it hides nothing
    personal and breaks the link back to the mail."""
    before = text[max(0, start - 2000) : start]
    line = before[before.rfind("\n") + 1 :]
    after = text[end : end + 4]
    closed = after.startswith(">") or after.startswith("&gt;")
    return closed and _MESSAGE_ID_BEFORE.search(line) is not None


def name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for the listed names (any case, any run of spaces inside a name, longest
    first, so "Anna Schmidt" wins over "Anna"); None when the list is empty.

    A name inside an address or a dotted name is left to the e-mail rule; a possessive
    ("Anna's") still matches.
    """
    ordered = sorted({" ".join(n.split()) for n in names if n.strip()}, key=len, reverse=True)
    if not ordered:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, n.split())) for n in ordered)
    return re.compile(rf"(?i)(?<![\w@])(?<!\w\.)(?:{alternatives})(?=['’]s\b|(?![\w@]|\.\w))")


def looks_like_phone(candidate: str, before: str = "") -> bool:
    """Whether a run of digit groups is a phone number rather than a date, price or id."""
    digits = sum(c.isdigit() for c in candidate)
    if not 7 <= digits <= 15:
        return False
    if _DATE.fullmatch(candidate) or _DATE.search(candidate) or _IP.fullmatch(candidate):
        return False
    if candidate.startswith("+") or re.match(r"\(\d{2,5}\)", candidate):
        return True  # +49 30 1234567, (555) 123-4567
    groups = re.findall(r"\d+", candidate)
    if "." in candidate and any(not 2 <= len(g) <= 4 for g in groups):
        return False  # version numbers, decimals
    if len(groups) > 1 and candidate.startswith("0") and not candidate.startswith("00."):
        return True  # national format: 030 1234567, 0171-1234567, 020 7946 0958
    if _NANP.fullmatch(candidate):
        return True  # 555-123-4567
    return bool(_PHONE_LABEL.search(before))  # "Tel: 5551234", "phone 12345678"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, read as base 36, mod 97."""
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def redact_messages(
    messages: Sequence[Message], policy: RedactionPolicy
) -> tuple[list[Message], dict[str, int]]:
    """Redact every message with one set of placeholders; returns them and the report."""
    redactor = Redactor(policy)
    redacted = [Message(m.role, redactor.redact(m.content)) for m in messages]
    return redacted, redactor.report()


def scan_text(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) for everything in ``text`` that still looks like personal data.

    Looser than ``Redactor`` on purpose: run after redaction, the redactor's own patterns
    find nothing by construction, so these list what a person should check. Placeholders,
    dates, IP addresses, decimals and version numbers are not reported.
    """
    found: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []
    for m in _LOOSE_EMAIL.finditer(text):
        found.append(("email", m.group()))
        spans.append(m.span())
    for m in _LOOSE_CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if luhn_ok(digits) and len(set(digits)) > 1 and not _DATE.search(m.group()):
            found.append(("card", m.group()))
            spans.append(m.span())
    for m in _LOOSE_PHONE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in spans):
            continue
        candidate = m.group().strip()
        count = sum(c.isdigit() for c in candidate)
        if not (10 if candidate.isdigit() else 8) <= count <= 15:
            continue
        if _DATE.search(candidate) or _IP.fullmatch(candidate):
            continue
        if re.search(r"\d\.\d{1,2}(?!\d)", candidate) and not candidate.startswith("+"):
            continue  # decimals and version numbers
        found.append(("phone", candidate))
    return found
