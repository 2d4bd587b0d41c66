"""The template sandbox: every operation that could build a huge value or run for minutes is
priced before it runs, and a render has a deadline. Each attack below once took hundreds of
megabytes or minutes of CPU in the API process; each must now fail fast, naming the line,
without allocating."""

from __future__ import annotations

import gc
import re
import time
import tracemalloc

import pytest

from copilot.skills.templates import budget
from copilot.skills.templates.fence import unfence
from copilot.skills.templates.render import TemplateError, parse_template, render


def template(body: str, inputs: str = "") -> object:
    return parse_template(f"---\nname: t\n{inputs}---\n{body}\n")


def refused(
    body: str, inputs: dict | None = None, declared: str = "", *, within: float = 2.0
) -> TemplateError:
    """Render ``body`` and return the error, checking it came fast (within ``within`` s of
    the deadline) and without allocating."""
    # A collection due in the suite's big heap (3 GB by the end of `make test`) must not
    # land inside the timed part: once one added two seconds to a render of one second.
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError) as info:
            render(template(body, declared), inputs or {})  # type: ignore[arg-type]
        took = time.perf_counter() - started  # the render alone, not tracemalloc's stop
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert took < budget.MAX_RENDER_SECONDS + within  # tracemalloc makes a render ~5x slower
    assert peak < 64 * 2**20, f"{peak >> 20} MB allocated before refusing {body!r}"
    return info.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ '😀'|center(10**8) }}", "width 100,000,000 is over"),
        ("{{ 'a'.ljust(10**8) }}", "width 100,000,000 is over"),
        ("{{ 'a'.rjust(10**8) }}", "width 100,000,000 is over"),
        ("{{ 'a'.zfill(10**8) }}", "width 100,000,000 is over"),
        ("{{ '%0200000000d' % 1 }}", "'%' formatting: the width 200000000"),
        ("{{ '%.999999f' % 1.0 }}", "'%' would build"),
        ("{{ '%*d' % (10**8, 1) }}", "'\\*' widths"),
        ("{{ '{:>100000000}'.format('x') }}", "format\\(\\): the width or precision"),
        ("{{ '{:>{w}}'.format('x', w=10**8) }}", "format\\(\\): the width or precision"),
        ("{{ '%s'|format('x' * 99999) * 11 }}", "'\\*' would build 1,099,989 characters"),
        ("{{ ('a\\n' * 50000)|indent('x' * 1000) }}", "indent filter would build"),
        ("{{ ('a ' * 50000)|wordwrap(1) }}", "wordwrap\\(1\\) of 100,000 characters"),
        ("{{ 'x' * 10**9 }}", "'\\*' would build 1,000,000,000 characters"),
        ("{{ [1] * 10**9 }}", "list of 1,000,000,000 items"),
        ("{{ 9 ** 9999999 }}", "'\\*\\*' result too large"),
        ("{{ ('a' * 1000)|replace('a', 'b' * 10000) }}", "replace filter would build"),
        ("{{ ('a' * 1000).replace('a', 'b' * 10000) }}", "replace\\(\\) would build"),
        ("{{ ('x' * 10000).join(['a'] * 100000) }}", "join\\(\\) would build"),
        ("{{ (['x' * 10000] * 100000)|join }}", "join filter would build"),
        ("{{ ['x' * 100000] * 10 }}", "an output would build"),
        ("{{ [1]|batch(100000000, 'x')|list }}", "linecount 100,000,000 is over"),
        ("{{ [1]|slice(100000000)|list }}", "slices 100,000,000 is over"),
        ("{{ (1).to_bytes(10**9, 'big') }}", "int.to_bytes\\(\\) is not available"),
        ("{{ 'ab'.translate({97: 'x' * 10**6}) }}", "str.translate\\(\\) is not available"),
        ("{{ ('ab'|list * 10000)|sum(start=[]) }}", "adds numbers only"),
        ("{{ {'a': 'x'}|tojson(indent=100000) }}", "indent is at most"),
        (  # doubling a string: each step is under the per-value cap until it is not
            "{% set ns = namespace(a='x' * 1000) %}{% for i in range(30) %}"
            "{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
            "'~' would build 1,024,000 characters",
        ),
    ],
)
def test_oversized_values_are_refused_before_they_are_built(body: str, message: str) -> None:
    error = refused(body)
    assert "blocked by the sandbox" in str(error)
    assert error.line == 4
    assert re.search(message, str(error)), str(error)


