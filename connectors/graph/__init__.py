"""Microsoft Graph connectors: Outlook mail (``GraphMail``) and OneDrive/SharePoint files
(``GraphDrive``), over one small HTTP client (``GraphClient``).

The connectors take a ``GraphClient``, which takes a ``token_provider``: any callable that
returns a current access token (MSAL device code, on-behalf-of, client credentials). The
``*_from_settings`` helpers apply the ``COPILOT_GRAPH_*`` settings.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.graph.client import BudgetExceeded, GraphClient, GraphError, ResyncRequired
from connectors.graph.drive import GraphDrive
from connectors.graph.mail import GraphMail
from connectors.settings import GraphSettings

__all__ = [
    "BudgetExceeded",
    "GraphClient",
    "GraphDrive",
    "GraphError",
    "GraphMail",
    "ResyncRequired",
    "client_from_settings",
    "drive_from_settings",
]


def client_from_settings(settings: GraphSettings, token_provider: Callable[[], str]) -> GraphClient:
    """A client on ``settings.graph_base_url`` with the per-run budget ``graph_run_budget_s``."""
    return GraphClient(
        base_url=settings.graph_base_url,
        token_provider=token_provider,
        budget_s=settings.graph_run_budget_s,
    )


def drive_from_settings(
    settings: GraphSettings, client: GraphClient, owner: str, drive: str = "me"
) -> GraphDrive:
    return GraphDrive(client, owner, drive=drive, max_bytes=settings.max_file_bytes)
