"""Shared terminal output: one console for results, one for messages, a progress bar for long work."""

from __future__ import annotations

from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

out = Console()
err = Console(stderr=True)


def progress(transient: bool = False) -> Progress:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
    )


def error(message: str) -> None:
    """Print ``error: <message>`` on stderr: the CLI's one error format."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` and exit with ``code``."""
    import typer

    error(message)
    raise typer.Exit(code)
