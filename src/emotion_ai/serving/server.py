"""The model server's lifecycle: load the servables, serve them over REST (and gRPC when asked), and
follow the layout (and, when asked, the registry's champion) while serving.

TF Serving's predict requests are answered by `PredictLane`, the outermost ASGI app, before
FastAPI's middleware; KServe's V2 routes pass `OpenInferenceLane` first. The event loop is uvloop's.
Uvicorn's access log (one line per request) is off unless asked for, as in TF Serving; /metrics
counts predict requests by model, protocol and status.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import grpc
import uvloop

from emotion_ai.monitoring.request_log import RequestSampler
from emotion_ai.serving.catalog import load_servables, versioned_parts
from emotion_ai.serving.grpc_api import grpc_server
from emotion_ai.serving.kserve_bridge import LoopbackModelServer
from emotion_ai.serving.rest import PredictLane, register_tf_serving_endpoints
from emotion_ai.serving.servables import SavedModelServable
from emotion_ai.serving.v2_lane import OpenInferenceLane
from emotion_ai.settings import RequestLimits, ServingOptions

logger = logging.getLogger(__name__)
DEFAULT_POLL_SECONDS = 2.0
"""How often the server looks for new versions (TF Serving's --file_system_poll_wait_seconds)."""


def outermost_app(app, repository, limits: RequestLimits):
    """TF Serving's predict lane in front of KServe's V2 lane in front of the app."""
    return PredictLane(OpenInferenceLane(app, repository), repository, limits)


def serve_models(
    base_path: str | Path,
    host: str,
    port: int,
    *,
    grpc_port: int | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    model_name: str | None = None,
    options: ServingOptions = ServingOptions(),
    limits: RequestLimits = RequestLimits(),
    sampler: RequestSampler | None = None,
    access_log: bool = False,
    follow: Callable[[str], object] | None = None,
) -> None:
    """Loads the exported versions `options` keep and serves them until interrupted, following
    changes in the layout; `follow(model name)`, when given, is called every poll too (see
    `follow_champion`). `grpc_port`, when given, serves TF Serving's gRPC API and KServe's V2 gRPC
    there."""
    servables = load_servables(base_path, model_name, options, sampler, limits)
    model_server = LoopbackModelServer(host, port)
    rest_server = model_server.rest_server(
        servables, register_tf_serving_endpoints, partial(outermost_app, limits=limits)
    )
    make_rpc_server = (
        partial(grpc_server, host, grpc_port, model_server, limits) if grpc_port else None
    )
    gc.freeze()  # TensorFlow's long-lived objects leave the collector's rounds: no pauses
    if not access_log:
        _silence_access_log()
    uvloop.run(
        _serve_and_watch(
            rest_server, make_rpc_server, versioned_parts(servables), poll_seconds, follow
        )
    )


async def _serve_and_watch(
    rest_server,
    make_rpc_server: Callable[[], grpc.aio.Server] | None,
    servables: list[SavedModelServable],
    poll_seconds: float,
    follow: Callable[[str], object] | None,
) -> None:
    watchers = [asyncio.create_task(watch_versions(servables, poll_seconds))]
    if follow is not None:
        names = [servable.name for servable in servables]
        watchers.append(asyncio.create_task(_follow_registry(follow, names, poll_seconds)))
    rpc_server = make_rpc_server() if make_rpc_server else None  # in the loop it will run on
    if rpc_server is not None:
        await rpc_server.start()
    try:
        await rest_server.start()
    finally:
        for watcher in watchers:
            watcher.cancel()
        if rpc_server is not None:
            await rpc_server.stop(grace=1.0)


MAX_BACKOFF_SECONDS = 60.0
"""The longest wait between two looks at a layout that keeps failing (an S3 outage, say)."""


async def watch_versions(servables: list[SavedModelServable], poll_seconds: float) -> None:
    """Looks at each model's versions every poll; a look that fails is logged and retried after a
    wait that doubles up to `MAX_BACKOFF_SECONDS`, so the watcher never stops following (and never
    floods the log)."""
    wait = poll_seconds
    while True:
        await asyncio.sleep(wait)
        failed = False
        for servable in servables:
            try:
                await asyncio.to_thread(servable.refresh)
            except Exception:  # noqa: BLE001 - any failure is retried; the versions served stay
                failed = True
                logger.exception("could not refresh the versions of %s; retrying", servable.name)
        wait = min(2 * wait, MAX_BACKOFF_SECONDS) if failed else poll_seconds


async def _follow_registry(
    follow: Callable[[str], object], names: list[str], poll_seconds: float
) -> None:
    """Calls `follow` for each model every poll, on its own (a slow registry never delays the
    versions)."""
    while True:
        await asyncio.sleep(poll_seconds)
        for name in names:
            try:
                await asyncio.to_thread(follow, name)
            except Exception as error:  # noqa: BLE001 - the registry may be down; serving goes on
                logger.error("could not follow the champion of %s: %s", name, error)


def _silence_access_log() -> None:
    """No handler for uvicorn's access logger, so uvicorn skips the per-request line altogether."""
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.handlers.clear()
    access_logger.propagate = False
