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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from copilot.llm.types import Message

KINDS = ("EMAIL", "ACCOUNT", "CARD", "PHONE", "NAME")

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
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})")
_NANP = re.compile(r"\d{3}[-. ]\d{3}[-. ]\d{4}")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


@dataclass(frozen=True)
class RedactionPolicy:
    emails: bool = True
    phones: bool = True
    cards: bool = True
    accounts: bool = True
    names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> RedactionPolicy | None:
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
        names = sorted({n.strip() for n in self.policy.names if n.strip()}, key=len, reverse=True)
        self._names: re.Pattern[str] | None = None
        if names:  # not inside an address or a dotted name (that is the e-mail rule's job)
            alternatives = "|".join(r"\s+".join(map(re.escape, n.split())) for n in names)
            self._names = re.compile(
                rf"(?i)(?<![\w@])(?<!\w\.)(?:{alternatives})(?=['’]s\b|(?![\w@]|\.\w))"
            )

    def redact(self, text: str) -> str:
        policy = self.policy
        if policy.emails:
            text = _EMAIL.sub(
                lambda m: self._placeholder("EMAIL", m.group(), m.group().lower()), text
            )
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
        return re.sub(
            r"\[(?:EMAIL|ACCOUNT|CARD|PHONE|NAME)_\d+\]",
            lambda m: self.originals.get(m.group(), m.group()),
            text,
        )

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
