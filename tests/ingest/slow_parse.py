"""A parse that takes its time, in a module of its own: the parse worker imports it (a
reader is sent by reference), so it must import nothing heavy."""

from __future__ import annotations

import time

from connectors.types import Parsed


def slow_reader(data: bytes, name: str) -> Parsed:
    time.sleep(3)
    return Parsed(elements=[], display_text=data.decode())
