"""``RemoteIndex``: an API worker's index, read through the process that owns it. (The
whole path, two real processes on one socket, is in tests/api/test_workers.py.)"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime

import numpy as np
import pytest

from copilot.index.filters import SearchFilters
from copilot.index.remote import (
    RemoteIndex,
    RemoteIndexError,
    decode_filters,
    decode_vector,
    encode_filters,
    encode_vector,
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_vectors_and_filters_cross_the_wire_unchanged() -> None:
    vector = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    assert np.array_equal(decode_vector(encode_vector(vector) or "", 384), vector)
    assert encode_vector(None) is None
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    filters = SearchFilters(kinds=("mail",), senders=("ann@x.example",), modified_from=when)
    assert decode_filters(encode_filters(filters)) == filters
    assert decode_filters(None) is None


def test_a_malformed_request_is_named() -> None:
    with pytest.raises(ValueError, match="4 bytes is not 384 float32"):
        decode_vector(encode_vector(np.zeros(1, np.float32)) or "", 384)
    with pytest.raises(ValueError, match="'kinds': expected a list of strings"):
        decode_filters({"kinds": "mail"})
    with pytest.raises(TypeError):
        decode_filters({"owner": ["someone-else"]})  # not a filter: never a way around scoping


def test_a_worker_never_writes_and_says_where_the_index_is() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    index = RemoteIndex(url, "t" * 32, 384, timeout_s=2.0)
    with pytest.raises(RemoteIndexError, match=r"cannot add chunks.*first process"):
        index.add([])
    with pytest.raises(RemoteIndexError, match="cannot delete an item"):
        index.delete_item("local:ann", "file:x")
    with pytest.raises(RemoteIndexError, match=re.escape(f"owner at {url} did not answer")):
        index.count("local:ann")
    index.close()
