"""The embedded engine against the same llama.cpp server called directly.

Issue 14's benchmark: summarise a 300-word mail and draft a reply to it, (a) through the
copilot (``SkillRunner.run`` on the ``embedded`` engine: template, fence, packing, prefill,
citation checks, run record) and (b) with a plain prompt sent straight to the same server
through the ``openai`` SDK. Per call: time to first token and total time; at the end the
peak RSS of the model server and of this process. Goals: first token ≤ 3 s with the cached
prefix, total ≤ 1.2 × the direct call.

The two sides alternate (copilot, direct, copilot, direct …) so they share the machine's
load. The first copilot call of each skill fills llama.cpp's prompt cache with the skill's
fixed prefix and is reported as ``cold``; the rest are ``warm``. Retrieval is off (the
mail is given as the input), so both sides see the same text.

With ``--read-ahead S`` a third side runs other new mails as Outlook's pane does: the
prompt is read ahead when the mail opens (``SkillRunner.read_ahead``; a draft's without
the notes the user has yet to type) and the run is clicked S seconds later; its times
count from the click.

Prints JSON lines: one per call (name "call", with the run's model calls and tokens), then
one "summary" per skill and side with medians and the ratio copilot/direct.

    .venv/bin/python bench/embedded.py [--reps 3] [--model-file FILE] [--read-ahead 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAIL = """From: Maria Lopez <maria.lopez@contoso.example>
To: Daniel Berg <daniel.berg@contoso.example>
Subject: Atlas migration: new go-live date and open questions

Hi Daniel,

after yesterday's steering meeting we agreed to move the go-live of the Atlas billing
migration from 14 March to 21 March. The main reason is the legacy invoice export: it
still depends on the nightly batch job, and the rehearsal on 28 February showed that two
of the eleven export files are written in the old format. Tom is rewriting the mapping
and expects to finish by 5 March, which leaves us two weeks of testing instead of one.

Finance has asked whether the March invoices can still go out on the first working day
of April. I think they can, but only if the data migration rehearsal on 7 March passes
without manual fixes. Could you confirm that your team can run the rehearsal on that day,
and that someone can stay until the reconciliation report is ready, usually around 9 pm?

Two smaller points. First, the vendor of the managed queue service wants a decision on
the three-year contract by the end of next week; I would like your view on the lock-in
risk before I answer. Second, the customer summit in Lisbon moves our Q3 travel budget
up by about 6,000 euros; Ana will send the updated numbers to finance on Friday.

Please let me know by Thursday whether 7 March works for you, and whether you see any
other risk for the new date. If it helps, we can go through the plan together on
Wednesday afternoon.

Thanks and best regards,
Maria"""

NOTES = "Confirm 7 March; someone stays until the report."


def _asked_size() -> str:
    from copilot.skills.size import summary_size

    size = summary_size({}, [MAIL], reads_size=True)
    assert size is not None
    return f"about {size.points} points, {size.words} words in all"


# The plain prompts ask for what the skills ask for (the summarise template's size for this
# mail, ``copilot.skills.size``; the draft's notes and "one or two short paragraphs"), so
# the ratio measures what the copilot adds, not a longer answer asked for.
DIRECT = {
    "summarise": f"Summarise this mail as a bulleted list, one point a line: {_asked_size()}.",
    "draft": "Write Daniel's reply to this mail from Maria, in one or two short paragraphs. "
    f"What Daniel wants to say: {NOTES}",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def mail_for(kind: str, rep: int) -> str:
    """The mail of one call: the same every time ("same": the whole prompt can come from
    the server's cache), or another mail each time ("new": only the skill's fixed prefix
    can; what a user sees when replying to the next mail in the inbox)."""
    if kind == "same":
        return MAIL
    day = DAYS[rep % len(DAYS)]
    # Changed from the subject line on: after the two address lines nothing is cached.
    return MAIL.replace("Subject: Atlas migration:", f"Subject: Atlas migration ({day}, {rep}):")


def copilot_inputs(skill: str, mail: str) -> dict[str, str]:
    if skill == "summarise":
        return {"text": mail, "style": "bullets"}
    return {"message": mail, "notes": NOTES}


def copilot_call(runner, skill: str, mail: str, think_s: float | None = None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One run through the copilot. ``think_s``: as Outlook's pane does, the prompt is read
    ahead when the mail opens (``runner.read_ahead``, the draft with no notes yet), and the
    user clicks ``think_s`` seconds later; times count from the click."""
    from copilot.skills.request import RunRequest

    reading = None
    if think_s is not None:
        ahead = copilot_inputs(skill, mail) | ({"notes": ""} if skill == "draft" else {})
        request = RunRequest(skill, ahead, retrieval=False)
        reading = threading.Thread(target=runner.read_ahead, args=("local:bench", request))
        reading.start()
        time.sleep(think_s)
    start = time.perf_counter()
    first: list[float] = []

    def on_event(kind: str, data: dict[str, object]) -> None:
        if kind == "delta" and not first:
            first.append(time.perf_counter() - start)

    inputs = copilot_inputs(skill, mail)
    result = runner.run("local:bench", skill, inputs, retrieval=False, on_event=on_event)
    total = time.perf_counter() - start
    if reading is not None:
        reading.join()
    return {"ttft_s": first[0] if first else total, "total_s": total, "chars": len(result.text),
            "engine": result.engine, "calls": result.calls, "text": result.text,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens}  # fmt: skip


