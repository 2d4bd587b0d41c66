"""Which engine answers, and how much prompt it gets: the Engine protocol's contract."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from copilot.config import Settings
from copilot.skills.engines import select
from copilot.skills.engines.base import Answer, Engine, EngineName, Job
from copilot.skills.engines.llm import open_llm
from copilot.skills.engines.local.engine import LocalEngine
from copilot.skills.engines.select import choose_engine, embedded_available
from copilot.skills.prepare import SkillInputError, context_budget, fit, output_reserve
from copilot.skills.templates.builtin import load_builtin

SERVER = "http://127.0.0.1:9/v1"  # never contacted: opening an engine sends nothing


@dataclass
class Window:
    """An engine with a given window (the only thing preparation asks of it)."""

    window: int
    name: EngineName = "embedded"
    model: str = "tiny"
    remote: bool = False

    def answer(self, job: Job) -> Answer:
        return Answer(text="unused")


def with_embedded(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    monkeypatch.setattr(select, "embedded_available", lambda settings: installed)


def test_auto_prefers_the_configured_model_then_the_embedded_one_then_local(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = settings.model_copy(update={"llm_base_url": SERVER})
    with_embedded(monkeypatch, True)
    assert choose_engine(cloud) == "llm"
    assert choose_engine(settings) == "embedded"
    assert choose_engine(cloud, "local") == "local"
    with_embedded(monkeypatch, False)
    assert choose_engine(settings) == "local"


def test_an_engine_asked_for_by_name_that_cannot_run_says_what_to_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_embedded(monkeypatch, False)
    with pytest.raises(SkillInputError, match="COPILOT_LLM_BASE_URL"):
        choose_engine(settings, "llm")
    with pytest.raises(SkillInputError, match="copilot model install"):
        choose_engine(settings, "embedded")
    with pytest.raises(SkillInputError, match="unknown engine 'gpt': choose one of auto, llm"):
        choose_engine(settings, "gpt")


def test_a_build_without_the_embedded_engine_falls_back_to_local(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, select.EMBEDDED_MODULE, None)  # an import that fails
    assert not embedded_available(settings)
    assert choose_engine(settings) == "local"


def test_the_engines_declare_their_window_and_whether_prompts_leave_the_machine(
    settings: Settings,
) -> None:
    cloud = settings.model_copy(update={"llm_base_url": SERVER, "llm_context_window": 8192})
    engines: list[Engine] = [open_llm(cloud), LocalEngine()]
    assert [(e.name, e.model, e.window, e.remote) for e in engines] == [
        ("llm", cloud.llm_model, 8192, True),
        ("local", "", 0, False),
    ]


def test_the_prompt_budget_is_the_window_less_the_answers_reserve(settings: Settings) -> None:
    ask = load_builtin("ask")
    reserve = output_reserve(ask, settings)  # the template's max_tokens
    assert reserve == ask.model["parameters"]["max_tokens"]
    assert context_budget(Window(8192), ask, settings) == 8192 - reserve
    assert context_budget(Window(reserve // 2), ask, settings) == 0  # never negative
    assert context_budget(LocalEngine(), ask, settings) == 0  # no model window


def test_sources_get_what_the_prompt_leaves_up_to_the_templates_cap(settings: Settings) -> None:
    ask = load_builtin("ask")
    cap = ask.metadata.retrieval.max_context_tokens
    question = {"question": "What is the travel budget?"}
    assert fit(Window(100_000), ask, question, settings) == cap
    small = fit(Window(output_reserve(ask, settings) + 1000), ask, question, settings)
    assert 50 <= small < 1000  # the window less the reserve less the prompt itself
    assert fit(LocalEngine(), ask, question, settings) == cap  # the cap rules without a window


def test_a_window_too_small_for_any_source_is_an_error_naming_the_sizes(
    settings: Settings,
) -> None:
    with pytest.raises(SkillInputError, match=r"leaves no room for sources.*700-token window"):
        fit(Window(700), load_builtin("ask"), {"question": "Budget?"}, settings)
