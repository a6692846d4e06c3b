"""emotion-ai: train, track, gate and serve face keypoint and emotion models."""

__version__ = "0.1.0"
