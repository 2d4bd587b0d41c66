"""Parse untrusted files in worker processes with a time and memory limit.

Why processes and not threads: a hostile file can make a parser allocate without bound,
loop forever, or crash the interpreter in a C extension. Inside a worker with an address
space limit (``RLIMIT_AS``) that becomes a ``MemoryError`` or a dead worker, and a
deadline lets the pool kill a worker that hangs; either way the pool reports a failure
for that one file, starts a fresh worker, and the sync goes on. Workers also run in
parallel with embedding in the main process, which is most of the first-sync speed-up.

Results come back in submission order so the pipeline can store a connector checkpoint
only once everything before it is done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from connectors.types import Parsed, ParseError

T = TypeVar("T")
WAIT_S = 1.0  # longest wait for a worker before ``run``'s caller hears from it


@dataclass(frozen=True)
class ParseTask:
    """A file to parse, or (``reader`` set) to hand to ``reader(data, name, *args)``.

    Either way the worker first checks the container (``check_container``), so no parser
    or reader sees bytes that are not what their name says. ``reader`` must be a module-level
    function (it is sent by reference) that raises ``ParseError`` for a bad file.
    """

    data: bytes = field(repr=False)
    name: str
    media_type: str
    reader: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """A parse result, or the reason there is none."""

    parsed: Parsed | None
    error: str | None = None


def _serve(memory_mb: int) -> None:
    """The worker's loop: read a task, parse it, answer; one process, many files."""
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Answers go over a private copy of stdout; a parser that prints cannot corrupt them.
    inbox, outbox = Connection(os.dup(0)), Connection(os.dup(1))
    os.dup2(2, 1)
    from connectors.parsers import parse
    from connectors.parsers.safety import check_container

    def work(task: ParseTask) -> Any:
        if task.reader is None:
            return parse(task.data, task.name, task.media_type)
        check_container(task.data, task.name, task.media_type)
        return task.reader(task.data, task.name, *task.args)

    while True:
        try:
            task = inbox.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if task is None:
            return
        try:
            result: Any = ("ok", work(task))
        except ParseError as exc:
            result = ("error", str(exc))
        except MemoryError:
            result = ("error", f"{task.name} needs more than {memory_mb} MB to parse; skipped")
        except RecursionError:
            result = ("error", f"{task.name} is nested too deeply to parse")
        except Exception as exc:  # a library bug on odd input must not end the sync
            result = ("error", f"{task.name} could not be parsed ({type(exc).__name__}: {exc})")
        del task
        try:
            outbox.send(result)
        except MemoryError:
            outbox.send(("error", "the parsed text is too large to handle; skipped"))


class _Slot:
    """One worker process and the task it is running.

    Workers are started as ``python -m copilot.ingest.sandbox`` rather than through
    ``multiprocessing``: a spawned multiprocessing child re-imports the caller's main
    script, which breaks any script that does not guard itself with ``__main__``.
    """

    def __init__(self, memory_mb: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "copilot.ingest.sandbox", str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.outbox = Connection(os.dup(self.process.stdin.fileno()))
        self.conn = Connection(os.dup(self.process.stdout.fileno()))
        self.process.stdin.close()
        self.process.stdout.close()
        self.entry: _Entry[Any] | None = None
        self.started = 0.0

    def send(self, task: ParseTask | None) -> None:
        self.outbox.send(task)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        self.conn.close()
        self.outbox.close()

    def stop(self) -> None:
        try:
            self.send(None)
            self.process.wait(1)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.conn.close()
        self.outbox.close()


class _Entry(Generic[T]):
    __slots__ = ("done", "key", "outcome", "task")

    def __init__(self, key: T, task: ParseTask | None) -> None:
        self.key = key
        self.task = task
        self.outcome: Outcome | None = None if task else Outcome(None)
        self.done = task is None


class ParsePool:
    """A fixed set of sandboxed parse workers."""

    def __init__(self, workers: int = 2, timeout_s: float = 60.0, memory_mb: int = 1536) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._slots = [_Slot(memory_mb) for _ in range(workers)]

    def close(self) -> None:
        for slot in self._slots:
            slot.stop()
        self._slots = []

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        jobs: Iterable[tuple[T, ParseTask | None]],
        window: int = 16,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[tuple[T, Outcome]]:
        """Parse each job's task, yielding ``(key, outcome)`` in the order of ``jobs``.

        A job whose task is None is a marker (a checkpoint, an item with nothing to parse)
        that passes through in order. At most ``window`` jobs are read ahead, so the
        caller's generator can keep adding work (attachments) as results arrive.
        ``on_wait`` is called about every ``WAIT_S`` while a slow file holds the next
        result back (the sync's progress report: a stalled line looks like a hang).
        """
        source = iter(jobs)
        pending: deque[_Entry[T]] = deque()
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    key, task = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(_Entry(key, task))
            self._assign(pending)
            while pending and pending[0].done:
                entry = pending.popleft()
                assert entry.outcome is not None
                yield entry.key, entry.outcome
            if not pending:
                if exhausted:
                    return
                continue
            if not pending[0].done:
                self._collect()
                if on_wait is not None and not pending[0].done:
                    on_wait()

    def _assign(self, pending: deque[_Entry[T]]) -> None:
        queued = (e for e in pending if not e.done and not self._running(e))
        for slot in self._slots:
            if slot.entry is not None:
                continue
            entry = next(queued, None)
            if entry is None:
                return
            slot.entry, slot.started = entry, time.monotonic()
            try:
                slot.send(entry.task)
            except (OSError, ValueError):
                self._fail(slot, "the parser process could not take the file")

    def _running(self, entry: _Entry[Any]) -> bool:
        return any(slot.entry is entry for slot in self._slots)

    def _collect(self) -> None:
        busy = [s for s in self._slots if s.entry is not None]
        if not busy:
            return
        deadline = min(s.started for s in busy) + self.timeout_s
        timeout = min(deadline - time.monotonic(), WAIT_S)
        ready = wait([s.conn for s in busy], timeout=max(timeout, 0.01))
        for slot in busy:
            if slot.conn in ready:
                try:
                    status, value = slot.conn.recv()
                except (EOFError, OSError):
                    self._fail(slot, "the parser process crashed on it")
                    continue
                except MemoryError:
                    self._fail(slot, "its text is too large to handle")
                    continue
                entry = slot.entry
                assert entry is not None
                entry.outcome = Outcome(value, None) if status == "ok" else Outcome(None, value)
                entry.done, slot.entry = True, None
            elif time.monotonic() - slot.started > self.timeout_s:
                self._fail(slot, f"parsing took longer than {self.timeout_s:g} s; stopped")

    def _fail(self, slot: _Slot, reason: str) -> None:
        entry = slot.entry
        assert entry is not None and entry.task is not None
        entry.outcome = Outcome(None, f"{entry.task.name}: {reason}")
        entry.done = True
        slot.kill()
        self._slots[self._slots.index(slot)] = _Slot(self.memory_mb)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
