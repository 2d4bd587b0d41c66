"""Reading a streamed answer with deadlines the caller controls, whatever the HTTP layer does.

The SDK's timeout is one number for every socket read, but a model call has two very
different waits: before the first token the server reads the whole prompt (minutes for a
long prompt on a CPU), after it tokens come every few tenths of a second. And a user who
presses stop must not wait for either. So the SDK stream is read on a helper thread that
hands each chunk over a queue, and the caller's thread waits on that queue with its own
deadline (first token, then the longest gap between chunks) while watching the cancel
event. On cancel or timeout the caller leaves at once and hangs up the connection (a
socket shutdown, which also wakes the helper from its read), so the server sees the client
go even while it is still reading the prompt; before the response has begun, the helper
closes it as soon as it arrives, and the SDK's own, looser, timeout bounds that wait.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

POLL_S = 0.05  # how often a waiting caller looks at the cancel event

EventKind = Literal["chunk", "end", "error"]


class Deadline(Exception):
    """The server sent nothing in time: ``first`` before the first chunk, else mid-stream."""

    def __init__(self, first: bool, waited_s: float) -> None:
        super().__init__("deadline")
        self.first = first
        self.waited_s = waited_s


class Stopped(Exception):
    """The caller's cancel event was set while waiting."""


class Helpers:
    """Daemon threads for the readers, kept for the next answer.

    A new thread per answer was 4 % of the API process's interpreter time under 20 streams
    (py-spy). Daemon threads, as before, because a reader may sit in a socket read that only
    the server ends, and that must never keep the process from exiting. A task starts a
    thread unless enough threads wait for tasks (``queued`` > ``waiting``), so no task
    waits for another to finish; a thread idle for ``idle_s`` leaves if enough others wait.
    """

    def __init__(self, idle_s: float = 60.0) -> None:
        self.idle_s = idle_s
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._queued = 0  # tasks put and not yet taken
        self._waiting = 0  # threads waiting for a task
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Threads waiting for a task."""
        return self._waiting

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            self._queued += 1
            start = self._queued > self._waiting
            self._tasks.put(task)
        if start:
            threading.Thread(target=self._serve, name="llm-stream", daemon=True).start()

    def _serve(self) -> None:
        with self._lock:
            self._waiting += 1
        while True:
            try:
                task = self._tasks.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._queued < self._waiting:  # the others can take every task
                        self._waiting -= 1
                        return
                continue
            with self._lock:
                self._waiting -= 1
                self._queued -= 1
            with contextlib.suppress(BaseException):  # a task reports its own errors
                task()
            with self._lock:
                self._waiting += 1


HELPERS = Helpers()


class Reader:
    """Chunks of one streamed response, read on a helper thread.

    ``open_stream`` makes the request and returns the SDK stream (iterable, with
    ``close``); it runs on the helper thread, so its waiting counts against the deadlines.
    """

    def __init__(self, open_stream: Callable[[], Iterable[Any]]) -> None:
        self._events: queue.SimpleQueue[tuple[EventKind, Any]] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self._stream: Any = None  # the SDK stream, once its response has begun
        self.started = time.monotonic()
        self.first_chunk_s: float | None = None
        HELPERS.run(lambda: self._run(open_stream))

    def _run(self, open_stream: Callable[[], Iterable[Any]]) -> None:
        stream: Any = None
        try:
            stream = open_stream()
            self._stream = stream
            if self._abandoned.is_set():
                return
            for chunk in stream:
                if self._abandoned.is_set():
                    return
                self._events.put(("chunk", chunk))
            self._events.put(("end", None))
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._events.put(("error", exc))
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def abandon(self) -> None:
        """Stop reading and hang up; the helper closes the stream when it wakes."""
        if self._abandoned.is_set():
            return
        self._abandoned.set()
        if self._stream is not None:
            _hang_up(self._stream)

    def chunks(
        self, *, first_s: float, gap_s: float, cancel: threading.Event | None
    ) -> Iterator[Any]:
        """Each chunk as it arrives; raises ``Deadline``, ``Stopped`` or the stream's own
        error. Leaving the loop early (break, an exception in the caller) abandons it."""
        deadline = self.started + first_s
        ended = False
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Stopped()
                now = time.monotonic()
                if now >= deadline:
                    first = self.first_chunk_s is None
                    raise Deadline(first, first_s if first else gap_s)
                try:
                    kind, value = self._events.get(timeout=min(POLL_S, deadline - now))
                except queue.Empty:
                    continue
                if kind in ("end", "error"):
                    ended = True  # the helper is done: nothing to hang up
                    if kind == "error":
                        raise value
                    return
                now = time.monotonic()
                if self.first_chunk_s is None:
                    self.first_chunk_s = now - self.started
                deadline = now + gap_s
                yield value
        finally:
            if not ended:
                self.abandon()


def _hang_up(stream: Any) -> None:
    """Shut down the socket under an SDK stream, from any thread (best effort: a stream
    whose HTTP library does not expose it is closed by its own thread later)."""
    with contextlib.suppress(Exception):
        network = stream.response.extensions["network_stream"]
        sock = network.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
