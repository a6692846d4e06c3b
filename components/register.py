"""KFP component: register both challengers; export and promote those the gate passed."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(
    keypoint_model: Input[Model],
    emotion_model: Input[Model],
    report: Input[Artifact],
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    model_base_path: str,
    release: str,
):
    from pathlib import Path

    from components.arguments import settings, step_context
    from emotion_ai.settings import ReleaseSettings
    from emotion_ai.steps.register import register as register_step

    register_step(
        Path(keypoint_model.path),
        Path(emotion_model.path),
        Path(report.path),
        model_base_path,
        step_context(locals()),
        settings(ReleaseSettings, release),
    )
