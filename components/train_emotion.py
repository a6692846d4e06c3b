"""KFP component: train the emotion model."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_emotion(data: Input[Dataset], tracking_uri: str, experiment_name: str, artifact_location: str,
                parent_run_id: str, epochs: int, batch_size: int, learning_rate: float, seed: int,
                width: int, depth: int, cache_root: str, checkpoint_root: str, resume: bool,
                model: Output[Model]):
    from pathlib import Path

    from emotion_ai import model_steps
    from emotion_ai.config import TrainSettings
    from emotion_ai.model_steps import TrainControl
    from emotion_ai.tracking import TrackingSettings

    settings = TrainSettings.scaled(epochs, batch_size, learning_rate, seed, width, depth)
    model_steps.train_emotion(Path(data.path), Path(model.path), settings,
                      TrackingSettings(tracking_uri, experiment_name, artifact_location), parent_run_id,
                      TrainControl(cache_root, checkpoint_root, resume))
