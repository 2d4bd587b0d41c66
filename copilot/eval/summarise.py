"""Subject lines for mail, scored with ROUGE: how well does the summarise skill say what a
mail is about?

The task is AESLC's (Zhang & Tetreault, ACL 2019, "This Email Could Save Your Life:
Introducing the Task of Email Subject Line Generation"): real Enron mail, each with the
subject its writer gave it and, in the dev and test splits, three subject lines written by
annotators. A JSON-lines file holds one mail a line: ``body`` and a ``subject`` and/or
``annotations`` (a list of reference lines); other keys (``id``) are ignored.

Each mail goes, as the pasted text, to the built-in summarise skill with
``style=subject`` (``eval_runner``: a throwaway home, the engine asked for). The answer
is scored with Google's ``rouge-score`` (the package behind the published AESLC and
PEGASUS figures), Porter stemming on: ROUGE-1, ROUGE-2 and ROUGE-L F1 against the
``subject``, and against the best-matching of the ``annotations`` (per metric, as
``score_multi`` picks). Citation markers ("[1]") are taken out first: they are the
copilot's links to sources, not words of the subject; a "Subject:" label and enclosing
quotes are taken out by the skill itself (``copilot.skills.shape``), as the user sees it.
The means are over the mails that have that kind of reference. rouge-score's tokenizer
keeps only ASCII letters and digits, so the measure is for English mail.

Published reference (AESLC test split, fine-tuned PEGASUS-large, F1 against ``subject``):
0.377 / 0.213 / 0.365.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.eval.metrics import percentile
from copilot.eval.skill_runs import eval_runner, resolve_engine
from copilot.llm.errors import LLMError
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.shape import subject_line

__all__ = [
    "METRICS", "Mail", "SummariseDataError", "SummaryReport", "evaluate", "read_jsonl",
    "score_subject",
]  # fmt: skip

METRICS = ("rouge1", "rouge2", "rougeL")
USER = "aeslc-eval"
MAX_LINE_BYTES = 1_000_000  # one mail; AESLC's longest is ~30 kB
MAX_BAD_LINES_SHOWN = 5
MAX_ERRORS_IN_A_ROW = 10  # a dead model stops the run instead of failing every mail
_MARKER = re.compile(r"\s*\[\d{1,6}\]")


class SummariseDataError(CopilotError, ValueError):
    """The file cannot be scored: missing, empty, or with malformed lines (named)."""

    kind = "bad_summarise_jsonl"
    status = 400
    title = "The file cannot be scored"


@dataclass(frozen=True)
class Mail:
    line: int  # in the file, from 1: what an error names
    body: str
    subject: str | None
    annotations: tuple[str, ...]


@dataclass
class SummaryReport:
    engine: str
    model: str | None
    subject: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    annotations: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line 7: …" per mail that failed

    def as_dict(self) -> dict[str, Any]:
        """The one JSON object ``copilot eval summarise --json`` prints."""
        return {
            "engine": self.engine,
            "model": self.model,
            "n": len(self.seconds),
            "subject": _means(self.subject),
            "annotations": _means(self.annotations),
            "p50_s": round(percentile(self.seconds, 50), 3),
            "p95_s": round(percentile(self.seconds, 95), 3),
            "errors": len(self.errors),
        }


def read_jsonl(path: Path | str, limit: int | None = None) -> list[Mail]:
    """The first ``limit`` mails of ``path`` (all without a limit); blank lines skipped.

    A bad line is an error that names it, as in ``read_tsv``: a test set silently shorter
    than asked gives numbers nobody can compare. Lines are cut at ``\\n`` only (a mail body
    holds U+2028 and form feeds), read one at a time, each at most ``MAX_LINE_BYTES``.
    """
    path = Path(path)
    if not path.is_file():
        raise SummariseDataError(f"{path}: no such file")
    mails: list[Mail] = []
    bad: list[str] = []
    for number, raw in _lines(path):
        if limit is not None and len(mails) >= limit:
            break
        if not raw.strip():
            continue
        try:
            mails.append(_mail(number, raw))
        except ValueError as exc:
            bad.append(f"line {number}: {exc}")
    if bad:
        more = len(bad) - MAX_BAD_LINES_SHOWN
        shown = "; ".join(bad[:MAX_BAD_LINES_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise SummariseDataError(f"{path}: {len(bad)} bad line(s): {shown}")
    if not mails:
        raise SummariseDataError(f"{path}: the file has no mails")
    return mails


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise SummariseDataError(
                    f"{path}: line {number} is longer than {MAX_LINE_BYTES:,} bytes"
                )
            yield number, raw


def _mail(number: int, raw: bytes) -> Mail:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from exc
    try:
        row = json.loads(text.lstrip("\ufeff") if number == 1 else text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from exc
    except RecursionError as exc:  # "[[[[…" nested deeper than the parser goes
        raise ValueError("not JSON (nested too deeply)") from exc
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    body = row.get("body")
    if not isinstance(body, str) or not body.strip():
        raise ValueError('"body" must be a non-empty string')
    subject = row.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise ValueError('"subject" must be a string')
    annotations = row.get("annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(a, str) for a in annotations):
        raise ValueError('"annotations" must be a list of strings')
    references = tuple(a for a in annotations if a.strip())
    if not (subject and subject.strip()) and not references:
        raise ValueError('needs a "subject" or "annotations" to score against')
    return Mail(number, body, subject if subject and subject.strip() else None, references)


def score_subject(prediction: str, mail: Mail) -> dict[str, dict[str, float]]:
    """ROUGE F1 of one predicted subject: ``{"subject": {...}, "annotations": {...}}``,
    each present only when the mail has that reference."""
    scorer = _scorer()
    text = clean_prediction(prediction)
    out: dict[str, dict[str, float]] = {}
    if mail.subject is not None:
        scores = scorer.score(mail.subject, text)
        out["subject"] = {m: scores[m].fmeasure for m in METRICS}
    if mail.annotations:
        scores = scorer.score_multi(list(mail.annotations), text)
        out["annotations"] = {m: scores[m].fmeasure for m in METRICS}
    return out


def clean_prediction(text: str) -> str:
    """The answer without citation markers, a "Subject:" label, enclosing quotes and
    surrounding white space."""
    return subject_line(" ".join(_MARKER.sub("", text).split()))


def evaluate(
    mails: Sequence[Mail],
    settings: Settings,
    *,
    engine: str = "local",
    on_mail: Callable[[int, int], None] | None = None,
) -> SummaryReport:
    """Run the summarise skill (``style=subject``) on every mail and score each answer.

    A mail whose run fails is named in ``errors`` and left out of the means; ten failures
    in a row stop the run (``RuntimeError``): the model is down, not one mail odd.
    """
    name = resolve_engine(settings, engine)
    with eval_runner(settings) as runner:
        opened = runner.engine(name)
        report = SummaryReport(name, opened.model or None)
        in_a_row = 0
        for done, mail in enumerate(mails, start=1):
            started = time.perf_counter()
            try:
                result = runner.run(
                    USER,
                    "summarise",
                    {"text": mail.body, "style": "subject"},
                    engine=name,
                    retrieval=False,
                    record=False,
                )
            except (LLMError, LocalEngineError) as exc:
                if getattr(exc, "kind", "") in ("auth", "config"):
                    raise
                report.errors.append(f"line {mail.line}: {exc}")
                in_a_row += 1
                if in_a_row >= MAX_ERRORS_IN_A_ROW:
                    raise RuntimeError(
                        f"{in_a_row} mails failed in a row; last: {report.errors[-1]}"
                    ) from exc
            else:
                in_a_row = 0
                report.seconds.append(time.perf_counter() - started)
                report.model = report.model or result.model
                for kind, scores in score_subject(result.text, mail).items():
                    target = report.subject if kind == "subject" else report.annotations
                    for metric, value in scores.items():
                        target[metric].append(value)
            if on_mail is not None:
                on_mail(done, len(mails))
    return report


def _means(values: dict[str, list[float]]) -> dict[str, float] | None:
    if not values[METRICS[0]]:
        return None
    return {m: round(sum(v) / len(v), 4) for m, v in values.items()}


@functools.cache
def _scorer() -> Any:
    """One RougeScorer (Porter stemmer on) for the process: building it loads NLTK's
    stemmer, which costs more than scoring a mail."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
