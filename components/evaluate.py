"""KFP component: score challenger vs champion on the test split and decide on promotion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate(
    keypoints_data: Input[Dataset],
    emotion_data: Input[Dataset],
    keypoint_model: Input[Model],
    emotion_model: Input[Model],
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    gate: str,
    report: Output[Artifact],
):
    from pathlib import Path

    from components.arguments import settings, step_context
    from emotion_ai.settings import GateSettings
    from emotion_ai.steps.evaluate import evaluate as evaluate_step

    evaluate_step(
        Path(keypoints_data.path),
        Path(emotion_data.path),
        Path(keypoint_model.path),
        Path(emotion_model.path),
        Path(report.path),
        step_context(locals()),
        settings(GateSettings, gate),
    )
