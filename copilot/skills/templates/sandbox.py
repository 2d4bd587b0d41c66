"""The Jinja sandbox that skill templates render in: bounded in time and memory, with every
operation priced before it runs.

Jinja's ``SandboxedEnvironment`` stops attribute escapes, not resource abuse: one line such
as ``{{ '😀'|center(10**8) }}``, ``{{ '%0200000000d' % 1 }}`` or a ``replace`` inside a loop
builds hundreds of megabytes or keeps a core busy for minutes, and an output cap checked
after each piece is built comes too late. So, for one render (see ``budget``):

- every operation that can build something larger than its inputs (``center``, ``ljust``,
  ``rjust``, ``zfill``, ``format``/``str.format``, ``%``, ``indent``, ``wordwrap``, ``*``,
  ``**``, ``+``, ``~``, ``replace``, ``join``, ``list``/``sort``/``batch``/``slice``, a
  slice, an output …) has its size computed from its arguments first (``costs``), and is
  refused when one value would exceed ``MAX_VALUE_CHARS`` or the render's running total
  ``MAX_WORK``: the memory a render can hold is bounded, not only each value;
- only an allow-list of methods of ``str``, ``list``, ``dict`` … is callable (``encode``,
  ``translate``, ``int.to_bytes`` are not), filters without a bound (``pprint``, ``urlize``)
  are gone, and recursive loops are refused when the template is checked;
- a wall-clock deadline (``MAX_RENDER_SECONDS``) is checked at every loop iteration, call,
  operator, attribute and output, and all loops share one iteration budget.

Why in-process and not a worker process with an address-space limit: a template renders on
every run (once per row when a workbook is scored by the model); a built-in renders in
~0.1 ms once compiled, and a round trip to a worker costs milliseconds (a fresh one, a
second). Pricing each operation also gives the author an error naming the operation and
the line, where a killed worker can only say "out of memory".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from copilot.skills.templates import fence
from copilot.skills.templates.budget import (
    ITEM_UNITS,
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    Budget,
    count,
    current,
    items,
    rendering,
    size_of,
)
from copilot.skills.templates.costs import (
    FILTERS,
    GUARDED,
    LIST_METHODS,
    Cost,
    FilterCost,
    Shape,
    binop_size,
    methods_of,
    spec_size,
)

__all__ = [
    "ENV",
    "MAX_LOOP_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "Budget",
    "helpers",
    "rendering",
    "rewrite",
]

OUT, LIT, CONCAT, LOOP = "__out__", "__lit__", "__concat__", "__loop_budget__"


def _guarded(obj: Any) -> bool:
    """A built-in value whose methods are allow-listed and priced (see ``costs.METHODS``)."""
    return isinstance(obj, GUARDED)


class _Method:
    """A bound method of a built-in value, priced on each call."""

    __slots__ = ("cost", "func", "name", "owner")

    def __init__(self, func: Callable[..., Any], owner: Any, name: str, cost: Cost) -> None:
        self.func, self.owner, self.name, self.cost = func, owner, name, cost

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        if self.name == "join" and isinstance(self.owner, str) and args:  # walk the items first
            parts = items(args[0], "join()")
            separators = len(self.owner) * max(count(parts) - 1, 0)
            budget.charge(sum(size_of(x) for x in parts) + separators, "join()")
            return self.func(parts)
        units = self.cost(self.owner, args, kwargs)
        budget.charge(units, f"{self.name}()", one_value=self.name not in LIST_METHODS)
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<method {self.name}>"


# --- filters -----------------------------------------------------------------------------


def _guard_filter(name: str, func: Callable[..., Any], cost: FilterCost, shape: Shape) -> Any:
    """``func`` (a Jinja filter) priced against the render's budget before it runs."""
    kind = _PassArg.from_obj(func)
    what = f"the {name} filter"

    @pass_context  # also stops Jinja from running the filter at compile time
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if shape != "text":
            walked = items(value, what)
            value = value if isinstance(value, str | dict) else walked
        units = cost(context.environment, value, args, kwargs)
        budget.charge(units, what, one_value=shape != "list")
        if kind is _PassArg.context:
            return func(context, value, *args, **kwargs)
        if kind is _PassArg.eval_context:
            return func(context.eval_ctx, value, *args, **kwargs)
        if kind is _PassArg.environment:
            return func(context.environment, value, *args, **kwargs)
        return func(value, *args, **kwargs)

    guarded.__name__ = f"guarded_{name}"
    return guarded


# --- the environment --------------------------------------------------------------------


class _Formatter(SandboxedFormatter):
    """``str.format`` with each field priced before it is formatted."""

    factor = 1

    def format_field(self, value: Any, format_spec: str) -> Any:
        current().charge(self.factor * spec_size(format_spec, value, "format()"), "format()")
        return super().format_field(value, format_spec)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):
            current().charge(10 * size_of(value) + 2, f"format() with !{conversion}")
        return super().convert_field(value, conversion)


class _EscapeFormatter(_Formatter, SandboxedEscapeFormatter):
    factor = 6


