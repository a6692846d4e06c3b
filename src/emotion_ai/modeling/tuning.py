"""A small hyperparameter search (Optuna's TPE sampler) whose trials are nested MLflow runs.

Each trial trains one model on the validated data set's train split and is scored by its best
validation loss; the parent run records the search space, every trial and the best settings,
so the trials can be compared side by side in the MLflow UI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import mlflow
import optuna

from emotion_ai.data.datasets import VAL, FaceDataset
from emotion_ai.modeling import training
from emotion_ai.settings import ResNetConfig, TrainSettings

TRAINERS = {"emotion": training.train_emotion_model, "keypoints": training.train_keypoint_model}


@dataclass(frozen=True)
class SearchSpace:
    min_learning_rate: float = 3e-4
    max_learning_rate: float = 1e-2
    widths: tuple[int, ...] = (16, 24, 32)
    max_depth: int = 2
    """Identity blocks per stage, from 0."""

    def suggest(self, trial: optuna.Trial, base: TrainSettings) -> TrainSettings:
        learning_rate = trial.suggest_float(
            "learning_rate", self.min_learning_rate, self.max_learning_rate, log=True
        )
        width = trial.suggest_categorical("width", list(self.widths))
        depth = trial.suggest_int("depth", 0, self.max_depth)
        return replace(
            base, learning_rate=learning_rate, network=ResNetConfig(width=width, depth=depth)
        )


@dataclass(frozen=True)
class TuningResult:
    best_params: dict[str, object]
    best_val_loss: float
    trials: list[dict]


def _objective(kind: str, dataset: FaceDataset, base: TrainSettings, space: SearchSpace):
    def objective(trial: optuna.Trial) -> float:
        settings = space.suggest(trial, base)
        with mlflow.start_run(
            run_name=f"trial {trial.number}",
            nested=True,
            tags={"emotion_ai.step": "tune_trial", "emotion_ai.trial": str(trial.number)},
        ):
            trained = TRAINERS[kind](dataset, settings)
            val_loss = min(trained.history["val_loss"])
            mlflow.log_metric("best_val_loss", val_loss)
        return val_loss

    return objective


def tune(
    kind: str,
    dataset: FaceDataset,
    base: TrainSettings,
    trials: int,
    space: SearchSpace = SearchSpace(),
    seed: int = 0,
) -> TuningResult:
    """Runs `trials` trials inside the active MLflow run; logs the best settings to it."""
    if not (dataset.split == VAL).any():
        raise ValueError(
            "tuning scores each trial on validation faces, and this data set has no validation "
            "faces (split with --val-fraction 0): ingest it again with a validation share"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    mlflow.log_params(
        {
            "model": kind,
            "trials": trials,
            "epochs": base.epochs,
            **{f"space.{k}": v for k, v in asdict(space).items()},
        }
    )
    study.optimize(_objective(kind, dataset, base, space), n_trials=trials, show_progress_bar=True)
    table = [{"trial": t.number, **t.params, "best_val_loss": t.value} for t in study.trials]
    mlflow.log_params({f"best.{name}": value for name, value in study.best_params.items()})
    mlflow.log_metric("best_val_loss", study.best_value)
    mlflow.log_dict({"trials": table}, "tuning/trials.json")
    return TuningResult(study.best_params, study.best_value, table)
