"""KFP component: fetch and fingerprint both data sets."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def ingest(
    keypoints_source: str,
    fer_source: str,
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    seed: int,
    synthetic_rows: int,
    detect_faces: bool,
    trigger: str,
    keypoints_raw: Output[Dataset],
    fer_raw: Output[Dataset],
) -> str:
    """Returns the MLflow parent run id the other steps nest under."""
    from pathlib import Path

    from components.arguments import step_context
    from emotion_ai.settings import SourceSettings
    from emotion_ai.steps import data_steps

    sources = SourceSettings(keypoints_source, fer_source, synthetic_rows, seed, detect_faces)
    return data_steps.ingest(
        sources, Path(keypoints_raw.path), Path(fer_raw.path), step_context(locals()), trigger
    )
