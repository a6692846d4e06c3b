"""A small client for the TF Serving REST API, as a user of TensorFlow Serving would write it."""

from __future__ import annotations

import numpy as np
import requests

from emotion_ai.faces import EMOTIONS

DEFAULT_URL = "http://127.0.0.1:8501"
TIMEOUT_S = 30


def predict(faces: np.ndarray, model: str = "emotion-ai", url: str = DEFAULT_URL) -> list:
    """POSTs `{"instances": faces}` to `/v1/models/<model>:predict`; returns the predictions."""
    response = requests.post(
        f"{url}/v1/models/{model}:predict",
        json={"instances": np.asarray(faces).tolist()},
        timeout=TIMEOUT_S,
    )
    if not response.ok:
        raise RuntimeError(f"{model}: HTTP {response.status_code}: {response.text}")
    return response.json()["predictions"]


def emotion_labels(faces: np.ndarray, url: str = DEFAULT_URL) -> list[str]:
    """The most likely emotion of each face, by argmax over the emotion model's probabilities."""
    probabilities = np.array(predict(faces, "emotion-ai-emotion", url))
    return [EMOTIONS[i] for i in probabilities.argmax(axis=1)]
