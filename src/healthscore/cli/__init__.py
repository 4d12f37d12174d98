"""The `healthscore` command line: parse the options, call the library, print."""

from __future__ import annotations

from typing import Annotated

import typer

from healthscore import __version__
from healthscore.cli._common import configure_logging
from healthscore.cli.backfill import backfill_command
from healthscore.cli.demo import demo
from healthscore.cli.export import export_app
from healthscore.cli.human import inputs_app, override_app, sentiment_app
from healthscore.cli.ingest import ingest, quarantine
from healthscore.cli.learn import learn
from healthscore.cli.parents import parents
from healthscore.cli.predict import predict
from healthscore.cli.profile import profile_app
from healthscore.cli.report import report
from healthscore.cli.scores import accounts, explain, score
from healthscore.cli.segments import segments
from healthscore.cli.simulate import simulate
from healthscore.cli.validate import validate
from healthscore.cli.why import why

__all__ = ["app", "main"]

app = typer.Typer(
    name="healthscore",
    help="Customer health scores that are explained and checked against real churn.\n\n"
    "Typical flow: ingest accounts and events, score, then list, explain, export "
    "or report. `profile diff` previews a profile change, and `why` explains a score "
    "change between two dates. `healthscore demo` runs it all on bundled real data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"healthscore {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="Log progress (-v) or details (-vv)."
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    configure_logging(verbose)


app.command()(demo)
app.command()(ingest)
app.command()(quarantine)
app.command()(score)
app.command(name="backfill")(backfill_command)
app.command()(accounts)
app.command()(explain)
app.command()(why)
app.command()(parents)
app.command()(segments)
app.command()(learn)
app.command()(predict)
app.command()(validate)
app.add_typer(profile_app, name="profile")
app.add_typer(export_app, name="export")
app.add_typer(sentiment_app, name="sentiment")
app.add_typer(override_app, name="override")
app.add_typer(inputs_app, name="inputs")
app.command()(report)
app.command()(simulate)


def main() -> None:
    """Run the command line."""
    app()
