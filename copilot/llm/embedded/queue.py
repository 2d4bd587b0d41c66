"""One generation at a time on the model server, in arrival order, with visible positions.

llama.cpp's server computes one request at a time anyway; what it lacks is a way to say so.
Here every call waits its turn in a line kept by this process (exact positions for the
API's concurrent runs and the bot's turns), and the head of the line also takes a file lock
shared by every copilot process of the same home, so a CLI run and ``copilot serve`` never
send two prompts at once either: the server never holds work that nobody is waiting for,
and a first-token timeout counts model time, not time spent behind someone else.

Positions count the generations ahead: 0 is running, 1 is next. A caller learns them
through ``on_position`` as they change (never for 0), and ``status`` reports the line.
A cancelled caller leaves the line at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from copilot.fileio import make_private_dir
from copilot.llm.errors import LLMError

POLL_S = 0.1


@dataclass(frozen=True)
class QueueStatus:
    running: bool  # a generation of this process is on the server now
    waiting: int  # calls of this process waiting behind it
    elsewhere: bool  # another copilot process holds the server (this process may wait)

    def as_dict(self) -> dict[str, object]:
        return {"running": self.running, "waiting": self.waiting, "elsewhere": self.elsewhere}


class GenerationQueue:
    """The line in front of one model server."""

    def __init__(self, lock_file: Path) -> None:
        self.lock_file = lock_file
        self._cond = threading.Condition()
        self._line: list[object] = []  # tickets; the head is the one generating
        self._holder = False  # the head holds the cross-process lock
        self._blocked = False  # the head waits for another process

    def status(self) -> QueueStatus:
        with self._cond:
            return QueueStatus(
                running=self._holder,
                waiting=len(self._line) - (1 if self._line else 0),
                elsewhere=self._blocked,
            )

    @contextlib.contextmanager
    def turn(
        self,
        *,
        cancel: threading.Event | None = None,
        on_position: Callable[[int], None] | None = None,
    ) -> Iterator[None]:
        """Wait for this call's turn, hold it for the body, then pass it on."""
        ticket = object()
        with self._cond:
            self._line.append(ticket)
        try:
            self._wait_in_line(ticket, cancel, on_position)
            with self._cross_process(cancel, on_position):
                yield
        finally:
            self._leave(ticket)

    @contextlib.contextmanager
    def idle_turn(self) -> Iterator[bool]:
        """The turn only if nobody holds or waits for the server, without waiting: yields
        True with the turn held, else False at once. For work that is worth doing only
        when the model would sit idle (reading ahead, ``chat.read_ahead``): it never makes
        a caller wait behind it for more than the one call it had already begun."""
        ticket = object()
        with self._cond:
            if self._line:
                yield False
                return
            self._line.append(ticket)
        try:
            make_private_dir(self.lock_file.parent)
            with self.lock_file.open("a") as handle:
                if not _try_lock(handle):
                    yield False
                    return
                with self._cond:
                    self._holder = True
                try:
                    yield True
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            self._leave(ticket)

    def _leave(self, ticket: object) -> None:
        """Take ``ticket`` out of the line and wake whoever waits for the turn."""
        with self._cond:
            self._line.remove(ticket)
            self._holder = self._blocked = False
            self._cond.notify_all()

    def _wait_in_line(
        self,
        ticket: object,
        cancel: threading.Event | None,
        on_position: Callable[[int], None] | None,
    ) -> None:
        shown = 0
        while True:
            with self._cond:
                position = self._line.index(ticket)
                # The head waiting on another process still counts as one ahead.
                if position and self._blocked:
                    position += 1
                if position == 0:
                    return
                if position == shown and not _cancelled(cancel):
                    self._cond.wait(POLL_S)
                    continue
            _check(cancel, position)
            if position != shown and on_position is not None:
                on_position(position)
            shown = position

    @contextlib.contextmanager
    def _cross_process(
        self, cancel: threading.Event | None, on_position: Callable[[int], None] | None
    ) -> Iterator[None]:
        make_private_dir(self.lock_file.parent)
        with self.lock_file.open("a") as handle:
            if not _try_lock(handle):
                with self._cond:
                    self._blocked = True
                if on_position is not None:
                    on_position(1)
                while not _try_lock(handle):
                    _check(cancel, 1)
                    with self._cond:
                        self._cond.wait(POLL_S)
            with self._cond:
                self._blocked, self._holder = False, True
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _check(cancel: threading.Event | None, position: int) -> None:
    if _cancelled(cancel):
        raise LLMError(
            "cancelled",
            f"Cancelled while waiting for the embedded model ({position} ahead in the queue).",
        )


_queues: dict[Path, GenerationQueue] = {}
_queues_lock = threading.Lock()


def queue_for(lock_file: Path) -> GenerationQueue:
    """The one line of this process for the server guarded by ``lock_file``."""
    with _queues_lock:
        queue = _queues.get(lock_file)
        if queue is None:
            queue = _queues[lock_file] = GenerationQueue(lock_file)
        return queue
