"""What one render of a skill template may spend, and what values cost.

A render gets a ``Budget``: a wall-clock deadline, a count of loop iterations, and a total
of characters (and list slots) it may build. The sandbox prices each operation with
``size_of`` and the costs in ``costs`` and charges the budget *before* the operation runs,
so a refused operation never allocates. The budget lives in a context variable for the
length of the render: Jinja hands filters and methods no handle of ours, and code that
runs outside a render (Jinja folding a constant at compile time) finds none and is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined

from copilot.skills.templates import fence

MAX_OUTPUT_CHARS = 1_000_000  # the rendered prompt
MAX_VALUE_CHARS = MAX_OUTPUT_CHARS  # one value: nothing larger than the prompt is useful
MAX_ITEMS = 100_000  # items in one list a filter builds (Jinja's own range() cap)
MAX_WORK = 8 * MAX_OUTPUT_CHARS  # characters (and list slots) built in one render
MAX_LOOP_ITERATIONS = 100_000  # per render, over all loops together
MAX_RENDER_SECONDS = 2.0
ITEM_UNITS = 8  # what one list slot costs against MAX_WORK, in characters


@dataclass
class Budget:
    """What one render may still spend, the fence name it uses and the text it trusts."""

    nonce: str = field(default_factory=fence.process_nonce)
    trusted: frozenset[str] = frozenset()
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    work: int = MAX_WORK
    loops: int = MAX_LOOP_ITERATIONS
    fenced: bool = False  # whether any fence element was written

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the render took longer than {MAX_RENDER_SECONDS:g} s")

    def charge(self, units: int, what: str, *, one_value: bool = True) -> None:
        """Refuse ``what`` before it builds ``units`` characters, if that is too much.

        ``one_value``: the units are one string, held to ``MAX_VALUE_CHARS``; lists (whose
        length ``MAX_ITEMS`` already bounds) only draw on the render's total.
        """
        self.tick()
        if one_value and units > MAX_VALUE_CHARS:
            raise SecurityError(
                f"{what} would build {units:,} characters (limit {MAX_VALUE_CHARS:,})"
            )
        self.work -= units
        if self.work < 0:
            raise SecurityError(
                f"the render built more than {MAX_WORK:,} characters of values ({what})"
            )


_CURRENT: ContextVar[Budget | None] = ContextVar("copilot_template_budget", default=None)


def current() -> Budget:
    budget = _CURRENT.get()
    if budget is None:  # e.g. Jinja folding a constant at compile time: never allowed
        raise SecurityError("template code can only run inside a render")
    return budget


@contextmanager
def rendering(budget: Budget) -> Iterator[Budget]:
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def size_of(value: Any, limit: int = MAX_WORK + 1) -> int:
    """An upper bound of ``len(str(value))``, counted without building it (stops at ``limit``).

    Strings inside containers count ten times: ``repr`` may write ``'\\U000e0001'`` for one
    character. Containers are walked, so a list holding one large string a thousand times
    costs a thousand times that string, as its text would.
    """
    if isinstance(value, str):
        return len(value)
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += 10 * len(v) + 2
        elif v is None or isinstance(v, bool):
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, dict):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            total += 2 + 2 * len(v)
            stack.extend(v)
        else:  # Jinja objects, ranges, generators: their text is a short repr
            total += 100
        if total > limit:
            return total
    return total


def items(value: Any, what: str) -> Any:
    """``value`` ready for a filter that walks its items: a list when it was a generator.

    Refused past ``MAX_ITEMS`` items, counting as it goes, so a lazy chain cannot hand a
    filter an unbounded stream.
    """
    if isinstance(value, Undefined):
        return value
    if isinstance(value, str | list | tuple | dict | range | set | frozenset):
        if len(value) > MAX_ITEMS:
            raise SecurityError(f"{what} of {len(value):,} items (limit {MAX_ITEMS:,})")
        return value
    budget = current()
    out = []
    for i, item in enumerate(value):
        if i >= MAX_ITEMS:
            raise SecurityError(f"{what} of more than {MAX_ITEMS:,} items")
        if not i & 1023:
            budget.tick()
        out.append(item)
    return out


def count(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def big_number(number: Any, what: str, limit: int = MAX_VALUE_CHARS) -> int:
    """A width, count or precision argument, refused above ``limit``."""
    if isinstance(number, bool) or not isinstance(number, int):
        return 0  # the call itself will raise TypeError
    if number > limit:
        raise SecurityError(f"{what} {number:,} is over the {limit:,} limit")
    return max(number, 0)
