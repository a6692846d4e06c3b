"""The model steps: train either model, evaluate challenger against champion, register and
publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np

from emotion_ai.data.datasets import TEST, TRAIN, VAL, FaceDataset, load_dataset
from emotion_ai.faces import EMOTIONS
from emotion_ai.logs import log_headline
from emotion_ai.modeling import metrics, plots, training
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.release import registry
from emotion_ai.release.decisions import read_decisions, write_decisions
from emotion_ai.release.gate import gate_emotion, gate_keypoints
from emotion_ai.release.infra_check import InfraCheckFailed
from emotion_ai.release.model_card import MODEL_DESCRIPTIONS, UiLinks, model_card
from emotion_ai.release.publishing import publish
from emotion_ai.settings import (
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    GateSettings,
    ReleaseSettings,
    TrainSettings,
)
from emotion_ai.steps.cache import cache_key
from emotion_ai.steps.data_inputs import log_data_inputs
from emotion_ai.steps.io import (
    DATASET_FILE,
    DECISIONS_FILE,
    LINEAGE_FILE,
    remember_outputs,
    reuse_cached,
)
from emotion_ai.steps.summary import (
    HEADLINE_METRIC,
    METRIC_GROUP,
    headline_figure,
    summarize_pipeline_run,
    verdict,
)
from emotion_ai.steps.tracking import StepContext, run_status, source_commit, step_run, use_tracking
from emotion_ai.storage import read_json, write_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainControl:
    """How a training step may skip or resume work: the step cache, and per-epoch checkpoints."""

    cache_root: str = ""
    checkpoint_root: str = ""
    """Empty: no checkpoints. Else checkpoints go to CHECKPOINT_ROOT/<step>/ after every epoch."""
    resume: bool = False
    """Continue from the last checkpoint (and in the same MLflow run) instead of starting over."""

    def checkpoints(self, step: str, fingerprint: str) -> Checkpoints | None:
        """The step's checkpoints, holding only one it may resume from (see `resumable`)."""
        if not self.checkpoint_root:
            return None
        checkpoints = Checkpoints(Path(self.checkpoint_root) / step, fingerprint)
        if not self.resume or resumable(step, checkpoints) is None:
            checkpoints.clear()
        return checkpoints


def resumable(step: str, checkpoints: Checkpoints) -> dict | None:
    """The checkpoint a step may resume from: one taken on the same data, settings and code, whose
    MLflow run is unfinished. Any other is refused with the reason (a finished run is never
    reopened)."""
    saved = checkpoints.saved()
    if saved is None:
        return None
    reason = _refusal(saved, checkpoints.fingerprint)
    if reason:
        logger.warning("%s: not resuming from the checkpoint, %s; starting afresh", step, reason)
        return None
    return saved


def _refusal(saved: dict, fingerprint: str) -> str:
    """Why a checkpoint may not be resumed from ('' when it may)."""
    if saved.get("fingerprint") != fingerprint:
        return "it was taken on other data, settings or code"
    status = run_status(saved["run_id"])
    if status is None:
        return f"its MLflow run {saved['run_id']} no longer exists"
    if status == "FINISHED":
        return f"its MLflow run {saved['run_id']} is finished"
    return ""


TRAINERS = {
    "train_keypoints": training.train_keypoint_model,
    "train_emotion": training.train_emotion_model,
}
"""The two training steps, by name."""


def train(
    step: str,
    data_dir: Path,
    model_dir: Path,
    settings: TrainSettings,
    context: StepContext,
    control: TrainControl = TrainControl(),
) -> dict:
    """Trains one model (or reuses the one trained on the same data and settings); returns its
    lineage. Its checkpoints are removed once the step has finished. The keypoint model takes the
    settings less their emotion-only fields."""
    if step == "train_keypoints":
        settings = settings.for_keypoints()
    use_tracking(context.tracking)
    key = cache_key(step, [data_dir], settings.as_params())
    checkpoints = control.checkpoints(step, key)
    saved = checkpoints.saved() if checkpoints else None
    with step_run(
        context.tracking,
        context.parent_run_id,
        step,
        run_id=saved["run_id"] if saved else None,
        system_metrics=True,
    ) as run:
        dataset = load_dataset(data_dir / DATASET_FILE)
        log_data_inputs(dataset, (TRAIN, VAL))
        cached = _cached_lineage(control.cache_root, step, key, model_dir)
        lineage = cached or _train_and_save(
            step, dataset, model_dir, settings, checkpoints, run.info.run_id
        )
        remember_outputs(control.cache_root, step, key, {"model": model_dir})
    log_headline(logger, _training_headline(lineage) + (" (cached)" if cached else ""))
    if checkpoints:
        checkpoints.clear()
    return lineage


