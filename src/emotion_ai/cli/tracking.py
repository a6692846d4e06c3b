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

    from emotion_ai.logs import redact
    from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL
    from emotion_ai.steps.summary import headline_figure
    from emotion_ai.steps.tracking import use_tracking

    tracking = tracking_settings(state_dir)
    use_tracking(tracking)
    client = MlflowClient()
    console.print(f"registry: {redact(tracking.tracking_uri)}", soft_wrap=True)
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
                headline_figure(name, tags.get("test_score")),
                tags.get("data_sha256", "")[:8],
            )
    console.print(table)


MLFLOW_START_TIMEOUT_S = 300


def _run_mlflow(arguments: list[str], url: str, opens: str) -> None:
    """Runs `mlflow ARGUMENTS` until this command is stopped (Ctrl-C or SIGTERM stop the server
    too),
    and prints where to look (`opens`) only once the server answers at `url`."""
    import signal
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-m", "mlflow", *arguments])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _wait_until_answers(f"{url}/health", server)
        console.print(f"MLflow on [cyan]{opens}[/]", soft_wrap=True)
        server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)


def _wait_until_answers(url: str, server) -> None:
    import time

    import requests

    deadline = time.monotonic() + MLFLOW_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise typer.Exit(server.returncode or 1)
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    console.print(f"[red]MLflow did not answer at {url} within {MLFLOW_START_TIMEOUT_S} s[/]")
    raise typer.Exit(1)


def ui(
    port: Annotated[int, typer.Option()] = DEFAULT_UI_PORT,
    host: Annotated[str, typer.Option()] = LOOPBACK,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Open the MLflow UI on the local tracking store, on the emotion-ai experiment's runs."""
    from emotion_ai.steps.tracking import local_tracking, use_tracking

    tracking = local_tracking(state_dir)
    experiment_id = use_tracking(tracking)
    url = f"http://{host}:{port}"
    _run_mlflow(
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
        url,
        experiment_runs_url(url, experiment_id),
    )


def experiment_runs_url(url: str, experiment_id: str) -> str:
    """Where a data scientist works: the experiment's runs, in MLflow's model-training view (its UI
    reads `workflowType`; without it, it opens in its GenAI mode)."""
    from emotion_ai.release.model_card import MODEL_TRAINING_VIEW

    return f"{url}/#/experiments/{experiment_id}/runs{MODEL_TRAINING_VIEW}"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SHIPPED_POSTGRES_DRIVER = "postgresql+psycopg://"
"""SQLAlchemy reads a bare postgresql:// as psycopg2's, which this package does not ship."""


def with_shipped_driver(backend_store_uri: str) -> str:
    """A PostgreSQL URI as written in MLflow's docs, pointed at the driver this package ships."""
    for prefix in POSTGRES_SCHEMES:
        if backend_store_uri.startswith(prefix):
            return SHIPPED_POSTGRES_DRIVER + backend_store_uri.removeprefix(prefix)
    return backend_store_uri


def tracking_server(
    backend_store_uri: Annotated[
        Optional[str],
        typer.Option(
            help="Runs and registry, e.g. postgresql://user:pass@db:5432/mlflow (served through "
            "the psycopg 3 driver this package ships; default: SQLite under STATE_DIR)."
        ),
    ] = None,
    artifacts_destination: Annotated[
        Optional[str],
        typer.Option(
            help="Where the server stores artifacts, e.g. s3://bucket/mlartifacts (endpoint from "
            "AWS_ENDPOINT_URL; default: STATE_DIR/mlartifacts)."
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
    _run_mlflow(
        [
            "server",
            "--backend-store-uri",
            with_shipped_driver(backend_store_uri or local.tracking_uri),
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
        f"http://{host}:{port}",
    )
