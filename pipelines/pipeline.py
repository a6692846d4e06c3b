"""The emotion-ai pipeline: ingest -> validate -> (train_keypoints || train_emotion) -> evaluate -> register.

One factory for every orchestrator: `pipelines.local_runner` runs it through kfp.local,
`pipelines.compile` writes the KFP IR YAML for a Kubeflow cluster.
"""

from kfp import dsl

from components.evaluate import evaluate
from components.ingest import ingest
from components.register import register
from components.train_emotion import train_emotion
from components.train_keypoints import train_keypoints
from components.validate import validate

PIPELINE_NAME = "emotion-ai"


@dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate, gate and publish the keypoint and emotion models.")
def emotion_ai_pipeline(
    tracking_uri: str,
    model_base_path: str,
    keypoints_source: str = "",
    fer_source: str = "",
    experiment_name: str = "emotion-ai",
    artifact_location: str = "",
    parent_run_id: str = "",
    seed: int = 0,
    synthetic_rows: int = 600,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_by_usage: bool = False,
    min_rows_per_class: int = 1,
    max_duplicate_rate: float = 0.1,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 0.002,
    width: int = 16,
    depth: int = 1,
    max_keypoint_rmse_px: float = 12.0,
    min_emotion_accuracy: float = 0.3,
    significance: float = 0.05,
    keep_versions: int = 3,
):
    """Empty data sources mean synthetic data in the Kaggle formats."""
    tracking = {"tracking_uri": tracking_uri, "experiment_name": experiment_name,
                "artifact_location": artifact_location}
    ingested = ingest(keypoints_source=keypoints_source, fer_source=fer_source, parent_run_id=parent_run_id,
                      seed=seed, synthetic_rows=synthetic_rows, **tracking).set_display_name("ingest")
    run = {**tracking, "parent_run_id": ingested.outputs["Output"]}
    validated = validate(keypoints_raw=ingested.outputs["keypoints_raw"], fer_raw=ingested.outputs["fer_raw"],
                         seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                         split_by_usage=split_by_usage, min_rows_per_class=min_rows_per_class,
                         max_duplicate_rate=max_duplicate_rate, **run)
    training = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
                "width": width, "depth": depth, **run}
    keypoints = train_keypoints(data=validated.outputs["keypoints_data"], **training)
    emotion = train_emotion(data=validated.outputs["emotion_data"], **training)
    evaluated = evaluate(keypoints_data=validated.outputs["keypoints_data"],
                         emotion_data=validated.outputs["emotion_data"],
                         keypoint_model=keypoints.outputs["model"], emotion_model=emotion.outputs["model"],
                         max_keypoint_rmse_px=max_keypoint_rmse_px, min_emotion_accuracy=min_emotion_accuracy,
                         significance=significance, **run)
    register(keypoint_model=keypoints.outputs["model"], emotion_model=emotion.outputs["model"],
             report=evaluated.outputs["report"], model_base_path=model_base_path,
             keep_versions=keep_versions, **run)
