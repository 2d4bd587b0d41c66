"""A configured chat server's label read (``skills/sentiment_chat``, OpenAI's ``logprobs``)
against the embedded model's own (``skills/sentiment_labels``), side by side in one run.

Both read the same packaged model file (Qwen2.5-Coder-1.5B, the embedded default): the
embedded engine through its ``/copilot/classify`` route (ChatML prefix read once, texts
after it), the ``llm`` engine through llama-cpp-python's stock OpenAI-compatible server
(``python -m llama_cpp.server``, started here on loopback, standing in for a configured
self-hosted server), one chat request a text with ``max_tokens=1`` and ``top_logprobs``.
So the difference is the path, not the model: the chat template the server applies, the
cl100k cut, probabilities from the top 20 tokens instead of every label's exact spelling.
``--skill N`` also runs the built-in skill per sentence on the chat server for the first
N sentences (what a workbook on such a server did before).

Prints one JSON line per path and file (accuracy, seconds per sentence, requests) and the
ratio of the chat path's accuracy and time to the embedded one's.

    .venv/bin/python bench/sentiment_chat.py ../shared/data/sentiment/amazon_cells_labelled.txt \\
        bench/sentiment_more_domains_test.tsv --limit 200 --skill 24
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copilot.config import get_settings  # noqa: E402
from copilot.eval.sentiment import (  # noqa: E402
    evaluate,
    predict_with_labels,
    predict_with_skill,
    read_tsv,
)
from copilot.eval.skill_runs import eval_runner  # noqa: E402
from copilot.llm.embedded import models  # noqa: E402

START_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
               "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads",
               str(threads), "--verbose", "False"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"llama_cpp.server exited with {server.returncode}") from None
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"llama_cpp.server did not answer in {START_S:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--skill", type=int, default=0, help="sentences for the skill per row")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = get_settings()
    model = models.resolve(settings)
    port = free_port()
    server = start_server(model.path, port, args.threads)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        chat_settings = settings.model_copy(
            update={"llm_base_url": url, "llm_model": model.id, "llm_serial": True,
                    "llm_timeout_s": 120.0}
        )  # fmt: skip
        with eval_runner(chat_settings) as runner:
            predict_with_labels(runner, ["warm the model up"])  # loading is not a path's
            predict_with_labels(runner, ["warm the server up"], engine="llm")
            for path in args.files:
                run_file(runner, path, args.limit, args.skill)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_file(runner: object, path: Path, limit: int, skill: int) -> None:
    pairs = read_tsv(path)[:limit]
    paths = [
        ("embedded labels", pairs, lambda texts: predict_with_labels(runner, texts)),
        ("chat labels", pairs, lambda texts: predict_with_labels(runner, texts, engine="llm")),
    ]
    if skill:
        paths.append(("chat skill per row", pairs[:skill],
                      lambda texts: predict_with_skill(runner, texts, "llm")))  # fmt: skip
    found: dict[str, tuple[float, float]] = {}
    for name, some, predict in paths:
        started = time.perf_counter()
        scores = evaluate(some, predict)  # type: ignore[arg-type]
        took = (time.perf_counter() - started) / len(some)
        found[name] = (scores["accuracy"], took)
        print(json.dumps({"name": name, "file": path.name, "n": len(some),
                          "accuracy": round(scores["accuracy"], 3),
                          "confusion": scores["confusion"],
                          "s_per_sentence": round(took, 3)}), flush=True)  # fmt: skip
    (base_acc, base_s), (acc, s) = found["embedded labels"], found["chat labels"]
    print(json.dumps({"name": "ratio", "file": path.name, "baseline": "embedded labels",
                      "accuracy": round(acc / base_acc, 3), "time": round(s / base_s, 2)}),
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
