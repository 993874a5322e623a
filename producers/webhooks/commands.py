"""`tillflow webhooks serve SOURCE...`: receive POS vendors' webhooks and publish the changed tickets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import fail, out

webhooks = typer.Typer(help="Receive POS vendors' push notifications (webhooks).", no_args_is_help=True)


@webhooks.command("serve")
def serve(
    sources: Annotated[
        list[Path], typer.Argument(help="POS source files (the same as `poll`) with a webhook: section.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on (put TLS in front: vendors post over HTTPS).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
) -> None:
    """Receive Square, Shopify, Clover and Lightspeed X-Series webhooks at POST /webhooks/<source name>.

    Each notification is verified (Square x-square-hmacsha256-signature over the notification URL and body,
    Shopify X-Shopify-Hmac-Sha256, Clover X-Clover-Auth, Lightspeed X-Signature), refused when older than the
    source's webhook.tolerance (default: the vendor's retry window), completed from the vendor API where it
    names only an id, mapped like `poll` does, and published to pos.tickets before it is answered 200; a
    failure answers 503 so that the vendor sends it again. Keep `poll --every` running: webhooks are not
    guaranteed by any of the vendors, the poller reconciles what they missed. Tickets published here are not
    sent again by the poller (same checkpoint store, <state_dir>/pos/<name>.sqlite).
    """
    from aiohttp import web

    from producers.pos.checkpoint import CheckpointStore
    from producers.pos.http import TokenFile
    from producers.pos.poller import make_client
    from producers.pos.sink import KafkaSink
    from producers.pos.source import SourceError, load_source
    from producers.pos.vendors import adapter_for
    from producers.sender import RecordSender
    from producers.webhooks.service import Endpoint, SeenEvents, make_app
    from tillflow.kafka import StackNotRunning
    from tillflow.settings import load_settings
    from tillflow.shutdown import StopDeadline

    settings = load_settings()
    state = settings.state_dir / "pos"
    try:
        sender = RecordSender(settings)
    except StackNotRunning as exc:
        fail(str(exc))
    endpoints = {}
    for path in sources:
        try:
            cfg = load_source(path)
            if cfg.webhook is None:
                raise SourceError(f"source file {path}: no webhook: section (secret, notification_url...)")
            adapter = adapter_for(cfg)
            client = make_client(cfg, adapter, TokenFile(state / f"{cfg.name}.tokens.json"))
            secret = cfg.webhook.secret.read(f"source {cfg.name} webhook.secret")
        except (SourceError, ValueError) as exc:
            fail(str(exc))
        endpoints[cfg.name] = Endpoint(cfg, adapter, client, KafkaSink(sender, settings),
                                       CheckpointStore(state / f"{cfg.name}.sqlite", shared=True), secret)  # fmt: skip
        out.print(f"{cfg.name} ({cfg.vendor}): POST http://{host}:{port}/webhooks/{cfg.name}")
    app = make_app(endpoints, SeenEvents(state / "webhooks.sqlite"))
    deadline = StopDeadline(settings.stop_timeout_s, "the webhook receiver")

    async def _bounded_stop(_app: web.Application) -> None:  # SIGTERM: aiohttp's graceful stop begins here
        deadline.arm()

    app.on_shutdown.append(_bounded_stop)
    web.run_app(app, host=host, port=port, print=None, handle_signals=True)


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks, name="webhooks")
