"""`emotion-ai step ...`: one pipeline step at a time over a work folder (the MLproject entry
points).

Under `mlflow run`, each step nests under the entry point's own MLflow run; otherwise under a
new parent run. A training step finds no validated data? It ingests synthetic data first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    ModelBasePath,
    StateDir,
    console,
    help_markup,
    local_sources,
    serving_dir,
    tracking_settings,
)
from emotion_ai.cli.settings_options import takes_settings
from emotion_ai.settings import (
    GateSettings,
    ReleaseSettings,
    SourceSettings,
    SplitSettings,
    TrainSettings,
    ValidationSettings,
)

step_app = typer.Typer(
    help="Run one pipeline step on its own over a work folder (used by the MLproject).",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)
Workdir = Annotated[
    Path, typer.Option(help="Folder the steps read their inputs from and write their outputs to.")
]
DEFAULT_WORKDIR = DEFAULT_STATE_DIR / "steps"
Resume = Annotated[
    bool,
    typer.Option(
        help="Continue from the last epoch checkpoint of an interrupted run "
        "(WORKDIR/checkpoints), in the same MLflow run."
    ),
]


@dataclass(frozen=True)
class StepFolders:
    """One folder per step output, as the KFP artifacts would be."""

    root: Path

    def __getitem__(self, output: str) -> Path:
        return self.root / output

    def has_data(self) -> bool:
        from emotion_ai.steps.io import DATASET_FILE

        return all(
            (self[name] / DATASET_FILE).is_file() for name in ("keypoints_data", "emotion_data")
        )


def _prepare(
    folders: StepFolders,
    context,
    sources: SourceSettings,
    split: SplitSettings,
    validation: ValidationSettings,
) -> None:
    from emotion_ai.steps import data_steps

    data_steps.ingest(sources, folders["keypoints_raw"], folders["fer_raw"], context)
    data_steps.validate(
        folders["keypoints_raw"],
        folders["fer_raw"],
        folders["keypoints_data"],
        folders["emotion_data"],
        context,
        split,
        validation,
    )


def ensure_data(
    folders: StepFolders,
    context,
    seed: int,
    synthetic_rows: int = SourceSettings.synthetic_rows,
) -> None:
    """Ingests synthetic data into the work folder when it holds no validated data yet."""
    if not folders.has_data():
        console.print(f"no validated data in {folders.root}: ingesting synthetic data first")
        _prepare(
            folders,
            context,
            SourceSettings(synthetic_rows=synthetic_rows, seed=seed),
            SplitSettings(seed=seed),
            ValidationSettings(),
        )


def _context(state_dir: Path, parent_run_id: str):
    from emotion_ai.steps.tracking import StepContext

    return StepContext(tracking_settings(state_dir, create=True), parent_run_id)


@step_app.command("ingest")
@takes_settings
def ingest(
    sources: SourceSettings,
    split: SplitSettings,
    validation: ValidationSettings,
    workdir: Workdir = DEFAULT_WORKDIR,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Fetch and fingerprint both data sets, validate them and write the split data sets."""
    from emotion_ai.steps.tracking import parent_run

    with parent_run(tracking_settings(state_dir, create=True), "step ingest") as parent_run_id:
        _prepare(
            StepFolders(workdir),
            _context(state_dir, parent_run_id),
            local_sources(sources),
            split,
            validation,
        )
    console.print(f"validated data sets in {workdir}")


def _train(
    step: str, settings: TrainSettings, resume: bool, workdir: Path, state_dir: Path
) -> None:
    from emotion_ai.steps.tracking import parent_run
    from emotion_ai.steps.train import TrainControl, train

    folders = StepFolders(workdir)
    with parent_run(tracking_settings(state_dir, create=True), f"step {step}") as parent_run_id:
        context = _context(state_dir, parent_run_id)
        ensure_data(folders, context, settings.seed)
        data, model = (
            ("keypoints_data", "keypoint_model")
            if step == "train_keypoints"
            else ("emotion_data", "emotion_model")
        )
        control = TrainControl(checkpoint_root=str(folders["checkpoints"]), resume=resume)
        lineage = train(step, folders[data], folders[model], settings, context, control)
    console.print(f"{step}: {lineage['model_uri']} saved to {folders[model]}")


def _train_command(step: str, model: str):
    """The `step train-<model>` command of one training step."""

    @takes_settings
    def command(
        training: TrainSettings,
        resume: Resume = False,
        workdir: Workdir = DEFAULT_WORKDIR,
        state_dir: StateDir = DEFAULT_STATE_DIR,
    ) -> None:
        _train(step, training, resume, workdir, state_dir)

    command.__doc__ = (
        f"Train the {model} model on WORKDIR's validated data (checkpointed every epoch)."
    )
    return command


step_app.command("train-keypoints")(_train_command("train_keypoints", "keypoint"))
step_app.command("train-emotion")(_train_command("train_emotion", "emotion"))


def _require(folders: StepFolders, files: dict[str, str], earlier_steps: str) -> None:
    """Stops with a clear message when an earlier step's output is missing."""
    missing = [output for output, file in files.items() if not (folders[output] / file).is_file()]
    if missing:
        console.print(
            f"[red]no {' or '.join(missing)} in {folders.root}: run {earlier_steps} first[/]"
        )
        raise typer.Exit(1)


def _require_models(folders: StepFolders) -> None:
    from emotion_ai.modeling.persistence import MODEL_FILE

    _require(
        folders, {"keypoint_model": MODEL_FILE, "emotion_model": MODEL_FILE}, "the train steps"
    )


@step_app.command("evaluate")
@takes_settings
def evaluate(
    gate: GateSettings,
    workdir: Workdir = DEFAULT_WORKDIR,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Score both trained models against the champions and decide on promotion."""
    from emotion_ai.steps.evaluate import evaluate as evaluate_step
    from emotion_ai.steps.tracking import parent_run

    folders = StepFolders(workdir)
    _require_models(folders)
    with parent_run(tracking_settings(state_dir, create=True), "step evaluate") as parent_run_id:
        report = evaluate_step(
            folders["keypoints_data"],
            folders["emotion_data"],
            folders["keypoint_model"],
            folders["emotion_model"],
            folders["report"],
            _context(state_dir, parent_run_id),
            gate,
        )
    for name, decision in report.items():
        console.print(
            f"{name}: {'promote' if decision['promote'] else 'keep champion'} "
            f"({decision['reason']})"
        )


@step_app.command("register")
@takes_settings
def register(
    release: ReleaseSettings,
    model_base_path: ModelBasePath = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Register both trained models; export and promote those the evaluate step passed."""
    from emotion_ai.steps.io import DECISIONS_FILE
    from emotion_ai.steps.register import register as register_step
    from emotion_ai.steps.tracking import parent_run

    folders = StepFolders(workdir)
    _require_models(folders)
    _require(folders, {"report": DECISIONS_FILE}, "the evaluate step")
    with parent_run(tracking_settings(state_dir, create=True), "step register") as parent_run_id:
        outcome = register_step(
            folders["keypoint_model"],
            folders["emotion_model"],
            folders["report"],
            model_base_path or serving_dir(state_dir),
            _context(state_dir, parent_run_id),
            release,
        )
    for name, result in outcome.items():
        console.print(
            f"{name} version {result['version']}{' is champion' if result['champion'] else ''}"
        )
