"""The embedded model's two ways to a sentiment label, side by side in one run.

- **skill**: the built-in sentiment skill run once per sentence on the embedded engine, as
  a single ``copilot run sentiment --text`` does: the model writes the JSON answer (label,
  score, confidence, aspects with evidence) and the label is read from it.
- **labels**: the label read off the model's first answer token (``skills/sentiment_labels``),
  as a scored workbook column and ``copilot eval sentiment --engine embedded`` do.

Same model server, same sentences (the first ``--limit`` of each file), alternating per
file. Prints one JSON line per path and file (accuracy, seconds per sentence) and the
ratio of their times.

    .venv/bin/python bench/sentiment_paths.py bench/sentiment_events_tune.tsv --limit 24
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=24)
    args = parser.parse_args()
    with eval_runner(get_settings()) as runner:
        predict_with_labels(runner, ["warm the model up"])  # loading is not either path's
        for path in args.files:
            pairs = read_tsv(path)[: args.limit]
            took: dict[str, float] = {}
            for name, predict in (
                ("skill", lambda texts: predict_with_skill(runner, texts, "embedded")),
                ("labels", lambda texts: predict_with_labels(runner, texts)),
            ):
                started = time.perf_counter()
                scores = evaluate(pairs, predict)
                took[name] = (time.perf_counter() - started) / len(pairs)
                print(json.dumps({"name": name, "file": path.name, "n": len(pairs),
                                  "accuracy": round(scores["accuracy"], 3),
                                  "s_per_sentence": round(took[name], 3)}), flush=True)  # fmt: skip
            ratio = round(took["skill"] / took["labels"], 1)
            print(json.dumps({"name": "ratio", "file": path.name, "skill_over_labels": ratio}))


if __name__ == "__main__":
    main()
