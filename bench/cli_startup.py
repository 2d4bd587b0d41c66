"""How long ``copilot --help`` (and a subcommand's) takes to answer: the CLI's start-up.

    .venv/bin/python bench/cli_startup.py [--runs 5]

Each command runs ``--runs`` times as a fresh process (the console script when installed,
else ``python -m copilot.cli.app``); the best wall time counts (the others measure the
machine's noise), with the median beside it, and the best CPU time (user + system, of the
child: what the wall time would be on an idle machine, as this one is rarely idle).
``import`` is ``python -c "import
copilot.cli.app"`` alone: what every command pays before it starts its work. Target:
every line under ``TARGET_S``. What is imported, not how long it takes, is what the
tests check (``tests/cli/test_startup.py``): times belong here, on an idle machine.

Prints one JSON line per command, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
COMMANDS = (
    ("--help",),
    ("sync", "--help"),
    ("sync", "local", "--help"),
    ("run", "--help"),
    ("finetune", "--help"),
    ("eval", "retrieval", "--help"),
)


def copilot_argv() -> list[str]:
    script = Path(sys.executable).with_name("copilot")
    if script.exists():
        return [str(script)]
    found = shutil.which("copilot")
    return [found] if found else [sys.executable, "-m", "copilot.cli.app"]


def timed(argv: list[str], runs: int) -> dict[str, float]:
    seconds, cpu = [], []
    env = {**os.environ, "COLUMNS": "100"}
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, timeout=60)
        seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()[-2000:]}")
    return {"best_s": round(min(seconds), 3), "median_s": round(statistics.median(seconds), 3),
            "best_cpu_s": round(min(cpu), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = copilot_argv()
    results = []
    importing = [sys.executable, "-c", "import copilot.cli.app"]
    for name, argv in [("import", importing)] + [(" ".join(c), base + list(c)) for c in COMMANDS]:
        record = {"name": "cli_startup", "command": name, "runs": args.runs,
                  **timed(argv, args.runs)}  # fmt: skip
        print(json.dumps(record), flush=True)
        results.append(record)
    worst = max(r["best_s"] for r in results)
    print(json.dumps({"name": "summary", "target_s": TARGET_S, "worst_best_s": worst,
                      "worst_best_cpu_s": max(r["best_cpu_s"] for r in results),
                      "pass": worst < TARGET_S, "load_avg": round(os.getloadavg()[0], 2),
                      "cpus": os.cpu_count()}))  # fmt: skip


if __name__ == "__main__":
    main()
