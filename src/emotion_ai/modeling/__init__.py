"""Modeling: residual blocks, the two networks, the tf.data input pipeline, training, checkpoints,
tuning, test metrics and plots.

May import: `emotion_ai.data` and the shared modules (`faces`, `settings`, `storage`). Never
release, serving, monitoring, steps or the CLI.
"""
