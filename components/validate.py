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
    seed: int,
    val_fraction: float,
    test_fraction: float,
    split_by_usage: bool,
    min_rows_per_class: int,
    max_duplicate_rate: float,
    cache_root: str,
    keypoints_data: Output[Dataset],
    emotion_data: Output[Dataset],
):
    from pathlib import Path

    from components.arguments import step_context
    from emotion_ai.settings import SplitSettings, ValidationSettings
    from emotion_ai.steps import data_steps

    data_steps.validate(
        Path(keypoints_raw.path),
        Path(fer_raw.path),
        Path(keypoints_data.path),
        Path(emotion_data.path),
        step_context(locals()),
        SplitSettings(val_fraction, test_fraction, seed, split_by_usage),
        ValidationSettings(
            min_rows_per_class=min_rows_per_class, max_duplicate_rate=max_duplicate_rate
        ),
        cache_root,
    )
