"""The emotion-ai pipeline: ingest -> validate -> (train_keypoints || train_emotion) -> evaluate ->
register.

One factory for every orchestrator: `pipelines.local_runner` runs it through kfp.local,
`pipelines.compile` writes the KFP IR YAML for a Kubeflow cluster. Resources, retries and
KFP caching only take effect on a cluster (kfp.local ignores them); steps whose outcome
depends on the outside world (the data behind a URI, the registry's champion) are never
cached by KFP, while validate and training also reuse their outputs through `cache_root`.
"""

from dataclasses import dataclass

from kfp import dsl

from components.evaluate import evaluate
from components.ingest import ingest
from components.register import register
from components.train_emotion import train_emotion
from components.train_keypoints import train_keypoints
from components.validate import validate
from emotion_ai.settings import DEFAULT_EXPERIMENT, PIPELINE_SETTINGS
from emotion_ai.settings_json import settings_to_json

PIPELINE_NAME = DEFAULT_EXPERIMENT
DEFAULTS = {name: settings_to_json(cls()) for name, cls in PIPELINE_SETTINGS.items()}
"""Each settings parameter's default: the JSON of its class's defaults."""
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class TaskPolicy:
    """What one task asks of the cluster."""

    cpu: str
    memory: str
    retries: int
    caching: bool
    gpus: int = 0

    def apply(self, task: dsl.PipelineTask) -> dsl.PipelineTask:
        task.set_cpu_request(self.cpu).set_cpu_limit(self.cpu)
        task.set_memory_request(self.memory).set_memory_limit(self.memory)
        task.set_caching_options(self.caching)
        if self.retries:
            task.set_retry(self.retries, backoff_duration="30s", backoff_factor=2.0)
        if self.gpus:
            task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(self.gpus)
        return task


def task_policies(training_gpus: int = 0) -> dict[str, TaskPolicy]:
    """Per step: ingest retries network errors; register runs once (it moves aliases)."""
    return {
        "ingest": TaskPolicy("1", "4Gi", retries=3, caching=False),
        "validate": TaskPolicy("2", "8Gi", retries=1, caching=True),
        "train_keypoints": TaskPolicy("4", "16Gi", retries=1, caching=True, gpus=training_gpus),
        "train_emotion": TaskPolicy("4", "16Gi", retries=1, caching=True, gpus=training_gpus),
        "evaluate": TaskPolicy("2", "8Gi", retries=1, caching=False),
        "register": TaskPolicy("1", "2Gi", retries=0, caching=False),
    }


def build_pipeline(training_gpus: int = 0):
    """The pipeline function, its training tasks asking for `training_gpus` GPUs each."""
    policies = task_policies(training_gpus)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train, evaluate, gate and publish the keypoint and emotion models.",
    )
    def emotion_ai_pipeline(
        tracking_uri: str,
        model_base_path: str,
        experiment_name: str = DEFAULT_EXPERIMENT,
        artifact_location: str = "",
        parent_run_id: str = "",
        sources: str = DEFAULTS["sources"],
        split: str = DEFAULTS["split"],
        validation: str = DEFAULTS["validation"],
        training: str = DEFAULTS["training"],
        gate: str = DEFAULTS["gate"],
        release: str = DEFAULTS["release"],
        cache_root: str = "",
        checkpoint_root: str = "",
        resume: bool = False,
        trigger: str = "manual",
    ):
        """Each settings parameter is the JSON of its `emotion_ai.settings` class (every field,
        as `emotion-ai run` writes it; a field left out fails the step that reads it). Empty data
        sources mean synthetic data in the Kaggle formats; an empty cache_root turns our
        content-addressed step cache off (KFP's own caching still applies on a cluster); with a
        checkpoint_root, training checkpoints every epoch there and `resume` continues from it."""
        tracking = {
            "tracking_uri": tracking_uri,
            "experiment_name": experiment_name,
            "artifact_location": artifact_location,
        }
        ingested = policies["ingest"].apply(
            ingest(sources=sources, parent_run_id=parent_run_id, trigger=trigger, **tracking)
        )
        run = {**tracking, "parent_run_id": ingested.outputs["Output"]}
        validated = policies["validate"].apply(
            validate(
                keypoints_raw=ingested.outputs["keypoints_raw"],
                fer_raw=ingested.outputs["fer_raw"],
                split=split,
                validation=validation,
                cache_root=cache_root,
                **run,
            )
        )
        control = {
            "training": training,
            "cache_root": cache_root,
            "checkpoint_root": checkpoint_root,
            "resume": resume,
            **run,
        }
        keypoints = policies["train_keypoints"].apply(
            train_keypoints(data=validated.outputs["keypoints_data"], **control)
        )
        emotion = policies["train_emotion"].apply(
            train_emotion(data=validated.outputs["emotion_data"], **control)
        )
        evaluated = policies["evaluate"].apply(
            evaluate(
                keypoints_data=validated.outputs["keypoints_data"],
                emotion_data=validated.outputs["emotion_data"],
                keypoint_model=keypoints.outputs["model"],
                emotion_model=emotion.outputs["model"],
                gate=gate,
                **run,
            )
        )
        policies["register"].apply(
            register(
                keypoint_model=keypoints.outputs["model"],
                emotion_model=emotion.outputs["model"],
                report=evaluated.outputs["report"],
                model_base_path=model_base_path,
                release=release,
                **run,
            )
        )

    return emotion_ai_pipeline


emotion_ai_pipeline = build_pipeline()
