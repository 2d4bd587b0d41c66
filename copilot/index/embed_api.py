"""Text to vectors through an embeddings API: OpenAI, Azure OpenAI or a compatible server.

Split from ``embed.py`` (the packaged MiniLM): the same ``Embedder`` contract (float32,
L2-normalised rows, one per text, the same input check), so the index never has to care
which one made a vector. Loaded only when ``COPILOT_EMBED_PROVIDER`` names an API.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.config import Settings
from copilot.index.embed import _check_texts, _normalise, model_id_of

if TYPE_CHECKING:
    import tiktoken

KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
KNOWN_DIMS["text-embedding-ada-002"] = 1536
MAX_INPUTS_PER_REQUEST = 2048
MAX_CHARS_PER_REQUEST = 600_000  # ~200k tokens at 3 chars/token: under the 300k API limit


class OpenAIEmbedder:
    """The embeddings endpoint through the ``openai`` SDK, which retries 429/5xx honouring
    Retry-After. Azure addresses the deployment named by ``settings.embed_model``."""

    max_tokens = 8191

    def __init__(self, settings: Settings) -> None:
        try:
            import openai
        except ImportError as e:
            raise RuntimeError("The OpenAI embedder needs the SDK: `pip install openai`.") from e
        self._model = settings.embed_model
        self._batch = min(settings.embed_batch, MAX_INPUTS_PER_REQUEST)
        self.model_id = model_id_of(settings)
        common: dict[str, Any] = {"max_retries": 5, "timeout": 120.0}
        secret = settings.openai_api_key
        configured = secret.get_secret_value() if secret else None
        if settings.embed_provider == "azure":
            if not settings.azure_endpoint:
                raise RuntimeError("Azure embeddings need COPILOT_AZURE_ENDPOINT.")
            key = configured or os.environ.get("AZURE_OPENAI_API_KEY")
            if not key:
                raise RuntimeError("Azure embeddings need COPILOT_OPENAI_API_KEY (the key).")
            self._client: openai.OpenAI = openai.AzureOpenAI(
                azure_endpoint=settings.azure_endpoint,
                api_version=settings.azure_api_version,
                api_key=key,
                **common,
            )
        else:
            key = configured or os.environ.get("OPENAI_API_KEY")
            if not key and not settings.openai_base_url:
                raise RuntimeError("OpenAI embeddings need COPILOT_OPENAI_API_KEY.")
            # A self-hosted compatible server usually ignores the key, but the SDK wants one.
            self._client = openai.OpenAI(
                api_key=key or "unused", base_url=settings.openai_base_url, **common
            )
        self._dim: int | None = KNOWN_DIMS.get(self._model)
        self._seen_response = False
        self._encoding = _tiktoken_encoding(self._model)

    @property
    def dim(self) -> int:
        """Known models answer from a table; others cost one tiny request, once."""
        if self._dim is None:
            self._request(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        # The API rejects empty inputs; "." keeps one vector per text.
        texts = [self._clip(t) if t.strip() else "." for t in _check_texts(texts)]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts: list[np.ndarray] = []
        batch: list[str] = []
        chars = 0
        for text in texts:
            if batch and (len(batch) >= self._batch or chars + len(text) > MAX_CHARS_PER_REQUEST):
                parts.append(self._request(batch))
                batch, chars = [], 0
            batch.append(text)
            chars += len(text)
        parts.append(self._request(batch))
        return np.concatenate(parts)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        texts = _check_texts(texts)
        if self._encoding is not None:
            return [len(ids) for ids in self._encoding.encode_batch(texts, disallowed_special=())]
        return [(len(t) + 3) // 4 for t in texts]

    def _clip(self, text: str) -> str:
        """An input over the model's limit fails the whole request: cut it first."""
        if self._encoding is not None:
            ids = self._encoding.encode(text, disallowed_special=())
            if len(ids) > self.max_tokens:
                return self._encoding.decode(ids[: self.max_tokens])
            return text
        return text[: self.max_tokens * 3]

    def _request(self, texts: list[str]) -> np.ndarray:
        resp = self._client.embeddings.create(
            model=self._model, input=texts, encoding_format="float"
        )
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise RuntimeError(f"the embeddings API returned {len(rows)} vectors for {len(texts)}")
        vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
        if not self._seen_response:  # trust the server over the table (e.g. `dimensions`)
            self._dim, self._seen_response = vectors.shape[1], True
        elif vectors.shape[1] != self._dim:
            raise RuntimeError(
                f"the embeddings API changed dimension {self._dim} -> {vectors.shape[1]}"
            )
        return _normalise(vectors)


def _tiktoken_encoding(model: str) -> tiktoken.Encoding | None:
    """tiktoken's encoding if it is installed AND its file is cached: it would otherwise
    download the file, and nothing here may reach the network unasked. Else None."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "cl100k_base"
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache = cache or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not os.path.exists(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:
        return None
