"""KFP component: register both challengers; export and promote those the gate passed."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(keypoint_model: Input[Model], emotion_model: Input[Model], report: Input[Artifact],
             tracking_uri: str, experiment_name: str, artifact_location: str, parent_run_id: str,
             model_base_path: str, keep_versions: int):
    from pathlib import Path

    from emotion_ai import model_steps
    from emotion_ai.tracking import TrackingSettings

    model_steps.register(Path(keypoint_model.path), Path(emotion_model.path), Path(report.path),
                   model_base_path, TrackingSettings(tracking_uri, experiment_name, artifact_location),
                   parent_run_id, keep_versions)
