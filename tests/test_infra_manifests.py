"""The cluster manifests parse and point at the serving layout and ports the code uses."""

from pathlib import Path

import yaml

from emotion_ai.cli.options import DEFAULT_REST_PORT
from emotion_ai.settings import COMBINED_MODEL, EMOTION_MODEL, KEYPOINT_MODEL

MANIFESTS = Path(__file__).resolve().parent.parent / "infra" / "kubernetes"
SERVING_ROOT = "s3://emotion-ai/serving"


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def test_tf_serving_reads_the_exported_layout_of_its_model():
    deployment = next(doc for doc in _documents("tf-serving.yaml") if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    assert flags["model_name"] == EMOTION_MODEL
    assert flags["model_base_path"] == f"{SERVING_ROOT}/{EMOTION_MODEL}"
    assert int(flags["rest_api_port"]) == DEFAULT_REST_PORT
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{EMOTION_MODEL}"


def test_kserve_services_read_the_same_layout():
    services = {doc["metadata"]["name"]: doc for doc in _documents("kserve-inferenceservice.yaml")}
    assert (
        services[KEYPOINT_MODEL]["spec"]["predictor"]["model"]["storageUri"]
        == f"{SERVING_ROOT}/{KEYPOINT_MODEL}"
    )
    command = services[COMBINED_MODEL]["spec"]["predictor"]["containers"][0]["command"]
    assert command[command.index("--model-base-path") + 1] == SERVING_ROOT


def test_every_manifest_parses():
    kinds = {
        doc["kind"]
        for name in (
            "tf-serving.yaml",
            "kserve-inferenceservice.yaml",
            "mlflow.yaml",
            "kfp-recurring-run.yaml",
        )
        for doc in _documents(name)
    }
    assert {"Deployment", "Service", "InferenceService", "Job", "CronJob"} <= kinds


INFRA = MANIFESTS.parent


def _emotion_ai_commands(document: object) -> list[list[str]]:
    """Every `emotion-ai ...` command line found anywhere in a parsed manifest."""
    if isinstance(document, dict):
        return [command for value in document.values() for command in _emotion_ai_commands(value)]
    if isinstance(document, list):
        if (
            document
            and document[0] == "emotion-ai"
            and all(isinstance(item, str) for item in document)
        ):
            return [document]
        return [command for value in document for command in _emotion_ai_commands(value)]
    return []


def _parse_with_the_cli(argv: list[str]):
    """Parses argv with the real `emotion-ai` command tree without running it; returns the leaf
    context."""
    import typer

    from emotion_ai.cli import app

    command, arguments = typer.main.get_command(app), argv[1:]
    parent = None
    while hasattr(command, "get_command"):
        parent = command.make_context(
            command.name or "emotion-ai", [], parent=parent, resilient_parsing=True
        )
        command, arguments = command.get_command(parent, arguments[0]), arguments[1:]
    return command.make_context(command.name, arguments, parent=parent)


def test_every_emotion_ai_command_in_infra_parses_with_the_current_cli():
    files = [*MANIFESTS.glob("*.yaml"), INFRA / "docker-compose.yaml"]
    commands = [
        command
        for path in files
        for doc in yaml.safe_load_all(path.read_text())
        if doc
        for command in _emotion_ai_commands(doc)
    ]
    assert len(commands) >= 8
    for command in commands:
        _parse_with_the_cli(command)


def test_the_recurring_run_passes_parameters_the_pipeline_declares(tmp_path):
    from pipelines.compile import compile_pipeline
    from pipelines.remote import declared_parameters, kfp_cron, parse_parameters

    job = next(doc for doc in _documents("kfp-recurring-run.yaml") if doc["kind"] == "Job")
    context = _parse_with_the_cli(job["spec"]["template"]["spec"]["containers"][0]["command"])
    declared = declared_parameters(compile_pipeline(tmp_path / "pipeline.yaml"))
    arguments = parse_parameters(context.params["param"], declared)
    assert (
        arguments["model_base_path"] == SERVING_ROOT
        and kfp_cron(context.params["cron"]) == "0 0 3 * * *"
    )
    cron_job = next(doc for doc in _documents("kfp-recurring-run.yaml") if doc["kind"] == "CronJob")
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"


def test_compose_stack_tracks_to_postgres_and_s3_and_serves_what_the_pipeline_exports():
    services = yaml.safe_load((INFRA / "docker-compose.yaml").read_text())["services"]
    tracking = _parse_with_the_cli(services["mlflow"]["command"]).params
    assert tracking["backend_store_uri"].startswith("postgresql://") and tracking[
        "artifacts_destination"
    ].startswith("s3://")
    exported = _parse_with_the_cli(services["pipeline"]["command"]).params["model_base_path"]
    assert _parse_with_the_cli(services["serving"]["command"]).params["model_base_path"] == exported
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published)
