"""Release: the promotion gate, the MLflow registry and its aliases, model cards, TF Serving's
versioned model repository, and publishing a champion (registry and served layout together).

May import: `emotion_ai.modeling` (to load and export Keras models) and the shared modules. Never
serving, monitoring, steps or the CLI.
"""
