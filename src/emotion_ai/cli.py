"""The `emotion-ai` command line."""

from __future__ import annotations

import uuid
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from emotion_ai.cli_options import (
    DEFAULT_STATE_DIR,
    BatchSize,
    Depth,
    Epochs,
    FerCsv,
    KeepVersions,
    KeypointsCsv,
    KfpExperiment,
    KfpHost,
    KfpNamespace,
    LearningRate,
    MaxDuplicateRate,
    MaxKeypointRmse,
    MinEmotionAccuracy,
    MinRowsPerClass,
    ModelBasePath,
    PipelineParams,
    Seed,
    Significance,
    SplitByUsage,
    StateDir,
    SyntheticRows,
    TestFraction,
    TrainingGpus,
    ValFraction,
    Width,
    absolute_source,
    default_request_log,
    serving_dir,
    tracking_settings,
)
from emotion_ai.request_log import DEFAULT_SAMPLE_RATE
from emotion_ai.step_commands import step_app, tune

app = typer.Typer(help="Train, track, gate and serve the emotion-ai face models.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
pipeline_app = typer.Typer(help="The KFP pipeline for Kubeflow clusters.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(step_app, name="step")
app.command("tune")(tune)
console = Console()

DEFAULT_REST_PORT = 8501
DEFAULT_UI_PORT = 5000
LOOPBACK = "127.0.0.1"


@app.command()
def run(
    keypoints_csv: KeypointsCsv = None,
    fer_csv: FerCsv = None,
    epochs: Epochs = 5,
    batch_size: BatchSize = 32,
    learning_rate: LearningRate = 0.002,
    width: Width = 16,
    depth: Depth = 1,
    seed: Seed = 0,
    synthetic_rows: SyntheticRows = 600,
    val_fraction: ValFraction = 0.2,
    test_fraction: TestFraction = 0.2,
    split_by_usage: SplitByUsage = False,
    min_rows_per_class: MinRowsPerClass = 1,
    max_duplicate_rate: MaxDuplicateRate = 0.1,
    max_keypoint_rmse_px: MaxKeypointRmse = 12.0,
    min_emotion_accuracy: MinEmotionAccuracy = 0.3,
    significance: Significance = 0.05,
    keep_versions: KeepVersions = 3,
    model_base_path: ModelBasePath = None,
    cache: Annotated[bool, typer.Option(help="Reuse validate/train outputs when their inputs, parameters and "
                                        "code are unchanged.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue training from the last epoch checkpoints of an "
                                         "interrupted run (STATE_DIR/checkpoints).")] = False,
    trigger: Annotated[str, typer.Option(help="Why this run started (tagged on the MLflow run).")] = "manual",
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Run the whole pipeline on this machine (kfp.local, MLflow on SQLite)."""
    from emotion_ai.tracking import TRIGGER_TAG, parent_run
    from pipelines.local_runner import run_local

    tracking = tracking_settings(state_dir)
    run_name = f"pipeline-{uuid.uuid4().hex[:8]}"
    tags = {"emotion_ai.orchestrator": "kfp.local", TRIGGER_TAG: trigger}
    with parent_run(tracking, run_name, tags) as parent_run_id:
        console.print(f"[bold]emotion-ai[/] pipeline run [cyan]{run_name}[/] (MLflow run {parent_run_id}, "
                      f"trigger: {trigger})")
        run_local(
            state_dir.resolve() / "kfp", tracking_uri=tracking.tracking_uri,
            experiment_name=tracking.experiment_name, artifact_location=tracking.artifact_location,
            parent_run_id=parent_run_id, model_base_path=model_base_path or serving_dir(state_dir),
            keypoints_source=absolute_source(keypoints_csv), fer_source=absolute_source(fer_csv), seed=seed,
            synthetic_rows=synthetic_rows, val_fraction=val_fraction, test_fraction=test_fraction,
            split_by_usage=split_by_usage, min_rows_per_class=min_rows_per_class,
            max_duplicate_rate=max_duplicate_rate, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, width=width, depth=depth, max_keypoint_rmse_px=max_keypoint_rmse_px,
            min_emotion_accuracy=min_emotion_accuracy, significance=significance, keep_versions=keep_versions,
            cache_root=str(state_dir.resolve() / "cache") if cache else "", trigger=trigger,
            checkpoint_root=str(state_dir.resolve() / "checkpoints"), resume=resume,
        )
    _print_next_steps(state_dir)


def _print_next_steps(state_dir: Path) -> None:
    console.print("\n[bold green]Pipeline finished.[/]")
    models(state_dir)
    console.print(
        f"\nMLflow UI:   [cyan]make ui[/]  (or: emotion-ai ui)  then open http://{LOOPBACK}:{DEFAULT_UI_PORT}\n"
        f"Serve:       [cyan]make serve[/]  (or: emotion-ai serve)  TF Serving REST API on "
        f"http://{LOOPBACK}:{DEFAULT_REST_PORT}\n"
        f"Query:       curl http://{LOOPBACK}:{DEFAULT_REST_PORT}/v1/models/emotion-ai  and see README "
        "'Query the served model'")


@app.command()
def models(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Table of registered model versions, their aliases and test scores."""
    from mlflow.tracking import MlflowClient

    from emotion_ai import registry
    from emotion_ai.tracking import use_tracking

    use_tracking(tracking_settings(state_dir))
    client = MlflowClient()
    table = Table("model", "version", "aliases", "decision", "test score", "data sha256")
    for name in (registry.KEYPOINT_MODEL, registry.EMOTION_MODEL):
        for found in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
            version = client.get_model_version(name, found.version)
            tags = version.tags
            score = tags.get("test_score", "")
            table.add_row(name, str(version.version), ", ".join(version.aliases), tags.get("decision", ""),
                          f"{float(score):.4f}" if score else "", tags.get("data_sha256", "")[:12])
    console.print(table)


def _exec_mlflow(arguments: list[str], url: str) -> None:
    """Replaces this process with `mlflow ARGUMENTS`, so stopping it stops the server."""
    import os
    import sys

    console.print(f"MLflow on {url}")
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", *arguments])


@app.command()
def ui(port: Annotated[int, typer.Option()] = DEFAULT_UI_PORT, host: Annotated[str, typer.Option()] = LOOPBACK,
       state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Open the MLflow UI on the local tracking store."""
    from emotion_ai.tracking import local_tracking

    tracking = local_tracking(state_dir)
    _exec_mlflow(["ui", "--backend-store-uri", tracking.tracking_uri, "--default-artifact-root",
                  tracking.artifact_location, "--host", host, "--port", str(port)], f"http://{host}:{port}")


@app.command("tracking-server")
def tracking_server(
    backend_store_uri: Annotated[Optional[str], typer.Option(
        help="Runs and registry, e.g. postgresql://user:pass@db:5432/mlflow (default: SQLite under STATE_DIR).")] = None,
    artifacts_destination: Annotated[Optional[str], typer.Option(
        help="Where the server stores artifacts, e.g. s3://bucket/mlartifacts (endpoint from AWS_ENDPOINT_URL; "
             "default: STATE_DIR/mlartifacts).")] = None,
    port: Annotated[int, typer.Option()] = DEFAULT_UI_PORT,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless told otherwise).")] = LOOPBACK,
    workers: Annotated[int, typer.Option()] = 2,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Run an MLflow tracking and registry server that proxies artifacts; point runs at it with
    MLFLOW_TRACKING_URI=http://HOST:PORT."""
    from emotion_ai.tracking import local_tracking

    local = local_tracking(state_dir)
    _exec_mlflow(["server", "--backend-store-uri", backend_store_uri or local.tracking_uri,
                  "--artifacts-destination", artifacts_destination or local.artifact_location,
                  "--host", host, "--port", str(port), "--workers", str(workers)], f"http://{host}:{port}")


@app.command()
def serve(
    model_base_path: ModelBasePath = None,
    rest_api_port: Annotated[int, typer.Option(help="TF Serving's --rest_api_port.")] = DEFAULT_REST_PORT,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless told otherwise).")] = LOOPBACK,
    file_system_poll_wait_seconds: Annotated[float, typer.Option(
        help="How often to look for new versions and labels.")] = 2.0,
    model_name: Annotated[Optional[str], typer.Option(
        help="Serve only this model (TF Serving's --model_name): emotion-ai-keypoints, emotion-ai-emotion or "
             "emotion-ai (default: all three).")] = None,
    num_versions: Annotated[int, typer.Option(
        min=1, help="Newest versions kept loaded per model (TF Serving's `latest` version policy); versions named "
                    "in <model>/labels.json (see `emotion-ai label`) are loaded too.")] = 1,
    enable_batching: Annotated[bool, typer.Option(
        help="Join concurrent requests into one model call (TF Serving's --enable_batching).")] = True,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Most faces in one batched call.")] = 32,
    batch_timeout_micros: Annotated[int, typer.Option(
        min=0, help="How long a batch waits to fill up while another call runs (a request to an idle model "
                    "runs at once).")] = 3000,
    num_batch_threads: Annotated[int, typer.Option(
        min=1, help="Batched model calls run at once: while one batch computes, the next one gathers.")] = 2,
    request_log: Annotated[Optional[Path], typer.Option(
        help="JSON lines of sampled request statistics that `emotion-ai watch` checks for drift "
             "(default: STATE_DIR/requests/requests.jsonl).")] = None,
    request_sample_rate: Annotated[float, typer.Option(help="Share of requests logged (0 turns logging off).")]
    = DEFAULT_SAMPLE_RATE,
    access_log: Annotated[bool, typer.Option(
        help="Log one line per HTTP request (off by default, as in TF Serving; /metrics counts requests).")] = False,
    follow_champion: Annotated[bool, typer.Option(
        help="Also follow the registry's champion alias (MLFLOW_TRACKING_URI, else STATE_DIR's): when it is "
             "moved some other way than `emotion-ai promote` (in the MLflow UI, say), export that version and "
             "serve it as stable. It writes to the model base path: on a cluster, give it to one replica.")] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Serve the exported models over TensorFlow Serving's REST API (KServe ModelServer), following new versions.

    Unversioned requests get the version labelled `stable` (the champion) when there is one, else the newest;
    /versions/<v>:predict and /labels/<label>:predict reach the others.
    """
    from emotion_ai.batching import BatchSettings
    from emotion_ai.request_log import RequestSampler
    from emotion_ai.serving import ServingOptions, serve_models

    base_path = model_base_path or serving_dir(state_dir)
    sampler = RequestSampler(request_log or default_request_log(state_dir), request_sample_rate) \
        if request_sample_rate > 0 else None
    batching = BatchSettings(max_batch_size, batch_timeout_micros, num_batch_threads) if enable_batching else None
    follow = None
    if follow_champion:
        from emotion_ai.promotion import follow_champion as follow_one
        from emotion_ai.tracking import use_tracking

        use_tracking(tracking_settings(state_dir))
        follow = partial(follow_one, base_path=base_path)
    console.print(f"Serving {base_path} on http://{host}:{rest_api_port}/v1/models/<name>")
    serve_models(base_path, host, rest_api_port, file_system_poll_wait_seconds, model_name,
                 ServingOptions(num_versions, batching), sampler, access_log, follow)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    version: Annotated[int, typer.Argument()],
    model_base_path: ModelBasePath = None,
    keep_versions: KeepVersions = 3,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Make VERSION the champion by hand (no gate); serving follows."""
    from emotion_ai.promotion import publish
    from emotion_ai.tracking import use_tracking

    use_tracking(tracking_settings(state_dir))
    publish(name, version, model_base_path or serving_dir(state_dir), keep_versions)
    console.print(f"{name} version {version} is champion and served")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    model_base_path: ModelBasePath = None,
    keep_versions: KeepVersions = 3,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Move the champion back to the one it replaced; serving follows."""
    from emotion_ai.promotion import rollback as roll_back
    from emotion_ai.tracking import use_tracking

    use_tracking(tracking_settings(state_dir))
    try:
        version = roll_back(name, model_base_path or serving_dir(state_dir), keep_versions)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"{name} rolled back: version {version} is champion and served")


@app.command()
def label(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="Version label, e.g. canary.")],
    version: Annotated[Optional[int], typer.Argument(help="Registered version the label points at.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the label instead.")] = False,
    model_base_path: ModelBasePath = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Point a version label (e.g. canary) at a registered version, exporting it if needed; the server then
    answers /v1/models/NAME/labels/LABEL:predict with it. `stable` follows the champion."""
    from emotion_ai.promotion import label as set_label
    from emotion_ai.tracking import use_tracking

    if (version is None) != remove:
        console.print("[red]give a VERSION, or --remove[/]")
        raise typer.Exit(2)
    use_tracking(tracking_settings(state_dir))
    try:
        labels = set_label(name, label_name, version, model_base_path or serving_dir(state_dir))
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"{name} labels: {labels or 'none'}")


class LaunchMode(str, Enum):
    local = "local"
    kfp = "kfp"
    command = "command"


@app.command()
def watch(
    data_uri: Annotated[Optional[str], typer.Option(
        help="Folder or s3://bucket/prefix holding training.csv / fer2013.csv; new or changed files trigger.")] = None,
    request_log: Annotated[Optional[Path], typer.Option(
        help="Sampled serving requests checked for drift (default: STATE_DIR/requests/requests.jsonl).")] = None,
    reference_profile: Annotated[Optional[Path], typer.Option(
        help="Data profile JSON to compare against (default: the newest validate run's, from MLflow).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help='Crontab line, e.g. "0 3 * * *", that triggers too.')] = None,
    launch: Annotated[LaunchMode, typer.Option(help="Where a triggered run goes.")] = LaunchMode.local,
    run_arg: Annotated[Optional[list[str]], typer.Option(
        help="Extra option for the local `emotion-ai run`, repeatable, e.g. --run-arg=--epochs=20.")] = None,
    kfp_host: Annotated[Optional[str], typer.Option(help="Kubeflow Pipelines endpoint (--launch kfp).",
                                                    envvar="KFP_HOST")] = None,
    param: PipelineParams = None,
    launch_command: Annotated[Optional[str], typer.Option(
        help="Shell command for --launch command; gets EMOTION_AI_TRIGGER, EMOTION_AI_KEYPOINTS_CSV, "
             "EMOTION_AI_FER_CSV.")] = None,
    debounce_seconds: Annotated[float, typer.Option(help="Least time between two triggered runs.")] = 600.0,
    poll_seconds: Annotated[float, typer.Option(help="Time between checks.")] = 60.0,
    once: Annotated[bool, typer.Option(help="Check once and exit (for cron jobs).")] = False,
    pixel_psi: Annotated[float, typer.Option(help="Drift threshold: PSI of the pixel histogram.")] = 0.2,
    brightness_ks: Annotated[float, typer.Option(help="Drift threshold: KS of per-face brightness.")] = 0.25,
    class_mix_psi: Annotated[float, typer.Option(help="Drift threshold: PSI of the predicted classes.")] = 0.25,
    min_faces: Annotated[int, typer.Option(help="Fewest sampled faces drift is judged on.")] = 50,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Start a pipeline run when data is new, served faces drift, or a schedule is due (one run at a time)."""
    import json
    import time

    from emotion_ai.drift import DriftThresholds
    from emotion_ai.triggers import Watcher, WatchSettings, latest_reference_profile

    tracking = tracking_settings(state_dir)
    profile = json.loads(reference_profile.read_text()) if reference_profile else latest_reference_profile(tracking)
    settings = WatchSettings(state_dir.resolve(), data_uri or "", request_log or default_request_log(state_dir),
                             profile.get("emotion", profile) if profile else None, schedule or "", debounce_seconds,
                             DriftThresholds(pixel_psi, brightness_ks, class_mix_psi, min_faces))
    watcher = Watcher(settings, _launcher(launch, state_dir, run_arg, kfp_host, param, launch_command), tracking)
    while True:
        outcome = watcher.check_once()
        for trigger in outcome.triggers:
            console.print(f"[yellow]trigger[/] {trigger.reason}")
        console.print(outcome.launched or outcome.note or "no trigger")
        if once:
            return
        time.sleep(poll_seconds)


def _launcher(mode: LaunchMode, state_dir: Path, run_arguments: list[str] | None, kfp_host: str | None,
              parameters: list[str] | None, command: str | None):
    from emotion_ai.triggers import CommandLauncher, KfpLauncher, LocalLauncher

    if mode is LaunchMode.kfp:
        if not kfp_host:
            raise typer.BadParameter("--launch kfp needs --kfp-host")
        return KfpLauncher(kfp_host, tuple(parameters or ()))
    if mode is LaunchMode.command:
        if not command:
            raise typer.BadParameter("--launch command needs --launch-command")
        return CommandLauncher(command)
    return LocalLauncher(state_dir.resolve(), tuple(run_arguments or ()))


@app.command("generate-data")
def generate_data(
    out_dir: Annotated[Path, typer.Argument(help="Where training.csv and fer2013.csv are written.")],
    keypoint_rows: Annotated[int, typer.Option()] = 7049,
    fer_rows: Annotated[int, typer.Option()] = 35887,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write synthetic data sets in the exact Kaggle formats."""
    from emotion_ai.synthetic import write_fer_csv, write_keypoints_csv

    console.print(write_keypoints_csv(out_dir / "training.csv", keypoint_rows, seed=seed))
    console.print(write_fer_csv(out_dir / "fer2013.csv", fer_rows, seed=seed + 1))


@pipeline_app.command("compile")
def compile_(output: Annotated[Path, typer.Argument()] = Path("emotion-ai-pipeline.yaml"),
             training_gpus: TrainingGpus = 0) -> None:
    """Write the KFP IR YAML of the pipeline."""
    from pipelines.compile import compile_pipeline

    console.print(compile_pipeline(output, training_gpus))


def _cluster(host: str, namespace: str | None, training_gpus: int):
    from pipelines.remote import Cluster

    return Cluster(host, namespace, training_gpus)


def _refuse_bad_parameters(action) -> str:
    try:
        return action()
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error


@pipeline_app.command("submit")
def submit(host: KfpHost, param: PipelineParams = None, experiment: KfpExperiment = "emotion-ai",
           run_name: Annotated[Optional[str], typer.Option()] = None, namespace: KfpNamespace = None,
           training_gpus: TrainingGpus = 0) -> None:
    """Compile the pipeline and start one run of it on Kubeflow Pipelines."""
    cluster = _cluster(host, namespace, training_gpus)
    run_id = _refuse_bad_parameters(lambda: cluster.submit(param or [], experiment, run_name))
    console.print(f"KFP run {run_id} started in experiment {experiment}")


@pipeline_app.command("schedule")
def schedule(host: KfpHost,
             cron: Annotated[str, typer.Option(help='Crontab line, e.g. "0 3 * * *" (5 fields, or 6 with seconds).')],
             param: PipelineParams = None, name: Annotated[str, typer.Option(help="Recurring run name.")] =
             "emotion-ai-retrain", experiment: KfpExperiment = "emotion-ai", namespace: KfpNamespace = None,
             training_gpus: TrainingGpus = 0) -> None:
    """Create a KFP recurring run of the pipeline (one run at a time, no catch-up)."""
    cluster = _cluster(host, namespace, training_gpus)
    recurring_id = _refuse_bad_parameters(lambda: cluster.schedule(param or [], cron, name, experiment))
    console.print(f"KFP recurring run {recurring_id} ({cron}) created in experiment {experiment}")
