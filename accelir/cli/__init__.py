"""The ``accelir`` command line: one typer app, each sub-command group in its own module."""

from __future__ import annotations

import typer

from accelir.cli import data as data_cli
from accelir.cli import demo as demo_cli
from accelir.cli import train as train_cli

app = typer.Typer(
    name="accelir",
    help="Task-aware image compression for neural restoration.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(train_cli.app, name="train")
app.command("demo")(demo_cli.demo)


def main(argv: list[str] | None = None) -> None:
    """Entry point; ``argv`` lets tests call the CLI without spawning a shell."""
    app(args=argv, prog_name="accelir")
