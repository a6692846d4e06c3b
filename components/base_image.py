"""The container image every component runs in on a cluster (EMOTION_AI_IMAGE overrides it)."""

import os

BASE_IMAGE = os.environ.get("EMOTION_AI_IMAGE", "emotion-ai:0.1.0")
