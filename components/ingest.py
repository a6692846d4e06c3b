"""KFP component: fetch and fingerprint both data sets."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def ingest(keypoints_source: str, fer_source: str, tracking_uri: str, experiment_name: str,
           artifact_location: str, parent_run_id: str, seed: int, synthetic_rows: int, trigger: str,
           keypoints_raw: Output[Dataset], fer_raw: Output[Dataset]) -> str:
    """Returns the MLflow parent run id the other steps nest under."""
    from pathlib import Path

    from emotion_ai import data_steps
    from emotion_ai.tracking import TrackingSettings

    tracking = TrackingSettings(tracking_uri, experiment_name, artifact_location)
    return data_steps.ingest(keypoints_source, fer_source, Path(keypoints_raw.path), Path(fer_raw.path),
                        tracking, parent_run_id, seed, synthetic_rows, trigger)
