"""KFP component: train the emotion model."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.base_image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_emotion(
    data: Input[Dataset],
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str,
    parent_run_id: str,
    training: str,
    cache_root: str,
    checkpoint_root: str,
    resume: bool,
    model: Output[Model],
):
    from components.arguments import train

    train("train_emotion", locals())
