"""Make, once, the ONNX file the default embedder runs, and keep it in step with its source.

The file is exported from the packaged PyTorch weights rather than shipped, so it always
matches the installed model; a fingerprint beside it (sha256 of the weights + the version of
this code) makes a changed package or a changed export rebuild it. Nothing is quantised: the
vectors must equal the PyTorch ones, since both backends share one index. The int8 backend
(``ensure_int8_model``, the default) is made from this file, into a folder and an index of
its own.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from copilot.fileio import make_private_dir

ONNX_DIRNAME = "all-minilm-l6-v2-onnx"
EXPORT_VERSION = "1"  # bump when _export changes, so old exports are rebuilt
OPSET = 17


def ensure_onnx_model(source: Path, models_dir: Path) -> Path:
    """The folder holding model.onnx + tokenizer.json, exporting it first if missing or stale.

    Export happens in a temporary folder that replaces the target in one rename, under a file
    lock, so a crash never leaves half a model and two processes never export at once.
    """
    target = models_dir / ONNX_DIRNAME
    if _is_current(target, source):
        return target
    make_private_dir(models_dir)
    with _file_lock(models_dir / f"{ONNX_DIRNAME}.lock"):
        if _is_current(target, source):  # another process exported while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIRNAME}-", dir=models_dir))
        try:
            _export(source, tmp / "model.onnx")
            shutil.copy2(source / "tokenizer.json", tmp / "tokenizer.json")
            stamp = {**_fingerprint(source, None), "opset": OPSET}
            (tmp / "fingerprint.json").write_text(json.dumps(stamp, indent=2))
            if target.exists():
                old = models_dir / f".{ONNX_DIRNAME}-old-{os.getpid()}"
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(
                f"Exporting the local embedding model to ONNX failed: {e}. "
                "Set COPILOT_EMBED_BACKEND=torch to run it with PyTorch instead."
            ) from e
    return target


INT8_DIRNAME = "all-minilm-l6-v2-onnx-int8"
INT8_VERSION = "2"  # bump when the quantisation changes, so old int8 files are rebuilt
# Left in float: each encoder layer's FFN down-projection. Its input is the GELU output, whose
# few large values stretch the one dynamic int8 scale of the whole tensor; of a layer's six
# weight MatMuls it is the one whose quantisation moves the vectors most
# (bench/int8_variants.py).
INT8_FLOAT_NODES = tuple(f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(6))


def ensure_int8_model(source: Path, models_dir: Path) -> Path:
    """The int8 quantisation of the ONNX export, made once: dynamic, per-channel weights,
    the MatMuls only, the FFN down-projections (``INT8_FLOAT_NODES``) kept in float.

    Chosen in bench/int8_variants.py on text that is no evaluation set, then checked on
    Cranfield and the generated mail sets (docs/benchmarks.md). Quantising every MatMul and
    the embedding tables too ran 2.1× as fast as float but lost 0.008 dense nDCG@10 on
    Cranfield; this runs 1.6× as fast, with mean cosine 0.997 to the float vectors and no
    loss on Cranfield. The vectors differ, so this backend has its own model id and index.
    Activations are scaled per tensor, so a text's vector would hang on its batch-mates: the
    embedder runs each text alone (``embed.OnnxMiniLM``).
    """
    floats = ensure_onnx_model(source, models_dir)
    stamp = int8_stamp(floats)
    target = models_dir / INT8_DIRNAME
    if (target / "model.onnx").is_file() and _read(target / "fingerprint.json") == stamp:
        return target
    with _file_lock(models_dir / f"{INT8_DIRNAME}.lock"):
        if (target / "model.onnx").is_file() and _read(target / "fingerprint.json") == stamp:
            return target
        # Imported only to make the file: it loads onnx, 1.9 s of every process's start.
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = Path(tempfile.mkdtemp(prefix=f".{INT8_DIRNAME}-", dir=models_dir))
        try:
            _check_nodes(floats / "model.onnx", INT8_FLOAT_NODES)
            quantize_dynamic(
                floats / "model.onnx",
                tmp / "model.onnx",
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=list(INT8_FLOAT_NODES),
            )
            shutil.copy2(floats / "tokenizer.json", tmp / "tokenizer.json")
            (tmp / "fingerprint.json").write_text(stamp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"Quantising the embedding model failed: {e}") from e
    return target


def int8_stamp(floats: Path) -> str:
    """The fingerprint an int8 file made from the float export in ``floats`` carries."""
    recorded = json.loads((floats / "fingerprint.json").read_text())
    return json.dumps({**recorded, "int8_version": INT8_VERSION}, indent=2)


def _check_nodes(path: Path, names: tuple[str, ...]) -> None:
    """``nodes_to_exclude`` ignores names it does not find: a renamed export would silently
    be quantised whole, so a missing name is an error instead."""
    import onnx

    present = {n.name for n in onnx.load(str(path), load_external_data=False).graph.node}
    missing = [n for n in names if n not in present]
    if missing:
        raise RuntimeError(f"{path} has no node {missing[0]!r} to keep in float")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as f:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic rename alone still prevents torn files
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fingerprint(source: Path, recorded: dict[str, Any] | None) -> dict[str, Any]:
    """Identity of the source weights; the sha256 is reused while size and mtime match."""
    st = (source / "model.safetensors").stat()
    rec = recorded or {}
    if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
        digest = rec.get("sha256")
    else:
        h = hashlib.sha256()
        with open(source / "model.safetensors", "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    return {
        "export_version": EXPORT_VERSION,
        "sha256": digest,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


def _is_current(target: Path, source: Path) -> bool:
    try:
        recorded = json.loads((target / "fingerprint.json").read_text())
    except (OSError, ValueError):
        return False
    if not (target / "model.onnx").is_file() or not (target / "tokenizer.json").is_file():
        return False
    now = _fingerprint(source, recorded)
    return all(recorded.get(k) == now[k] for k in ("export_version", "sha256"))


EXPORT_TIMEOUT_S = 900  # ~40 s on two idle cores; a hung tracer must not hang the sync


def _export(source: Path, dest: Path) -> None:
    """Export in a child process, so torch and transformers never load into the caller.

    Loaded once, they stay for the process's life: a first sync on a fresh install peaked
    at 1.4 GB RSS against 0.55 GB for the same sync once the export existed, and a server
    that exported on its first request kept the extra ~0.9 GB.
    """
    command = [sys.executable, "-m", "copilot.index.onnx_export", str(source), str(dest)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"the export took longer than {EXPORT_TIMEOUT_S} s") from e
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"the exporter exited with {done.returncode}")


def _trace_and_save(source: Path, dest: Path) -> None:
    """Trace the BERT encoder (pooling stays in numpy) and check the file reproduces torch."""
    import onnx
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # Eager attention traces to plain MatMul/Softmax, which ONNX Runtime fuses itself.
        model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # A padded row, so the traced graph contains the masking path.
    ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 7592, 102, 0, 0]])
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        # What torch's legacy exporter says about itself, and the tracer's caution about
        # Python-side branches in transformers' masking: _verify checks the traced graph
        # against torch on other shapes, so these say nothing about the file we keep.
        warnings.filterwarnings("ignore", "You are using the legacy", DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
        warnings.filterwarnings("ignore", "Exporting aten::index operator", UserWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False: the torch.export-based default needs onnxscript, which adds nothing here.
        torch.onnx.export(
            Encoder().eval(),  # the exporter restores the wrapper's mode: train would add dropout
            (ids, mask, torch.zeros_like(ids)),
            str(dest),
            dynamo=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
        onnx.checker.check_model(str(dest))
        _verify(dest, model)


def _verify(path: Path, model: Any) -> None:
    """Shapes unlike the trace, with padding: the ONNX graph must match torch."""
    import onnxruntime as ort
    import torch

    ids = np.array([[101] + [2000 + i for i in range(9)] + [102]] * 3, dtype=np.int64)
    ids[1, 4:] = 0
    ids[1, 3] = 102
    mask = (ids != 0).astype(np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})
    want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    diff = np.abs(got[0] - want.last_hidden_state.numpy())[mask.astype(bool)].max()
    if not diff < 1e-3:
        raise RuntimeError(f"the exported graph differs from torch by {diff:.2g}")


if __name__ == "__main__":  # the child process of ``_export``
    _trace_and_save(Path(sys.argv[1]), Path(sys.argv[2]))
