"""The cluster manifests parse and point at the serving layout and ports the code uses."""

from pathlib import Path

import yaml

from emotion_ai.cli import DEFAULT_REST_PORT
from emotion_ai.registry import COMBINED_MODEL, EMOTION_MODEL, KEYPOINT_MODEL

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
    assert services[KEYPOINT_MODEL]["spec"]["predictor"]["model"]["storageUri"] == f"{SERVING_ROOT}/{KEYPOINT_MODEL}"
    command = services[COMBINED_MODEL]["spec"]["predictor"]["containers"][0]["command"]
    assert command[command.index("--model-base-path") + 1] == SERVING_ROOT


def test_every_manifest_parses():
    kinds = {doc["kind"] for name in ("tf-serving.yaml", "kserve-inferenceservice.yaml", "mlflow.yaml")
             for doc in _documents(name)}
    assert {"Deployment", "Service", "InferenceService"} <= kinds
