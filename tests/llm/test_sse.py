"""Reading a streamed answer: events without the SDK's per-chunk objects (copilot.llm.sse),
on reader threads kept for the next answer (copilot.llm.streaming.Helpers)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import httpx
import openai
import pytest

from copilot.llm.sse import ChunkStream, events, usage_object
from copilot.llm.streaming import Helpers


def test_events_follow_the_event_stream_rules():
    lines = [
        ": keep-alive comment",
        "event: message",
        'data: {"a": 1}',
        "",
        "data: first line",
        "data:second line",
        "id: 7",
        "",
        "",  # a blank line with no data dispatches nothing
        "data: [DONE]",
    ]
    assert list(events(iter(lines))) == ['{"a": 1}', "first line\nsecond line", "[DONE]"]


def fake_response(lines: list[str]):
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    closed = []

    @contextmanager
    def manager():
        yield SimpleNamespace(
            http_response=SimpleNamespace(request=request, iter_lines=lambda: iter(lines))
        )
        closed.append(True)

    return manager(), closed


def test_chunks_are_plain_dicts_up_to_done_and_close_hangs_up():
    chunk = {"model": "m", "choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]}
    manager, closed = fake_response(
        [f"data: {json.dumps(chunk)}", "", "data: [DONE]", "", 'data: {"never": 1}', ""]
    )
    stream = ChunkStream(manager)
    assert list(stream) == [chunk]
    stream.close()
    assert closed == [True]


def test_an_error_object_in_the_stream_is_the_sdks_api_error():
    manager, _ = fake_response(
        ['data: {"choices": []}', "", 'data: {"error": {"message": "model crashed"}}', ""]
    )
    with pytest.raises(openai.APIError, match="model crashed") as caught:
        list(ChunkStream(manager))
    assert caught.value.body == {"message": "model crashed"}


def test_usage_reads_as_attributes_and_junk_as_nothing():
    usage = usage_object({"prompt_tokens": 12, "completion_tokens": 3})
    assert (usage.prompt_tokens, usage.completion_tokens) == (12, 3)
    assert usage_object("12 tokens") is None


def test_reader_threads_are_reused_and_no_task_waits_for_another():
    helpers = Helpers(idle_s=0.3)
    barrier = threading.Barrier(5, timeout=10)
    idents: list[int] = []

    def task() -> None:
        idents.append(threading.get_ident())
        barrier.wait()  # breaks (and fails the test below) unless all 5 run at once

    for _ in range(5):
        helpers.run(task)
    wait_until(lambda: len(idents) == 5 and barrier.n_waiting == 0)
    first = set(idents)
    assert len(first) == 5 and not barrier.broken

    wait_until(lambda: helpers.waiting == 5)  # all back, waiting for the next answer
    idents.clear()
    barrier.reset()
    for _ in range(5):
        helpers.run(task)
    wait_until(lambda: len(idents) == 5)
    assert set(idents) == first and not barrier.broken  # the same threads, none new

    wait_until(lambda: not any(t.ident in first for t in threading.enumerate()))


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)
