"""emotion-ai: train, track, gate and serve face keypoint and emotion models.

Stage packages: `data`, `modeling`, `release`, `serving`, `monitoring`, `steps`, `cli`. Shared by
all and importing none of them: `faces` (what a face is), `settings` (every default, once),
`storage` (atomic local writes), `locations` (one object per URI scheme), `logs`, and
`tensorflow_startup`, which every process runs on import so that TensorFlow's import keeps its C++
start-up notices off the console and its objects out of the garbage collector's walks. The import
rules are import-linter contracts in pyproject.toml.
"""

from emotion_ai.tensorflow_startup import prepare_tensorflow_import

prepare_tensorflow_import()
