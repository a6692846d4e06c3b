"""Release: the promotion gate, the MLflow registry and its aliases, model cards, TF Serving's
versioned model repository with each export's warm-up requests (`warmup`), the pre-promotion
infrastructure check (`infra_check`, which runs serving's side in a process of its own), and
publishing a champion (registry and served layout together).

May import: `emotion_ai.modeling` (to load and export Keras models) and the shared modules. Never
serving, monitoring, steps or the CLI (the infrastructure check starts serving's code as a separate
process, by module name).
"""
