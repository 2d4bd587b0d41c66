"""One error root, one mapping: every error says its kind and status, and the CLI, the API and
the bot tell a person the same thing about it."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil

import httpx
import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient

import connectors
import copilot
from connectors.errors import ConnectorError
from connectors.imap_login import ImapAuthError
from copilot.api import errors as api_errors
from copilot.api import problems
from copilot.api.limits import RateLimited
from copilot.bot.replies import RunTimeout, explain
from copilot.cli.output import fail_for
from copilot.errors import Cancelled, CopilotError, describe
from copilot.llm.errors import LLMError
from copilot.office.xlsx import WorkbookError
from copilot.skills.library.types import SkillExists, SkillNotFound
from copilot.skills.request import InputError
from copilot.skills.templates.render import TemplateError

# Signals that never leave the module raising them: not errors anybody is told about.
CONTROL_FLOW = {
    "connectors.graph.mail._Stop",  # a folder's budget is spent; caught by ``load``
    "copilot.api.limits.BodyRefused",  # the 413/408 answer has already been sent
    "copilot.llm.failures.Failure",  # one failed request, before retrying
    "copilot.llm.read_answer._CallerError",  # wraps an exception from ``on_delta``
    "copilot.llm.openai_engine._Unsupported",  # try the next structured-output mode
    "copilot.llm.streaming.Deadline",  # becomes LLMError("timeout")
    "copilot.llm.streaming.Stopped",  # becomes LLMError("cancelled")
}
SERVER = "http://127.0.0.1:9/v1"


def exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in copilot/ and connectors/ (all modules imported)."""
    found: dict[str, type[BaseException]] = {}
    for package in (copilot, connectors):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == info.name:
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def test_every_error_has_one_root_a_kind_and_a_status() -> None:
    found = exception_classes()
    named = {f"{c.__module__}.{c.__qualname__}": c for c in found}
    assert set(CONTROL_FLOW) <= set(named), set(CONTROL_FLOW) - set(named)
    rootless = [
        name
        for name, cls in named.items()
        if name not in CONTROL_FLOW and not issubclass(cls, CopilotError | ConnectorError)
    ]
    assert rootless == []
    copilot_errors = [c for c in found if issubclass(c, CopilotError)]
    assert len(copilot_errors) >= 35  # SkillNotFound … RateLimited: every domain error
    for cls in copilot_errors:
        if cls is CopilotError:
            continue
        assert cls.kind != CopilotError.kind and cls.kind.isidentifier(), cls
        assert 400 <= cls.status <= 599, cls
        assert cls.title and cls.title != CopilotError.title, cls
    for cls in (c for c in found if issubclass(c, ConnectorError) and c is not ConnectorError):
        assert cls.kind != ConnectorError.kind and cls.kind.isidentifier(), cls


def test_a_subclass_states_its_own_kind_not_its_parents() -> None:
    assert (SkillExists.kind, SkillExists.status) == ("skill_exists", 409)
    assert str(SkillNotFound("nope")) == "no skill 'nope'"  # no KeyError quotes
    assert isinstance(WorkbookError("x"), ValueError)  # callers catching ValueError still do


# -- the three surfaces -------------------------------------------------------------------------


def api_answer(exc: BaseException) -> httpx.Response:
    """What the API answers when a route raises ``exc``."""
    app = FastAPI()
    problems.install(app)
    api_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    with TestClient(app, raise_server_exceptions=False) as client:
        return client.get("/boom")


def cli_answer(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and the words ``copilot`` prints for ``exc``."""
    capsys.readouterr()
    exit_ = fail_for(exc)
    assert isinstance(exit_, typer.Exit)
    return exit_.exit_code, " ".join(capsys.readouterr().err.split())


SAME_EVERYWHERE = [
    (InputError("no input 'nope': the skill takes text"), 400, "bad_input", 2),
    (WorkbookError("sheet 'Q3' has no column 'Comment'"), 400, "bad_workbook", 2),
    (SkillExists("a skill 'mine' already exists"), 409, "skill_exists", 2),
    (Cancelled(), 499, "cancelled", 2),
    (RateLimited(7), 429, "rate_limited", 2),
    (ImapAuthError("the server refused the login for anna"), 502, "imap_login_refused", 1),
]


@pytest.mark.parametrize(("exc", "status", "kind", "exit_code"), SAME_EVERYWHERE)
def test_the_three_surfaces_say_the_same(
    exc: BaseException, status: int, kind: str, exit_code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    described = describe(exc)
    assert (described.status, described.kind, described.detail) == (status, kind, str(exc))

    answer = api_answer(exc)
    body = answer.json()
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (body["status"], body["code"], body["detail"]) == (status, kind, str(exc))
    assert body["title"] == problems.TITLES.get(status, "Error")  # about:blank: the phrase

    if not isinstance(exc, Cancelled):  # the bot cancels only at its deadline (below)
        assert explain(exc) == (described.title, str(exc))
    assert cli_answer(exc, capsys) == (exit_code, str(exc))


def test_http_details_travel_with_the_error() -> None:
    limited = api_answer(RateLimited(7))
    assert limited.headers["retry-after"] == "7"
    template = api_answer(TemplateError("unknown key 'tsak'", line=4, source="mine.prompty"))
    assert template.status_code == 422
    assert template.json()["line"] == 4 and template.json()["code"] == "template_error"
    assert template.json()["detail"] == "mine.prompty line 4: unknown key 'tsak'"


def test_a_model_error_tells_the_operator_more_than_the_person(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exc = LLMError("auth", f"HTTP 401 from {SERVER}: bad key. Check COPILOT_LLM_API_KEY.")
    advice = "The language model server refused the copilot's credentials: tell your admin."
    body = api_answer(exc).json()
    assert (body["status"], body["code"], body["detail"]) == (502, "llm_auth", advice)
    assert explain(exc) == ("The language model didn't answer", advice)
    code, printed = cli_answer(exc, capsys)  # whoever runs the CLI can fix the setting
    assert code == 1 and SERVER in printed and "COPILOT_LLM_API_KEY" in printed
    assert exc.status == 502 and exc.upstream_status is None


def test_the_bot_adds_what_to_type_and_reads_a_cancel_as_its_timeout() -> None:
    assert explain(SkillNotFound("nope")) == (
        "I don't know that skill",
        "no skill 'nope'. Type `skills` to see yours.",
    )
    timeout = ("That took too long", "I stopped the skill. Try a shorter text or file.")
    assert explain(RunTimeout()) == timeout
    assert explain(Cancelled()) == timeout
    assert explain(LLMError("cancelled", f"The request to {SERVER} was cancelled.")) == timeout


def test_an_unexpected_error_is_an_id_to_quote_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    bug = ZeroDivisionError("secret /work/main/copilot/x.py detail")
    with caplog.at_level(logging.ERROR, logger="copilot.errors"):
        answer = api_answer(bug)
        title, text = explain(bug)
        code, printed = cli_answer(bug, capsys)
    body = answer.json()
    assert answer.status_code == 500 and body["code"] == "internal_error"
    assert body["error_id"] in body["detail"] and "Quote error id" in body["detail"]
    shown = answer.text + title + text + printed
    assert "secret" not in shown and "Traceback" not in shown and "ZeroDivision" not in shown
    assert "Quote error id" in text and code == 1
    ids = [r.getMessage().split()[1] for r in caplog.records]
    assert body["error_id"] in ids and len(ids) == 3  # one log line (with traceback) each
    assert all(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
