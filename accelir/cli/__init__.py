"""The ``accelir`` command line: one typer app, each sub-command group in its own module."""

from __future__ import annotations

import typer

from accelir.cli import codec_cli, models_cli
from accelir.cli import data as data_cli
from accelir.cli import demo as demo_cli
from accelir.cli import evaluate as eval_cli
from accelir.cli import profile as profile_cli
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
app.command("encode")(codec_cli.encode)
app.command("restore")(codec_cli.restore)
app.command("inspect")(codec_cli.inspect)
app.command("profile")(profile_cli.profile)
app.command("models")(models_cli.models)
app.command("eval", context_settings={"allow_extra_args": True})(eval_cli.evaluate)
train_cli.app.command("qpnet")(profile_cli.train_qpnet)


def main(argv: list[str] | None = None) -> None:
    """Entry point; ``argv`` lets tests call the CLI without spawning a shell."""
    app(args=argv, prog_name="accelir")
