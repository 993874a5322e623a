"""`tillflow registry serve`: run the local schema registry in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

registry_app = typer.Typer(
    help="tillflow's local Confluent-compatible schema registry (development and tests; not for production).",
    no_args_is_help=True,
)


@registry_app.command("serve")
def registry_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; default dev_registry_port, else 8081.")] = 0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where registry.json is kept; default <state_dir>/registry.")
    ] = None,
) -> None:
    """Serve the registry until Ctrl-C or SIGTERM. `tillflow dev up` starts the same server in the background.

    Production uses Confluent Schema Registry, Karapace, Apicurio or Redpanda (TILLFLOW_REGISTRY_URL).
    """
    import logging

    from tillflow.registry.server import serve
    from tillflow.settings import load_settings

    settings = load_settings()
    logging.getLogger("tillflow.registry").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(host, port or settings.dev_registry_port or 8081, data_dir or settings.state_dir / "registry")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
