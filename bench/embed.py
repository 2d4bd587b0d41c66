"""Embedding throughput: PyTorch vs ONNX Runtime on the packaged MiniLM, side by side.

    .venv/bin/python bench/embed.py [--batch 64] [--optimized]

``onnx-int8`` (the quantised backend, COPILOT_EMBED_BACKEND=onnx-int8) is always measured.

Prints JSON lines: one per (backend, text set) with sentences/s, then one per text set
comparing the backends (max abs diff, min cosine, onnx/torch speed ratio). The texts are
generated office prose: ~50-word sentences, and ~200-token abstracts. ``--optimized`` also
measures onnxruntime's BERT graph optimiser (not used by the product: it was not faster).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from copilot.config import Settings
from copilot.index.embed import OnnxMiniLM, TorchMiniLM

WHO = ["The finance team", "Our customer in Lyon", "Maria from legal", "The project board",
       "The new supplier", "Everyone in the sales department", "The external auditor",
       "Jan, the facilities manager", "The steering committee", "Our HR partner"]  # fmt: skip
DID = ["asked for an updated version of", "has not yet approved", "raised concerns about",
       "would like to discuss", "sent back comments on", "needs a signed copy of",
       "is still waiting for", "agreed in principle to", "flagged an error in",
       "requested a short summary of"]  # fmt: skip
WHAT = ["the quarterly budget forecast", "the framework agreement for cleaning services",
        "the draft press release", "the onboarding checklist for new starters",
        "the travel expense policy", "the invoice for the March consultancy hours",
        "the risk register for the data centre migration", "the minutes of last Tuesday",
        "the revised price list for 2025", "the tender documents for the new CRM"]  # fmt: skip
WHEN = ["before the end of the week", "ahead of Monday's board meeting", "by 15 June at the latest",
        "as soon as the figures are final", "in time for the annual review",
        "before we send anything to the client"]  # fmt: skip
WHY = ["because the totals in section three do not match the ledger",
       "since the legal wording changed after the last negotiation round",
       "so that procurement can place the order without further delay",
       "given that two of the key assumptions about headcount are outdated",
       "because the client expects a single consolidated document",
       "as the warranty terms differ from what we agreed by phone"]  # fmt: skip
NEXT = ["Could you please check the attached file and let me know what you think?",
        "I have put a meeting in everyone's calendar to go through the open points.",
        "Please reply to all so that we keep one thread for this topic.",
        "Let me know if anything is unclear or if you need the underlying spreadsheet.",
        "I will follow up with the remaining questions after the call tomorrow."]  # fmt: skip


def sentence(rng: random.Random) -> str:
    """About 50 words: a request, its deadline, the reason, and a next step."""
    return (
        f"{rng.choice(WHO)} {rng.choice(DID)} {rng.choice(WHAT)} {rng.choice(WHEN)}, "
        f"{rng.choice(WHY)}. {rng.choice(NEXT)} {rng.choice(WHO)} {rng.choice(DID)} "
        f"{rng.choice(WHAT)} as well."
    )


def texts(seed: int, sentences: int, abstracts: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {
        "sentences": [sentence(rng) for _ in range(sentences)],
        "abstracts": [" ".join(sentence(rng) for _ in range(3)) for _ in range(abstracts)],
    }


def timed(embedder: object, batch: list[str], repeat: int) -> tuple[float, float, np.ndarray]:
    """Texts per wall second and per CPU second of this process, best of ``repeat``.

    CPU seconds are the steadier number on a busy machine; wall seconds are what a user waits.
    """
    wall = cpu = float("inf")
    vectors = None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        vectors = embedder.embed_documents(batch)  # type: ignore[attr-defined]
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return len(batch) / wall, len(batch) / cpu, vectors  # type: ignore[return-value]


def optimised_copy(onnx: OnnxMiniLM, folder: Path, threads: int) -> OnnxMiniLM:
    """The same embedder running onnxruntime.transformers' fused-BERT graph."""
    import copy

    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    src = Path(onnx._session._model_path)  # type: ignore[attr-defined]
    out = folder / "model-optimised.onnx"
    optimize_model(str(src), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
        str(out)
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    other = copy.copy(onnx)
    other._session = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--abstracts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs")
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--optimized", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=tmp, embed_batch=args.batch, embed_threads=args.threads)
        start = time.perf_counter()
        onnx = OnnxMiniLM(settings)  # exports on first use into models_dir
        onnx_load = time.perf_counter() - start
        start = time.perf_counter()
        torch_ = TorchMiniLM(settings)
        torch_load = time.perf_counter() - start
        print(json.dumps({"load_s": {"onnx": round(onnx_load, 2), "torch": round(torch_load, 2)}}))
        backends = {"torch": torch_, "onnx": onnx, "onnx-int8": OnnxMiniLM(settings, True)}
        if args.optimized:
            threads = args.threads or os.cpu_count() or 1
            backends["onnx-optimised"] = optimised_copy(onnx, Path(tmp), threads)
        for e in backends.values():
            e.embed_documents([sentence(random.Random(0))] * 8)  # warm up

        for name, batch in texts(7, args.sentences, args.abstracts).items():
            tokens = onnx.count_tokens(batch)
            results = {}
            for backend, e in backends.items():
                rate, cpu_rate, vectors = timed(e, batch, args.repeat)
                results[backend] = (rate, vectors)
                row = {"set": name, "backend": backend, "n": len(batch), "batch": args.batch}
                row |= {"mean_tokens": round(float(np.mean(tokens)), 1), "per_s": round(rate, 1)}
                row |= {"per_cpu_s": round(cpu_rate, 1), "load_avg": round(os.getloadavg()[0], 1)}
                print(json.dumps(row))
            ref = results["torch"][1]
            for backend, (rate, vectors) in results.items():
                if backend == "torch":
                    continue
                row = {"set": name, "compare": f"{backend}/torch"}
                row["max_abs_diff"] = float(np.abs(vectors - ref).max())
                row["min_cosine"] = float((vectors * ref).sum(axis=1).min())
                row["ratio"] = round(rate / results["torch"][0], 2)
                print(json.dumps(row))


if __name__ == "__main__":
    main()
