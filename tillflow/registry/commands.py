"""The contracts' commands: `tillflow schemas ...` (check today's schemas against the released versions, release,
register) and `tillflow registry serve` (the local schema registry in the foreground).

They live here, not in schemas/, so that schemas/ (the contracts every layer imports) imports no CLI plumbing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tillflow.console import err, fail, out

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

schemas_app = typer.Typer(
    help="The Avro contracts: compatibility with released versions, releasing, registering.", no_args_is_help=True
)


@schemas_app.command("check")
def schemas_check(
    avro_dir: Annotated[Path | None, typer.Option(help="Today's schemas; default schemas/avro.")] = None,
    released_dir: Annotated[Path | None, typer.Option(help="Released versions; default schemas/released.")] = None,
) -> None:
    """Check that every schema in schemas/avro is BACKWARD-compatible with all its released versions.

    Released versions live in schemas/released/<subject>/v<N>.avsc. Exits 1 and prints each reason (field
    path and why) when a consumer on today's schema could not read records written with an old one.
    """
    from schemas.released import AVRO_DIR, RELEASED_DIR, check_released

    try:
        results = check_released(released_dir or RELEASED_DIR, avro_dir or AVRO_DIR)
    except ValueError as exc:
        fail(str(exc))
    failed = 0
    for result in results:
        versions = ", ".join(p.stem for p in result.released) or "none"
        if result.problems:
            failed += 1
            err.print(
                f"[red]{result.subject}[/red]: not BACKWARD-compatible with released {versions}:", highlight=False
            )
            for problem in result.problems:
                err.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
        else:
            note = (
                " (changed since the latest release: run `tillflow schemas release`)"
                if result.unreleased_change
                else ""
            )
            out.print(f"{result.subject}: compatible with released {versions}{note}", highlight=False)
    if failed:
        fail(f"{failed} of {len(results)} subjects are incompatible with their released versions")


@schemas_app.command("release")
def schemas_release() -> None:
    """Add today's schema of each changed subject as its next released version (after checking it)."""
    from schemas.released import release
    from schemas.topics import TOPICS

    for spec in TOPICS.values():
        try:
            path = release(spec)
        except ValueError as exc:
            fail(str(exc))
        out.print(f"{spec.subject}: released {path}" if path else f"{spec.subject}: unchanged", highlight=False)


@schemas_app.command("register")
def schemas_register(
    url: Annotated[
        str | None,
        typer.Option(help="Registry URL; default TILLFLOW_REGISTRY_URL, else the local stack's registry."),
    ] = None,
) -> None:
    """Register today's schemas under their subjects (<topic>-value) and print each id and version.

    First sets each subject's compatibility level to BACKWARD (PUT /config/<subject>) unless it already
    has BACKWARD or a stricter level that includes it (BACKWARD_TRANSITIVE, FULL, FULL_TRANSITIVE). The
    registry enforces that level; a refused schema is printed with the registry's reasons and the command
    exits 1.
    """
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from rich.markup import escape

    from schemas.serde import schema_text
    from schemas.topics import TOPICS
    from tillflow.devstack import read_stack
    from tillflow.kafka import registry_from_settings
    from tillflow.settings import load_settings

    settings = load_settings()
    if url is None:
        stack = read_stack(settings)
        url = settings.registry_url or (stack or {}).get("registry", {}).get("url")
    if not url:
        fail("no registry: set TILLFLOW_REGISTRY_URL, pass --url, or start the local stack (tillflow dev up)")
    client = registry_from_settings(settings, url)
    refused = 0
    for spec in TOPICS.values():
        schema = Schema(schema_text(spec.model.avro_name), "AVRO")
        try:
            level = ensure_backward(client, spec.subject)
            schema_id = client.register_schema(spec.subject, schema)
            version = client.lookup_schema(spec.subject, schema).version
        except SchemaRegistryError as exc:
            refused += 1
            err.print(
                f"[red]{spec.subject}[/red]: refused ({exc.http_status_code}/{exc.error_code}): "
                + escape(str(exc.error_message)),
                highlight=False,
                soft_wrap=True,
            )
            continue
        except Exception as exc:
            fail(f"registry {url} not reachable: {exc}")
        out.print(
            f"{spec.subject}: id {schema_id}, version {version}, compatibility {level}", highlight=False, soft_wrap=True
        )
    if refused:
        fail(f"{refused} schema(s) refused by {url}")


# Levels under which every new version can read every older one (what BACKWARD promises, or more).
BACKWARD_OR_STRICTER = frozenset({"BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"})


def ensure_backward(client: SchemaRegistryClient, subject: str) -> str:
    """The subject's compatibility level after making sure it is BACKWARD or stricter; raises
    SchemaRegistryError when the registry refuses to tell or to change it."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        level = client.get_compatibility(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code != 404:  # 404: no subject-level setting, the global default applies
            raise
        level = None
    if level in BACKWARD_OR_STRICTER:
        return str(level)
    client.set_compatibility(subject, "BACKWARD")
    return "BACKWARD" + (f" (was {level})" if level else " (was the global default)")


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
    app.add_typer(schemas_app, name="schemas")
    app.add_typer(registry_app, name="registry")