@pytest.mark.parametrize(
    "body",
    [
        # the issue's loop: 100,000 iterations over a replace ran 150 s
        "{% for i in range(100000) %}{{ ('x' * 10000).replace('x', 'yy')|length }}{% endfor %}",
        # a `|list|sort` of a huge range in a loop kept a core busy for minutes
        "{% for i in range(100000) %}{% set y = range(100000)|list|sort %}{% endfor %}",
        # captured output and literal text inside loops cost memory too
        "{% set x %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}",
        "{% set x %}{% for i in range(100000) %}" + "z" * 10000 + "{% endfor %}{% endset %}",
        "{% for i in range(200) %}{{ ('a' * 100000)[::1]|length }}{% endfor %}",
    ],
)
def test_a_render_has_a_total_allowance(body: str) -> None:
    # (A slow machine, or tracemalloc here, may reach the deadline first: also a refusal.)
    assert re.search(r"built more than 8,000,000 characters|longer than", str(refused(body)))


def test_a_render_has_a_deadline() -> None:
    """Reading a big input again and again allocates nothing, so only the clock stops it.

    Each search of 'ab' in a megabyte of 'a' takes ~2.6 ms here (a one-byte needle is a
    SIMD memchr, ~13 µs, and a fast CI machine finished all 100,000 inside the deadline),
    so the loop would run for minutes on any machine."""
    error = refused(
        "{% for i in range(100000) %}{% if 'ab' in text %}x{% endif %}{% endfor %}",
        {"text": "a" * 999_000},
        "inputs:\n  text: {type: string}\n",
        within=0.5,  # stopped by the clock, at the first check past the deadline
    )
    assert f"longer than {budget.MAX_RENDER_SECONDS:g} s" in str(error)


def test_loops_share_one_iteration_budget() -> None:
    body = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert "loops ran more than 100000 iterations" in str(refused(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{% for x in [[1, [2]]] recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
        ("{{ 'x'|pprint }}", "'pprint' filter is not available"),
        ("{% filter urlize %}x{% endfilter %}", "'urlize' filter is not available"),
    ],
)
def test_unbounded_constructs_are_refused_when_the_template_is_saved(
    body: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message) as info:
        template(body)
    assert info.value.line == 4


def test_ordinary_templates_still_render() -> None:
    """The allowance is far above what a prompt needs: everyday filters and methods work."""
    body = (
        "{{ name|center(9) }}|{{ '%05.1f' % 3.14159 }}|{{ '{:>6}'.format(name) }}|"
        "{{ items|join(', ') }}|{{ items|map('upper')|list|length }}|{{ text|wordwrap(20) }}|"
        "{{ text.replace('quick', 'slow')|truncate(12) }}|{{ (items * 2)|unique|sort|first }}|"
        "{{ {'a': 1}|tojson }}|{{ name.ljust(5, '.') }}|{{ 'x' ~ 2 ~ 'y' }}|{{ 2 ** 10 }}|"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %}|{{ data.get('k', 'none') }}"
    )
    declared = (
        "inputs:\n  name: {type: string}\n  items: {type: array}\n  text: {type: string}\n"
        "  data: {type: object}\n"
    )
    t = template(body, declared)
    inputs = {"name": "Ann", "items": ["b", "a"], "text": "The quick brown fox", "data": {}}
    started = time.perf_counter()
    [message] = render(t, inputs)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 0.5
    assert unfence(message.content) == (
        '   Ann   |003.1|   Ann|b, a|2|The quick brown fox|The slow...|a|{"a": 1}|Ann..|x2y|'
        "1024|123|none"
    )
