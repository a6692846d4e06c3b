"""The server's Prometheus metrics, served on /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from emotion_ai.serving.errors import status_of

PROTOCOLS = ("rest", "grpc", "v2-rest", "v2-grpc")
"""TF Serving's REST and gRPC APIs, KServe's V2 over HTTP and gRPC."""
PREDICT_REQUESTS = Counter(
    "emotion_ai_predict_requests",
    "Predict requests by model, protocol and status (HTTP's, or the HTTP equivalent of the gRPC "
    "code)",
    ["model", "code", "protocol"],
)
PREDICT_SECONDS = Histogram(
    "emotion_ai_predict_seconds",
    "Predict request latency by model and protocol",
    ["model", "protocol"],
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


def count_predict(model: str, protocol: str, status: int, seconds: float) -> None:
    """Counts one predict request of `protocol` (one of PROTOCOLS) and its latency."""
    PREDICT_REQUESTS.labels(model, str(status), protocol).inc()
    PREDICT_SECONDS.labels(model, protocol).observe(seconds)


@contextmanager
def counted_predict(model: str, protocol: str) -> Iterator[None]:
    """Counts the predict request the block answers, with the status its error (if any) gets."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        count_predict(model, protocol, status_of(error).http, time.perf_counter() - started)
        raise
    count_predict(model, protocol, 200, time.perf_counter() - started)
