"""Monitoring: sampled served requests, drift against the reference profile, and retraining triggers
(new data, drift, a schedule) with their launchers.

May import: `emotion_ai.data`, `emotion_ai.steps.tracking` and the shared modules. Never modeling,
serving, the CLI, or the top-level `pipelines` and `components` (a KFP launcher is handed in).
"""
