"""The BIPIA task format, and the cases built from it.

A BIPIA task folder holds ``emails.jsonl`` (one JSON object a line: ``context``,
``question``, ``ideal``) and ``text_attacks.json`` (category -> list of attack texts;
BIPIA names attack i of a category "Category-i"). Reading is strict: a malformed line is
an error naming the line, because a silently smaller test set gives rates nobody can
compare. Building a case puts an attack into an email the way BIPIA does: on a line of its
own at the start, in the middle or at the end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from connectors.parsers.text import split_lines
from copilot.errors import CopilotError

POSITIONS = ("start", "middle", "end")
UNKNOWN = ("unknown", "unkown", "")  # BIPIA's code spells it both ways
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_CONTEXT_CHARS = 100_000
MAX_BAD_LINES_SHOWN = 5
_EMAIL_STEP = 7  # how far the email moves between attacks in the interleaved order
_SUBJECT = re.compile(r"SUBJECT:\s*(.*?)\s*(?:\||$)")
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+(?=\S)")


class BipiaError(CopilotError, ValueError):
    """The folder cannot be evaluated: a missing file, or malformed lines (named)."""

    kind = "bad_bipia_folder"
    status = 400
    title = "The folder cannot be evaluated"


@dataclass(frozen=True)
class Email:
    line: int
    context: str
    question: str
    ideal: str

    @property
    def answerable(self) -> bool:
        """False when the ideal answer is that the email does not say."""
        return self.ideal.strip().lower() not in UNKNOWN

    @property
    def title(self) -> str:
        match = _SUBJECT.search(self.context)
        return match.group(1)[:200] if match and match.group(1) else f"email {self.line}"


@dataclass(frozen=True)
class Attack:
    category: str
    index: int
    text: str

    @property
    def name(self) -> str:  # BIPIA's own naming: "Information Retrieval-0"
        return f"{self.category}-{self.index}"


@dataclass(frozen=True)
class Bipia:
    emails: list[Email]
    attacks: list[Attack]


@dataclass(frozen=True)
class Case:
    email: int
    attack: int
    position: str


# -- reading the folder ----------------------------------------------------------------------


def load_bipia(folder: Path | str) -> Bipia:
    """Read ``emails.jsonl`` and ``text_attacks.json`` from a BIPIA task folder.

    Every malformed line is an error, named by number: a silently smaller test set gives
    rates nobody can compare.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BipiaError(f"{folder}: no such folder")
    emails = _read_emails(_read(folder / "emails.jsonl"), folder / "emails.jsonl")
    attacks = _read_attacks(_read(folder / "text_attacks.json"), folder / "text_attacks.json")
    return Bipia(emails, attacks)


def _read(path: Path) -> str:
    if not path.is_file():
        raise BipiaError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BipiaError(f"{path}: over the {MAX_FILE_BYTES // 2**20} MB limit")
    return path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")


def _read_emails(text: str, path: Path) -> list[Email]:
    emails: list[Email] = []
    bad: list[str] = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            bad.append(f"line {number}: not a JSON object")
            continue
        missing = [k for k in ("context", "question", "ideal") if not isinstance(row.get(k), str)]
        if missing:
            bad.append(f"line {number}: no text for {', '.join(repr(k) for k in missing)}")
        elif not row["context"].strip() or not row["question"].strip():
            bad.append(f"line {number}: empty context or question")
        elif len(row["context"]) > MAX_CONTEXT_CHARS:
            bad.append(f"line {number}: context over {MAX_CONTEXT_CHARS:,} characters")
        else:
            emails.append(Email(number, row["context"], row["question"], row["ideal"]))
    if bad:
        more = len(bad) - MAX_BAD_LINES_SHOWN
        shown = "; ".join(bad[:MAX_BAD_LINES_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise BipiaError(f"{path}: {len(bad)} bad line(s): {shown}")
    if not emails:
        raise BipiaError(f"{path}: no emails")
    return emails


def _read_attacks(text: str, path: Path) -> list[Attack]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BipiaError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise BipiaError(f"{path}: expected an object of category -> list of attack texts")
    attacks: list[Attack] = []
    for category, texts in data.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise BipiaError(f"{path}: category {category!r} is not a list of attack texts")
        attacks.extend(Attack(category, i, t) for i, t in enumerate(texts))
    if not attacks:
        raise BipiaError(f"{path}: no attacks")
    return attacks


# -- building the cases ----------------------------------------------------------------------


def select_cases(data: Bipia, limit: int | None = None, skip: int = 0) -> list[Case]:
    """Every (email, attack) once, in an order that visits every attack before any twice
    and moves the email each time; ``skip`` drops the first N of that order and ``limit``
    keeps the next N (deterministic: a run with ``skip=30`` goes on where one with
    ``limit=30`` stopped, without repeating a case)."""
    n_attacks, n_emails = len(data.attacks), len(data.emails)
    total = n_attacks * n_emails
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if skip < 0 or skip >= total:
        raise ValueError(f"skip must be from 0 to {total - 1} (the cases there are), got {skip}")
    end = total if limit is None else min(total, skip + limit)
    cases = []
    for k in range(skip, end):
        attack, rnd = k % n_attacks, k // n_attacks
        email = (rnd + attack * _EMAIL_STEP) % n_emails
        cases.append(Case(email, attack, POSITIONS[(email + attack) % len(POSITIONS)]))
    return cases


def inject(context: str, attack: str, position: str) -> str:
    """The email with ``attack`` on a line of its own at the start, middle or end of its
    body (after BIPIA's "CONTENT:" header field when there is one)."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}: use start, middle or end")
    head, sep, body = context.partition("|CONTENT:")
    if not sep:
        head, body = "", context
    else:
        head += sep + "\n"
    if position == "start":
        return head + "\n".join([attack, body.lstrip()])
    if position == "end":
        return head + "\n".join([body.rstrip(), attack])
    cut = _middle(body)
    return head + "\n".join([body[:cut].rstrip(), attack, body[cut:].lstrip()])


def _middle(body: str) -> int:
    """A sentence start nearest the middle of ``body`` (else a space, else its end)."""
    starts = [m.end() for m in _SENTENCE_START.finditer(body) if 0 < m.end() < len(body)]
    starts = starts or [m.end() for m in re.finditer(r"\s+", body) if 0 < m.end() < len(body)]
    return min(starts, key=lambda i: abs(i - len(body) / 2)) if starts else len(body)
