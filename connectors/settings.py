"""The settings connectors read, declared as Protocols: ``copilot.config.Settings`` fits them.

Connectors must not import ``copilot``, yet Graph sign-in and the Graph client are set up
from the copilot's settings. Each Protocol names only the fields one part needs, so the
copilot passes its ``Settings`` as it is, a test can pass a small object of its own, and
mypy checks at the copilot's call sites that the two still agree.

Members are read-only properties: the copilot's settings are frozen, and a connector never
changes them. A secret is anything with ``get_secret_value()`` (pydantic's ``SecretStr``),
read only at the moment it is handed to MSAL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["EntraSettings", "GraphSettings", "Secret"]


class Secret(Protocol):
    """A value that does not show itself in a repr or a log line (``SecretStr``)."""

    def get_secret_value(self) -> str: ...


class EntraSettings(Protocol):
    """Signing in to Microsoft Entra for Graph tokens (``connectors.graph.auth``)."""

    @property
    def entra_authority_host(self) -> str: ...

    @property
    def entra_tenant_id(self) -> str | None: ...

    @property
    def entra_client_id(self) -> str | None: ...

    @property
    def entra_client_secret(self) -> Secret | None: ...

    @property
    def tls_ca_file(self) -> Path | None: ...


class GraphSettings(Protocol):
    """Reaching Graph and bounding one sync run (``connectors.graph.client_from_settings``)."""

    @property
    def graph_base_url(self) -> str: ...

    @property
    def graph_run_budget_s(self) -> float: ...

    @property
    def max_file_bytes(self) -> int: ...
