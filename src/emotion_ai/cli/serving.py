"""`emotion-ai serve`, `promote`, `rollback` and `label`: the model server and what it serves."""

from __future__ import annotations

import getpass
import socket
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from emotion_ai.cli.options import (
    DEFAULT_GRPC_PORT,
    DEFAULT_REST_PORT,
    DEFAULT_STATE_DIR,
    LOOPBACK,
    KeepVersions,
    ModelBasePath,
    StateDir,
    console,
    default_request_log,
    registry_errors,
    serving_dir,
    tracking_settings,
)
from emotion_ai.cli.settings_options import takes_settings
from emotion_ai.monitoring.request_log import DEFAULT_SAMPLE_RATE
from emotion_ai.settings import (
    ReleaseSettings,
    RequestLimits,
    ServingOptions,
)


@takes_settings
def serve(
    serving: ServingOptions,
    limits: RequestLimits,
    model_base_path: ModelBasePath = None,
    rest_api_port: Annotated[
        int, typer.Option(help="TF Serving's --rest_api_port.")
    ] = DEFAULT_REST_PORT,
    port: Annotated[
        int,
        typer.Option(
            min=0,
            help="TF Serving's --port: its gRPC API (PredictionService, ModelService) and KServe's "
            "V2 gRPC on this port; 0 serves no gRPC.",
        ),
    ] = DEFAULT_GRPC_PORT,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless told otherwise).")
    ] = LOOPBACK,
    file_system_poll_wait_seconds: Annotated[
        float, typer.Option(help="How often to look for new versions and labels.")
    ] = 2.0,
    model_name: Annotated[
        Optional[str],
        typer.Option(
            help="Serve only this model (TF Serving's --model_name): emotion-ai-keypoints, "
            "emotion-ai-emotion, emotion-ai or emotion-ai-faces (default: all four)."
        ),
    ] = None,
    request_log: Annotated[
        Optional[Path],
        typer.Option(
            help="JSON lines of sampled request statistics that `emotion-ai watch` checks for "
            "drift (default: STATE_DIR/requests/requests.jsonl)."
        ),
    ] = None,
    request_sample_rate: Annotated[
        float, typer.Option(help="Share of requests logged (0 turns logging off).")
    ] = DEFAULT_SAMPLE_RATE,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log one line per HTTP request (off by default, as in TF Serving; /metrics "
            "counts requests)."
        ),
    ] = False,
    follow_champion: Annotated[
        bool,
        typer.Option(
            help="Also follow the registry's champion alias (MLFLOW_TRACKING_URI, else "
            "STATE_DIR's): when it is moved some other way than `emotion-ai promote` (in the "
            "MLflow UI, say), export that version and serve it as stable. It writes to the model "
            "base path: on a cluster, give it to one replica."
        ),
    ] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Serve the exported models over TensorFlow Serving's REST and gRPC APIs and KServe's V2
    protocol (a KServe ModelServer), following new versions; photos go to emotion-ai-faces, and
    GET / is a demo page.

    Unversioned requests get the version labelled `stable` (the champion) when there is one, else
    the newest; /versions/<v>:predict and /labels/<label>:predict reach the others.
    """
    from emotion_ai.monitoring.request_log import RequestSampler
    from emotion_ai.serving.server import serve_models

    _refuse_ports_in_use(host, {rest_api_port: "--rest-api-port", port: "--port"})
    base_path = model_base_path or serving_dir(state_dir)
    sampler = (
        RequestSampler(request_log or default_request_log(state_dir), request_sample_rate)
        if request_sample_rate > 0
        else None
    )
    follow = None
    if follow_champion:
        from emotion_ai.release.publishing import follow_champion as follow_one
        from emotion_ai.steps.tracking import use_tracking

        use_tracking(tracking_settings(state_dir))
        follow = partial(follow_one, base_path=base_path)
    grpc_line = f" and gRPC {host}:{port}" if port else ""
    console.print(
        f"Serving {base_path} on http://{host}:{rest_api_port}/v1/models/<name>{grpc_line}"
    )
    serve_models(
        base_path,
        host,
        rest_api_port,
        grpc_port=port or None,
        poll_seconds=file_system_poll_wait_seconds,
        model_name=model_name,
        options=serving,
        limits=limits,
        sampler=sampler,
        access_log=access_log,
        follow=follow,
    )


Wait = Annotated[
    bool,
    typer.Option(
        help="Wait while another run or promote publishes to the same layout (--no-wait: fail at "
        "once, in one line)."
    ),
]


def _refuse_ports_in_use(host: str, ports: dict[int, str]) -> None:
    """Stops with one line naming the port and its option when one is taken, before any model is
    loaded (0: not served)."""
    for number, option in ports.items():
        if not number:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, number))
            except OSError as error:
                console.print(
                    f"[red]cannot serve on {host}:{number} ({option}): {error.strerror}; stop what "
                    f"listens there or choose another port with {option}[/]"
                )
                raise typer.Exit(1) from error


def promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    version: Annotated[int, typer.Argument()],
    model_base_path: ModelBasePath = None,
    keep_versions: KeepVersions = ReleaseSettings.keep_versions,
    wait: Wait = True,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Make VERSION the champion by hand (no gate); serving follows. The version records who did it
    and when (`decision` "promote (manual)" in `emotion-ai models` and its model card)."""
    from emotion_ai.release.publishing import publish
    from emotion_ai.release.registry import record_manual_promotion
    from emotion_ai.steps.tracking import use_tracking

    base_path = model_base_path or serving_dir(state_dir)
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    with registry_errors(f"promote {name} version {version}"):
        use_tracking(tracking_settings(state_dir))
        publish(name, version, base_path, keep_versions, wait=wait)
        record_manual_promotion(name, version, who, datetime.now(timezone.utc))
    console.print(f"{name} version {version} is champion, published as stable in {base_path}")


def rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    model_base_path: ModelBasePath = None,
    keep_versions: KeepVersions = ReleaseSettings.keep_versions,
    wait: Wait = True,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Move the champion back to the one it replaced; serving follows."""
    from emotion_ai.release.publishing import rollback as roll_back
    from emotion_ai.steps.tracking import use_tracking

    with registry_errors(f"rollback of {name}"):
        use_tracking(tracking_settings(state_dir))
        version = roll_back(
            name, model_base_path or serving_dir(state_dir), keep_versions, wait=wait
        )
    console.print(f"{name} rolled back: version {version} is champion, published as stable")


def label(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. emotion-ai-emotion.")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="Version label, e.g. canary.")],
    version: Annotated[
        Optional[int], typer.Argument(help="Registered version the label points at.")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the label instead.")] = False,
    model_base_path: ModelBasePath = None,
    wait: Wait = True,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Point a version label, such as canary, at a registered version, exporting it if needed; the
    server then answers /v1/models/NAME/labels/LABEL:predict with it. `stable` follows the
    champion."""
    from emotion_ai.release.publishing import label as set_label
    from emotion_ai.steps.tracking import use_tracking

    if (version is None) != remove:
        console.print("[red]give a VERSION, or --remove[/]")
        raise typer.Exit(2)
    with registry_errors(f"label {label_name} of {name}"):
        use_tracking(tracking_settings(state_dir))
        base_path = model_base_path or serving_dir(state_dir)
        labels = set_label(name, label_name, version, base_path, wait=wait)
    console.print(f"{name} labels: {labels or 'none'}")
