"""`emotion-ai step ...`: one pipeline step at a time over a work folder (the MLproject entry points).

Under `mlflow run`, each step nests under the entry point's own MLflow run; otherwise under a
new parent run. A training step finds no validated data? It ingests synthetic data first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from emotion_ai.cli_options import (
    DEFAULT_STATE_DIR,
    BatchSize,
    Depth,
    Epochs,
    FerCsv,
    KeepVersions,
    KeypointsCsv,
    LearningRate,
    MaxDuplicateRate,
    MaxKeypointRmse,
    MinEmotionAccuracy,
    MinRowsPerClass,
    ModelBasePath,
    Seed,
    Significance,
    SplitByUsage,
    StateDir,
    SyntheticRows,
    TestFraction,
    ValFraction,
    Width,
    absolute_source,
    serving_dir,
    tracking_settings,
)

step_app = typer.Typer(help="Run one pipeline step on its own over a work folder (used by the MLproject).",
                       no_args_is_help=True)
console = Console()
Workdir = Annotated[Path, typer.Option(help="Folder the steps read their inputs from and write their outputs to.")]
DEFAULT_WORKDIR = DEFAULT_STATE_DIR / "steps"
Resume = Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint of an interrupted run "
                                           "(WORKDIR/checkpoints), in the same MLflow run.")]


@dataclass(frozen=True)
class StepFolders:
    """One folder per step output, as the KFP artifacts would be."""

    root: Path

    def __getitem__(self, output: str) -> Path:
        return self.root / output

    def has_data(self) -> bool:
        from emotion_ai.step_io import DATASET_FILE

        return all((self[name] / DATASET_FILE).is_file() for name in ("keypoints_data", "emotion_data"))


def _prepare(folders: StepFolders, tracking, parent_run_id: str, keypoints_csv: str | None, fer_csv: str | None,
             seed: int, synthetic_rows: int, split, validation) -> None:
    from emotion_ai import data_steps

    data_steps.ingest(absolute_source(keypoints_csv), absolute_source(fer_csv), folders["keypoints_raw"],
                 folders["fer_raw"], tracking, parent_run_id, seed, synthetic_rows)
    data_steps.validate(folders["keypoints_raw"], folders["fer_raw"], folders["keypoints_data"],
                   folders["emotion_data"], tracking, parent_run_id, split, validation)


def _ensure_data(folders: StepFolders, tracking, parent_run_id: str, seed: int) -> None:
    """Ingests synthetic data into the work folder when it holds no validated data yet."""
    from emotion_ai.config import SplitSettings, ValidationSettings
    from emotion_ai.data_steps import SYNTHETIC_ROWS

    if not folders.has_data():
        console.print(f"no validated data in {folders.root}: ingesting synthetic data first")
        _prepare(folders, tracking, parent_run_id, None, None, seed, SYNTHETIC_ROWS, SplitSettings(seed=seed),
                 ValidationSettings())


@step_app.command("ingest")
def ingest(keypoints_csv: KeypointsCsv = None, fer_csv: FerCsv = None, seed: Seed = 0,
           synthetic_rows: SyntheticRows = 600, val_fraction: ValFraction = 0.2, test_fraction: TestFraction = 0.2,
           split_by_usage: SplitByUsage = False, min_rows_per_class: MinRowsPerClass = 1,
           max_duplicate_rate: MaxDuplicateRate = 0.1, workdir: Workdir = DEFAULT_WORKDIR,
           state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Fetch and fingerprint both data sets, validate them and write the split data sets."""
    from emotion_ai.config import SplitSettings, ValidationSettings
    from emotion_ai.tracking import parent_run

    tracking = tracking_settings(state_dir)
    with parent_run(tracking, "step ingest") as parent_run_id:
        _prepare(StepFolders(workdir), tracking, parent_run_id, keypoints_csv, fer_csv, seed, synthetic_rows,
                 SplitSettings(val_fraction, test_fraction, seed, split_by_usage),
                 ValidationSettings(min_rows_per_class=min_rows_per_class, max_duplicate_rate=max_duplicate_rate))
    console.print(f"validated data sets in {workdir}")


def _train(step: str, epochs: int, batch_size: int, learning_rate: float, width: int, depth: int, seed: int,
           resume: bool, workdir: Path, state_dir: Path) -> None:
    from emotion_ai import model_steps
    from emotion_ai.config import TrainSettings
    from emotion_ai.tracking import parent_run

    folders, tracking = StepFolders(workdir), tracking_settings(state_dir)
    settings = TrainSettings.scaled(epochs, batch_size, learning_rate, seed, width, depth)
    with parent_run(tracking, f"step {step}") as parent_run_id:
        _ensure_data(folders, tracking, parent_run_id, seed)
        data, model = ("keypoints_data", "keypoint_model") if step == "train_keypoints" else \
            ("emotion_data", "emotion_model")
        control = model_steps.TrainControl(checkpoint_root=str(folders["checkpoints"]), resume=resume)
        lineage = getattr(model_steps, step)(folders[data], folders[model], settings, tracking, parent_run_id, control)
    console.print(f"{step}: {lineage['model_uri']} saved to {folders[model]}")


