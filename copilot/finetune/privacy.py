"""Scrubbing a training set: redaction, consistent pseudonyms, and a scan for what is left.

Why redact again when runs were already redacted on the way to the model: runs store the
*restored* answer (the user saw real addresses), an edited text is typed by a person, and
redaction at run time is off unless an operator turned it on. A training file leaves the
organisation and is learned by heart, so every example is redacted here with e-mails,
phones, cards and accounts always on, whatever the run-time settings say.

Why a residual scan with looser patterns: the redactor is tuned for precision (it must not
break dates and prices in live prompts). After it ran, the same patterns find nothing by
construction; looser ones (``copilot.llm.redact.scan_text``) list what a person should look
at, by line number, before the file is uploaded.

The patterns themselves all live in ``copilot.llm.redact``: one rule set for what leaves the
machine at run time and what leaves it in a training file.

Pseudonyms instead of ``[NAME_1]``: a model trained on placeholders learns to write
placeholders. Each real name maps to one synthetic name for the whole dataset (assigned in
sorted order of the real names, so the same names list gives the same mapping every time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.llm.redact import PLACEHOLDER, RedactionPolicy, Redactor, name_pattern, scan_text

MAX_NAMES = 10_000
MAX_NAMES_FILE_BYTES = 1024 * 1024

FAKE_NAMES = (
    "Alex Morgan", "Sam Carter", "Robin Hale", "Jordan Reyes", "Casey Lund", "Riley Brooks",
    "Morgan Ellis", "Taylor Quinn", "Jamie Novak", "Avery Stone", "Drew Palmer", "Quinn Hayes",
    "Rowan Frost", "Sasha Vidal", "Kai Lindqvist", "Noa Berger", "Elin Marsh", "Tomas Grell",
    "Iris Calder", "Milan Sorensen", "Lea Fontaine", "Oskar Brandt", "Nina Arkwright",
    "Felix Oduya", "Hana Kovacs", "Leo Whitcombe", "Mara Jansen", "Ezra Castell",
    "Ines Holloway", "Theo Marchetti", "Vera Lindgren", "Arlo Penn",
)  # fmt: skip


def dataset_policy(settings: Any) -> RedactionPolicy:
    """E-mails, phones, cards and accounts always; the names in settings.redact_names too."""
    names = tuple(n for n in getattr(settings, "redact_names", []) if n.strip())
    return RedactionPolicy(emails=True, phones=True, cards=True, accounts=True, names=names)


# -- pseudonyms ------------------------------------------------------------------------------


def load_names(path: Path) -> list[str]:
    """One real name per line ('#' starts a comment); blank lines ignored."""
    try:
        size = path.stat().st_size
        if size > MAX_NAMES_FILE_BYTES:
            raise ValueError(f"{path}: {size} bytes, over the {MAX_NAMES_FILE_BYTES}-byte limit")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read the names file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"the names file {path} is not UTF-8 text") from e
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = [n for n in names if n]
    if len(names) > MAX_NAMES:
        raise ValueError(f"{path}: {len(names)} names, over the limit of {MAX_NAMES}")
    return names


class Pseudonymiser:
    """Replaces each listed real name with the same synthetic name everywhere.

    A first name alone ("Anna") that starts a listed full name ("Anna Schmidt") becomes the
    first name of that full name's pseudonym, so "Anna" and "Anna Schmidt" stay one person.
    """

    def __init__(self, names: Iterable[str]) -> None:
        real = sorted({" ".join(n.split()) for n in names if n and n.strip()}, key=str.lower)
        taken = {n.lower() for n in real}
        fakes = [f for f in FAKE_NAMES if f.lower() not in taken]
        self.mapping: dict[str, str] = {}
        full = [n for n in real if " " in n]
        for i, name in enumerate(full):
            base = fakes[i % len(fakes)]
            self.mapping[name.lower()] = base if i < len(fakes) else f"{base} {i // len(fakes)}"
        singles = [n for n in real if " " not in n]
        firsts = [f.split()[0] for f in fakes if f.split()[0].lower() not in taken]
        for j, name in enumerate(singles):
            owner = next((f for f in full if f.split()[0].lower() == name.lower()), None)
            if owner is not None:
                self.mapping[name.lower()] = self.mapping[owner.lower()].split()[0]
            else:
                self.mapping[name.lower()] = firsts[j % len(firsts)] + (
                    "" if j < len(firsts) else str(j // len(firsts))
                )
        self.used: dict[str, int] = {}
        self._pattern = name_pattern(real)

    def apply(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(self._swap, text)

    def _swap(self, match: re.Match[str]) -> str:
        key = " ".join(match.group().lower().split())
        self.used[key] = self.used.get(key, 0) + 1
        return self.mapping.get(key, match.group())


# -- redaction of one example ----------------------------------------------------------------


@dataclass
class ScrubReport:
    """Kind -> distinct values redacted (summed over examples), and examples touched."""

    redacted: dict[str, int] = field(default_factory=dict)
    examples_redacted: int = 0
    pseudonyms: int = 0  # names replaced (occurrences)

    def as_dict(self) -> dict[str, Any]:
        return {
            "redacted": dict(sorted(self.redacted.items())),
            "examples_redacted": self.examples_redacted,
            "pseudonyms_replaced": self.pseudonyms,
        }


def scrub_messages(
    messages: Sequence[dict[str, str]],
    policy: RedactionPolicy,
    report: ScrubReport,
    pseudonyms: Pseudonymiser | None = None,
) -> list[dict[str, str]]:
    """One example redacted with one set of placeholders (as one run is at run time).

    Placeholders already in the text (from run-time redaction) keep their numbers: new ones
    are numbered after them, so ``[EMAIL_1]`` never comes to mean two different addresses.
    """
    redactor = Redactor(policy)
    seeded: dict[str, int] = {}
    for m in messages:
        for kind, n in PLACEHOLDER.findall(m["content"]):
            seeded[kind] = max(seeded.get(kind, 0), int(n))
    redactor.counts.update(seeded)
    before = sum(pseudonyms.used.values()) if pseudonyms else 0
    out = []
    for m in messages:
        content = pseudonyms.apply(m["content"]) if pseudonyms else m["content"]
        out.append({"role": m["role"], "content": redactor.redact(content)})
    touched = False
    for kind, n in redactor.counts.items():
        new = n - seeded.get(kind, 0)
        if new > 0:
            report.redacted[kind.lower()] = report.redacted.get(kind.lower(), 0) + new
            touched = True
    report.examples_redacted += touched
    if pseudonyms:
        report.pseudonyms += sum(pseudonyms.used.values()) - before
    return out


# -- the residual scan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """Something that still looks like personal data, at a JSONL line (1-based)."""

    line: int
    kind: str  # email | card | phone
    role: str
    masked: str  # the match with all but its last two characters hidden

    def as_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        out = {"line": self.line, "kind": self.kind, "role": self.role}
        if with_text:
            out["masked"] = self.masked
        return out


def scan_lines(lines: Iterable[str]) -> list[Hit]:
    """Scan each JSONL line's message contents; unreadable lines are validation's business."""
    hits: list[Hit] = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            messages = record.get("messages") if isinstance(record, dict) else None
        except ValueError:
            continue
        for m in messages if isinstance(messages, list) else []:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                continue
            for kind, text in scan_text(m["content"]):
                hits.append(Hit(number, kind, str(m.get("role")), _mask(text)))
    return hits


def scan_file(path: Path) -> list[Hit]:
    with path.open(encoding="utf-8", errors="replace") as f:
        return scan_lines(f)


def _mask(text: str) -> str:
    text = " ".join(text.split())[:64]
    return "".join("•" if c.isalnum() else c for c in text[:-2]) + text[-2:]
