"""The embedded engine against the real model server running the real SmolLM2 model.

These start ``copilot.llm.embedded.process`` (llama.cpp's server) on loopback, as a user's
run would, and check the engine contract: streaming order, stop sequences, JSON output,
cancel mid-stream, a killed server restarted on the next call, queued generations with
their positions, a shared server found through the discovery file, and idle stop. The
model is tiny and answers are short (a few tokens), so the whole file takes seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from copilot.config import Settings
from copilot.llm import retry
from copilot.llm.embedded import models, server
from copilot.llm.embedded.catalogue import SMOLLM2
from copilot.llm.embedded.chat import EmbeddedChat, queue_listener
from copilot.llm.errors import LLMError
from copilot.llm.types import Message
from tests.llm.smollm import NEEDS_MODEL, WINDOW, install, served, settings_in

pytestmark = NEEDS_MODEL

COUNT = [Message("user", "Count from 1 to 20, separated by commas.")]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    yield from served(tmp_path_factory, "embedded")


@pytest.fixture(scope="module")
def chat(settings: Settings) -> EmbeddedChat:
    chat = EmbeddedChat(settings, models.resolve(settings), progress=lambda _line: None)
    chat.start()
    return chat


def test_answers_stream_in_order_and_the_window_comes_from_the_server(
    chat: EmbeddedChat, settings: Settings
) -> None:
    deltas: list[str] = []
    done = chat.complete(COUNT, max_tokens=12, temperature=0, on_delta=deltas.append)

    assert len(deltas) > 3 and "".join(deltas) == done.text
    assert done.text.startswith("1")
    assert done.model == SMOLLM2.id and chat.model == SMOLLM2.id
    assert done.finish_reason == "length"
    assert chat.window == WINDOW
    info = server.read_discovery(settings)
    assert info is not None and (info.n_ctx, info.model) == (WINDOW, SMOLLM2.id)


def test_a_prefilled_answer_start_is_continued(chat: EmbeddedChat) -> None:
    assert chat.start().chatml  # read from the model's chat template, so sent as ChatML
    deltas: list[str] = []
    prefilled = [
        Message("user", "Reply to Maria: the offsite moves to October."),
        Message("assistant", "Hi Maria,"),
    ]
    done = chat.complete(prefilled, max_tokens=8, temperature=0, on_delta=deltas.append)
    assert done.text.startswith("Hi Maria,") and len(done.text) > len("Hi Maria,")
    assert "<|im_" not in done.text


def test_a_stop_sequence_ends_the_answer_before_it(chat: EmbeddedChat) -> None:
    info = chat.start()
    client = openai.OpenAI(base_url=info.base_url, api_key="none", max_retries=0)
    kwargs = {"model": SMOLLM2.id, "max_tokens": 16, "temperature": 0}
    messages = [{"role": m.role, "content": m.content} for m in COUNT]
    full = client.chat.completions.create(messages=messages, **kwargs)  # type: ignore[call-overload]
    text = full.choices[0].message.content
    stop = text[len(text) // 2 :][:2]  # two characters from the middle of the answer
    cut = client.chat.completions.create(messages=messages, stop=[stop], **kwargs)  # type: ignore[call-overload]

    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_json_output_follows_the_schema(chat: EmbeddedChat) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative", "neutral"]}},
        "required": ["label"],
    }
    done = chat.complete(
        [Message("user", "Sentiment of 'I love this phone.' as JSON.")],
        json_schema=schema,
        max_tokens=20,
        temperature=0,
    )
    assert isinstance(done.data, dict) and done.data["label"] in ("positive", "negative", "neutral")


def test_cancel_mid_stream_stops_the_generation_on_the_server(
    chat: EmbeddedChat, settings: Settings
) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def on_delta(text: str) -> None:
        seen.append(text)
        if len(seen) == 3:
            cancel.set()

    with pytest.raises(LLMError) as caught:
        chat.complete(COUNT, max_tokens=400, on_delta=on_delta, cancel=cancel)
    assert caught.value.kind == "cancelled" and len(seen) == 3
    info = chat.start()
    deadline = time.monotonic() + 5
    while (server.status(info.port) or {}).get("busy") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status(info.port)["busy"] == 0  # type: ignore[index]
    assert chat.complete(COUNT, max_tokens=4).text  # and the next call is served


def test_an_answer_ended_early_still_leaves_its_prompt_for_the_next_call(
    chat: EmbeddedChat,
) -> None:
    """A summary the client cuts where it has said enough (``stop_at``) hangs up mid-stream;
    llama.cpp stores a prompt's state only when its answer ends, so the prompt is kept as
    soon as it is read (``process.keep_read_prompts``)."""
    info = chat.start()
    prompt = [Message("system", "You list numbers."), Message("user", "Count to 200 in words.")]
    before = server.status(info.port)
    assert before is not None
    answer = chat.complete(
        prompt, max_tokens=300, stop_at=lambda text: 5 if len(text) > 5 else None
    )
    assert len(answer.text) == 5  # cut where stop_at said
    deadline = time.monotonic() + 5
    while (server.status(info.port) or {}).get("busy") and time.monotonic() < deadline:
        time.sleep(0.05)
    after = server.status(info.port)
    assert after is not None and after["cached_prompts"] == before["cached_prompts"] + 1


def test_two_runs_take_turns_and_the_second_hears_its_position(chat: EmbeddedChat) -> None:
    first_streaming, second_queued = threading.Event(), threading.Event()
    positions: list[int] = []
    results: dict[str, str] = {}

    def first() -> None:
        def on_delta(_text: str) -> None:
            first_streaming.set()
            second_queued.wait(10)  # hold the model until the second run is in line

        results["first"] = chat.complete(COUNT, max_tokens=6, on_delta=on_delta).text

    def second() -> None:
        def heard(position: int) -> None:
            positions.append(position)
            second_queued.set()

        queue_listener.set(heard)
        results["second"] = chat.complete(COUNT, max_tokens=6).text

    one = threading.Thread(target=first)
    one.start()
    assert first_streaming.wait(30)
    two = threading.Thread(target=second)
    two.start()
    assert second_queued.wait(10)
    status = chat.queue.status()
    assert (status.running, status.waiting) == (True, 1)
    one.join(30)
    two.join(30)
    assert positions == [1]
    assert results["first"] and results["second"]
    assert chat.queue.status().waiting == 0


def test_a_run_waits_while_another_copilot_process_generates(chat: EmbeddedChat) -> None:
    positions: list[int] = []
    queued = threading.Event()
    result: list[str] = []

    def heard(position: int) -> None:
        positions.append(position)
        queued.set()

    def run() -> None:
        queue_listener.set(heard)
        result.append(chat.complete(COUNT, max_tokens=4).text)

    import fcntl

    with chat.queue.lock_file.open("a") as other:  # what another process's turn holds
        fcntl.flock(other, fcntl.LOCK_EX)
        thread = threading.Thread(target=run)
        thread.start()
        assert queued.wait(10)
        time.sleep(0.3)
        assert not result and chat.queue.status().elsewhere
        fcntl.flock(other, fcntl.LOCK_UN)
    thread.join(30)
    assert positions == [1] and result and result[0]


def test_cancel_while_queued_leaves_the_line(chat: EmbeddedChat) -> None:
    import fcntl

    cancel = threading.Event()
    with chat.queue.lock_file.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        with pytest.raises(LLMError, match="Cancelled while waiting") as caught:
            chat.complete(COUNT, max_tokens=4, cancel=cancel)
        fcntl.flock(other, fcntl.LOCK_UN)
    assert caught.value.kind == "cancelled"
    assert chat.queue.status().waiting == 0 and not chat.queue.status().running


def test_reading_ahead_keeps_the_prompt_and_never_waits_for_a_busy_model(
    chat: EmbeddedChat,
) -> None:
    import fcntl

    mail = [
        Message("system", "Summarise the mail."),
        Message("user", "From: Ana\nThe Lisbon summit moves the Q3 travel budget up."),
    ]
    info = chat.start()
    before = server.status(info.port)
    assert before is not None
    assert chat.read_ahead(mail) is True
    after = server.status(info.port)
    assert after is not None and after["cached_prompts"] == before["cached_prompts"] + 1
    assert after["cache_mb"] > 0
    assert chat.complete(mail, max_tokens=8).text  # the run itself, from the cache

    done: list[bool] = []
    with chat.queue.lock_file.open("a") as other:  # another process is generating
        fcntl.flock(other, fcntl.LOCK_EX)
        reader = threading.Thread(target=lambda: done.append(chat.read_ahead(mail)))
        reader.start()
        reader.join(10)  # it must not wait for the lock
        fcntl.flock(other, fcntl.LOCK_UN)
    assert done == [False]
    assert chat.queue.status().waiting == 0 and not chat.queue.status().running


def test_a_read_ahead_waits_for_nobody_in_this_process_either(chat: EmbeddedChat) -> None:
    streaming, release = threading.Event(), threading.Event()

    def run() -> None:
        def on_delta(_text: str) -> None:
            streaming.set()
            release.wait(10)

        chat.complete(COUNT, max_tokens=4, on_delta=on_delta)

    thread = threading.Thread(target=run)
    thread.start()
    assert streaming.wait(30)
    try:
        assert chat.read_ahead(COUNT) is False  # returns at once: the model is busy
    finally:
        release.set()
        thread.join(30)


def test_a_prompt_over_the_window_is_refused_once_and_the_server_stays(chat: EmbeddedChat) -> None:
    pid = chat.start().pid
    long = [Message("user", "word " * (WINDOW + 200))]
    with pytest.raises(LLMError) as caught:
        chat.complete(long, max_tokens=4)
    assert caught.value.kind == "context_overflow" and caught.value.attempts == 1
    assert "do not fit the embedded model's window of 2,048 tokens" in str(caught.value)
    assert "COPILOT_EMBEDDED_CONTEXT higher (up to 8,192)" in str(caught.value)
    # Digits: ~1,000 tokens by the copilot's estimate, 2,200 in SmolLM2's tokenizer, so the
    # prompt is sent, and llama.cpp ends the stream without a word: still said plainly.
    digits = [Message("user", "1234567890 " * 200)]
    with pytest.raises(LLMError, match="do not fit the embedded model's window") as caught:
        chat.complete(digits, max_tokens=20)
    assert caught.value.kind == "context_overflow"
    assert chat.start().pid == pid


def test_another_process_finds_the_same_server(chat: EmbeddedChat, settings: Settings) -> None:
    info = chat.start()
    code = (
        "from copilot.config import Settings; from copilot.llm.embedded import server; "
        f"s = Settings(home={str(settings.home)!r}); print(server.running(s).pid)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(found.stdout) == info.pid
    again = EmbeddedChat(settings, models.resolve(settings), progress=lambda _l: None)
    assert again.start().pid == info.pid  # no second model process


def test_a_killed_server_fails_the_call_in_flight_clearly_and_restarts_on_the_next(
    tmp_path: Path,
) -> None:
    settings = settings_in(tmp_path)
    chat = EmbeddedChat(settings, install(settings), progress=lambda _line: None)
    try:
        pid = chat.start().pid

        def kill_on_first_delta(_text: str) -> None:
            os.kill(pid, signal.SIGKILL)

        with pytest.raises(LLMError) as caught:
            chat.complete(COUNT, max_tokens=200, on_delta=kill_on_first_delta)
        message = str(caught.value)
        assert caught.value.kind == "server"
        assert f"pid {pid}, killed by signal 9" in message
        assert (
            "stopped while answering" in message and "the next request starts it again" in message
        )

        done = chat.complete(COUNT, max_tokens=4)
        assert done.text and chat.start().pid != pid
    finally:
        server.stop(settings)


def test_a_server_that_hangs_mid_stream_times_out_and_is_replaced(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, llm_timeout_s=2)
    chat = EmbeddedChat(settings, install(settings), progress=lambda _line: None)
    try:
        pid = chat.start().pid

        def freeze_on_first_delta(_text: str) -> None:
            os.kill(pid, signal.SIGSTOP)

        began = time.monotonic()
        with pytest.raises(LLMError) as caught:
            chat.complete(COUNT, max_tokens=200, on_delta=freeze_on_first_delta)
        assert caught.value.kind == "timeout" and time.monotonic() - began < 20
        assert "the next request starts it again" in str(caught.value)
        assert not server.alive(pid)  # stopped, not left computing
        assert chat.complete(COUNT, max_tokens=4).text and chat.start().pid != pid
    finally:
        server.stop(settings)


def test_an_idle_server_stops_itself_and_serve_stops_the_one_it_started(tmp_path: Path) -> None:
    idle = settings_in(tmp_path / "idle", embedded_keep_alive_s=1)
    info = server.ensure(idle, install(idle))
    deadline = time.monotonic() + 15
    while server.alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server.alive(info.pid) and server.running(idle) is None

    service = settings_in(tmp_path / "service")
    info = server.ensure(service, install(service))
    assert server.stop_owned(service)
    assert not server.alive(info.pid) and server.read_discovery(service) is None


def test_auto_picks_the_installed_model_and_a_skill_runs_on_it(
    chat: EmbeddedChat, settings: Settings
) -> None:
    from copilot.skills.engines import embedded
    from copilot.skills.engines.select import choose_engine
    from copilot.skills.runner import SkillRunner
    from copilot.workspace import Workspace

    assert embedded.available(settings) and choose_engine(settings) == "embedded"
    engine = embedded.open_engine(settings)
    assert (engine.name, engine.model, engine.window, engine.remote) == (
        "embedded",
        SMOLLM2.id,
        WINDOW,
        False,
    )
    assert engine.chat.start().pid == chat.start().pid  # the one shared server

    with Workspace(settings) as ws:
        result = SkillRunner(ws).run(
            "anna", "sentiment", {"text": "The battery is great but the screen cracked."}
        )
    assert (result.engine, result.model) == ("embedded", SMOLLM2.id)
    assert isinstance(result.data, dict)
    assert result.data["label"] in ("positive", "negative", "neutral", "mixed")


def test_a_summary_read_ahead_then_run_and_a_summary_never_splits_below_the_window(
    chat: EmbeddedChat, settings: Settings
) -> None:
    from copilot.skills.request import RunRequest
    from copilot.skills.runner import SkillRunner
    from copilot.workspace import Workspace

    # A mail of ~450 tokens: over what the model reads in the first-token time (here a
    # tenth of a second, so the time budget is its floor: the prompt + 300 tokens), well
    # under the 2,048-token window.
    mail = "From: Maria\nSubject: Atlas\n\n" + " ".join(
        f"Point {i}: the export file {i} moves to the new format by {i} March." for i in range(26)
    )
    slow = settings.model_copy(update={"llm_first_token_s": 0.1})
    with Workspace(slow) as ws:
        runner = SkillRunner(ws)
        request = RunRequest("summarise", {"text": mail, "length": "short"}, retrieval=False)
        assert runner.read_ahead("anna", request) == "read"
        result = runner.run("anna", "summarise", {"text": mail, "length": "short"})
        assert result.calls == 1 and result.text  # one call: no map-reduce on a time budget
        ask = runner.prepare("anna", "ask", {"question": "When is go-live?"}, retrieval=False)
        assert ask.budget < result.budget_tokens  # the time budget still holds for searches
        assert runner.engine("local").read_ahead(ask) == "not_needed"


def test_without_a_model_the_engine_is_not_available(tmp_path: Path) -> None:
    from copilot.skills.engines import embedded

    empty = settings_in(tmp_path)
    assert not embedded.available(empty)
    with pytest.raises(models.ModelFileError, match="copilot model install"):
        embedded.open_engine(empty)
    assert embedded.available(empty.model_copy(update={"llm_model_file": tmp_path / "x.gguf"}))


def test_the_prompt_cache_keeps_only_what_it_counts() -> None:
    import numpy as np
    from llama_cpp.llama import LlamaState

    from copilot.llm.embedded.process import prompt_cache

    cache = prompt_cache(capacity_bytes=3 * 1024 * 1024)
    vocab = 49_152

    def state(n: int) -> LlamaState:
        return LlamaState(
            input_ids=np.zeros(2048, dtype=np.intc),
            scores=np.ones((128, vocab), dtype=np.single),  # 25 MB, as save_state copies it
            n_tokens=n,
            llama_state=b"\0" * 1_000_000,
            llama_state_size=1_000_000,
            seed=0,
        )

    cache[(1, 2, 3)] = state(3)
    kept = cache[(1, 2, 3, 4)]  # the longest cached prefix
    assert kept.scores.shape == (1, vocab)
    assert cache.cache_size == 1_000_000 + vocab * 4 + 2048 * 4
    cache[(5, 6)] = state(2)
    cache[(7, 8)] = state(2)  # over 3 MB with three: the oldest goes
    assert (1, 2, 3) not in cache and (7, 8) in cache
    # The prompt read, then the prompt with its answer: one state stays, the longer one.
    cache[(7, 8, 9, 10)] = state(4)
    assert list(cache.cache_state) == [(5, 6), (7, 8, 9, 10)]


def test_the_server_reads_prompts_on_every_core_and_generates_on_one(
    chat: EmbeddedChat, settings: Settings
) -> None:
    import psutil

    args = psutil.Process(chat.start().pid).cmdline()
    reading = args[args.index("--prompt-threads") + 1]
    generating = args[args.index("--threads") + 1]
    assert (reading, generating) == (str(os.cpu_count() or 1), "1")
    set_two = settings.model_copy(update={"embedded_prompt_threads": 2})
    assert server.prompt_threads(set_two) == 2


def test_a_read_ahead_that_would_hold_the_model_long_or_fails_is_only_reported(
    chat: EmbeddedChat, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.skills.engines import embedded
    from copilot.skills.runner import SkillRunner
    from copilot.workspace import Workspace

    mail = "From: Maria\nSubject: Atlas\n\n" + "The export moves to the new format. " * 60
    with Workspace(settings) as ws:
        runner = SkillRunner(ws)
        prep = runner.prepare("anna", "summarise", {"text": mail}, retrieval=False)
        engine = runner.engine("embedded")
        assert isinstance(engine, embedded.EmbeddedEngine)
        # At 5 tokens a second, ~450 tokens would hold the model for 90 s.
        monkeypatch.setattr(engine.chat, "prompt_rate", lambda: 5.0)
        monkeypatch.setattr(embedded, "READ_AHEAD_MIN_TOKENS", 200)
        assert engine.read_ahead(prep) == "too_long"
        monkeypatch.setattr(embedded, "READ_AHEAD_MIN_TOKENS", 10_000)

        def broken(_messages: object) -> bool:
            raise LLMError("server", "The embedded model process stopped.")

        monkeypatch.setattr(engine.chat, "read_ahead", broken)
        assert engine.read_ahead(prep) == "failed"  # a hint never fails the caller


def test_the_pane_s_read_ahead_over_http_reads_the_mail_and_the_run_follows(
    chat: EmbeddedChat, settings: Settings
) -> None:
    # What Outlook's pane sends when it opens on a mail, then when Summarise is clicked.
    import httpx

    from copilot.api.app import create_app
    from tests.fakes.api_server import serving

    api_settings = settings.model_copy(update={"auth": "dev", "dev_users": ["anna"]})
    headers = {"Authorization": "Bearer dev:anna"}
    body = {"inputs": {"text": "Subject: Lisbon\nFrom: Ana\n\nThe summit moves the Q3 "
                                "travel budget up by 6,000 euros; numbers on Friday."}}  # fmt: skip
    info = chat.start()
    before = server.status(info.port)
    assert before is not None
    with serving(create_app(api_settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        ahead = c.post("/v1/skills/summarise/read-ahead", json=body, headers=headers)
        assert ahead.status_code == 200 and ahead.json() == {"status": "read"}
        after = server.status(info.port)
        assert after is not None and after["cached_prompts"] == before["cached_prompts"] + 1
        assert c.get("/v1/runs", headers=headers).json() == []  # nothing recorded
        run = c.post("/v1/skills/summarise/run", json=body, headers=headers)
        assert run.status_code == 200 and run.json()["engine"] == "embedded"
        assert run.json()["text"]


def test_the_server_times_what_it_reads_and_a_new_client_s_budget_follows_it(
    chat: EmbeddedChat,
) -> None:
    """A client sees a cached prefix as reading time saved; the server knows which tokens
    it really read. A new client (every CLI command is one) has measured nothing and
    takes the server's figure instead of a CPU's 25 tokens a second."""
    info = chat.start()
    words = " ".join(f"item{n}" for n in range(300))
    prompt = [Message("system", "You repeat the last word."), Message("user", words)]
    chat.complete(prompt, max_tokens=2)
    measured = (server.status(info.port) or {}).get("prompt_rate")
    assert isinstance(measured, float) and measured > 0
    chat.complete(prompt, max_tokens=2)  # the same prompt: taken from the cache, not read
    assert (server.status(info.port) or {}).get("prompt_rate") == measured
    fresh = EmbeddedChat(chat.settings, chat.file)
    assert fresh.prompt_rate() == measured != retry.CPU_PROMPT_RATE
