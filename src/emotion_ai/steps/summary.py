"""The pipeline's parent run as its summary: the data it trained on, both challengers' headline
test metrics, the gate's decisions, links to the registered versions, and a description."""

from __future__ import annotations

import time

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from emotion_ai.release.model_card import HEADLINE, UiLinks
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL

METRIC_GROUP = {KEYPOINT_MODEL: "keypoints", EMOTION_MODEL: "emotion"}
"""The first part of each model's metric names (`keypoints/test/rmse_px`)."""
HEADLINE_METRIC = {
    name: f"{group}/test/{HEADLINE[name][0]}" for name, group in METRIC_GROUP.items()
}
"""The MLflow name of each model's headline test metric (`keypoints/test/rmse_px`)."""
SUMMARY_METRICS = {
    KEYPOINT_MODEL: ("rmse_px", "within_2px"),
    EMOTION_MODEL: ("accuracy", "macro_f1"),
}
NOTE_TAG = "mlflow.note.content"
"""The run's description in the MLflow UI (Markdown)."""


def headline_figure(model: str, score: float | str | None) -> str:
    """A test score, named: `RMSE 2.87 px` (lower is better) or `accuracy 0.812`."""
    if score in (None, ""):
        return ""
    return (
        f"RMSE {float(score):.2f} px" if model == KEYPOINT_MODEL else f"accuracy {float(score):.3f}"
    )


def verdict(decision: dict, result: dict | None = None) -> str:
    """The gate's decision, or, when the infrastructure check refused a promotion, that."""
    if result and result.get("refused"):
        return "keep champion (infra check failed)"
    return "promote" if decision["promote"] else "keep champion"


def summarize_pipeline_run(parent_run_id: str, decisions: dict, outcome: dict) -> None:
    """Writes the summary onto the parent run: `data/<group>/...` params, `<group>/test/...`
    metrics, `decision/<model>` and `version/<model>` tags, and a Markdown description."""
    client = MlflowClient()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    now = int(time.time() * 1000)
    params, metrics, tags = [], [], []
    for name, decision in decisions.items():
        group, data = METRIC_GROUP[name], decision["data"]
        params += [Param(f"data/{group}/{key}", str(data.get(key))) for key in ("source", "sha256")]
        params.append(Param(f"data/{group}/rows", str(data.get("rows"))))
        metrics += [
            Metric(f"{group}/test/{key}", decision["metrics"][key], now, 0)
            for key in SUMMARY_METRICS[name]
        ]
        tags += [
            RunTag(f"decision/{name}", verdict(decision, outcome[name])),
            RunTag(f"version/{name}", str(outcome[name]["version"])),
        ]
    tags.append(RunTag(NOTE_TAG, describe(decisions, outcome, UiLinks(experiment_id))))
    client.log_batch(parent_run_id, metrics=metrics, params=params, tags=tags)


def describe(decisions: dict, outcome: dict, links: UiLinks) -> str:
    """The parent run's description: a table of both models and the data they saw."""
    lines = [
        "Trained both models, tested them against the champions and registered them.",
        "",
        "| model | version | test | decision |",
        "|---|---|---|---|",
    ]
    for name, decision in decisions.items():
        version = outcome[name]["version"]
        lines.append(
            f"| {name} | [v{version}]({links.version(name, version)}) "
            f"| {headline_figure(name, decision['challenger_score'])} "
            f"| {verdict(decision, outcome[name])}: "
            f"{outcome[name].get('refused') or decision['reason']} |"
        )
    lines += ["", "RMSE: lower is better; accuracy: higher is better.", "", "Data:"]
    lines += [
        f"- {METRIC_GROUP[name]}: `{decision['data'].get('source')}`, "
        f"{decision['data'].get('rows')} rows, sha256 `{str(decision['data'].get('sha256'))[:12]}`"
        for name, decision in decisions.items()
    ]
    return "\n".join(lines)
