"""The small networks tests train and serve: one place, so a test file never restates a size."""

from emotion_ai.settings import ResNetConfig

TINY = ResNetConfig(width=16, stages=1, depth=0)
"""One stage of 16 filters and no identity block: the cheapest network that trains and exports."""
SMALL = ResNetConfig(width=16, stages=2, depth=1)
"""Two stages with an identity block each: every kind of residual block is in it."""

TINY_RUN = [
    "--synthetic-rows=120",
    "--epochs=1",
    f"--width={TINY.width}",
    f"--stages={TINY.stages}",
    f"--depth={TINY.depth}",
    "--batch-size=16",
    "--max-keypoint-rmse-px=96",
    "--min-emotion-accuracy=0",
]
"""`emotion-ai run` options of the cheapest whole pipeline (TINY's network), floors off so both
models register."""
