"""`emotion-ai watch`: start a pipeline run on new data, drift of served faces, or a schedule."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    PipelineParams,
    StateDir,
    console,
    default_request_log,
    tracking_settings,
)


class LaunchMode(str, Enum):
    local = "local"
    kfp = "kfp"
    command = "command"


def watch(
    data_uri: Annotated[
        Optional[str],
        typer.Option(
            help="Folder or s3://bucket/prefix holding training.csv / fer2013.csv; new or changed "
            "files trigger."
        ),
    ] = None,
    request_log: Annotated[
        Optional[Path],
        typer.Option(
            help="Sampled serving requests checked for drift (default: "
            "STATE_DIR/requests/requests.jsonl)."
        ),
    ] = None,
    reference_profile: Annotated[
        Optional[Path],
        typer.Option(
            help="Data profile JSON to compare against (default: the newest validate run's, from "
            "MLflow)."
        ),
    ] = None,
    schedule: Annotated[
        Optional[str], typer.Option(help='Crontab line, e.g. "0 3 * * *", that triggers too.')
    ] = None,
    launch: Annotated[
        LaunchMode, typer.Option(help="Where a triggered run goes.")
    ] = LaunchMode.local,
    run_arg: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Extra option for the local `emotion-ai run`, repeatable, e.g. "
            "--run-arg=--epochs=20."
        ),
    ] = None,
    kfp_host: Annotated[
        Optional[str],
        typer.Option(help="Kubeflow Pipelines endpoint (--launch kfp).", envvar="KFP_HOST"),
    ] = None,
    param: PipelineParams = None,
    launch_command: Annotated[
        Optional[str],
        typer.Option(
            help="Shell command for --launch command; gets EMOTION_AI_TRIGGER, "
            "EMOTION_AI_KEYPOINTS_CSV, EMOTION_AI_FER_CSV."
        ),
    ] = None,
    debounce_seconds: Annotated[
        float, typer.Option(help="Least time between two triggered runs.")
    ] = 600.0,
    poll_seconds: Annotated[float, typer.Option(help="Time between checks.")] = 60.0,
    once: Annotated[bool, typer.Option(help="Check once and exit (for cron jobs).")] = False,
    pixel_psi: Annotated[
        float, typer.Option(help="Drift threshold: PSI of the pixel histogram.")
    ] = 0.2,
    brightness_ks: Annotated[
        float, typer.Option(help="Drift threshold: KS of per-face brightness.")
    ] = 0.25,
    class_mix_psi: Annotated[
        float, typer.Option(help="Drift threshold: PSI of the predicted classes.")
    ] = 0.25,
    min_faces: Annotated[int, typer.Option(help="Fewest sampled faces drift is judged on.")] = 50,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Start a pipeline run when data is new, served faces drift, or a schedule is due (one run at a
    time)."""
    import json
    import time

    from emotion_ai.monitoring.drift import DriftThresholds
    from emotion_ai.monitoring.triggers import latest_reference_profile
    from emotion_ai.monitoring.watcher import Watcher, WatchSettings

    tracking = tracking_settings(state_dir, create=True)
    profile = (
        json.loads(reference_profile.read_text())
        if reference_profile
        else latest_reference_profile(tracking)
    )
    try:
        settings = WatchSettings(
            state_dir.resolve(),
            data_uri or "",
            request_log or default_request_log(state_dir),
            profile.get("emotion", profile) if profile else None,
            schedule or "",
            debounce_seconds,
            DriftThresholds(pixel_psi, brightness_ks, class_mix_psi, min_faces),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--data-uri") from error
    watcher = Watcher(
        settings, _launcher(launch, state_dir, run_arg, kfp_host, param, launch_command), tracking
    )
    while True:
        outcome = watcher.check_once()
        for trigger in outcome.triggers:
            console.print(f"[yellow]trigger[/] {trigger.reason}")
        console.print(outcome.launched or outcome.note or "no trigger")
        if once:
            return
        time.sleep(poll_seconds)


def _launcher(
    mode: LaunchMode,
    state_dir: Path,
    run_arguments: list[str] | None,
    kfp_host: str | None,
    parameters: list[str] | None,
    command: str | None,
):
    from emotion_ai.monitoring.launchers import CommandLauncher, KfpLauncher, LocalLauncher

    if mode is LaunchMode.kfp:
        if not kfp_host:
            raise typer.BadParameter("--launch kfp needs --kfp-host")
        from pipelines.remote import Cluster

        return KfpLauncher(Cluster(kfp_host).submit, tuple(parameters or ()))
    if mode is LaunchMode.command:
        if not command:
            raise typer.BadParameter("--launch command needs --launch-command")
        return CommandLauncher(command)
    return LocalLauncher(state_dir.resolve(), tuple(run_arguments or ()))
