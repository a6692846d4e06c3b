"""`emotion-ai tune`: a hyperparameter search over a work folder's data."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    BatchSize,
    Epochs,
    Seed,
    StateDir,
    console,
    registry_errors,
    tracking_settings,
)
from emotion_ai.cli.steps import DEFAULT_WORKDIR, StepFolders, Workdir, ensure_data
from emotion_ai.settings import SourceSettings, TrainSettings


class TunedModel(str, Enum):
    emotion = "emotion"
    keypoints = "keypoints"


def tune(
    model: Annotated[TunedModel, typer.Argument(help="Which model to tune.")] = TunedModel.emotion,
    trials: Annotated[int, typer.Option(help="Trials of the search.")] = 8,
    epochs: Epochs = TrainSettings.epochs,
    batch_size: BatchSize = TrainSettings.batch_size,
    seed: Seed = TrainSettings.seed,
    workdir: Workdir = DEFAULT_WORKDIR,
    synthetic_rows: Annotated[
        int, typer.Option(help="Rows of each synthetic data set, when WORKDIR holds no data yet.")
    ] = SourceSettings.synthetic_rows,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Search learning rate, width and depth (Optuna TPE) on WORKDIR's data; each trial is a nested
    MLflow run."""
    import mlflow
    from rich.table import Table

    from emotion_ai.data.datasets import load_dataset
    from emotion_ai.modeling.tuning import tune as search
    from emotion_ai.steps.io import DATASET_FILE
    from emotion_ai.steps.tracking import StepContext, parent_run

    folders, tracking = StepFolders(workdir), tracking_settings(state_dir, create=True)
    with (
        registry_errors(f"tune {model.value}"),
        parent_run(tracking, f"tune {model.value}", {"emotion_ai.step": "tune"}) as parent_run_id,
    ):
        ensure_data(folders, StepContext(tracking, parent_run_id), seed, synthetic_rows)
        dataset = load_dataset(folders[f"{model.value}_data"] / DATASET_FILE)
        with mlflow.start_run(run_id=parent_run_id):
            result = search(
                model.value,
                dataset,
                TrainSettings(epochs=epochs, batch_size=batch_size, seed=seed),
                trials,
                seed=seed,
            )
    table = Table(*result.trials[0].keys(), title=f"{model.value}: best {result.best_params}")
    for row in result.trials:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