@step_app.command("train-keypoints")
def train_keypoints(epochs: Epochs = 5, batch_size: BatchSize = 32, learning_rate: LearningRate = 0.002,
                    width: Width = 16, depth: Depth = 1, seed: Seed = 0, resume: Resume = False,
                    workdir: Workdir = DEFAULT_WORKDIR, state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Train the keypoint model on WORKDIR's validated data (checkpointed every epoch)."""
    _train("train_keypoints", epochs, batch_size, learning_rate, width, depth, seed, resume, workdir, state_dir)


@step_app.command("train-emotion")
def train_emotion(epochs: Epochs = 5, batch_size: BatchSize = 32, learning_rate: LearningRate = 0.002,
                  width: Width = 16, depth: Depth = 1, seed: Seed = 0, resume: Resume = False,
                  workdir: Workdir = DEFAULT_WORKDIR, state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Train the emotion model on WORKDIR's validated data (checkpointed every epoch)."""
    _train("train_emotion", epochs, batch_size, learning_rate, width, depth, seed, resume, workdir, state_dir)


def _require(folders: StepFolders, files: dict[str, str], earlier_steps: str) -> None:
    """Stops with a clear message when an earlier step's output is missing."""
    missing = [output for output, file in files.items() if not (folders[output] / file).is_file()]
    if missing:
        console.print(f"[red]no {' or '.join(missing)} in {folders.root}: run {earlier_steps} first[/]")
        raise typer.Exit(1)


def _require_models(folders: StepFolders) -> None:
    from emotion_ai.training import MODEL_FILE

    _require(folders, {"keypoint_model": MODEL_FILE, "emotion_model": MODEL_FILE}, "the train steps")


@step_app.command("evaluate")
def evaluate(max_keypoint_rmse_px: MaxKeypointRmse = 12.0, min_emotion_accuracy: MinEmotionAccuracy = 0.3,
             significance: Significance = 0.05, workdir: Workdir = DEFAULT_WORKDIR,
             state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Score both trained models against the champions and decide on promotion."""
    from emotion_ai import model_steps
    from emotion_ai.config import GateSettings
    from emotion_ai.tracking import parent_run

    folders, tracking = StepFolders(workdir), tracking_settings(state_dir)
    _require_models(folders)
    gate = GateSettings(max_keypoint_rmse_px=max_keypoint_rmse_px, min_emotion_accuracy=min_emotion_accuracy,
                        significance=significance)
    with parent_run(tracking, "step evaluate") as parent_run_id:
        report = model_steps.evaluate(folders["keypoints_data"], folders["emotion_data"], folders["keypoint_model"],
                                folders["emotion_model"], folders["report"], tracking, parent_run_id, gate)
    for name, decision in report.items():
        console.print(f"{name}: {'promote' if decision['promote'] else 'keep champion'} ({decision['reason']})")


@step_app.command("register")
def register(model_base_path: ModelBasePath = None, keep_versions: KeepVersions = 3,
             workdir: Workdir = DEFAULT_WORKDIR, state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Register both trained models; export and promote those the evaluate step passed."""
    from emotion_ai import model_steps
    from emotion_ai.step_io import DECISIONS_FILE
    from emotion_ai.tracking import parent_run

    folders, tracking = StepFolders(workdir), tracking_settings(state_dir)
    _require_models(folders)
    _require(folders, {"report": DECISIONS_FILE}, "the evaluate step")
    with parent_run(tracking, "step register") as parent_run_id:
        outcome = model_steps.register(folders["keypoint_model"], folders["emotion_model"], folders["report"],
                                 model_base_path or serving_dir(state_dir), tracking, parent_run_id, keep_versions)
    for name, result in outcome.items():
        console.print(f"{name} version {result['version']}{' is champion' if result['champion'] else ''}")


class TunedModel(str, Enum):
    emotion = "emotion"
    keypoints = "keypoints"


def tune(model: Annotated[TunedModel, typer.Argument(help="Which model to tune.")] = TunedModel.emotion,
         trials: Annotated[int, typer.Option(help="Trials of the search.")] = 8,
         epochs: Epochs = 5, batch_size: BatchSize = 32, seed: Seed = 0, workdir: Workdir = DEFAULT_WORKDIR,
         state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Search learning rate, width and depth (Optuna TPE) on WORKDIR's data; each trial is a nested MLflow run."""
    import mlflow
    from rich.table import Table

    from emotion_ai.config import TrainSettings
    from emotion_ai.datasets import load_dataset
    from emotion_ai.step_io import DATASET_FILE
    from emotion_ai.tracking import parent_run
    from emotion_ai.tuning import tune as search

    folders, tracking = StepFolders(workdir), tracking_settings(state_dir)
    with parent_run(tracking, f"tune {model.value}", {"emotion_ai.step": "tune"}) as parent_run_id:
        _ensure_data(folders, tracking, parent_run_id, seed)
        dataset = load_dataset(folders[f"{model.value}_data"] / DATASET_FILE)
        with mlflow.start_run(run_id=parent_run_id):
            result = search(model.value, dataset, TrainSettings(epochs=epochs, batch_size=batch_size, seed=seed),
                            trials, seed=seed)
    table = Table(*result.trials[0].keys(), title=f"{model.value}: best {result.best_params}")
    for row in result.trials:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
