"""When to try a model call again, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

MAX_WAIT_S = 30.0  # the longest wait before a retry; a server asking for more is not retried
BACKOFF_BASE_S = 0.5  # the first backoff; doubles with each attempt
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # never 400/401/403/404: same answer again


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, or ``Retry-After`` (seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... s, never over MAX_WAIT_S."""
    base = min(MAX_WAIT_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return min(MAX_WAIT_S, base * random.uniform(0.75, 1.25))
