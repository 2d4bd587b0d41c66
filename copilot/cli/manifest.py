"""``copilot manifest build``: the Word and Outlook manifests and the Teams package for a host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from copilot.cli.output import console, fail


def manifest_build(
    base_url: Annotated[
        str, typer.Option("--base-url", help="Public HTTPS address of the server: https://HOST")
    ],
    app_id: Annotated[
        str, typer.Option("--app-id", help="A GUID of your choice identifying the apps; keep it.")
    ],
    api_client_id: Annotated[
        str, typer.Option("--api-client-id", help="Client id of the API's Entra app (SSO).")
    ],
    bot_id: Annotated[
        str | None,
        typer.Option("--bot-id", help="The Azure Bot's Entra app id; default --api-client-id."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the files.")] = Path(
        "build/manifests"
    ),
    version: Annotated[
        str | None, typer.Option("--version", help="App version 1.2.3; default the package's.")
    ] = None,
    icons: Annotated[
        Path | None, typer.Option("--icons", help="Folder with your own icons (same names).")
    ] = None,
) -> None:
    """Write word-manifest.xml, outlook-manifest.xml and teams-app.zip for BASE_URL."""
    from copilot.deploy.manifests import (
        DEFAULT_ICONS,
        OUTPUT_FILES,
        ManifestError,
        build,
        deployment,
    )

    try:
        dep = deployment(base_url, app_id, api_client_id, bot_id, version=version)
        result = build(dep, out, icons_dir=icons or DEFAULT_ICONS)
    except ManifestError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"Cannot write to {out}: {exc.strerror}", 1) from exc
    for name in OUTPUT_FILES:
        console.print(f"{result.files[name]}", highlight=False, markup=False)
    console.print(
        f"Word add-in id {result.ids['word']}, Outlook add-in id {result.ids['outlook']}, "
        f"Teams app id {result.ids['teams']}, bot id {result.ids['bot']}.\n"
        f"Serve the icons under {dep.base_url}/manifest/icons/ (copies in {out / 'icons'}).",
        highlight=False,
        markup=False,
    )