def _cached_lineage(cache_root: str, step: str, key: str, model_dir: Path) -> dict | None:
    if reuse_cached(cache_root, step, key, {"model": model_dir}):
        return read_json(model_dir / LINEAGE_FILE)
    return None


def _train_and_save(
    step: str,
    dataset: FaceDataset,
    model_dir: Path,
    settings: TrainSettings,
    checkpoints: Checkpoints | None,
    run_id: str,
) -> dict:
    trained = TRAINERS[step](dataset, settings, checkpoints)
    training.save_model(trained.model, model_dir)
    lineage = {
        "model_uri": trained.logged.model_uri,
        "model_id": trained.logged.model_id,
        "train_run_id": run_id,
        "data_source": dataset.metadata["source"],
        "data_sha256": dataset.metadata["sha256"],
        "final_metrics": {
            training.metric_name(name): values[-1] for name, values in trained.history.items()
        },
        "epochs": len(next(iter(trained.history.values()), [])),
    }
    write_json(model_dir / LINEAGE_FILE, lineage)
    return lineage


def _training_headline(lineage: dict) -> str:
    final = lineage["final_metrics"]
    if "val/rmse_px" in final:
        figure = f"val RMSE {final['val/rmse_px']:.2f} px"
    elif "val/accuracy" in final:
        figure = f"val accuracy {final['val/accuracy']:.3f}"
    else:
        figure = f"loss {final.get('train/loss', float('nan')):.3f}"
    epochs = lineage["epochs"]
    return f"{epochs} epoch{'s' if epochs != 1 else ''}, {figure}"


TEST_PREFIX = "test"
CHAMPION_PREFIX = "champion/test"


def _log_test_metrics(
    kind: str, prefix: str, scores: dict[str, float], model_id: str | None = None, dataset=None
) -> None:
    """Logs `<kind>/<prefix>/<metric>` to the evaluate run (and, with `model_id`, to that logged
    model too, against the test data set)."""
    named = {f"{kind}/{prefix}/{name}": value for name, value in scores.items()}
    mlflow.log_metrics(named, model_id=model_id, dataset=dataset)


@dataclass(frozen=True)
class _TestSplitScores:
    """The challenger's and the registry champion's predictions on the test split (no champion
    before the first promotion), and the challenger's scores."""

    dataset: FaceDataset
    truth: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray | None
    scores: dict[str, float]


def _score_test_split(
    name: str, data_dir: Path, model_dir: Path, score: Callable[[np.ndarray, np.ndarray], dict]
) -> _TestSplitScores:
    """Predicts the test split with the challenger and the champion of `name` and logs each one's
    `score`: the challenger's also to its logged model, against the test data set."""
    dataset = load_dataset(data_dir / DATASET_FILE)
    test = log_data_inputs(dataset, (TEST,))[TEST]
    images, truth = dataset.part(TEST)
    group = METRIC_GROUP[name]
    challenger = training.predict(training.load_model(model_dir), images)
    scores = score(challenger, truth)
    model_id = read_json(model_dir / LINEAGE_FILE).get("model_id")
    _log_test_metrics(group, TEST_PREFIX, scores, model_id, test)
    champion_model = registry.load_champion(name)
    champion = None
    if champion_model is not None:
        champion = training.predict(champion_model, images)
        _log_test_metrics(group, CHAMPION_PREFIX, score(champion, truth))
    return _TestSplitScores(dataset, truth, challenger, champion, scores)


