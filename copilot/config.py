"""All settings in one place: ``COPILOT_*`` environment variables, or a ``.env`` file.

Everything the copilot keeps on disk lives under ``COPILOT_HOME`` so a user (or a test)
can point it somewhere else and get a fully separate copilot.

Secrets (API keys, the Entra client secret) are ``SecretStr``: they show as ``**********``
in a repr, a log line or a traceback of the settings, and are read with
``.get_secret_value()`` only where they are handed to the client that sends them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COPILOT_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    home: Path = Field(default=Path("~/.office-copilot"), description="All local state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the state store; default SQLite in home."
    )
    models_dir_override: Path | None = Field(
        default=None,
        alias="COPILOT_MODELS_DIR",
        description="Where derived model files (the ONNX export) are cached; default home/models.",
    )
    qdrant_url: str | None = Field(
        default=None,
        description="A Qdrant server (http://host:6333), or qdrant-client local mode "
        "(local:/path or :memory:); unset means the embedded engine.",
    )
    qdrant_api_key: SecretStr | None = Field(
        default=None, description="API key of the Qdrant server."
    )

    # Embeddings
    embed_provider: Literal["local", "openai", "azure"] = "local"
    embed_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Local: the packaged MiniLM. OpenAI/Azure: the model or deployment name.",
    )
    embed_backend: Literal["onnx", "onnx-int8", "torch"] = Field(
        default="onnx-int8",
        description="Runtime for the local model: onnx-int8 (quantised, each text alone: "
        "about 2x as fast as float), onnx (float: the torch vectors, an index of its own), "
        "torch.",
    )
    embed_batch: int = Field(default=64, ge=1, le=2048)
    embed_threads: int = Field(
        default=0, ge=0, description="0: one per core (the API server: one, see app.py)."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="API key of OpenAI or Azure OpenAI embeddings."
    )
    openai_base_url: str | None = None
    azure_endpoint: str | None = None
    azure_api_version: str = "2024-10-21"

    # Ingestion
    max_file_mb: float = Field(default=50.0, gt=0, description="Larger files are skipped.")
    parse_timeout_s: float = Field(default=60.0, gt=0)
    parse_memory_mb: int = Field(default=1536, ge=256)
    parse_workers: int = Field(default=2, ge=1, le=32)
    chunk_tokens: int = Field(default=200, ge=32, le=8192)
    chunk_overlap: int = Field(default=32, ge=0)
    embed_table_rows: int = Field(
        default=200,
        ge=0,
        description="Rows of each table (a sheet, a Word table) embedded; the rest are found by "
        "keyword (BM25) only, and the table gets an embedded summary chunk (columns, types, "
        "ranges). Noted in `copilot status` when it applies.",
    )
    embed_item_chunks: int = Field(
        default=1000,
        ge=1,
        description="Most chunks of one item embedded (summaries first, then in reading order); "
        "the rest are keyword-only (BM25). Noted in `copilot status` when it applies. 1,000 "
        "chunks hold about 1M characters of English prose but only ~180k of Russian, which "
        "MiniLM's tokenizer cuts into ~4.6x more tokens (docs/benchmarks.md).",
    )

    # Search
    fusion: Literal["dbsf", "rrf"] = Field(
        default="dbsf",
        description="How hybrid search fuses dense and BM25: distribution-based score fusion "
        "(measured better, docs/benchmarks.md) or reciprocal rank fusion.",
    )
    search_feedback: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Hybrid search runs its dense list again from the query moved towards this "
        "many of the first fused list's top chunks (pseudo-relevance feedback; +0.013 nDCG@10 "
        "on Cranfield, docs/benchmarks.md); 0 turns it off.",
    )

    # LLM (skills). Unset base URL, key and Azure endpoint: the local engine answers.
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server (vLLM, Ollama, ...): http://host/v1."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key for the LLM server.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model (or Azure deployment).")
    llm_azure_endpoint: str | None = Field(
        default=None, description="Azure OpenAI endpoint (https://NAME.openai.azure.com)."
    )
    llm_azure_deployment: str | None = Field(
        default=None, description="Azure OpenAI deployment; default the model name."
    )
    llm_azure_api_version: str = "2024-10-21"
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Per request, streaming included.")
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_context_window: int = Field(
        default=16_000, ge=512, description="Tokens the model accepts, prompt plus output."
    )
    llm_output_tokens: int = Field(
        default=1_000, ge=16, description="Reserved for the answer; the rest is the budget."
    )
    llm_prompt_rate: float | None = Field(
        default=None,
        gt=0,
        description="Prompt tokens a second the server reads (a CPU model: 40-80). Sizes the "
        "first-token timeout and the prompt budget; unset: measured on real calls.",
    )
    llm_first_token_s: float = Field(
        default=20.0,
        gt=0,
        description="Time-to-first-token goal on a slow server: the prompt is packed to what "
        "it reads in this time at the prompt rate (a cached prefix is free).",
    )
    llm_serial: bool = Field(
        default=False,
        description="The server computes one request at a time (llama.cpp): a timed-out "
        "request is not retried, since the server is still computing it.",
    )
    llm_prefill: Literal["chatml", "continue", "instruct"] = Field(
        default="instruct",
        description="How a skill's prefilled answer start is sent: chatml (/v1/completions, "
        "llama.cpp with a ChatML model), continue (a final assistant message, llama-server "
        "and Ollama) or instruct (an instruction; OpenAI, Azure).",
    )
    llm_prices: dict[str, tuple[float, float]] = Field(
        default={
            "gpt-4o-mini": (0.00015, 0.0006),
            "gpt-4o": (0.0025, 0.01),
            "gpt-4.1": (0.002, 0.008),
            "gpt-4.1-mini": (0.0004, 0.0016),
            "gpt-4.1-nano": (0.0001, 0.0004),
            "gpt-3.5-turbo": (0.0005, 0.0015),
        },
        description="USD per 1,000 (input, output) tokens, for cost estimates; JSON in env.",
    )
    engine: Literal["auto", "llm", "embedded", "local"] = Field(
        default="auto",
        description="auto: the LLM when one is configured, else the embedded model when one "
        "is installed, else local.",
    )

    # The embedded engine: a packaged model (`copilot model install`) in a llama.cpp server
    # that the copilot starts on loopback when needed (copilot/llm/embedded/).
    llm_model_file: Path | None = Field(
        default=None,
        description="A GGUF file of your own for the embedded engine (not hash-checked).",
    )
    embedded_model: str | None = Field(
        default=None,
        description="Which installed packaged model to run; default the best one installed.",
    )
    embedded_context: int = Field(
        default=8192, ge=512, description="Context tokens the model server is started with."
    )
    embedded_threads: int = Field(
        default=1, ge=1, le=64, description="CPU threads of the model (1: steady on 2 cores)."
    )
    embedded_prompt_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="CPU threads reading a prompt (0: one per core; the model's own otherwise).",
    )
    embedded_cache_mb: int = Field(
        default=1024, ge=0, description="Prompt cache of the model server (0: off)."
    )
    embedded_keep_alive_s: float = Field(
        default=300.0, ge=0, description="Idle seconds before the model server stops (0: never)."
    )
    embedded_start_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest wait for the model server to load."
    )

    # Privacy
    redact: bool = Field(
        default=False,
        description="Redact e-mail addresses, phone, card and account numbers (and the names "
        "in redact_names) from everything sent to a remote LLM.",
    )
    redact_names: list[str] = Field(default=[], description="Names to redact; JSON list in env.")

    # API server and its authentication
    auth: Literal["entra", "dev"] = Field(
        default="entra",
        description="entra: Microsoft Entra ID access tokens. dev: named local users, "
        "loopback only, never in production.",
    )
    dev_users: list[str] = Field(
        default=["anna", "bob"],
        description="Dev mode: who may sign in as Bearer dev:NAME (local:NAME), besides every "
        "local user with data.",
    )
    entra_tenant_id: str | None = Field(default=None, description="The API's home tenant id.")
    entra_client_id: str | None = Field(
        default=None, description="The API app registration's client id (an accepted audience)."
    )
    entra_audiences: list[str] = Field(
        default=[], description="Other accepted audiences, e.g. the app id URI api://…"
    )
    entra_allowed_tenants: list[str] = Field(
        default=[], description="Tenants whose users may call the API; empty: the home tenant."
    )
    entra_required_scope: str = Field(
        default="access_as_user", description="Delegated scope every token must carry."
    )
    entra_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description="Where tokens are issued and JWKS are fetched (sovereign clouds differ).",
    )
    entra_client_secret: SecretStr | None = Field(
        default=None, description="Client secret for the on-behalf-of exchange to Graph."
    )
    entra_leeway_s: int = Field(default=60, ge=0, le=300, description="Clock skew allowed.")
    tls_ca_file: Path | None = Field(
        default=None, description="Extra CA bundle for HTTPS to Entra/Graph (proxies, tests)."
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8765, ge=0, le=65535)
    api_workers: int = Field(
        default=1, ge=1, le=32,
        description="API processes of `copilot serve` on one port: the first owns the "
        "index and jobs, the others serve runs and searches (copilot/api/workers.py).",
    )  # fmt: skip
    cors_origins: list[str] = Field(default=[], description="Origins allowed by CORS.")
    max_request_mb: float = Field(default=25.0, gt=0, description="Largest request body.")
    request_header_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a client may take to send a request's headers."
    )
    request_body_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest a client may take to send a request's body."
    )
    sync_roots: list[str] = Field(
        default=["~"],
        description="Dev mode: the only folders POST /v1/sync/local may index (JSON list); "
        "'{user}' stands for the dev user's name, e.g. /srv/data/{user}.",
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=1, description="Skill runs and searches per user per minute."
    )
    run_timeout_s: float = Field(default=300.0, gt=0, description="Longest skill run.")
    addins_dir: Path | None = Field(
        default=None,
        description="Folder served under /addins/office; default the project's addins/office.",
    )
    # The pages the Office and Teams manifests link to (copilot/api/pages.py). Plain text;
    # a blank line starts a paragraph; http(s) links and e-mail addresses become links.
    publisher: str = Field(
        default="", max_length=200, description="Who runs this copilot, named on its pages."
    )
    privacy_text: str | None = Field(
        default=None, max_length=100_000,
        description="The privacy statement at /privacy; default: what this copilot stores and "
        "sends, from these settings.",
    )  # fmt: skip
    terms_text: str | None = Field(
        default=None, max_length=100_000, description="The terms of use at /terms."
    )
    support_text: str | None = Field(
        default=None, max_length=100_000,
        description="Where to get help, at /support (e.g. the IT service desk's address).",
    )  # fmt: skip

    # Microsoft Graph connectors
    graph_base_url: str = Field(
        default="https://graph.microsoft.com/v1.0", description="Graph endpoint (clouds differ)."
    )
    graph_mail_folders: list[str] = Field(
        default=["inbox", "sentitems", "archive"],
        description="Well-known names or ids of the mail folders to sync.",
    )
    graph_site_drives: list[str] = Field(
        default=[], description="SharePoint document library drive ids to sync."
    )
    graph_max_attachment_mb: float = Field(default=25.0, gt=0)
    graph_run_budget_s: float = Field(
        default=900.0, gt=0, description="Longest one source may sync in one run."
    )
    sync_interval_s: float = Field(default=900.0, ge=30, description="Watch mode interval.")

    # Fine-tuning
    finetune_prices: dict[str, float] = Field(
        default={
            "gpt-4o-mini": 0.003,
            "gpt-4o": 0.025,
            "gpt-4.1": 0.025,
            "gpt-4.1-mini": 0.005,
            "gpt-4.1-nano": 0.0015,
            "gpt-3.5-turbo": 0.008,
        },
        description="USD per 1,000 training tokens by base model (dated names match by prefix).",
    )
    finetune_base_model: str = Field(
        default="gpt-4o-mini",
        min_length=1,
        description="The base model `copilot finetune validate` prices when none is given.",
    )
    finetune_max_tokens: int = Field(
        default=65_536, ge=512, description="Most tokens in one training example."
    )
    admins: list[str] = Field(
        default=[], description="User ids (tid:oid, local:NAME) allowed the /v1/admin routes."
    )

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key or self.llm_azure_endpoint)

    @property  # not cached: model_copy(update={"home": …}) would keep a stale value
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'state.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home_dir / "index"

    @property
    def models_dir(self) -> Path:
        if self.models_dir_override is not None:
            return self.models_dir_override.expanduser().resolve()
        return self.home_dir / "models"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def get_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides winning (each one of
    any field's type: pydantic validates them as it does the environment's)."""
    return Settings(**overrides)
