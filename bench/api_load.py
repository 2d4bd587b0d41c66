"""API under load: concurrent streaming skill runs plus searches, against a scripted LLM.

Three processes, so no two share a GIL: the API (``create_app`` under uvicorn, as ``copilot
serve`` runs it, dev-mode auth), the scripted OpenAI-compatible LLM of ``tests/llm_server.py``
(every answer ``--tokens`` words, one per streamed chunk, ``--chunk-delay`` apart, the first
chunk written as soon as the request is read), and this load generator (one asyncio loop,
httpx). The user's index is seeded first with ``--docs`` small generated documents through
``POST /v1/sync/local``, so every ``ask`` run does real retrieval (query embedding, hybrid
search, packing) before it calls the model.

For each concurrency N (``--levels``): N tasks run ``ask`` back to back with
``Accept: text/event-stream`` (starts spread over one answer's length, no think time) while
``--searchers`` loops call ``POST /v1/search`` (``--search-pause`` between calls), for
``--duration`` seconds. The baseline, run just before at the same N: N tasks streaming the
same answer straight from the scripted LLM, no copilot in between.

Overhead before the first streamed byte, excluding the LLM's own delay. Every run carries a
tag in its question; the LLM process records, per tag, when it had read the request
(``received``) and when it had written the first content chunk (``written``), on the
system-wide monotonic clock that this process reads too. Per run:

    overhead = (client reads the first ``delta`` - client sends) - (written - received)

that is: time to the LLM (authentication, rate limit, queueing for a run thread, skill
lookup, retrieval, packing, rendering, opening the model connection) plus the way back of
the first chunk (the SDK's parsing, the event queue, SSE framing, the client's read). Both
parts are reported too (``to_llm_ms``, ``relay_ms``). The LLM's own delay is ~0 by design,
so the figure also equals the plain time to the first delta, minus nothing hidden. The
client's own event-loop lag is reported (``client_lag_p95_ms``) since it inflates both sides.
With ``--trace`` the API also marks each run's stages (``stages``: accept, queue, prepare with
search/pack/render, call); see ``bench/api_load_servers.install_trace``.

While a sync runs (``--during-sync DIR``): after the idle phase at each N, the same phase
again while the API's job manager syncs DIR (``POST /v1/sync/local`` as a user of its own
per level, ``dev:syncN``, so every level indexes DIR from scratch). The sync starts first
and the phase begins once it is running; the record (``copilot_during_sync``) says how much
of the phase it covered (``sync.running_at_end``, items synced during the phase). DIR
should take longer to index than one phase (a few thousand documents for 60 s); the job is
cancelled after the phase. The summary then checks both: idle and during a sync.

Errors: any non-200, any ``error`` event, a stream without ``done``, a timeout. Memory: the
API process's RSS, sampled every second (peak). CPU: cores used per process over the phase.

Prints JSON lines (each with a "name"): machine, seed, direct, copilot, copilot_during_sync,
ratio, summary.

    .venv/bin/python bench/api_load.py [--levels 20,50] [--duration 60] [--docs 300]
    .venv/bin/python bench/api_load.py --levels 20 --duration 10      # smoke run, ~40 s
    .venv/bin/python bench/api_load.py --levels 20 --duration 30 --during-sync ~/Documents
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COPILOT_MODELS_DIR", str(Path(sys.prefix) / "share" / "copilot-models"))
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from bench.api_load_servers import spawn  # noqa: E402

TARGET_P95_MS = 100.0
TARGET_N = 20
USER = {"Authorization": "Bearer dev:anna"}
FIRST_CONTENT = re.compile(rb'"content": "[^"]')
PROJECTS = "Atlas Borealis Cobalt Delta Ember Falcon Granite Harbor Iris Juniper".split()  # noqa: SIM905
TOPICS = (
    ("budget", "The {p} budget for Q{q} is {n},000 EUR, approved by {who} on {d} {m}."),
    ("risk", "The largest {p} risk is the {thing}, which {who} owns until {d} {m}."),
    ("deadline", "The {p} delivery deadline moved to {d} {m} because of the {thing}."),
    ("supplier", "{p} buys from Contoso; {who} negotiated {n} EUR per unit in {m}."),
    ("hiring", "{p} hires {q} engineers in Q{q}; {who} runs the interviews from {d} {m}."),
)
PEOPLE = ["Anna", "Bob", "Chen", "Dana", "Erik", "Fatima", "Goran", "Hana"]
THINGS = ["legacy invoice export", "data migration", "vendor contract", "security audit"]
MONTHS = ["January", "March", "May", "July", "September", "November"]


def emit(record: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(record), flush=True)
    return record


def cpu_probe_ms() -> float:
    """A fixed piece of Python work, timed: this machine's speed varies from minute to
    minute (the same loop took 1.3 s and 2.2 s a minute apart, idle), so each phase says
    how fast the CPU was at its start and end; compare phases only at similar probes."""
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    return round((time.perf_counter() - start) * 1000, 1)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


# -- seeding -------------------------------------------------------------------------------


def write_docs(folder: Path, count: int, rng: random.Random) -> None:
    for i in range(count):
        p = PROJECTS[i % len(PROJECTS)]
        lines = [f"# {p} notes {i}", ""]
        for _ in range(rng.randint(3, 6)):
            _, text = rng.choice(TOPICS)
            lines.append(text.format(p=p, q=rng.randint(1, 4), n=rng.randint(2, 90),
                                     who=rng.choice(PEOPLE), d=rng.randint(1, 28),
                                     m=rng.choice(MONTHS), thing=rng.choice(THINGS)))  # fmt: skip
        (folder / f"{p.lower()}-{i:04d}.md").write_text("\n".join(lines) + "\n")


def question(rng: random.Random) -> str:
    topic, _ = rng.choice(TOPICS)
    return f"What is the {rng.choice(PROJECTS)} {topic} status?"


async def seed(client: httpx.AsyncClient, folder: Path, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    job = (await client.post("/v1/sync/local", json={"path": str(folder)}, headers=USER)).json()
    while True:
        job = (await client.get(f"/v1/sync/{job['id']}", headers=USER)).json()
        if job["status"] not in ("queued", "running"):
            break
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"the seeding sync did not finish in {timeout:g} s")
        await asyncio.sleep(0.5)
    if job["status"] != "done":
        raise RuntimeError(f"the seeding sync ended {job['status']}: {job.get('error')}")
    return {"sync_s": round(time.monotonic() - start, 1), "progress": job["progress"]}


# -- one run, either way -------------------------------------------------------------------


async def copilot_run(client: httpx.AsyncClient, tag: str, text: str) -> dict[str, Any]:
    body = {"inputs": {"question": f"{text} [bench {tag}]"}}
    headers = {**USER, "Accept": "text/event-stream"}
    sent = time.monotonic()
    first = None
    done = failed = False
    async with client.stream("POST", "/v1/skills/ask/run", json=body, headers=headers) as r:
        tail = b""
        async for chunk in r.aiter_raw():
            window = tail + chunk
            if first is None and b"event: delta" in window:
                first = time.monotonic()
            done = done or b"event: done" in window
            failed = failed or b"event: error" in window
            tail = window[-16:]
    ok = r.status_code == 200 and done and not failed and first is not None
    return {"tag": tag, "sent": sent, "first": first, "end": time.monotonic(), "ok": ok,
            "status": r.status_code}  # fmt: skip


async def direct_run(client: httpx.AsyncClient, tag: str, text: str) -> dict[str, Any]:
    body = {"model": "bench", "stream": True,
            "messages": [{"role": "user", "content": f"{text} [bench {tag}]"}]}  # fmt: skip
    sent = time.monotonic()
    first = None
    done = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        tail = b""
        async for chunk in r.aiter_raw():
            window = tail + chunk
            if first is None and FIRST_CONTENT.search(window):
                first = time.monotonic()
            done = done or b"data: [DONE]" in window
            tail = window[-16:]
    ok = r.status_code == 200 and done and first is not None
    return {"tag": tag, "sent": sent, "first": first, "end": time.monotonic(), "ok": ok,
            "status": r.status_code}  # fmt: skip


# -- what one run's time went to ----------------------------------------------------------

TRACED = ("accept", "queue", "prepare", "search_ms", "pack_ms", "render_ms", "call")


def stages(run: dict[str, Any], timings: dict[str, list[float]], trace: dict) -> dict[str, float]:
    """Milliseconds per stage of one run; see the module docstring for the method."""
    received, written = timings[run["tag"]]
    out = {
        "first_byte": run["first"] - run["sent"],
        "llm_own": written - received,
        "to_llm": received - run["sent"],
        "relay": run["first"] - written,
        "full_run": run["end"] - run["sent"],
    }
    out = {k: v * 1000 for k, v in out.items()}
    out["overhead"] = out["first_byte"] - out["llm_own"]
    got = trace.get(run["tag"]) or {}
    if "prepared" in got:  # --trace: the API's own marks, in its process
        out.update(
            accept=(got["route"] - run["sent"]) * 1000,  # HTTP, auth, rate limit, validation
            queue=(got["job"] - got["route"]) * 1000,  # response start, wait for a run thread
            prepare=(got["prepared"] - got["job"]) * 1000,
            call=(received - got["prepared"]) * 1000,  # redaction, SDK, connect, send
            search_ms=got.get("search_ms", 0.0),
            pack_ms=got.get("pack_ms", 0.0),
            render_ms=got.get("render_ms", 0.0) + got.get("final_render_ms", 0.0),
        )
    return out


def spread(per: list[dict[str, float]], keys: list[str], qs: tuple[int, ...]) -> dict[str, Any]:
    names = {50: "p50", 95: "p95", 100: "max"}
    return {
        f"{k.removesuffix('_ms')}_{names[q]}_ms": pct([p[k] for p in per if k in p], q)
        for k in keys
        for q in qs
    }


# -- one phase -----------------------------------------------------------------------------


async def phase(args: argparse.Namespace, url: str, n: int, *, direct: bool,
                llm: str, api_pid: int, llm_pid: int, name: str | None = None,
                ) -> dict[str, Any]:  # fmt: skip
    """N run loops (+ search loops unless direct) for args.duration; stats of the runs."""
    run = direct_run if direct else copilot_run
    limits = httpx.Limits(max_connections=n + args.searchers + 8)
    timeout = httpx.Timeout(args.timeout)
    client = httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout)
    rng = random.Random(n * 2 + direct)
    runs: list[dict[str, Any]] = []
    searches: list[float] = []
    errors: list[str] = []
    lags: list[float] = []
    rss: list[int] = []
    answer_s = args.tokens * args.chunk_delay
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.duration

    async def run_loop(i: int) -> None:
        await asyncio.sleep(answer_s * i / n)  # spread the starts over one answer
        k = 0
        while loop.time() < deadline:
            tag = f"{'d' if direct else 'c'}{n}-{i}-{k}"
            k += 1
            try:
                async with asyncio.timeout(args.timeout):
                    got = await run(client, tag, question(rng))
            except Exception as exc:
                errors.append(f"{tag}: {type(exc).__name__}: {exc}"[:200])
                continue
            runs.append(got)
            if not got["ok"]:
                errors.append(f"{tag}: status {got['status']}, incomplete or error event")

    async def search_loop() -> None:
        while loop.time() < deadline:
            start = time.monotonic()
            try:
                r = await client.post("/v1/search", json={"query": question(rng)}, headers=USER)
                r.raise_for_status()
                searches.append((time.monotonic() - start) * 1000)
            except Exception as exc:
                errors.append(f"search: {type(exc).__name__}: {exc}"[:200])
            await asyncio.sleep(args.search_pause)

    async def sample() -> None:
        proc = psutil.Process(api_pid)
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            lags.append((loop.time() - before - 0.05) * 1000)
            if len(lags) % 20 == 0:
                rss.append(proc.memory_info().rss)

    # The API's CPU counts its workers too (``--workers``: children of the API process).
    api_procs = [psutil.Process(api_pid), *psutil.Process(api_pid).children()]
    procs = {"api": api_procs, "llm": [psutil.Process(llm_pid)], "client": [psutil.Process()]}

    def cpu_of(group: list[psutil.Process]) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in group)

    cpu0 = {k: cpu_of(group) for k, group in procs.items()}
    load0, probe0 = os.getloadavg()[0], cpu_probe_ms()
    started = time.monotonic()
    sampler = asyncio.create_task(sample())
    try:
        loops = [run_loop(i) for i in range(n)]
        if not direct:
            loops += [search_loop() for _ in range(args.searchers)]
        await asyncio.gather(*loops)
    finally:
        sampler.cancel()
        await client.aclose()
    wall = time.monotonic() - started
    cpu = {f"cpu_{k}": round((cpu_of(group) - cpu0[k]) / wall, 2)
           for k, group in procs.items()}  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as c:
        timings = (await c.get(f"{llm}/bench/timings")).json()
        trace = (await c.get(f"{url}/bench/trace")).json() if args.trace and not direct else {}
    per = [stages(r, timings, trace) for r in runs if r["ok"] and r["tag"] in timings]
    out = {
        "name": name or ("direct" if direct else "copilot"),
        "concurrency": n,
        "seconds": round(wall, 1),
        "runs": len(runs),
        "runs_per_s": round(len(runs) / wall, 2),
        "errors": len(errors),  # exceptions, non-200s, error events, streams without done
        "untimed": sum(1 for r in runs if r["ok"] and r["tag"] not in timings),
        **spread(per, ["first_byte", "overhead"], (50, 95, 100)),
        **spread(per, ["to_llm", "relay", "llm_own", "full_run"], (50, 95)),
        "client_lag_p95_ms": pct(lags, 95),
        **cpu,
        "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "cpu_probe_ms": [probe0, cpu_probe_ms()],
    }
    if trace:
        out["stages"] = spread(per, list(TRACED), (50, 95))
    if not direct:
        out.update(
            searches=len(searches),
            searches_per_s=round(len(searches) / wall, 2),
            search_p50_ms=pct(searches, 50),
            search_p95_ms=pct(searches, 95),
            api_rss_peak_mb=round(max(rss, default=0) / 2**20, 1),
        )
    if errors:
        out["error_samples"] = errors[:5]
    return out


# -- a sync running beside the load --------------------------------------------------------


def sync_user(n: int) -> str:
    return f"sync{n}"


async def during_sync(args: argparse.Namespace, api: str, n: int, kw: dict[str, Any]) -> dict:
    """The copilot phase at N while a sync of ``args.during_sync`` runs (module docstring)."""
    who = {"Authorization": f"Bearer dev:{sync_user(n)}"}
    async with httpx.AsyncClient(base_url=api, timeout=args.timeout) as client:
        started = await client.post("/v1/sync/local", json={"path": str(args.during_sync)},
                                    headers=who)  # fmt: skip
        if started.status_code != 202:
            raise RuntimeError(f"the sync of {args.during_sync} was refused: {started.text}")
        job = started.json()
        deadline = time.monotonic() + 60
        while job["status"] == "queued" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            job = (await client.get(f"/v1/sync/{job['id']}", headers=who)).json()
        before = job
        out = await phase(args, api, n, direct=False, name="copilot_during_sync", **kw)
        after = (await client.get(f"/v1/sync/{job['id']}", headers=who)).json()
        await client.delete(f"/v1/sync/{job['id']}", headers=who)  # the next level's is new
        stopping = after
        while stopping["status"] == "running":  # the next phase starts without this sync
            await asyncio.sleep(0.2)
            stopping = (await client.get(f"/v1/sync/{job['id']}", headers=who)).json()
    seen = (after["progress"].get("seen") or 0) - (before["progress"].get("seen") or 0)
    out["sync"] = {
        "status_at_start": before["status"],
        "running_at_end": after["status"] == "running",
        "items_during_phase": seen,
        "total": after["progress"].get("total"),
        "chunks_during_phase": (after["progress"].get("chunks") or 0)
        - (before["progress"].get("chunks") or 0),
    }
    return out


# -- the bench -----------------------------------------------------------------------------


async def bench(args: argparse.Namespace, api: str, llm: str, api_pid: int, llm_pid: int,
                docs: Path) -> None:  # fmt: skip
    async with httpx.AsyncClient(base_url=api, timeout=args.timeout) as client:
        info = await seed(client, docs, timeout=600)
        rss = psutil.Process(api_pid).memory_info().rss
        emit({"name": "seed", "docs": args.docs, **info, "api_rss_mb": round(rss / 2**20, 1)})
        rng = random.Random(0)
        for i in range(5):  # warm up: first model connection, first render, first search
            await copilot_run(client, f"warm-{i}", question(rng))
            await client.post("/v1/search", json={"query": question(rng)}, headers=USER)
    results: dict[int, dict[str, Any]] = {}
    busy: dict[int, dict[str, Any]] = {}
    for n in args.levels:
        kw = {"llm": llm, "api_pid": api_pid, "llm_pid": llm_pid}
        base = None if args.skip_baseline else emit(await phase(args, llm, n, direct=True, **kw))
        ours = emit(await phase(args, api, n, direct=False, **kw))
        results[n] = ours
        if args.during_sync is not None:
            busy[n] = emit(await during_sync(args, api, n, kw))
        if base and base["first_byte_p95_ms"] and ours["first_byte_p95_ms"]:
            emit({
                "name": "ratio", "concurrency": n,
                "first_byte_p95_copilot_over_direct": round(
                    ours["first_byte_p95_ms"] / base["first_byte_p95_ms"], 1),
                "first_byte_p95_added_ms": round(
                    ours["first_byte_p95_ms"] - base["first_byte_p95_ms"], 1),
                "full_run_p95_added_ms": round(
                    ours["full_run_p95_ms"] - base["full_run_p95_ms"], 1),
            })  # fmt: skip
    checked = TARGET_N if TARGET_N in results else min(results)
    p95 = results[checked]["overhead_p95_ms"]
    errors = sum(r["errors"] for r in [*results.values(), *busy.values()])
    measured = [p95]
    summary: dict[str, Any] = {
        "name": "summary", "target_overhead_p95_ms": TARGET_P95_MS, "concurrency": checked,
        "overhead_p95_ms": p95, "errors": errors,
    }  # fmt: skip
    if busy:
        during = busy[checked]
        summary["overhead_p95_ms_during_sync"] = during["overhead_p95_ms"]
        summary["sync_running_at_end"] = during["sync"]["running_at_end"]
        measured.append(during["overhead_p95_ms"])
    summary["pass"] = all(m is not None and m < TARGET_P95_MS for m in measured) and not errors
    summary["load_avg"] = round(os.getloadavg()[0], 2)
    emit(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="20,50", help="concurrent runs, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--searchers", type=int, default=2)
    parser.add_argument("--search-pause", type=float, default=0.1)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes on one socket (copilot serve --workers)")  # fmt: skip
    parser.add_argument("--trace", action="store_true", help="time the API's stages per run")
    parser.add_argument("--during-sync", type=Path, metavar="DIR",
                        help="also measure each level while the API syncs this folder")  # fmt: skip
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.trace and args.workers > 1:  # a worker's app is built by copilot.api.workers
        parser.error("--trace marks the stages in one API process only: use --workers 1")
    if args.during_sync is not None:
        args.during_sync = args.during_sync.expanduser().resolve()
        if not args.during_sync.is_dir():
            parser.error(f"--during-sync: {args.during_sync} is not a folder")
    emit({"name": "machine", "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
          "levels": args.levels, "duration_s": args.duration, "tokens": args.tokens,
          "chunk_delay_s": args.chunk_delay, "searchers": args.searchers,
          "search_pause_s": args.search_pause, "workers": args.workers,
          "during_sync": str(args.during_sync) if args.during_sync else None})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        write_docs(docs, args.docs, random.Random(0))
        llm_argv = ["--tokens", str(args.tokens), "--chunk-delay", str(args.chunk_delay)]
        api_argv = ["--home", str(Path(tmp) / "home"), *(["--trace"] if args.trace else []),
                    "--workers", str(args.workers)]  # fmt: skip
        if args.during_sync is not None:
            api_argv += ["--sync-root", str(args.during_sync)]
            api_argv += [a for n in args.levels for a in ("--dev-user", sync_user(n))]
        with (
            spawn("llm", *llm_argv) as (llm_pid, llm),
            spawn("api", "--llm-root", llm, *api_argv) as (api_pid, api),
        ):
            asyncio.run(bench(args, api, llm, api_pid, llm_pid, docs))


if __name__ == "__main__":
    main()
