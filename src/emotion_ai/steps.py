"""The six pipeline steps as plain functions over directories; the KFP components only call these.

Every step runs inside a nested MLflow run under the pipeline's parent run, and writes its
outputs only into its own output directories, so a failed step leaves nothing behind that
a later step could mistake for a result.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import mlflow

from emotion_ai import evaluation, plots, registry, synthetic, training
from emotion_ai.config import GateSettings, SplitSettings, TrainSettings, ValidationSettings
from emotion_ai.data_formats import FER_FORMAT, FKD_FORMAT, TableFormat
from emotion_ai.datasets import TEST, emotion_dataset, keypoint_dataset, load_dataset, save_dataset
from emotion_ai.faces import EMOTIONS
from emotion_ai.model_card import model_card
from emotion_ai.profiles import data_profile
from emotion_ai.promotion import DEFAULT_KEEP_VERSIONS, publish
from emotion_ai.sources import fetch
from emotion_ai.step_cache import StepCache, cache_key
from emotion_ai.tracking import TrackingSettings, source_commit, start_parent_run, step_run
from emotion_ai.validation import DataValidationError, SuiteRunner, ValidationReport, validate_file

RAW_FILE = "data.csv"
SOURCE_FILE = "source.json"
DATASET_FILE = "dataset.npz"
PROFILE_FILE = "profile.json"
LINEAGE_FILE = "lineage.json"
DECISIONS_FILE = "decisions.json"
SYNTHETIC_ROWS = 600
CACHE_TAG = "emotion_ai.cache"


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, default=str))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _ingest_one(source: str, out_dir: Path, write_synthetic, seed: int, synthetic_rows: int) -> dict:
    """Fetches one source (or writes synthetic data when `source` is empty) and fingerprints it."""
    if not source:
        generated = write_synthetic(out_dir / "synthetic.csv", synthetic_rows, seed=seed)
        fingerprint = fetch(str(generated), out_dir / RAW_FILE).as_dict()
        generated.unlink()
        fingerprint["source"] = f"synthetic:{write_synthetic.__name__}(rows={synthetic_rows}, seed={seed})"
    else:
        fingerprint = fetch(source, out_dir / RAW_FILE).as_dict()
    _write_json(out_dir / SOURCE_FILE, fingerprint)
    return fingerprint


def ingest(keypoints_source: str, fer_source: str, keypoints_raw: Path, fer_raw: Path,
           tracking: TrackingSettings, parent_run_id: str = "", seed: int = 0,
           synthetic_rows: int = SYNTHETIC_ROWS) -> str:
    """Brings both data sets in and fingerprints them; returns the pipeline's parent run id."""
    parent_run_id = parent_run_id or start_parent_run(tracking, "emotion-ai pipeline")
    with step_run(tracking, parent_run_id, "ingest"):
        for name, source, out_dir, writer in (
            ("keypoints", keypoints_source, keypoints_raw, synthetic.write_keypoints_csv),
            ("fer", fer_source, fer_raw, synthetic.write_fer_csv),
        ):
            fingerprint = _ingest_one(source, out_dir, writer, seed, synthetic_rows)
            mlflow.log_params({f"{name}.source": fingerprint["source"], f"{name}.sha256": fingerprint["sha256"]})
            mlflow.log_metric(f"{name}.size_bytes", fingerprint["size_bytes"])
            mlflow.set_tag(f"data.{name}.sha256", fingerprint["sha256"])
    return parent_run_id


def _validate_one(raw_dir: Path, table_format: TableFormat, validation: ValidationSettings, build,
                  split: SplitSettings, data_dir: Path, runner: SuiteRunner) -> dict:
    """Validates one raw file and writes its data set and reference profile; returns the profile."""
    provenance = _read_json(raw_dir / SOURCE_FILE)
    try:
        table, reports = validate_file(raw_dir / RAW_FILE, table_format, validation, runner)
    except DataValidationError as error:
        _log_report(table_format, error.report)
        raise
    for report in reports:
        _log_report(table_format, report)
    dataset = build(table, split, provenance)
    profile = data_profile(dataset)
    save_dataset(dataset, data_dir / DATASET_FILE)
    _write_json(data_dir / PROFILE_FILE, profile)
    return profile


