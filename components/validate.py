"""KFP component: validate both raw files with Great Expectations; write the compact data sets."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate(
    keypoints_raw: Input[Dataset],
    fer_raw: Input[Dataset],
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    split: str,
    validation: str,
    cache_root: str,
    keypoints_data: Output[Dataset],
    emotion_data: Output[Dataset],
):
    from pathlib import Path

    from components.arguments import settings, step_context
    from emotion_ai.settings import SplitSettings, ValidationSettings
    from emotion_ai.steps import data_steps

    data_steps.validate(
        Path(keypoints_raw.path),
        Path(fer_raw.path),
        Path(keypoints_data.path),
        Path(emotion_data.path),
        step_context(locals()),
        settings(SplitSettings, split),
        settings(ValidationSettings, validation),
        cache_root,
    )
