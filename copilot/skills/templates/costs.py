"""What each operation a skill template can run will build, computed from its arguments.

Every function here returns an upper bound, in characters (a list slot counts
``ITEM_UNITS``), of what the operation would allocate, or raises ``SecurityError`` when an
argument alone is out of bounds (a width of 10**8, a batch of a million lines). They never
build the result: that is the point. ``METHODS`` lists the methods of built-in values a
template may call and ``FILTERS`` the filters it may use; anything else is not available.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from jinja2 import Environment
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter

from copilot.skills.templates.budget import (
    ITEM_UNITS,
    MAX_ITEMS,
    big_number,
    count,
    size_of,
)

MAX_INT_BITS = 16_384  # ~4,900 digits: Python itself refuses to print longer integers
MAX_WRAP_WORK = 2_000_000_000  # textwrap breaks a long word in time ~ length² / width
MAX_JSON_INDENT = 4

Args = tuple[Any, ...]  # a call's positional arguments, as the sandbox receives them
Kwargs = dict[str, Any]  # and its keyword arguments
Cost = Callable[[Any, Args, Kwargs], int]  # (the value or the method's owner, args, kwargs)
FilterCost = Callable[[Environment, Any, Args, Kwargs], int]


def _arg(args: Args, kwargs: Kwargs, pos: int, name: str, default: Any) -> Any:
    return args[pos] if len(args) > pos else kwargs.get(name, default)


_SPEC_NUMBER = re.compile(r"\d+")


def spec_size(spec: str, value: Any, what: str) -> int:
    """Upper bound of one formatted field: widths and precisions from the spec, plus the
    value (a float's fixed-point form adds up to ~310 digits)."""
    widest = 0
    for digits in _SPEC_NUMBER.findall(spec):
        if len(digits) > 7:
            raise SecurityError(f"{what}: the width or precision {digits[:12]}… is too large")
        widest = max(widest, big_number(int(digits), f"{what}: the width or precision"))
    return widest + 2 * size_of(value) + 400


_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.?)", re.S)


def printf_size(fmt: str, values: Any) -> int:
    """Upper bound of ``fmt % values`` (printf-style), from the conversions in ``fmt``."""
    seq = list(values) if isinstance(values, tuple) else None
    total, i = len(fmt), 0
    for match in _PRINTF.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        if "*" in (width, precision):
            raise SecurityError("'*' widths in '%' formatting are not available in templates")
        if key is not None and isinstance(values, dict):
            arg = values.get(key, "")
        elif seq is not None:
            arg = seq[i] if i < len(seq) else ""
            i += 1
        else:
            arg = values
        for number in (width, precision):
            if number and len(number) > 7:
                raise SecurityError(f"'%' formatting: the width {number[:12]}… is too large")
        total += int(width or 0) + int(precision or 0) + 400
        total += size_of(arg) * (10 if conversion in ("r", "a") else 1)
    return total


def binop_size(operator: str, left: Any, right: Any) -> int:
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int):
                built = len(seq) * max(n, 0)
                if isinstance(seq, str):
                    return built
                if built > MAX_ITEMS:
                    raise SecurityError(f"'*' would build a list of {built:,} items")
                return built * ITEM_UNITS
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError("'*' result too large")
        return 0
    if operator == "**":
        ints = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
        if ints and abs(left).bit_length() * right > MAX_INT_BITS:
            raise SecurityError("'**' result too large")
        return 0
    if operator == "+":
        if isinstance(left, str) and isinstance(right, str):
            return len(left) + len(right)
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            built = len(left) + len(right)
            if built > MAX_ITEMS:
                raise SecurityError(f"'+' would build a list of {built:,} items")
            return built * ITEM_UNITS
        return 0
    if operator == "%" and isinstance(left, str):
        return printf_size(left, right)
    return 0


def _width_cost(s: str, a: Args, k: Kwargs) -> int:
    return max(len(s), big_number(_arg(a, k, 0, "width", 0), "the width"))


def _replace_cost(s: str, a: Args, k: Kwargs) -> int:
    old, new, count = _arg(a, k, 0, "old", ""), _arg(a, k, 1, "new", ""), _arg(a, k, 2, "count", -1)
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    found = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(s) + found * max(len(new) - len(old), 0)


_LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _split_cost(s: str, a: Args, k: Kwargs) -> int:
    sep = _arg(a, k, 0, "sep", None)
    if isinstance(sep, str) and sep:
        pieces = s.count(sep) + 1
    elif sep is None and not a and not k:  # whitespace split, or splitlines
        pieces = sum(s.count(c) for c in (*_LINE_BREAKS, " ", "\t")) + 1
    else:
        pieces = len(s) + 1
    if pieces > MAX_ITEMS:
        raise SecurityError(f"splitting would build a list of {pieces:,} items")
    return len(s) + pieces * 6 * ITEM_UNITS  # a small str object is ~50 bytes


def _expandtabs_cost(s: str, a: Args, k: Kwargs) -> int:
    size = big_number(_arg(a, k, 0, "tabsize", 8), "the tab size")
    return len(s) + s.count("\t") * size


def _free(value: Any, a: Args, k: Kwargs) -> int:
    return 0


def _copy(value: Any, a: Args, k: Kwargs) -> int:
    return count(value) * ITEM_UNITS


def _linear(factor: int) -> Cost:
    return lambda value, a, k: factor * size_of(value)


_READ_ONLY_STR_METHODS = (
    "count", "find", "rfind", "index", "rindex", "startswith", "endswith", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable",
    "isspace", "istitle", "isupper",
)  # fmt: skip
_STR_METHODS: dict[str, Cost] = {
    **dict.fromkeys(("center", "ljust", "rjust", "zfill"), _width_cost),
    "expandtabs": _expandtabs_cost,
    "replace": _replace_cost,
    "join": _free,  # priced on its items when called
    **dict.fromkeys(("split", "rsplit", "splitlines"), _split_cost),
    **dict.fromkeys(("lower", "upper", "casefold", "title", "swapcase", "capitalize"), _linear(3)),
    **dict.fromkeys(
        ("strip", "lstrip", "rstrip", "removeprefix", "removesuffix", "partition", "rpartition"),
        _linear(1),
    ),
    **dict.fromkeys(_READ_ONLY_STR_METHODS, _free),
}
# Methods that build a list (of at most MAX_ITEMS pieces): only the render's total applies.
LIST_METHODS = frozenset({"split", "rsplit", "splitlines", "partition", "rpartition", "copy"})
METHODS: dict[type, dict[str, Cost]] = {
    str: _STR_METHODS,
    list: {"count": _free, "index": _free, "copy": _copy},
    tuple: {"count": _free, "index": _free},
    dict: {"get": _free, "keys": _free, "values": _free, "items": _free, "copy": _copy},
    int: {"bit_length": _free, "is_integer": _free},
    float: {"is_integer": _free},
    range: {"count": _free, "index": _free},
}
GUARDED = tuple(METHODS)


def methods_of(obj: Any) -> dict[str, Cost]:
    """The methods of a built-in value a template may call, with their costs."""
    for kind, methods in METHODS.items():
        if isinstance(obj, kind):
            return methods
    return {}


def _on_value(cost: Cost) -> FilterCost:
    return lambda env, value, a, k: cost(value, a, k)


def _center_cost(value: Any, a: Args, k: Kwargs) -> int:
    return max(size_of(value), big_number(_arg(a, k, 0, "width", 80), "the width"))


def _indent_cost(value: Any, a: Args, k: Kwargs) -> int:
    width = _arg(a, k, 0, "width", 4)
    step = len(width) if isinstance(width, str) else big_number(width, "the indent width")
    text = str(value) if isinstance(value, str) else ""
    lines = (text.count("\n") + 1) if text else size_of(value) + 1
    return size_of(value) + (lines + 1) * step


def _wordwrap_cost(value: Any, a: Args, k: Kwargs) -> int:
    text = value if isinstance(value, str) else ""
    width = _arg(a, k, 0, "width", 79)
    wrapstring = _arg(a, k, 2, "wrapstring", None) or "\n"
    if not isinstance(width, int) or width < 1:
        return size_of(value)
    if len(text) * len(text) // width > MAX_WRAP_WORK:
        raise SecurityError(f"wordwrap({width}) of {len(text):,} characters would take too long")
    lines = 2 * len(text) // width + len(text.splitlines()) + 2
    return len(text) + lines * size_of(wrapstring)


def _replace_filter_cost(value: Any, a: Args, k: Kwargs) -> int:
    old, new = str(_arg(a, k, 0, "old", "")), str(_arg(a, k, 1, "new", ""))
    limit = _arg(a, k, 2, "count", None)
    return _replace_cost(str(value), (old, new, -1 if limit is None else limit), {})