def direct_call(client, model: str, skill: str, mail: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    first = None
    text = []
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": DIRECT[skill]}, {"role": "user", "content": mail}],
        stream=True, max_tokens=400, temperature=0.2,
    )  # fmt: skip
    for chunk in stream:
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            first = first or time.perf_counter() - start
            text.append(piece)
    total = time.perf_counter() - start
    return {"ttft_s": first or total, "total_s": total, "chars": len("".join(text)),
            "text": "".join(text)}  # fmt: skip


def summarise_rows(kind: str, skill: str, model: str, rows: dict) -> dict[str, object]:  # type: ignore[type-arg]
    """Medians over the warm calls (the first copilot call of a skill fills the cache)."""
    ours, direct = rows[(kind, skill, "copilot")], rows[(kind, skill, "direct")]
    warm = ours[1:] or ours
    summary: dict[str, object] = {
        "name": "summary", "mail": kind, "skill": skill, "model": model,
        "copilot_ttft_cold_s": round(ours[0]["ttft_s"], 2),
        "copilot_ttft_warm_s": round(statistics.median(r["ttft_s"] for r in warm), 2),
        "direct_ttft_s": round(statistics.median(r["ttft_s"] for r in direct), 2),
        "copilot_total_s": round(statistics.median(r["total_s"] for r in warm), 2),
        "direct_total_s": round(statistics.median(r["total_s"] for r in direct), 2),
        "copilot_chars": round(statistics.median(r["chars"] for r in warm)),
        "direct_chars": round(statistics.median(r["chars"] for r in direct)),
    }  # fmt: skip
    ratio = float(summary["copilot_total_s"]) / float(summary["direct_total_s"])  # type: ignore[arg-type]
    summary["ratio_total"] = round(ratio, 2)
    summary["copilot_calls"] = max(r.get("calls", 1) for r in ours)
    ahead = rows.get((kind, skill, "read_ahead"))
    if ahead:  # times from the click
        summary["read_ahead_ttft_s"] = round(statistics.median(r["ttft_s"] for r in ahead), 2)
        summary["read_ahead_total_s"] = round(statistics.median(r["total_s"] for r in ahead), 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--model-file", type=Path, default=None,
                        help="a GGUF file (default: the installed packaged model)")  # fmt: skip
    parser.add_argument("--mail", nargs="+", choices=["same", "new"], default=["same", "new"],
                        help="one mail every call, another mail each call, or both")  # fmt: skip
    parser.add_argument("--read-ahead", type=float, default=None, metavar="SECONDS",
                        help="also run new mails read ahead when opened, clicked SECONDS "
                        "later (the Outlook pane's read-ahead)")  # fmt: skip
    args = parser.parse_args()

    from openai import OpenAI

    from copilot.config import Settings
    from copilot.llm.embedded import server
    from copilot.skills.runner import SkillRunner
    from copilot.workspace import Workspace

    base = Settings()
    model_file = args.model_file
    if model_file is None:
        from copilot.llm.embedded import models

        model_file = models.resolve(base).path
    # A throwaway home for the runs; the model and the ONNX export come from the usual place.
    os.environ.update({
        "COPILOT_HOME": tempfile.mkdtemp(prefix="bench-embedded-"),
        "COPILOT_MODELS_DIR": str(base.models_dir),
        "COPILOT_LLM_MODEL_FILE": str(model_file),
        "COPILOT_ENGINE": "embedded",
    })  # fmt: skip
    settings = Settings()
    me = psutil.Process()
    with Workspace(settings) as ws:
        runner = SkillRunner(ws)
        runner.run("local:bench", "sentiment", {"text": "Fine."}, retrieval=False)  # start it
        info = server.running(settings)
        assert info is not None, "the embedded server did not start"
        srv = psutil.Process(info.pid)
        client = OpenAI(base_url=info.base_url, api_key="none", max_retries=0, timeout=600)
        rows: dict[tuple[str, str, str], list[dict[str, float]]] = {}
        peak_server = 0
        for kind in args.mail:
            for skill in ("summarise", "draft"):
                for rep in range(args.reps):
                    mail = mail_for(kind, rep)
                    sides = ["copilot", "direct"]
                    if args.read_ahead is not None and kind == "new":
                        sides.append("read_ahead")
                    for side in sides:
                        if side == "copilot":
                            row = copilot_call(runner, skill, mail)
                        elif side == "direct":
                            row = direct_call(client, info.model, skill, mail)
                        else:  # another new mail, opened, read ahead, clicked later
                            row = copilot_call(runner, skill, mail_for(kind, rep + 50),
                                               think_s=args.read_ahead)  # fmt: skip
                        state = "cold" if side == "copilot" and rep == 0 else "warm"
                        peak_server = max(peak_server, srv.memory_info().rss)
                        rows.setdefault((kind, skill, side), []).append(row)
                        print(json.dumps({"name": "call", "mail": kind, "skill": skill,
                                          "side": side, "rep": rep, "cache": state, **row}),
                              flush=True)  # fmt: skip
        for kind in args.mail:
            for skill in ("summarise", "draft"):
                print(json.dumps(summarise_rows(kind, skill, info.model, rows)), flush=True)
        memory = {"name": "memory", "server_peak_rss_mb": round(peak_server / 2**20),
                  "bench_rss_mb": round(me.memory_info().rss / 2**20)}  # fmt: skip
        print(json.dumps(memory), flush=True)
        server.stop(settings, force=True)


if __name__ == "__main__":
    main()
