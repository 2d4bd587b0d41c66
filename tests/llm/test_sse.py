"""Reading a streamed answer's events without the SDK's per-chunk objects (copilot.llm.sse)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

import httpx
import openai
import pytest

from copilot.llm.sse import ChunkStream, events, usage_object


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
