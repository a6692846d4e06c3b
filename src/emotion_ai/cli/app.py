"""The `emotion-ai` command: every command group mounted on one Typer app."""

from __future__ import annotations

import typer

from emotion_ai.cli import data, doctor, pipeline, predict, serving, tracking, tune, watch
from emotion_ai.cli.options import help_markup
from emotion_ai.cli.steps import step_app
from emotion_ai.logs import configure_logging

app = typer.Typer(
    help="Train, track, gate and serve the emotion-ai face models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=help_markup(),
)


@app.callback()
def main() -> None:
    """Train, track, gate and serve the emotion-ai face models."""
    configure_logging()


app.command()(pipeline.run)
app.command()(tracking.models)
app.command()(tracking.ui)
app.command("tracking-server")(tracking.tracking_server)
app.command()(serving.serve)
app.command()(predict.predict)
app.command()(serving.promote)
app.command()(serving.rollback)
app.command()(serving.label)
app.command()(watch.watch)
app.command("generate-data")(data.generate_data)
app.command("tune")(tune.tune)
app.command()(doctor.doctor)
app.add_typer(pipeline.pipeline_app, name="pipeline")
app.add_typer(step_app, name="step")
