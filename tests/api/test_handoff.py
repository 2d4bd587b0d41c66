"""The API's own costs under load: events from a run's thread reach the loop in order, in
batches, none lost; what the server loaded is kept out of the cyclic collector."""

from __future__ import annotations

import asyncio
import gc
import threading

import httpx

from copilot.api.app import create_app
from copilot.api.streaming import Handoff
from copilot.config import Settings
from tests.fakes.api_server import serving


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


def test_a_running_server_keeps_what_it_loaded_out_of_the_collector(tmp_path):
    """``copilot serve`` freezes the ~300k objects it loaded (a full collection of them
    stopped every stream for 218 ms) and unfreezes them when it stops."""
    settings = Settings(home=tmp_path / "home", auth="dev")
    with serving(create_app(settings)) as url:
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        assert gc.get_freeze_count() > 100_000
    assert gc.get_freeze_count() == 0