def _log_report(table_format: TableFormat, report: ValidationReport) -> None:
    mlflow.log_metrics({f"{report.suite}.passed": report.passed,
                        f"{report.suite}.failed": report.evaluated - report.passed})
    if report.failures:
        mlflow.log_text("\n".join(report.failures), f"validation/{report.suite}-failures.txt")
        mlflow.set_tag(f"validation.{table_format.name}", "failed")


def _reuse(cache_root: str, step: str, key: str, outputs: dict[str, Path]) -> bool:
    """Restores the step's outputs from the cache when `key` was seen before, and says so."""
    if not cache_root:
        return False
    entry = StepCache(Path(cache_root)).restore(step, key, outputs)
    mlflow.set_tag(CACHE_TAG, "hit" if entry else "miss")
    if entry is None:
        return False
    mlflow.set_tags({f"{CACHE_TAG}.key": key, f"{CACHE_TAG}.source_run_id": entry["run_id"]})
    print(f"[cache] {step}: inputs, parameters and code unchanged; reusing the outputs of MLflow run "
          f"{entry['run_id']} (key {key[:12]})", flush=True)
    return True


def _remember(cache_root: str, step: str, key: str, outputs: dict[str, Path]) -> None:
    if cache_root:
        StepCache(Path(cache_root)).store(step, key, outputs, {"run_id": mlflow.active_run().info.run_id})


def _validate_both(keypoints_raw: Path, fer_raw: Path, keypoints_data: Path, emotion_data: Path,
                   split: SplitSettings, validation: ValidationSettings) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        runner = SuiteRunner(Path(scratch))
        try:
            return {
                "keypoints": _validate_one(keypoints_raw, FKD_FORMAT, validation, keypoint_dataset, split,
                                           keypoints_data, runner),
                "emotion": _validate_one(fer_raw, FER_FORMAT, validation, emotion_dataset, split,
                                         emotion_data, runner),
            }
        finally:
            if runner.docs_dir.is_dir():
                mlflow.log_artifacts(str(runner.docs_dir), "data_docs")


def validate(keypoints_raw: Path, fer_raw: Path, keypoints_data: Path, emotion_data: Path,
             tracking: TrackingSettings, parent_run_id: str,
             split: SplitSettings = SplitSettings(),
             validation: ValidationSettings = ValidationSettings(), cache_root: str = "") -> dict:
    """Validates both raw files (fails closed), writes the compact split data sets and their profiles.

    The Great Expectations Data Docs are logged to MLflow whether validation passes or fails.
    With a `cache_root`, unchanged raw files and settings reuse the data sets written last time.
    """
    with step_run(tracking, parent_run_id, "validate"):
        parameters = {**{f"split.{k}": v for k, v in asdict(split).items()},
                      **{f"validation.{k}": v for k, v in asdict(validation).items()}}
        mlflow.log_params(parameters)
        outputs = {"keypoints": keypoints_data, "emotion": emotion_data}
        key = cache_key("validate", [keypoints_raw, fer_raw], parameters)
        if _reuse(cache_root, "validate", key, outputs):
            profiles = {name: _read_json(folder / PROFILE_FILE) for name, folder in outputs.items()}
        else:
            profiles = _validate_both(keypoints_raw, fer_raw, keypoints_data, emotion_data, split, validation)
            _remember(cache_root, "validate", key, outputs)
        mlflow.log_dict(profiles, "data_profile.json")
        mlflow.log_metrics({"keypoints.rows": profiles["keypoints"]["rows"],
                            "emotion.rows": profiles["emotion"]["rows"],
                            **{f"emotion.class_share.{k}": v for k, v in profiles["emotion"]["class_share"].items()}})
    return profiles


