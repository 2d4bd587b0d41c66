"""The embedded engine's runtime: packaged models, the managed llama.cpp server, its queue."""