class Environment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every operation priced against the render's budget."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current().charge(binop_size(operator, left, right), f"'{operator}'")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        current().tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if not _guarded(obj):
            current().tick()
            return super().getattr(obj, attribute)
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        return self._method(obj, attribute, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().tick()
        if isinstance(argument, slice) and isinstance(obj, str | list | tuple):
            taken = len(range(*argument.indices(len(obj))))
            if isinstance(obj, str):
                current().charge(taken, "a slice")
            else:
                current().charge(taken * ITEM_UNITS, "a slice", one_value=False)
        if not _guarded(obj) or not isinstance(argument, str):
            return super().getitem(obj, argument)
        try:
            return obj[argument]
        except (TypeError, LookupError):
            pass
        try:
            value = getattr(obj, argument)
        except AttributeError:
            return self.undefined(obj=obj, name=argument)
        return self._method(obj, argument, value)

    def _method(self, obj: Any, name: str, value: Any) -> Any:
        if name.startswith("_"):
            return self.unsafe_undefined(obj, name)
        if not callable(value):
            return value
        if isinstance(obj, str) and name in ("format", "format_map"):
            return self.wrap_str_format(value)
        methods = methods_of(obj)
        if name in methods:
            return _Method(value, obj, name, methods[name])
        if isinstance(obj, dict) and name in obj:  # {"update": …}.update is the value
            return obj[name]
        return self.undefined(
            f"{type(obj).__name__}.{name}() is not available in skill templates",
            name=name,
            obj=obj,
            exc=SecurityError,
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's own ``str.format`` sandboxing, with the priced formatters."""
        if getattr(value, "__name__", None) not in ("format", "format_map"):
            return None
        owner = getattr(value, "__self__", None)
        if not isinstance(owner, str):
            return None
        is_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter
        if isinstance(owner, Markup):
            formatter = _EscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _Formatter(self)
        kind = type(owner)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            current().tick()
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return kind(formatter.vformat(owner, (), args[0]))
            return kind(formatter.vformat(owner, args, kwargs))

        return wrapper


_ENV = Environment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,  # a `{% if %}` line leaves no blank line behind
    lstrip_blocks=True,
    optimized=False,  # the optimizer would run filters on constants at compile time, unpriced
)
del _ENV.globals["lipsum"]  # random filler text, and `lipsum(10**6)` is a cheap CPU burn
_ENV.filters = {
    name: _guard_filter(name, func, *FILTERS[name])
    for name, func in _ENV.filters.items()
    if name in FILTERS
}
ENV = _ENV


# --- the helpers a rewritten template calls ---------------------------------------------


def _out(value: Any, name: str) -> str:
    """A ``{{ … }}`` value as prompt text: priced, and fenced unless the template wrote it."""
    budget = current()
    if isinstance(value, fence.Fenced):
        budget.charge(len(value), "an output")
        return str.__str__(value)
    if value is None or isinstance(value, bool | int | float):
        budget.tick()
        return str(value)
    budget.charge(size_of(value), "an output")
    text = value if type(value) is str else str(value)
    if not text or text in budget.trusted:
        return text
    budget.fenced = True
    return fence.wrap(fence.neutralise(text), budget.nonce, name)


def _lit(text: str) -> str:
    current().charge(len(text), "template text")
    return text


def _concat(*values: Any) -> str:
    current().charge(sum(size_of(v) for v in values), "'~'")
    if any(isinstance(v, Markup) for v in values):
        return markup_join(values)
    return "".join(v if type(v) is str else str(v) for v in values)


def _loop(iterable: Any) -> Any:
    budget = current()
    for item in iterable:
        budget.loops -= 1
        if budget.loops < 0:
            raise SecurityError(f"loops ran more than {MAX_LOOP_ITERATIONS} iterations")
        budget.tick()
        yield item


def helpers() -> dict[str, Any]:
    """The functions a rewritten template calls, as render variables."""
    return {OUT: _out, LIT: _lit, CONCAT: _concat, LOOP: _loop}


def rewrite(ast: nodes.Template) -> nodes.Template:
    """Route every output, ``~`` and loop of a parsed template through the helpers.

    Each ``{{ … }}`` becomes ``__out__(…)`` (priced, fenced), literal text ``__lit__(…)``
    (priced: literal text inside loops and captured blocks costs memory too), each ``~``
    ``__concat__(…)``, and each ``for`` iterable is counted against the loop budget.
    """
    rewritten = cast(nodes.Template, _Rewriter().visit(ast))  # jinja2's visit() is untyped
    rewritten.set_environment(_ENV)
    return rewritten


class _Rewriter(NodeTransformer):
    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        concat = cast(nodes.Concat, self.generic_visit(node))
        return _call(CONCAT, list(concat.nodes), concat.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        loop = cast(nodes.For, self.generic_visit(node))
        loop.iter = _call(LOOP, [cast(nodes.Expr, loop.iter)], loop.lineno)
        return loop

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        output = cast(nodes.Output, self.generic_visit(node))
        output.nodes = [_wrap_output(child) for child in output.nodes]
        return output


def _call(helper: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name(helper, "load"), args, [], None, None, lineno=lineno)


def _wrap_output(child: nodes.Expr) -> nodes.Expr:
    lineno = child.lineno or 1
    if isinstance(child, nodes.TemplateData):
        return _call(LIT, [nodes.Const(child.data, lineno=lineno)], lineno)
    return _call(OUT, [child, nodes.Const(_name_of(child), lineno=lineno)], lineno)


def _name_of(node: nodes.Expr) -> str:
    """``message`` or ``example.output``: what a fence says it holds, when simple."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return f"{node.node.name}.{node.attr}"
    return ""