def _train(step: str, data_dir: Path, model_dir: Path, settings: TrainSettings, train_fn,
           tracking: TrackingSettings, parent_run_id: str, cache_root: str) -> dict:
    """Trains one model (or reuses the one trained on the same data and settings); returns its lineage."""
    with step_run(tracking, parent_run_id, step) as run:
        key = cache_key(step, [data_dir], settings.as_params())
        if _reuse(cache_root, step, key, {"model": model_dir}):
            return _read_json(model_dir / LINEAGE_FILE)
        dataset = load_dataset(data_dir / DATASET_FILE)
        trained = train_fn(dataset, settings)
        training.save_model(trained.model, model_dir)
        lineage = {"model_uri": trained.model_uri, "train_run_id": run.info.run_id,
                   "data_source": dataset.metadata["source"], "data_sha256": dataset.metadata["sha256"],
                   "final_metrics": {name: values[-1] for name, values in trained.history.items()}}
        _write_json(model_dir / LINEAGE_FILE, lineage)
        _remember(cache_root, step, key, {"model": model_dir})
    return lineage


def train_keypoints(keypoints_data: Path, model_dir: Path, settings: TrainSettings,
                    tracking: TrackingSettings, parent_run_id: str, cache_root: str = "") -> dict:
    return _train("train_keypoints", keypoints_data, model_dir, settings, training.train_keypoint_model,
                  tracking, parent_run_id, cache_root)


def train_emotion(emotion_data: Path, model_dir: Path, settings: TrainSettings,
                  tracking: TrackingSettings, parent_run_id: str, cache_root: str = "") -> dict:
    return _train("train_emotion", emotion_data, model_dir, settings, training.train_emotion_model,
                  tracking, parent_run_id, cache_root)


