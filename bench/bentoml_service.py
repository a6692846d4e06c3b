"""The BentoML peer of `bench/serve.py`: the same exported SavedModel (`SAVED_MODEL_DIR`) behind
BentoML's adaptive batching, answering the same `{"instances": [face]}` body at `POST /predict`.

Run by bench/serve.py in a virtual environment of its own (BentoML's pins differ from ours):
`bentoml serve bentoml_service:EmotionModel`.
"""

import os

import bentoml
import numpy as np
import tensorflow as tf


@bentoml.service(workers=1, traffic={"timeout": 60})
class EmotionModel:
    def __init__(self) -> None:
        self.saved_model = tf.saved_model.load(os.environ["SAVED_MODEL_DIR"])

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        faces = tf.constant(np.asarray(instances, np.float32).reshape(-1, 96, 96, 1))
        return self.saved_model.serve(faces).numpy()
