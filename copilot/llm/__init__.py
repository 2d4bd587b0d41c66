"""Talking to language models: the OpenAI-compatible engine (``openai_engine``), token
counts (``tokens``), redaction (``redact``), retries (``retry``), structured output
(``structured``), usage and cost (``usage``). Import from the modules; this package file
imports nothing, so no module here can import itself in a circle through it."""
