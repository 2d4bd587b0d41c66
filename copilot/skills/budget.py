"""How many prompt tokens a run may use: the model's window, and on a slow server, time.

On a cloud model the window is the limit. On a CPU the time to the first token is: a
small model reads 40-80 prompt tokens a second, so a prompt packed to an 8,192-token window
keeps a user waiting two minutes before the first word (measured: a 1,900-token prompt took
27 s to the first token, 600 tokens 10 s). So the prompt is also held to what the server
reads in ``COPILOT_LLM_FIRST_TOKEN_S`` at its prompt rate (measured on real calls, or
``COPILOT_LLM_PROMPT_RATE``). The skill's fixed prefix (its system message: persona,
instructions, fixed examples) is the same on every call and comes back from the server's
prompt cache, so it costs no reading time and is added on top.
"""

from __future__ import annotations

from typing import Any

from copilot.config import Settings
from copilot.llm.tokens import count_tokens
from copilot.skills.templates.models import SkillTemplate
from copilot.skills.templates.render import TemplateError, render

# Time bounds the sources, never below this: a run whose input alone takes the time budget
# still gets some sources (waiting longer beats an answer from nothing). The window is the
# hard limit.
MIN_TIME_SOURCES = 300
_EMPTY: dict[str, Any] = {"string": "", "number": 0, "boolean": False, "array": [], "object": {}}


def prompt_budget(
    window: int,
    reserve: int,
    *,
    prompt_rate: float | None = None,
    first_token_s: float | None = None,
    cached_tokens: int = 0,
    fixed_tokens: int = 0,
) -> int:
    """Tokens the whole prompt may take: the window less the answer's ``reserve``, and no
    more than ``prompt_rate`` (tokens/s) reads in ``first_token_s`` beyond the
    ``cached_tokens`` the server keeps from earlier calls, though always the prompt without
    sources (``fixed_tokens``) plus ``MIN_TIME_SOURCES``. No rate: only the window counts.
    """
    by_window = max(0, window - max(0, reserve))
    if not prompt_rate or not first_token_s:
        return by_window
    by_time = int(prompt_rate * first_token_s) + max(0, cached_tokens)
    return min(by_window, max(by_time, max(0, fixed_tokens) + MIN_TIME_SOURCES))


def prompt_rate(engine: object, settings: Settings) -> float | None:
    """The prompt rate of the server behind ``engine``: from the first of the engine, its
    chat client (``client``, ``chat``) that has a ``prompt_rate()`` (``OpenAIEngine``'s is
    measured on real calls), else ``COPILOT_LLM_PROMPT_RATE``; None for a fast server."""
    for holder in (engine, getattr(engine, "client", None), getattr(engine, "chat", None)):
        rate = getattr(holder, "prompt_rate", None)
        if callable(rate):
            found = rate()
            return float(found) if isinstance(found, int | float) and found > 0 else None
    return settings.llm_prompt_rate


def fixed_prefix_tokens(template: SkillTemplate) -> int:
    """Tokens of the template's system message as every call sends it (rendered with empty
    inputs), i.e. what the server's prompt cache keeps; 0 if it depends on the inputs or
    the template has none."""
    blank = {
        name: spec.default if spec.default is not None else _EMPTY[spec.type]
        for name, spec in template.inputs.items()
    }
    try:
        messages = render(template, blank)
    except TemplateError:
        return 0
    if not messages or messages[0].role != "system":
        return 0
    return count_tokens(messages[0].content) + 4  # the message's own framing


def context_budget(
    engine: object, template: SkillTemplate, settings: Settings, reserve: int, *,
    fixed_tokens: int = 0, timed: bool = True,
) -> int:  # fmt: skip
    """The prompt budget of a run of ``template`` on ``engine`` (0 without a model window),
    ``fixed_tokens`` being its prompt without sources: the hook ``prepare.context_budget``
    calls. ``timed=False``: the window alone, for a text that must be read whole anyway
    (see ``prepare.fit``)."""
    window = int(getattr(engine, "window", 0) or 0)
    if window <= 0:
        return 0
    rate = prompt_rate(engine, settings) if timed else None
    cached = fixed_prefix_tokens(template) if rate else 0
    return prompt_budget(
        window, reserve, prompt_rate=rate, first_token_s=settings.llm_first_token_s,
        cached_tokens=cached, fixed_tokens=fixed_tokens,
    )  # fmt: skip
