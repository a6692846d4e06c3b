"""KFP component: fetch and fingerprint both data sets."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def ingest(
    sources: str,
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    trigger: str,
    keypoints_raw: Output[Dataset],
    fer_raw: Output[Dataset],
) -> str:
    """Returns the MLflow parent run id the other steps nest under."""
    from pathlib import Path

    from components.arguments import settings, step_context
    from emotion_ai.settings import SourceSettings
    from emotion_ai.steps import data_steps

    return data_steps.ingest(
        settings(SourceSettings, sources),
        Path(keypoints_raw.path),
        Path(fer_raw.path),
        step_context(locals()),
        trigger,
    )
