"""The ``llm`` engine over real HTTP against the scripted OpenAI-compatible server."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from copilot.config import Settings, get_settings
from copilot.llm import retry, tokens
from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import Completion, OpenAIEngine, estimate_cost
from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.llm.types import Message
from tests.fakes.llm_server import Reply, ScriptedLLM

MESSAGES = [
    Message("system", "You are a helpful office assistant."),
    Message("user", "Summarise the meeting notes, please."),
]
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["positive", "negative", "neutral"]},
        "score": {"type": "number"},
    },
    "required": ["label"],
}


def settings_for(tmp_path: Path, llm: ScriptedLLM, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path,
        "llm_base_url": llm.base_url,
        "llm_timeout_s": 1,
        "llm_max_retries": 2,
    }
    values.update(overrides)
    return get_settings(**values)


def engine_for(tmp_path: Path, llm: ScriptedLLM, **overrides: object):
    """An engine whose backoff waits are recorded instead of slept."""
    sleeps: list[float] = []
    return OpenAIEngine(settings_for(tmp_path, llm, **overrides), sleep=sleeps.append), sleeps


def as_dicts(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


# -- plain calls ---------------------------------------------------------------------------


def test_sends_the_exact_messages_and_reports_usage_and_cost(tmp_path, llm):
    llm.script(Reply.text("Hello [1].", prompt_tokens=1000, completion_tokens=500))
    engine, _ = engine_for(tmp_path, llm, llm_api_key="sk-test-key")

    result = engine.complete(MESSAGES, max_tokens=200, temperature=0.2)

    assert isinstance(result, Completion)
    assert result.text == "Hello [1]."
    assert result.finish_reason == "stop"
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.attempts == 1
    sent = llm.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"] == as_dicts(MESSAGES)
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["max_tokens"] == 200
    assert sent.json["temperature"] == 0.2
    assert sent.json["stream"] is True  # always streamed: deadlines and cancel need it
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    assert result.usage.prompt_tokens == 1000
    assert result.usage.completion_tokens == 500
    assert not result.usage.estimated
    # gpt-4o-mini: $0.00015 per 1k in, $0.0006 per 1k out (dated name, prefix match).
    assert result.usage.cost_usd == pytest.approx(0.00015 + 0.0003)


def test_streaming_deltas_arrive_in_order_and_join_to_the_text(tmp_path, llm):
    text = "The meeting agreed on the budget [1] and moved the launch to May [2]."
    llm.script(Reply.text(text, chunks=5, prompt_tokens=40, completion_tokens=17))
    engine, _ = engine_for(tmp_path, llm)
    deltas: list[str] = []

    result = engine.complete(MESSAGES, on_delta=deltas.append)

    assert len(deltas) >= 4
    assert "".join(deltas) == text == result.text
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (40, 17)
    assert not result.usage.estimated
    request = llm.requests[0].json
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"] == as_dicts(MESSAGES)


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_counted_locally_when_the_server_sends_none(tmp_path, llm, stream):
    llm.script(Reply.text("Short answer.", usage=False))
    engine, _ = engine_for(tmp_path, llm)

    result = engine.complete(MESSAGES, on_delta=(lambda _: None) if stream else None)

    assert result.usage.estimated
    assert result.usage.prompt_tokens == tokens.count_messages(MESSAGES)
    assert result.usage.completion_tokens == tokens.count_tokens("Short answer.")
    assert result.usage.cost_usd is not None


def test_estimate_cost_uses_exact_then_longest_prefix():
    s = get_settings(home="/nonexistent-unused")
    assert estimate_cost(s, "gpt-4o", 1000, 1000) == pytest.approx(0.0125)
    # "gpt-4o-mini-2024-07-18" starts with "gpt-4o" too; the longer key wins.
    assert estimate_cost(s, "gpt-4o-mini-2024-07-18", 1000, 0) == pytest.approx(0.00015)
    assert estimate_cost(s, "openai/gpt-4.1-nano", 0, 1000) == pytest.approx(0.0004)
    assert estimate_cost(s, "llama3.1:8b", 1000, 1000) is None


# -- retries -------------------------------------------------------------------------------


def test_429_is_retried_after_the_wait_the_server_asks_for(tmp_path, llm):
    llm.script(Reply.status(429, retry_after=0.1), Reply.text("Done."))
    engine, sleeps = engine_for(tmp_path, llm)

    result = engine.complete(MESSAGES)

    assert result.text == "Done."
    assert result.attempts == 2
    assert len(llm.requests) == 2
    assert sleeps == [pytest.approx(0.1)]


def test_retry_after_ms_is_really_waited(tmp_path, llm):
    llm.script(Reply.status(503, retry_after_ms=150), Reply.text("Done."))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    engine = OpenAIEngine(settings_for(tmp_path, llm), sleep=sleep)

    assert engine.complete(MESSAGES).text == "Done."
    assert sleeps == [pytest.approx(0.15)]
    first, second = llm.requests
    assert second.received_at - first.received_at >= 0.15


def test_retry_after_as_an_http_date(tmp_path, llm):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    llm.script(Reply.status(429, retry_after=when), Reply.text("Done."))
    engine, sleeps = engine_for(tmp_path, llm)

    engine.complete(MESSAGES)

    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 2.0


def test_a_server_error_is_retried_with_backoff(tmp_path, llm):
    llm.script(Reply.status(500), Reply.text("Recovered."))
    engine, sleeps = engine_for(tmp_path, llm)

    result = engine.complete(MESSAGES)

    assert result.text == "Recovered."
    assert result.attempts == 2
    assert len(sleeps) == 1
    assert retry.BACKOFF_BASE_S * 0.75 <= sleeps[0] <= retry.BACKOFF_BASE_S * 1.25


def test_401_is_not_retried_and_the_key_is_not_echoed(tmp_path, llm):
    key = "sk-secret-0123456789"
    llm.script(Reply.status(401, message=f"Incorrect API key provided: {key}"))
    engine, sleeps = engine_for(tmp_path, llm, llm_api_key=key)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES)

    error = caught.value
    assert error.kind == "auth"
    assert error.upstream_status == 401  # the server's status; the copilot answers 502
    assert key not in str(error)
    assert "COPILOT_LLM_API_KEY" in str(error)
    assert llm.base_url in str(error) and "gpt-4o-mini" in str(error)
    assert len(llm.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "bad_request"), (403, "auth"), (404, "config"), (422, "bad_request")]
)
def test_client_errors_are_never_retried(tmp_path, llm, status, kind):
    llm.script(Reply.status(status))
    engine, _ = engine_for(tmp_path, llm)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES)

    assert caught.value.kind == kind
    assert len(llm.requests) == 1


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit"), (502, "server")])
def test_retries_run_out(tmp_path, llm, status, kind):
    llm.script(*[Reply.status(status)] * 3)
    engine, sleeps = engine_for(tmp_path, llm, llm_max_retries=2)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES)

    assert caught.value.kind == kind
    assert caught.value.attempts == 3
    assert "Gave up after 3 tries" in str(caught.value)
    assert f"HTTP {status}" in str(caught.value)
    assert len(llm.requests) == 3
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]  # exponential


def test_a_wait_longer_than_the_cap_is_not_attempted(tmp_path, llm):
    llm.script(Reply.status(429, retry_after=3600))
    engine, sleeps = engine_for(tmp_path, llm)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES)

    assert caught.value.kind == "rate_limit"
    assert "3600 s" in str(caught.value)
    assert sleeps == [] and len(llm.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_malformed_body_is_a_bad_response_after_retries(tmp_path, llm, stream):
    llm.script(Reply.malformed(), Reply.malformed())
    engine, _ = engine_for(tmp_path, llm, llm_max_retries=1)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, on_delta=(lambda _: None) if stream else None)

    assert caught.value.kind == "bad_response"
    assert len(llm.requests) == 2


def test_a_malformed_body_then_a_good_one(tmp_path, llm):
    llm.script(Reply.malformed(), Reply.text("Fine now."))
    engine, _ = engine_for(tmp_path, llm)

    assert engine.complete(MESSAGES).text == "Fine now."


def test_an_unreachable_server_is_retried_then_reported(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    settings = get_settings(
        home=tmp_path, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_max_retries=1
    )

    with pytest.raises(LLMError) as caught:
        OpenAIEngine(settings, sleep=sleeps.append).complete(MESSAGES)

    assert caught.value.kind == "server"
    assert "Could not reach" in str(caught.value)
    assert len(sleeps) == 1


def test_no_llm_configured_is_a_config_error(tmp_path, monkeypatch):
    for name in ("COPILOT_LLM_BASE_URL", "COPILOT_LLM_API_KEY", "COPILOT_LLM_AZURE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LLMError) as caught:
        OpenAIEngine(get_settings(home=tmp_path))
    assert caught.value.kind == "config"


# -- timeouts and cancel -------------------------------------------------------------------


def test_a_silent_server_times_out(tmp_path, llm):
    llm.script(Reply.stall(5.0))
    engine, _ = engine_for(tmp_path, llm, llm_max_retries=0)

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES)

    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 2.5
    assert "1 s" in str(caught.value)


def test_a_stream_that_stalls_after_some_text_times_out_without_a_retry(tmp_path, llm):
    llm.script(Reply.text("partial answer that never ends", then_stall=5.0))
    engine, sleeps = engine_for(tmp_path, llm, llm_max_retries=2)
    deltas: list[str] = []

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, on_delta=deltas.append)

    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 2.5
    assert deltas == ["partial answer "]
    assert "not retried" in str(caught.value)
    assert len(llm.requests) == 1 and sleeps == []


def test_cancel_mid_stream_closes_the_connection(tmp_path, llm):
    llm.script(Reply.text("a b c d e f g h i j", chunks=10, chunk_delay=0.2))
    engine, _ = engine_for(tmp_path, llm)
    cancel = threading.Event()
    deltas: list[str] = []

    def show(delta: str) -> None:
        deltas.append(delta)
        cancel.set()  # the user pressed stop after the first word

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, on_delta=show, cancel=cancel)

    assert caught.value.kind == "cancelled"
    assert time.monotonic() - started < 1.0
    assert deltas == ["a "]
    assert llm.requests[0].disconnected.wait(2.0), "the server should see the client hang up"


def test_stop_at_ends_the_answer_and_hangs_up(tmp_path, llm):
    """A caller that has enough (a summary with its points) ends the answer where it says;
    the server sees the client go, so the model stops writing."""
    llm.script(Reply.text("- one\n- two\n- three\n- four\n- five", chunks=10, chunk_delay=0.2))
    engine, _ = engine_for(tmp_path, llm)
    deltas: list[str] = []

    def two_points(text: str) -> int | None:  # before a third point begins
        starts = [i for i in range(len(text)) if text.startswith("\n- ", i)]
        return starts[1] if len(starts) > 1 else None

    started = time.monotonic()
    done = engine.complete(MESSAGES, on_delta=deltas.append, stop_at=two_points)

    assert done.text == "- one\n- two"
    assert done.finish_reason == "stop_at"
    assert "".join(deltas).rstrip() == "- one\n- two"  # nothing past the cut was shown
    assert done.usage.completion_tokens > 0  # estimated: the server never sent usage
    assert time.monotonic() - started < 1.5  # the rest (1 s more) was never waited for
    assert llm.requests[0].disconnected.wait(2.0), "the server should see the client hang up"


def test_cancel_before_the_call_sends_nothing(tmp_path, llm):
    engine, _ = engine_for(tmp_path, llm)
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, cancel=cancel)

    assert caught.value.kind == "cancelled"
    assert llm.requests == []


def test_an_error_in_on_delta_is_the_callers_own(tmp_path, llm):
    engine, _ = engine_for(tmp_path, llm)

    def broken(delta: str) -> None:
        raise KeyError("ui went away")

    with pytest.raises(KeyError):
        engine.complete(MESSAGES, on_delta=broken)
    assert len(llm.requests) == 1


# -- structured output ---------------------------------------------------------------------


def test_json_output_valid_the_first_time(tmp_path, llm):
    llm.script(Reply.json({"label": "positive", "score": 0.9}))
    engine, _ = engine_for(tmp_path, llm)

    result = engine.complete(MESSAGES, json_schema=SCHEMA)

    assert result.data == {"label": "positive", "score": 0.9}
    assert result.attempts == 1
    assert llm.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": False},
    }


def test_json_in_a_markdown_fence_is_accepted(tmp_path, llm):
    llm.script(Reply.text('Here it is:\n```json\n{"label": "neutral"}\n```'))
    engine, _ = engine_for(tmp_path, llm)

    assert engine.complete(MESSAGES, json_schema=SCHEMA).data == {"label": "neutral"}


def test_invalid_json_output_is_repaired_once(tmp_path, llm):
    bad = '{"label": "great"}'
    llm.script(
        Reply.text(bad, prompt_tokens=100, completion_tokens=5),
        Reply.json({"label": "positive"}, prompt_tokens=150, completion_tokens=6),
    )
    engine, _ = engine_for(tmp_path, llm)

    result = engine.complete(MESSAGES, json_schema=SCHEMA)

    assert result.data == {"label": "positive"}
    assert result.attempts == 2
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (250, 11)
    repair = llm.requests[1].json["messages"]
    assert repair[:2] == as_dicts(MESSAGES)
    assert repair[2] == {"role": "assistant", "content": bad}
    assert repair[3]["role"] == "user"
    assert "'great' is not one of" in repair[3]["content"]
    assert "['label']" in repair[3]["content"]
    assert result.sent[-1].content == repair[3]["content"]


def test_invalid_json_twice_is_a_bad_response(tmp_path, llm):
    llm.script(Reply.text("I think it is positive."), Reply.text("Positive!"))
    engine, _ = engine_for(tmp_path, llm)

    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, json_schema=SCHEMA)

    assert caught.value.kind == "bad_response"
    assert "not valid JSON" in str(caught.value)
    assert "not valid JSON" in llm.requests[1].json["messages"][-1]["content"]
    assert len(llm.requests) == 2


def test_a_broken_schema_is_a_config_error(tmp_path, llm):
    engine, _ = engine_for(tmp_path, llm)
    with pytest.raises(LLMError) as caught:
        engine.complete(MESSAGES, json_schema={"type": "no-such-type"})
    assert caught.value.kind == "config"
    assert llm.requests == []


# -- Azure, redaction, the server itself ---------------------------------------------------


def test_azure_openai_deployment_path(tmp_path, llm):
    llm.script(Reply.text("From Azure."))
    settings = get_settings(
        home=tmp_path,
        llm_azure_endpoint=llm.root,
        llm_azure_deployment="office-gpt4o",
        llm_api_key="azure-key",
        llm_timeout_s=1,
    )
    engine = OpenAIEngine(settings)

    result = engine.complete(MESSAGES, on_delta=lambda _: None)

    assert result.text == "From Azure."
    request = llm.requests[0]
    assert request.path == (
        "/openai/deployments/office-gpt4o/chat/completions?api-version="
        + settings.llm_azure_api_version
    )
    assert request.headers["api-key"] == "azure-key"
    assert request.json["messages"] == as_dicts(MESSAGES)


def test_redaction_applies_to_everything_sent(tmp_path, llm):
    engine, _ = engine_for(tmp_path, llm, redact=True, redact_names=["Anna Berg"])
    messages = [
        Message("system", "Draft replies for anna.berg@example.com."),
        Message("user", "Anna Berg (anna.berg@example.com, +49 30 1234567) asks for a call."),
    ]

    result = engine.complete(messages)

    sent = llm.requests[0].json["messages"]
    assert sent[0]["content"] == "Draft replies for [EMAIL_1]."
    assert sent[1]["content"] == "[NAME_1] ([EMAIL_1], [PHONE_1]) asks for a call."
    assert as_dicts(list(result.sent)) == sent
    assert result.redactions == {"email": 1, "phone": 1, "name": 1}


def test_one_redactor_keeps_placeholders_across_calls(tmp_path, llm):
    engine, _ = engine_for(tmp_path, llm)
    redactor = Redactor(RedactionPolicy())
    engine.complete([Message("user", "from bob@example.com")], redactor=redactor)
    engine.complete([Message("user", "a@example.com then bob@example.com")], redactor=redactor)
    assert llm.requests[1].json["messages"][0]["content"] == "[EMAIL_2] then [EMAIL_1]"


def test_the_scripted_server_lists_models_and_echoes_by_default(tmp_path, llm):
    with urllib.request.urlopen(f"{llm.base_url}/models", timeout=2) as response:
        assert b'"object": "list"' in response.read()
    engine, _ = engine_for(tmp_path, llm)
    assert engine.complete(MESSAGES).text == "Echo: Summarise the meeting notes, please."


# -- token counting ------------------------------------------------------------------------


def test_token_counts():
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("<|endoftext|>") > 1  # document text, not a special token
    one = [Message("user", "hello world")]
    assert tokens.count_messages(one) == 3 + 1 + 2 + 3  # framing, role, content, priming


def test_truncate_tokens_cuts_at_a_word_and_keeps_the_promise():
    text = "Quarterly revenue grew in every region except the north. " * 200
    cut = tokens.truncate_tokens(text, 50)
    assert tokens.count_tokens(cut) <= 50
    assert text.startswith(cut) and text[len(cut)] == " "
    assert tokens.truncate_tokens("short", 50) == "short"
    assert tokens.truncate_tokens("anything", 0) == ""
    emoji = "🙂" * 100  # several tokens per character: never half a character
    cut = tokens.truncate_tokens(emoji, 7)
    assert cut and set(cut) == {"🙂"} and tokens.count_tokens(cut) <= 7


def test_the_scripted_server_stops_promptly_with_a_stalled_client():
    server = ScriptedLLM().__enter__()
    server.script(Reply.stall(10.0))
    host, port = server.root.removeprefix("http://").split(":")
    body = b'{"model": "m", "messages": []}'
    with socket.create_connection((host, int(port)), timeout=2) as client:
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        deadline = time.monotonic() + 2
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 1.0
        assert client.recv(100) == b""  # hung up without an answer


# -- the first token's alternatives ----------------------------------------------------------


def test_top_logprobs_gives_the_first_tokens_alternatives(tmp_path, llm):
    llm.script(Reply.label(negative=0.7, mixed=0.2, Negative=0.06, The=0.04), Reply.text("Hi."))
    engine, _ = engine_for(tmp_path, llm)
    answer = engine.complete(MESSAGES, max_tokens=1, top_logprobs=3)
    assert answer.text == "negative"
    assert [t for t, _ in answer.alternatives] == ["negative", "mixed", "Negative"]
    assert answer.alternatives[0][1] == pytest.approx(-0.3567, abs=1e-4)  # log 0.7
    assert (llm.requests[0].json["logprobs"], llm.requests[0].json["top_logprobs"]) == (True, 3)
    plain = engine.complete(MESSAGES)  # not asked: none read, none sent
    assert plain.alternatives is None and "logprobs" not in llm.requests[1].json


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Unrecognized request argument supplied: top_logprobs"),
     (500, "logprobs is not supported for models created with logits_all=False")],
)  # fmt: skip
def test_a_refusal_of_logprobs_is_unsupported_and_not_retried(tmp_path, status, message):
    with ScriptedLLM(rejects={"logprobs": (status, message)}) as llm:
        engine, sleeps = engine_for(tmp_path, llm)
        with pytest.raises(LLMError, match="does not give token probabilities") as caught:
            engine.complete(MESSAGES, max_tokens=1, top_logprobs=5)
        assert caught.value.kind == "unsupported" and len(llm.requests) == 1 and not sleeps
        assert engine.complete(MESSAGES).text.startswith("Echo")  # plain calls still work