def _evaluate_keypoints(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    test = _score_test_split(KEYPOINT_MODEL, data_dir, model_dir, metrics.keypoint_metrics)
    mlflow.log_figure(
        plots.keypoint_errors_figure(test.scores, "challenger, test split"),
        "plots/keypoint_errors.png",
    )
    champion_squared = (
        None
        if test.champion is None
        else metrics.keypoint_squared_errors(test.champion, test.truth)
    )
    decision = gate_keypoints(
        metrics.keypoint_squared_errors(test.challenger, test.truth),
        champion_squared,
        gate,
        KEYPOINT_MODEL,
    )
    return {**decision.as_dict(), "metrics": test.scores, "data": test.dataset.metadata}


def _evaluate_emotion(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    test = _score_test_split(EMOTION_MODEL, data_dir, model_dir, metrics.emotion_metrics)
    matrix = metrics.emotion_confusion(test.challenger, test.truth)
    mlflow.log_figure(
        plots.confusion_matrix_figure(matrix, "challenger, test split"),
        "plots/confusion_matrix.png",
    )
    mlflow.log_dict({"labels": list(EMOTIONS), "matrix": matrix.tolist()}, "confusion_matrix.json")
    champion_correct = None if test.champion is None else test.champion.argmax(axis=1) == test.truth
    decision = gate_emotion(
        test.challenger.argmax(axis=1) == test.truth, champion_correct, gate, EMOTION_MODEL
    )
    return {
        **decision.as_dict(),
        "metrics": test.scores,
        "confusion_matrix": matrix.tolist(),
        "data": test.dataset.metadata,
    }


def evaluate(
    keypoints_data: Path,
    emotion_data: Path,
    keypoint_model: Path,
    emotion_model: Path,
    report_dir: Path,
    context: StepContext,
    gate: GateSettings = GateSettings(),
) -> dict:
    """Scores challenger and champion on the same test split and decides on promotion."""
    with step_run(context.tracking, context.parent_run_id, "evaluate"):
        mlflow.log_params({f"gate/{k}": v for k, v in asdict(gate).items()})
        decisions = [
            _evaluate_keypoints(keypoints_data, keypoint_model, gate),
            _evaluate_emotion(emotion_data, emotion_model, gate),
        ]
        for decision in decisions:
            mlflow.set_tag(f"decision/{decision['model']}", verdict(decision))
            mlflow.set_tag(f"decision/{decision['model']}/reason", decision["reason"])
        report = write_decisions(report_dir / DECISIONS_FILE, decisions)
        mlflow.log_dict(report, DECISIONS_FILE)
    log_headline(
        logger,
        "; ".join(
            f"{headline_figure(d['model'], d['challenger_score'])}: {verdict(d)}" for d in decisions
        ),
    )
    return report


def _register_one(
    name: str,
    model_dir: Path,
    decision: dict,
    model_base_path: str | Path,
    parent_run_id: str,
    release: ReleaseSettings,
) -> dict:
    lineage = read_json(model_dir / LINEAGE_FILE)
    tags = {
        "data_sha256": lineage["data_sha256"],
        "data_source": lineage["data_source"],
        "git_commit": source_commit(),
        "pipeline_run_id": parent_run_id,
        "train_run_id": lineage["train_run_id"],
        "decision": "promote" if decision["promote"] else "reject",
        "decision_reason": decision["reason"],
        "decision_test": decision["test"],
        "decision_p_value": decision["p_value"],
        "decision_interval": decision["interval"],
        "test_metric": HEADLINE_METRIC[name],
        "test_score": decision["challenger_score"],
        "test_score_interval": decision["score_interval"],
    }
    version = registry.register_version(
        lineage["model_uri"], name, {k: str(v) for k, v in tags.items()}
    )
    links = UiLinks(mlflow.active_run().info.experiment_id)
    card = model_card(name, int(version.version), decision, lineage, links, parent_run_id)
    mlflow.log_text(card.markdown, f"model_cards/{name}-v{version.version}.md")
    mlflow.log_dict(card.facts, f"model_cards/{name}-v{version.version}.json")
    registry.describe(name, version.version, MODEL_DESCRIPTIONS[name], card.markdown)
    if not decision["promote"]:
        return {"version": int(version.version), "champion": False}
    try:
        publish(
            name,
            int(version.version),
            model_base_path,
            release.keep_versions,
            model=training.load_model(model_dir),
            latency_budget_ms=release.latency_budget_ms,
        )
    except InfraCheckFailed as failure:
        logger.error("%s version %s is not promoted: %s", name, version.version, failure)
        mlflow.set_tag(f"infra_check/{name}", f"failed: {failure.reason}")
        return {"version": int(version.version), "champion": False, "refused": failure.reason}
    return {"version": int(version.version), "champion": True}


def register(
    keypoint_model: Path,
    emotion_model: Path,
    report_dir: Path,
    model_base_path: str | Path,
    context: StepContext,
    release: ReleaseSettings = ReleaseSettings(),
) -> dict:
    """Registers both challengers (from their logged models, the model card as the version's
    description); exports and promotes those the gate passed; sums the pipeline run up on its
    parent run."""
    decisions = read_decisions(report_dir / DECISIONS_FILE)
    with step_run(context.tracking, context.parent_run_id, "register"):
        outcome = {
            name: _register_one(
                name, model_dir, decisions[name], model_base_path, context.parent_run_id, release
            )
            for name, model_dir in (
                (KEYPOINT_MODEL, keypoint_model),
                (EMOTION_MODEL, emotion_model),
            )
        }
        for name, result in outcome.items():
            champion = registry.version_by_alias(name, registry.CHAMPION)
            result["champion"] = champion is not None and int(champion.version) == result["version"]
        mlflow.log_dict(outcome, "registered.json")
    if context.parent_run_id:
        summarize_pipeline_run(context.parent_run_id, decisions, outcome)
    log_headline(
        logger,
        ", ".join(
            f"{METRIC_GROUP[name]} v{result['version']}"
            + (" (champion)" if result["champion"] else "")
            for name, result in outcome.items()
        ),
    )
    return outcome
