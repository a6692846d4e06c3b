"""The training steps: train either model (or reuse the one trained on the same data, settings and
code), resuming from an epoch checkpoint when asked; the model and its lineage go to the step's
output folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from emotion_ai.data.datasets import TRAIN, VAL, FaceDataset, load_dataset
from emotion_ai.logs import log_headline
from emotion_ai.modeling import training
from emotion_ai.modeling.callbacks import metric_name
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.modeling.persistence import save_model
from emotion_ai.settings import TrainSettings
from emotion_ai.steps.cache import cache_key
from emotion_ai.steps.data_inputs import log_data_inputs
from emotion_ai.steps.io import DATASET_FILE, LINEAGE_FILE, remember_outputs, reuse_cached
from emotion_ai.steps.tracking import StepContext, run_status, step_run, use_tracking
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
    lineage. Its checkpoints are removed once the step has finished. Each model takes the settings
    less the other model's own fields (`train_keypoints` trains "keypoints")."""
    settings = settings.for_model(step.removeprefix("train_"))
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
    save_model(trained.model, model_dir)
    lineage = {
        "model_uri": trained.logged.model_uri,
        "model_id": trained.logged.model_id,
        "train_run_id": run_id,
        "data_source": dataset.metadata["source"],
        "data_sha256": dataset.metadata["sha256"],
        "final_metrics": {
            metric_name(name): values[-1] for name, values in trained.history.items()
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
