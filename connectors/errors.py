"""The root of what a connector raises on purpose, so the copilot can map it without knowing it.

Connectors sit below the copilot and never import it, so this root carries only a
machine-readable ``kind`` (class attribute, overridable per instance). ``copilot.errors``
turns any ``ConnectorError`` that reaches a person into a 502 ("a source failed") with that
kind and the message, which already says what to do. Attributes such as ``GraphError.status``
keep the remote server's own words; they are never the copilot's answer.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """A source (mailbox, Graph, a file) that cannot be read; the message says why."""

    kind: str = "source_failed"
