"""Which int8 quantisation of the MiniLM ONNX model: speed and fidelity to the float vectors.

    .venv/bin/python bench/int8_variants.py build /tmp/int8v/models [--static]
    .venv/bin/python bench/int8_variants.py measure /tmp/int8v/models [--texts 500] [--repeat 3]
    .venv/bin/python bench/int8_variants.py install NAME /tmp/int8v/models /tmp/int8v/md-NAME
    COPILOT_MODELS_DIR=/tmp/int8v/md-NAME COPILOT_EMBED_BACKEND=onnx-int8 \
        copilot eval retrieval --beir ../shared/data/retrieval/cranfield

Why a bench of its own: int8 is the largest throughput lever left for ingestion, but the
variant must be chosen on something other than the retrieval collections it is then checked
on, or the check proves nothing. So variants are ranked here on text that is no evaluation
set: chunk-length texts drawn from ``bench/corpus.py``'s generator (the benchmark corpus)
and the office prose of ``bench/embed.py``. Two things are measured, interleaved in one
process so machine load hits every variant alike: texts per second (batch 64, the product's
own tokenizer, length-sorted batching and pooling, one ONNX thread), and fidelity to the
float model's vectors (mean and min cosine, and how many of each text's 10 nearest
neighbours among the other texts stay the same).

``install`` lays out a models folder whose int8 slot holds one variant, for the eval CLI:
the float export is copied beside it, and the fingerprint is the one the product writes, so
``ensure_int8_model`` accepts the variant as its own file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import _Text
from embed import texts as office_prose

from copilot.config import Settings, get_settings
from copilot.index.embed import OnnxMiniLM, _packaged_model_dir
from copilot.index.onnx_export import INT8_DIRNAME, ONNX_DIRNAME, ensure_onnx_model, int8_stamp

LAYERS = range(6)
WEIGHTS = {  # the six weight MatMuls of each encoder layer, by their traced names
    "q": "attention/self/query/MatMul",
    "k": "attention/self/key/MatMul",
    "v": "attention/self/value/MatMul",
    "attn_out": "attention/output/dense/MatMul",
    "ffn_in": "intermediate/dense/MatMul",
    "ffn_out": "output/dense/MatMul",
}


def node(layer: int, part: str) -> str:
    return f"/bert/encoder/layer.{layer}/{WEIGHTS[part]}"


def nodes(layers: range | list[int], parts: list[str]) -> list[str]:
    return [node(i, p) for i in layers for p in parts]


# name -> quantize_dynamic keyword arguments (per-channel int8 weights throughout: per-tensor
# fell to cosine 0.89 earlier). "all" is what the product shipped before this bench.
DYNAMIC: dict[str, dict[str, Any]] = {
    "all": {},
    "matmul": {"op_types_to_quantize": ["MatMul"]},
    "matmul-reduce-range": {"op_types_to_quantize": ["MatMul"], "reduce_range": True},
    "float-first-layer": {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes([0], list(WEIGHTS)),
    },
    "float-last-layer": {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes([5], list(WEIGHTS)),
    },
    "float-first-last": {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes([0, 5], list(WEIGHTS)),
    },
    "float-attn-out": {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes(LAYERS, ["attn_out"]),
    },
    "float-ffn-out": {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes(LAYERS, ["ffn_out"]),
    },
    "ffn-only": {"nodes_to_quantize": nodes(LAYERS, ["ffn_in", "ffn_out"])},
    "qkv-ffn-in": {"nodes_to_quantize": nodes(LAYERS, ["q", "k", "v", "ffn_in"])},
}
# Which layers' FFN down-projection matters: one layer's left in float at a time, then the
# first two and three (the ones that moved the vectors most, one at a time).
for _layers in [[0], [1], [2], [3], [4], [5], [0, 1], [0, 1, 2]]:
    DYNAMIC[f"float-ffn-out-L{''.join(map(str, _layers))}"] = {
        "op_types_to_quantize": ["MatMul"],
        "nodes_to_exclude": nodes(_layers, ["ffn_out"]),
    }


def corpus_chunks(n: int, seed: int, count: Callable[[list[str]], list[int]]) -> list[str]:
    """Chunk-length texts from the benchmark corpus's generator, packed like the chunker does.

    Paragraphs are packed up to a budget of 200 tokens; a quarter of the texts end early
    (the last chunk of an item, a short mail), as real chunk lists do.
    """
    rnd = random.Random(seed)
    t = _Text(rnd)
    out: list[str] = []
    while len(out) < n:
        budget = 200 if rnd.random() < 0.75 else rnd.randint(20, 150)
        parts: list[str] = []
        for paragraph in t.words(400):
            for sentence in paragraph.replace("? ", "?\n").replace("! ", "!\n").split("\n"):
                if count([" ".join([*parts, sentence])])[0] > budget:
                    break
                parts.append(sentence)
        out.append(" ".join(parts) if parts else t.sentence())
    return out


def build(folder: Path, static: bool, only: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    settings = get_settings()  # the user's models folder: the float export is made once there
    float_dir = ensure_onnx_model(_packaged_model_dir(settings), settings.models_dir)
    shutil.rmtree(folder / "models", ignore_errors=True)
    shutil.copytree(float_dir, folder / "models" / ONNX_DIRNAME)
    source = folder / "models" / ONNX_DIRNAME / "model.onnx"
    shutil.copy2(source, folder / "float.onnx")
    for name, kwargs in DYNAMIC.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        quantize_dynamic(
            source, folder / f"{name}.onnx", per_channel=True, weight_type=QuantType.QInt8, **kwargs
        )
        print(json.dumps({"built": name, "s": round(time.perf_counter() - start, 1)}), flush=True)
    if static:
        build_static(source, folder)


def build_static(source: Path, folder: Path) -> None:
    """QDQ with activation ranges calibrated on other corpus texts (seed 1, not measured)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    embedder = OnnxMiniLM(Settings(home=folder, models_dir_override=folder / "models"))
    calib = corpus_chunks(64, seed=1, count=embedder.count_tokens)
    encoded = [e.ids for e in embedder._tok.encode_batch(calib)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(encoded)

        def get_next(self) -> dict[str, np.ndarray] | None:
            ids = next(self.rows, None)
            if ids is None:
                return None
            a = np.array([ids], dtype=np.int64)
            return {"input_ids": a, "attention_mask": np.ones_like(a), "token_type_ids": 0 * a}

    for method, label in ((CalibrationMethod.MinMax, "minmax"),):
        start = time.perf_counter()
        quantize_static(
            source,
            folder / f"static-qdq-{label}.onnx",
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            extra_options={"MatMulConstBOnly": True},
        )
        row = {"built": f"static-qdq-{label}", "s": round(time.perf_counter() - start, 1)}
        print(json.dumps(row), flush=True)


def session_for(base: OnnxMiniLM, path: Path, threads: int = 1) -> OnnxMiniLM:
    """``base`` (the product's tokenizer, batching, pooling) running another ONNX file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    other = copy.copy(base)
    other._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return other


def fidelity(ref: np.ndarray, got: np.ndarray, k: int = 10) -> dict[str, float]:
    cos = (ref * got).sum(axis=1)

    def neighbours(v: np.ndarray) -> np.ndarray:
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :k]

    a, b = neighbours(ref), neighbours(got)
    overlap = [len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]
    return {
        "mean_cos": float(cos.mean()),
        "min_cos": float(cos.min()),
        "nn10_overlap": float(np.mean(overlap)),
    }


def measure(folder: Path, n_texts: int, repeat: int, only: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = OnnxMiniLM(Settings(home=tmp, models_dir_override=folder / "models"))
    names = [
        "float",
        *(only or [p.stem for p in sorted(folder.glob("*.onnx")) if p.stem != "float"]),
    ]
    embedders = {name: session_for(base, folder / f"{name}.onnx") for name in names}
    chunks = corpus_chunks(n_texts, seed=0, count=base.count_tokens)
    prose = office_prose(7, 0, 200)["abstracts"]
    tokens = base.count_tokens(chunks)
    print(json.dumps({"texts": len(chunks), "mean_tokens": round(float(np.mean(tokens)), 1)}))
    for e in embedders.values():
        e.embed_documents(chunks[:16])  # warm up
    rates: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(repeat):
        order = names if r % 2 == 0 else names[::-1]  # neither end always runs first
        for name in order:
            start = time.perf_counter()
            vectors[name] = embedders[name].embed_documents(chunks)
            rates[name].append(len(chunks) / (time.perf_counter() - start))
    rows = []
    prose_ref = embedders["float"].embed_documents(prose)
    for name in names:
        row: dict[str, Any] = {
            "variant": name,
            "per_s_median": round(statistics.median(rates[name]), 1),
        }
        row["per_s_best"] = round(max(rates[name]), 1)
        row["speed_vs_float"] = round(
            statistics.median(rates[name]) / statistics.median(rates["float"]), 2
        )
        row |= {
            f"chunks_{k}": round(v, 4) for k, v in fidelity(vectors["float"], vectors[name]).items()
        }
        got = embedders[name].embed_documents(prose)
        row |= {f"prose_{k}": round(v, 4) for k, v in fidelity(prose_ref, got).items()}
        row["load_avg"] = round(os.getloadavg()[0], 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(
        "\n| variant | texts/s | × float | mean cos | min cos | top-10 overlap "
        "| prose min cos | prose top-10 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['per_s_median']} | {row['speed_vs_float']} | "
            f"{row['chunks_mean_cos']:.4f} | {row['chunks_min_cos']:.4f} | "
            f"{row['chunks_nn10_overlap']:.3f} | {row['prose_min_cos']:.4f} | "
            f"{row['prose_nn10_overlap']:.3f} |"
        )


def install(name: str, folder: Path, target: Path) -> None:
    """A models folder for ``COPILOT_MODELS_DIR`` whose int8 slot is the variant ``name``."""
    float_dir = folder / "models" / ONNX_DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    if not (target / ONNX_DIRNAME).exists():
        shutil.copytree(float_dir, target / ONNX_DIRNAME)
    slot = target / INT8_DIRNAME
    slot.mkdir(exist_ok=True)
    shutil.copy2(folder / f"{name}.onnx", slot / "model.onnx")
    shutil.copy2(float_dir / "tokenizer.json", slot / "tokenizer.json")
    (slot / "fingerprint.json").write_text(int8_stamp(float_dir))
    print(json.dumps({"installed": name, "models_dir": str(target)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("folder", type=Path)
    b.add_argument("--static", action="store_true", help="also static QDQ (calibrated)")
    b.add_argument("--only", nargs="*", default=[])
    m = sub.add_parser("measure")
    m.add_argument("folder", type=Path)
    m.add_argument("--texts", type=int, default=500)
    m.add_argument("--repeat", type=int, default=3)
    m.add_argument("--only", nargs="*", default=[])
    i = sub.add_parser("install")
    i.add_argument("name")
    i.add_argument("folder", type=Path)
    i.add_argument("target", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        build(args.folder, args.static, args.only)
    elif args.command == "measure":
        measure(args.folder, args.texts, args.repeat, args.only)
    else:
        install(args.name, args.folder, args.target)


if __name__ == "__main__":
    main()
