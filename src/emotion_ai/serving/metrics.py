"""The server's Prometheus metrics, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICT_REQUESTS = Counter(
    "emotion_ai_predict_requests", "Predict requests by model and HTTP status", ["model", "code"]
)
PREDICT_SECONDS = Histogram(
    "emotion_ai_predict_seconds", "Predict request latency by model", ["model"]
)
LAST_REFRESH = Gauge(
    "emotion_ai_last_refresh_timestamp_seconds",
    "When each model last looked at its versions without an error (Unix time)",
    ["model"],
)
SERVED_VERSION = Gauge(
    "emotion_ai_served_version", "Version each model serves by default", ["model"]
)
BATCH_SIZES = Histogram(
    "emotion_ai_batch_size",
    "Faces per model call (server-side batching)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
