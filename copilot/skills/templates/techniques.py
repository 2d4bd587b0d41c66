"""Prompting techniques a template switches on: step-by-step reasoning, self-ask, tree of
thoughts. Each is instructions plus, for the multi-call ones, a small driver.

Why they live here and not in each template: a user who writes a personal skill gets the
techniques by setting a flag, and the wording (which matters) is kept in one place.

- Chain of thought (Wei et al. 2022): the model reasons first, then writes a marked final
  answer; only the final answer is shown and stored as the output.
- Self-ask (Press et al. 2022): the model lists the sub-questions it needs answered; each is
  searched in the user's index, and the final answer sees those sources too.
- Tree of thoughts (Yao et al. 2023), in its simplest useful form for office text: several
  candidate answers are written independently, a judge call scores them against the
  instructions and sources, and the best is kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from copilot.llm.types import Message

FINAL_MARKER = "Final answer:"
REASONING_INSTRUCTION = (
    "Think the task through step by step before answering: write your reasoning first, then "
    f"a line starting with '{FINAL_MARKER}' followed by the answer the user will see. Only "
    "the text after that marker is shown to the user, so it must be complete on its own."
)
SELF_ASK_INSTRUCTION = (
    "Before answering, list the sub-questions whose answers you would need to look up in the "
    "user's documents and mail to answer well. Reply with JSON only: "
    '{"questions": ["...", "..."]}, at most 3 short, self-contained search questions. '
    'Reply {"questions": []} if none are needed.'
)
SELF_ASK_SCHEMA = {
    "type": "object",
    "required": ["questions"],
    "properties": {"questions": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
}
JUDGE_SCHEMA = {
    "type": "object",
    "required": ["best", "scores"],
    "properties": {
        "best": {"type": "integer", "minimum": 1},
        "scores": {"type": "array", "items": {"type": "number"}},
        "reason": {"type": "string"},
    },
}
MAX_SUB_QUESTIONS = 3
TREE_CANDIDATES = 3


def with_instruction(messages: Sequence[Message], instruction: str) -> list[Message]:
    """The messages with ``instruction`` appended to the system message (or a new one)."""
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = replace(out[0], content=f"{out[0].content}\n\n{instruction}")
    else:
        out.insert(0, Message("system", instruction))
    return out


def final_answer(text: str) -> str:
    """The part of a step-by-step reply after the last final-answer marker.

    A model that forgot the marker gets its whole reply shown: hiding everything would
    be worse than showing the reasoning.
    """
    matches = list(re.finditer(r"(?im)^\W*final answer\W*:", text))
    return text[matches[-1].end() :].strip() if matches else text.strip()


class FinalAnswerStream:
    """Feeds streamed deltas through, but only those after the final-answer marker.

    The marker can be split across deltas, so text is held back until it is certain the
    held part is not the start of a marker.
    """

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.buffer = ""
        self.open = False

    def feed(self, delta: str) -> None:
        if self.open:
            self.emit(delta)
            return
        self.buffer += delta
        match = re.search(r"(?im)^\W*final answer\W*:[ \t]*", self.buffer)
        if match:
            self.open = True
            rest = self.buffer[match.end() :]
            self.buffer = ""
            if rest:
                self.emit(rest)


@dataclass(frozen=True)
class Judgement:
    best: int  # index into the candidates
    scores: list[float]
    reason: str


def judge_messages(messages: Sequence[Message], candidates: Sequence[str]) -> list[Message]:
    """A judging prompt: the original task (system + user turns as context) and the
    candidates, fenced as data, to be scored against the task's own instructions."""
    task = "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)
    blocks = "\n".join(
        f'<candidate id="{i}">\n{c}\n</candidate>' for i, c in enumerate(candidates, 1)
    )
    return [
        Message(
            "system",
            "You judge candidate answers to a task. Score each from 0 to 10 for how well it "
            "follows the task's instructions, uses only facts from the task's sources, cites "
            "them correctly and is clear. Reply with JSON only: "
            '{"scores": [..], "best": <candidate id>, "reason": "<one sentence>"}.',
        ),
        Message("user", f"<task>\n{task}\n</task>\n\n{blocks}"),
    ]


def parse_judgement(data: object, n: int) -> Judgement:
    """Read the judge's JSON; a judge that names no valid candidate keeps the first."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = {}
    data = data if isinstance(data, dict) else {}
    scores = [float(s) for s in data.get("scores", []) if isinstance(s, int | float)][:n]
    best = data.get("best")
    if not isinstance(best, int) or not 1 <= best <= n:
        best = 1 + max(range(len(scores)), key=scores.__getitem__) if scores else 1
    return Judgement(best=best - 1, scores=scores, reason=str(data.get("reason", ""))[:500])


def sub_questions(data: object) -> list[str]:
    """The self-ask step's sub-questions, cleaned and capped."""
    items = data.get("questions", []) if isinstance(data, dict) else []
    out = []
    for q in items:
        if isinstance(q, str) and q.strip() and q.strip() not in out:
            out.append(" ".join(q.split())[:300])
    return out[:MAX_SUB_QUESTIONS]
