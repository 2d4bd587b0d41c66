"""The HTTP API: FastAPI routes over the copilot, and the authentication they rely on."""