def _evaluate_keypoints(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    dataset = load_dataset(data_dir / DATASET_FILE)
    images, truth = dataset.part(TEST)
    challenger = evaluation.predict(training.load_model(model_dir), images)
    champion_model = registry.load_champion(registry.KEYPOINT_MODEL)
    metrics = evaluation.keypoint_metrics(challenger, truth)
    mlflow.log_metrics({f"keypoints.challenger.{k}": v for k, v in metrics.items()})
    challenger_rmse = evaluation.per_image_rmse(evaluation.keypoint_squared_errors(challenger, truth))
    champion_rmse = None
    if champion_model is not None:
        champion = evaluation.predict(champion_model, images)
        mlflow.log_metrics({f"keypoints.champion.{k}": v
                            for k, v in evaluation.keypoint_metrics(champion, truth).items()})
        champion_rmse = evaluation.per_image_rmse(evaluation.keypoint_squared_errors(champion, truth))
    decision = evaluation.gate_keypoints(challenger_rmse, champion_rmse, gate, registry.KEYPOINT_MODEL)
    return {**decision.as_dict(), "metrics": metrics, "data": dataset.metadata}


def _evaluate_emotion(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    dataset = load_dataset(data_dir / DATASET_FILE)
    images, labels = dataset.part(TEST)
    challenger = evaluation.predict(training.load_model(model_dir), images)
    metrics = evaluation.emotion_metrics(challenger, labels)
    mlflow.log_metrics({f"emotion.challenger.{k}": v for k, v in metrics.items()})
    matrix = evaluation.emotion_confusion(challenger, labels)
    mlflow.log_figure(plots.confusion_matrix_figure(matrix, "challenger, test split"),
                      "plots/confusion_matrix.png")
    mlflow.log_dict({"labels": list(EMOTIONS), "matrix": matrix.tolist()}, "confusion_matrix.json")
    champion_model = registry.load_champion(registry.EMOTION_MODEL)
    champion_correct = None
    if champion_model is not None:
        champion = evaluation.predict(champion_model, images)
        mlflow.log_metrics({f"emotion.champion.{k}": v
                            for k, v in evaluation.emotion_metrics(champion, labels).items()})
        champion_correct = champion.argmax(axis=1) == labels
    decision = evaluation.gate_emotion(challenger.argmax(axis=1) == labels, champion_correct, gate,
                                       registry.EMOTION_MODEL)
    return {**decision.as_dict(), "metrics": metrics, "confusion_matrix": matrix.tolist(),
            "data": dataset.metadata}


def evaluate(keypoints_data: Path, emotion_data: Path, keypoint_model: Path, emotion_model: Path,
             report_dir: Path, tracking: TrackingSettings, parent_run_id: str,
             gate: GateSettings = GateSettings()) -> dict:
    """Scores challenger and champion on the same test split and decides on promotion."""
    with step_run(tracking, parent_run_id, "evaluate"):
        mlflow.log_params({f"gate.{k}": v for k, v in asdict(gate).items()})
        decisions = [_evaluate_keypoints(keypoints_data, keypoint_model, gate),
                     _evaluate_emotion(emotion_data, emotion_model, gate)]
        for decision in decisions:
            mlflow.set_tag(f"decision.{decision['model']}", "promote" if decision["promote"] else "keep champion")
            mlflow.set_tag(f"decision.{decision['model']}.reason", decision["reason"])
        report = {decision["model"]: decision for decision in decisions}
        mlflow.log_dict(report, DECISIONS_FILE)
        _write_json(report_dir / DECISIONS_FILE, report)
    return report


def _register_one(name: str, model_dir: Path, decision: dict, model_base_path: str | Path,
                  parent_run_id: str, keep_versions: int) -> dict:
    lineage = _read_json(model_dir / LINEAGE_FILE)
    tags = {"data_sha256": lineage["data_sha256"], "data_source": lineage["data_source"],
            "git_commit": source_commit(), "pipeline_run_id": parent_run_id,
            "train_run_id": lineage["train_run_id"], "decision": "promote" if decision["promote"] else "reject",
            "decision_reason": decision["reason"], "decision_test": decision["test"],
            "decision_p_value": decision["p_value"], "decision_interval": decision["interval"],
            "test_score": decision["challenger_score"], "test_score_interval": decision["score_interval"]}
    version = registry.register_version(lineage["model_uri"], name, {k: str(v) for k, v in tags.items()})
    card = model_card(name, int(version.version), decision, lineage)
    mlflow.log_text(card.markdown, f"model_cards/{name}-v{version.version}.md")
    mlflow.log_dict(card.facts, f"model_cards/{name}-v{version.version}.json")
    registry.tag_version(name, version.version, {"model_card": f"{mlflow.get_artifact_uri()}/model_cards/"
                                                                  f"{name}-v{version.version}.md"})
    if decision["promote"]:
        publish(name, int(version.version), model_base_path, keep_versions, model=training.load_model(model_dir))
    return {"version": int(version.version), "champion": decision["promote"]}


def register(keypoint_model: Path, emotion_model: Path, report_dir: Path, model_base_path: str | Path,
             tracking: TrackingSettings, parent_run_id: str, keep_versions: int = DEFAULT_KEEP_VERSIONS) -> dict:
    """Registers both challengers; exports and promotes those the gate passed."""
    decisions = _read_json(report_dir / DECISIONS_FILE)
    with step_run(tracking, parent_run_id, "register"):
        outcome = {name: _register_one(name, model_dir, decisions[name], model_base_path, parent_run_id,
                                       keep_versions)
                   for name, model_dir in ((registry.KEYPOINT_MODEL, keypoint_model),
                                           (registry.EMOTION_MODEL, emotion_model))}
        mlflow.log_dict(outcome, "registered.json")
        for name, result in outcome.items():
            mlflow.log_metric(f"{name}.version", result["version"])
    return outcome
