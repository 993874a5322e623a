"""The `tillflow` command.

Each command group lives beside its code in a module named ``commands.py`` (for example
``producers/simulator/commands.py``) that defines ``register(app)``. This module finds them, so adding a
command means adding one file. Command modules import heavy libraries (torch, the JVM) inside commands.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tillflow import __version__
from tillflow.console import err, fail
from tillflow.errors import TillflowError

ROOT = Path(__file__).resolve().parent.parent
COMMAND_PACKAGES = ("tillflow", "producers", "streams", "sinks", "analytics")  # schemas/ has none: nothing upward

app = typer.Typer(
    name="tillflow",
    help="Live hourly conversion for shops and malls: footfall from door cameras joined with POS tickets.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tillflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML or YAML); else TILLFLOW_CONFIG.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    import os

    if config is not None:
        if not config.exists():
            raise typer.BadParameter(f"config file {config} does not exist", param_hint="--config")
        os.environ["TILLFLOW_CONFIG"] = str(config)
    if log_level:
        os.environ["TILLFLOW_LOG_LEVEL"] = log_level.upper()
    logging.basicConfig(
        level=os.environ.get("TILLFLOW_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def command_modules() -> list[str]:
    """Dotted names of every ``commands.py`` under the tillflow packages, in a stable order."""
    names = []
    for package in COMMAND_PACKAGES:
        for path in sorted((ROOT / package).rglob("commands.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            names.append(".".join(rel.parts))
    return names


# `--help` groups the commands along the data flow; a command not listed here lands under "Other".
HELP_PANELS = {
    "Local pipeline": ("demo", "dev", "simulate", "produce", "catalogue"),
    "Producers (into Kafka)": (
        "poll",
        "webhooks",
        "sync-check",
        "files",
        "collect",
        "connectors",
        "cdc",
        "normalize",
        "camera",
        "shifts",
    ),
    "Streams": ("worker", "replay", "recompute", "backfill"),
    "Sinks": ("sink", "clickhouse", "report", "briefing"),
    "Malls and chains (from ClickHouse)": ("statements", "lift", "forecast"),
    "Contracts": ("schemas", "registry"),
}


def _panel(name: str | None) -> str:
    for panel, names in HELP_PANELS.items():
        if name in names:
            return panel
    return "Other"


def reporting_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with every :class:`TillflowError` printed as ``error: <message>`` and exit status 1.

    The one place the CLI turns tillflow's errors into its error format: commands let them propagate.
    """

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except TillflowError as exc:
            fail(escape(str(exc)))  # a message is text: a [bracket] in it is not rich markup

    return run


def _report_errors_of(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        if command.callback is not None:
            command.callback = reporting_errors(command.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _report_errors_of(group.typer_instance)


def _register_all() -> None:
    for name in command_modules():
        module = importlib.import_module(name)
        module.register(app)
    _report_errors_of(app)
    for command in app.registered_commands:
        command.rich_help_panel = _panel(command.name or (command.callback.__name__ if command.callback else None))
    for group in app.registered_groups:
        group.rich_help_panel = _panel(group.name)


_register_all()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
