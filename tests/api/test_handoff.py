"""Events from a run's thread reach the event loop in order, in batches, none lost."""

from __future__ import annotations

import asyncio
import threading

from copilot.api.streaming import Handoff


def test_every_event_arrives_once_in_order_from_another_thread():
    async def main() -> list[int]:
        handoff = Handoff(asyncio.get_running_loop())

        def produce() -> None:
            for i in range(5000):
                handoff.put("delta", i)
            handoff.put("end", None)

        threading.Thread(target=produce).start()
        got: list[int] = []
        while True:
            batch = await handoff.take()
            got += [data for kind, data in batch if kind == "delta"]
            if batch[-1][0] == "end":
                return got

    got = asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert got == list(range(5000))


def test_an_idle_loop_gets_each_event_as_it_is_put():
    async def main() -> list[list[tuple[str, object]]]:
        handoff = Handoff(asyncio.get_running_loop())
        batches = []
        for i in range(3):
            threading.Thread(target=handoff.put, args=("delta", i)).start()
            batches.append(await handoff.take())
        return batches

    assert asyncio.run(main()) == [[("delta", 0)], [("delta", 1)], [("delta", 2)]]