def _format_cost(value: Any, a: Args, k: Kwargs) -> int:
    return printf_size(str(value), k or a)


def _truncate_cost(value: Any, a: Args, k: Kwargs) -> int:
    end = _arg(a, k, 2, "end", "...")
    return size_of(value) + size_of(end)


def _json_cost(value: Any, a: Args, k: Kwargs) -> int:
    indent = _arg(a, k, 0, "indent", None)
    if indent is not None and (not isinstance(indent, int) or indent > MAX_JSON_INDENT):
        raise SecurityError(f"tojson indent is at most {MAX_JSON_INDENT}")
    depth = _depth(value)
    return size_of(value) * 2 * (1 + (indent or 0) * min(depth, 100)) + 2


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list | tuple) and d < 1000:
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v)
    return deepest


def _attributes(env: Environment, value: Any, attribute: Any) -> list[Any]:
    values = list(value)
    if attribute is None:
        return values
    getter = make_attrgetter(env, attribute)
    return [getter(x) for x in values]


def _join_cost(env: Environment, value: Any, a: Args, k: Kwargs) -> int:
    sep, attribute = _arg(a, k, 0, "d", ""), _arg(a, k, 1, "attribute", None)
    values = _attributes(env, value, attribute)
    return sum(size_of(x) for x in values) + size_of(sep) * max(len(values) - 1, 0)


def _items_cost(extra: str | None = None, weight: int = 1) -> FilterCost:
    """A new list of the items (``weight`` more when a Python key runs per item: sorting),
    plus, for ``batch`` and ``slice``, the lists their count argument asks for."""

    def cost(env: Environment, value: Any, a: Args, k: Kwargs) -> int:
        added = 0
        if extra is not None:
            added = big_number(_arg(a, k, 0, extra, 1), f"the {extra}", MAX_ITEMS)
        return (count(value) * weight + added) * ITEM_UNITS

    return cost


def _sum_cost(env: Environment, value: Any, a: Args, k: Kwargs) -> int:
    """Numbers only: summing lists copies the running total each time (quadratic)."""
    attribute, start = _arg(a, k, 0, "attribute", None), _arg(a, k, 1, "start", 0)
    if not all(isinstance(x, int | float) for x in [start, *_attributes(env, value, attribute)]):
        raise SecurityError("the sum filter adds numbers only")
    return 0


# Filter name → (cost, shape); filters not listed here are not available.
_UNPRICED_FILTERS = (
    "abs", "attr", "d", "default", "filesizeformat", "first", "float", "int", "items", "last",
    "length", "count", "random", "round", "wordcount", "map", "select", "reject", "selectattr",
    "rejectattr", "min", "max",
)  # fmt: skip
# How a filter's cost is charged: "text" builds one string (the per-value cap applies),
# "walk-text" first walks its items (a generator becomes a list, at most MAX_ITEMS),
# "list" walks its items and builds lists of them (MAX_ITEMS already bounds each list).
Shape = Literal["text", "walk-text", "list"]
FILTERS: dict[str, tuple[FilterCost, Shape]] = {
    **dict.fromkeys(_UNPRICED_FILTERS, (_on_value(_free), "text")),
    **dict.fromkeys(("string", "safe", "trim", "striptags"), (_on_value(_linear(1)), "text")),
    **dict.fromkeys(("lower", "upper", "title", "capitalize"), (_on_value(_linear(3)), "text")),
    **dict.fromkeys(("escape", "e", "forceescape", "xmlattr"), (_on_value(_linear(6)), "text")),
    "urlencode": (_on_value(_linear(12)), "text"),
    "center": (_on_value(_center_cost), "text"),
    "indent": (_on_value(_indent_cost), "text"),
    "wordwrap": (_on_value(_wordwrap_cost), "text"),
    "replace": (_on_value(_replace_filter_cost), "text"),
    "format": (_on_value(_format_cost), "text"),
    "truncate": (_on_value(_truncate_cost), "text"),
    "tojson": (_on_value(_json_cost), "text"),
    "join": (_join_cost, "walk-text"),
    "sum": (_sum_cost, "walk-text"),
    **dict.fromkeys(("list", "reverse"), (_items_cost(), "list")),
    **dict.fromkeys(("sort", "unique", "dictsort", "groupby"), (_items_cost(weight=4), "list")),
    "batch": (_items_cost("linecount"), "list"),
    "slice": (_items_cost("slices"), "list"),
}
