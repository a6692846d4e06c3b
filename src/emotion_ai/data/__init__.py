"""Data: the Kaggle formats and their compiled pixel parser, image folders, fetching sources,
synthetic faces, Great Expectations validation, the compact split data sets and their profiles.

May import: `emotion_ai.faces`, `emotion_ai.settings`, `emotion_ai.storage`. Never TensorFlow, Keras
or MLflow, so data steps start fast and run anywhere (checked by import-linter in CI).
"""
