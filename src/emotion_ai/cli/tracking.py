"""`emotion-ai models`, `ui` and `tracking-server`: the registry's table and MLflow's servers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich import box
from rich.table import Column, Table

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    DEFAULT_UI_PORT,
    LOOPBACK,
    StateDir,
    console,
    tracking_settings,
)


def models(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Table of registered model versions, their aliases and test scores."""
    from mlflow.tracking import MlflowClient

    from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL
    from emotion_ai.steps.tracking import use_tracking

    use_tracking(tracking_settings(state_dir))
    client = MlflowClient()
    table = Table(
        Column("model", no_wrap=True),
        Column("v", justify="right"),
        Column("aliases", min_width=len("challenger")),
        Column("decision", no_wrap=True),
        Column("test metric", no_wrap=True),
        Column("data", no_wrap=True),
        box=box.SIMPLE_HEAD,
        title="Registered models",
        caption="RMSE: lower is better; accuracy: higher is better",
    )
    for name in (KEYPOINT_MODEL, EMOTION_MODEL):
        for found in sorted(
            client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
        ):
            version = client.get_model_version(name, found.version)
            tags = version.tags
            table.add_row(
                name,
                str(version.version),
                " ".join(version.aliases),
                tags.get("decision", ""),
                _test_metric(name, tags.get("test_score", "")),
                tags.get("data_sha256", "")[:8],
            )
    console.print(table)


def _exec_mlflow(arguments: list[str], url: str) -> None:
    """Replaces this process with `mlflow ARGUMENTS`, so stopping it stops the server."""
    import os
    import sys

    console.print(f"MLflow on {url}")
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", *arguments])


def _test_metric(name: str, score: str) -> str:
    """A version's test score, named: keypoint RMSE in pixels, or emotion accuracy."""
    from emotion_ai.settings import KEYPOINT_MODEL

    if not score:
        return ""
    return (
        f"RMSE {float(score):.2f} px" if name == KEYPOINT_MODEL else f"accuracy {float(score):.3f}"
    )


def ui(
    port: Annotated[int, typer.Option()] = DEFAULT_UI_PORT,
    host: Annotated[str, typer.Option()] = LOOPBACK,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Open the MLflow UI on the local tracking store."""
    from emotion_ai.steps.tracking import local_tracking

    tracking = local_tracking(state_dir)
    _exec_mlflow(
        [
            "ui",
            "--backend-store-uri",
            tracking.tracking_uri,
            "--default-artifact-root",
            tracking.artifact_location,
            "--host",
            host,
            "--port",
            str(port),
        ],
        f"http://{host}:{port}",
    )


def tracking_server(
    backend_store_uri: Annotated[
        Optional[str],
        typer.Option(
            help="Runs and registry, e.g. postgresql://user:pass@db:5432/mlflow (default: SQLite "
            "under STATE_DIR)."
        ),
    ] = None,
    artifacts_destination: Annotated[
        Optional[str],
        typer.Option(
            help="Where the server stores artifacts, e.g. s3://bucket/mlartifacts (endpoint from "
            "AWS_ENDPOINT_URL; "
            "default: STATE_DIR/mlartifacts)."
        ),
    ] = None,
    port: Annotated[int, typer.Option()] = DEFAULT_UI_PORT,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless told otherwise).")
    ] = LOOPBACK,
    workers: Annotated[int, typer.Option()] = 2,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Run an MLflow tracking and registry server that proxies artifacts; point runs at it with
    MLFLOW_TRACKING_URI=http://HOST:PORT."""
    from emotion_ai.steps.tracking import local_tracking

    local = local_tracking(state_dir)
    _exec_mlflow(
        [
            "server",
            "--backend-store-uri",
            backend_store_uri or local.tracking_uri,
            "--artifacts-destination",
            artifacts_destination or local.artifact_location,
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        f"http://{host}:{port}",
    )
