"""How many texts one ONNX run should take: speed and repeatability per batch size.

    .venv/bin/python bench/embed_batches.py [--texts 400] [--repeat 3] [--threads 2]

Why: the embedder ran texts in length-sorted batches of up to 64 (and ``MAX_BATCH_CELLS``
rows x width^2) on ``--threads`` intra-op threads, on the belief that a batch amortises a
run's fixed cost. Two things put that in doubt. The int8 model scales each activation
tensor by its largest value, so in a batch a text's vector depends on its batch-mates (min
cosine 0.987 between a text embedded alone and in a batch), and int8 stayed opt-in for that
alone; a batch of one has no mates. And a first look found one text a run faster, not
slower, on chunk-length texts.

Measured here, interleaved in one process so machine load hits every row alike: the
product's own embedder (``OnnxMiniLM``: its tokenizer, pooling and batching), float and
int8, in batches of 1, 2, 4, 8, 16 and 64 on ``--threads`` intra-op threads, and the int8
as the product now runs it ("each": every text alone on a session of one thread,
``--threads`` texts at once). Two text sets: chunk-length texts from the benchmark corpus's
generator (``bench/int8_variants.corpus_chunks``: packed to a 200-token budget, a quarter
shorter) and short ones (their first 120 characters, a mail line's length). Per row: texts
per second (median of the passes), the ratio to float in batches of 64 (the product's
float default), and repeatability: the largest difference between a text's vector embedded
among the others and embedded alone (0: the vector does not depend on its batch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from int8_variants import corpus_chunks, session_for

from copilot.config import Settings, get_settings
from copilot.index.embed import OnnxMiniLM, _packaged_model_dir
from copilot.index.onnx_export import ensure_int8_model, ensure_onnx_model

BATCHES = (1, 2, 4, 8, 16, 64)
EACH = 0  # the batch column of the product's int8 rows: each text alone, N at once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="as a sync runs: one per core")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    home = tempfile.mkdtemp(prefix="embed-batches-")
    settings = Settings(home=home, models_dir_override=get_settings().models_dir,
                        embed_threads=args.threads)  # fmt: skip

    def batched(quantized: bool, batch: int) -> OnnxMiniLM:
        """Length-sorted batches of ``batch`` on ``--threads`` intra-op threads (int8 ran
        this way until this bench)."""
        e = OnnxMiniLM(settings.model_copy(update={"embed_batch": batch}), quantized=quantized)
        if quantized:
            model = ensure_int8_model(_packaged_model_dir(settings), settings.models_dir)
            e = session_for(e, model / "model.onnx", args.threads)
            e._each = False
        return e

    ensure_onnx_model(_packaged_model_dir(settings), settings.models_dir)
    rows = {(kind, b): batched(kind == "int8", b) for kind in ("float", "int8") for b in batches}
    rows[("int8", EACH)] = OnnxMiniLM(settings, quantized=True)  # as the product runs it
    reference = rows[("float", 64)] if ("float", 64) in rows else next(iter(rows.values()))
    chunks = corpus_chunks(args.texts, seed=0, count=reference.count_tokens)
    sets = {"chunks": chunks, "short": [c[:120] for c in chunks]}
    tokens = {name: float(np.mean(reference.count_tokens(t))) for name, t in sets.items()}
    print(json.dumps({"name": "texts", "n": len(chunks), "mean_tokens": tokens}), flush=True)
    for e in rows.values():
        e.embed_documents(chunks[:16])  # warm up: the arena, the thread pool
    rates: dict[tuple[str, int, str], list[float]] = {}
    keys = list(rows)
    for r in range(args.repeat):
        for key in keys if r % 2 == 0 else keys[::-1]:
            for name, texts in sets.items():
                start = time.perf_counter()
                rows[key].embed_documents(texts)
                rate = len(texts) / (time.perf_counter() - start)
                rates.setdefault((*key, name), []).append(rate)
    base = {name: statistics.median(rates[("float", 64, name)]) for name in sets}
    probe = chunks[:24]
    for kind, batch in keys:
        e = rows[(kind, batch)]
        together = e.embed_documents(probe)
        alone = np.stack([e.embed_documents([t])[0] for t in probe])
        row: dict[str, object] = {"name": "row", "model": kind}
        row["batch"] = f"each, {args.threads} at once" if batch == EACH else batch
        for name in sets:
            rate = statistics.median(rates[(kind, batch, name)])
            row[f"{name}_per_s"] = round(rate, 1)
            row[f"{name}_vs_float64"] = round(rate / base[name], 2)
        row["max_diff_alone"] = float(np.abs(together - alone).max())
        row["load_avg"] = round(os.getloadavg()[0], 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
