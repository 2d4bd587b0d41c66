"""The local sentiment engine's own encoder (multilingual-e5-small) and its shipped bank."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from copilot.skills.engines.local import bank, encoder, prototypes
from copilot.skills.engines.local.bank import (
    bank_texts_with_calibration,
    shipped_vectors,
    write_vectors,
)
from copilot.skills.engines.local.encoder import E5_ID, cpu_has, sentence_encoder
from copilot.skills.engines.local.engine import sentiment_model
from copilot.skills.engines.local.head import E5_HEAD_FILE, HEAD_FILE, head_for
from copilot.skills.engines.local.sentiment import LocalSentiment
from copilot.skills.templates.builtin import load_builtin

BANK_TEXTS = bank_texts_with_calibration()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.setattr(encoder.platform, "machine", lambda: "x86_64")
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n")
    assert cpu_has(("avx2", "fma"), info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx\n")  # an older CPU
    assert not cpu_has(("avx2", "fma"), info)
    assert not cpu_has(("avx2",), tmp_path / "missing")
    monkeypatch.setattr(encoder.platform, "machine", lambda: "arm64")
    info.write_text("flags\t\t: avx2 fma\n")
    assert not cpu_has(("avx2", "fma"), info)  # the wheel's engine is x86-64 only


def test_without_e5_the_engine_reads_with_the_index_embedder(embedder, monkeypatch):
    monkeypatch.setattr(encoder, "_e5", None)
    monkeypatch.setattr(encoder, "_unavailable", False)
    monkeypatch.setattr(encoder, "cpu_has", lambda flags: False)
    assert sentence_encoder(embedder) is embedder
    assert encoder.load_e5() is None  # asked once, remembered
    model = sentiment_model(load_builtin("sentiment"), embedder)
    assert model.classify(["The soup was cold and the waiter rude."])[0].label == "negative"


def test_e5_vectors(e5, embedder):
    assert sentence_encoder(embedder) is e5
    texts = [f"Sentence number {i} about the delivery." for i in range(35)]  # two batches
    vectors = e5.embed_documents(texts)
    assert vectors.shape == (35, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(e5.embed_query(texts[34]), vectors[34], atol=1e-5)
    assert e5.embed_documents([]).shape == (0, 384)
    assert e5.count_tokens(["hello world"])[0] >= 3
    with ThreadPoolExecutor(4) as pool:  # API run threads share the one engine
        alongside = np.stack(list(pool.map(e5.embed_query, texts[:12])))
    assert np.array_equal(alongside, vectors[:12])


def test_loading_e5_leaves_the_process_thread_setting_alone(e5):
    # load_e5 sets OMP_NUM_THREADS=1 only while the engine loads.
    before = os.environ.get("OMP_NUM_THREADS")
    encoder._open()
    assert os.environ.get("OMP_NUM_THREADS") == before


def test_each_encoder_gets_its_own_head(e5, embedder):
    mine, minilm = head_for(e5.model_id, e5.dim), head_for(embedder.model_id, embedder.dim)
    assert mine is not None and minilm is not None and mine is not minilm
    assert E5_ID in json.loads(E5_HEAD_FILE.read_text())["model_ids"]
    assert E5_ID not in json.loads(HEAD_FILE.read_text())["model_ids"]
    about = json.loads(E5_HEAD_FILE.read_text())
    assert "MIT" in about["about"]
    assert min(about["rows"]["positive"], about["rows"]["negative"]) > 5000


def test_the_shipped_bank_vectors_are_the_banks_own(e5):
    shipped = shipped_vectors(E5_ID, BANK_TEXTS, e5.dim)
    assert shipped is not None, "bank changed: rerun bench/train_sentiment_head.py --encoder e5"
    some = [0, len(prototypes.POSITIVE), len(BANK_TEXTS) - 1]
    fresh = e5.embed_documents([BANK_TEXTS[i] for i in some])
    assert np.all(np.sum(fresh * shipped[some], axis=1) > 0.999)


def test_bank_vectors_for_other_texts_or_a_damaged_file_are_not_used(tmp_path, monkeypatch):
    path = tmp_path / "bank.npz"
    monkeypatch.setitem(bank.BANK_FILES, "space", path)
    vectors = np.eye(3, 4, dtype=np.float32)
    write_vectors(path, ["a", "b", "c"], vectors)
    assert np.array_equal(shipped_vectors("space", ["a", "b", "c"], 4), vectors)
    assert shipped_vectors("space", ["a", "b", "changed"], 4) is None  # the bank was edited
    assert shipped_vectors("space", ["a", "b", "c"], 5) is None  # another vector size
    assert shipped_vectors("elsewhere", ["a", "b", "c"], 4) is None  # no file for that space
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert shipped_vectors("space", ["a", "b", "c"], 4) is None
    write_vectors(path, ["a", "b", "c"], np.full((3, 4), np.inf))
    assert shipped_vectors("space", ["a", "b", "c"], 4) is None


def test_the_engine_on_e5_reads_reviews_and_leaves_facts_neutral(e5):
    engine = LocalSentiment(e5)
    results = engine.classify(
        [
            "A warm, funny film with a cast that clearly had a great time.",
            "The hotel staff upgraded our room and remembered our names.",
            "The film drags for two hours and the ending makes no sense.",
            "The engineer never turned up and nobody called to say why.",
            "The meeting moved to room 4 on the second floor.",
        ]
    )
    labels = [r.label for r in results]
    assert labels == ["positive", "positive", "negative", "negative", "neutral"], results


def test_text_the_c_engine_cannot_take_is_made_safe_first(e5):
    # A lone surrogate (a badly decoded mail) cannot be UTF-8; a NUL would end a C string.
    odd = ["bad \ud800 service, never again", "great \x00 product, love it", "", "😀" * 3000]
    vectors = e5.embed_documents(odd)
    assert vectors.shape == (4, 384) and np.isfinite(vectors).all()
    labels = [r.label for r in LocalSentiment(e5).classify(odd)]
    assert labels[:2] == ["negative", "positive"] and labels[2] == "neutral"
