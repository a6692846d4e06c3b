"""Every tie to KServe's internals, in one place: `tests/test_kserve_bridge.py` fails loudly when a
KServe upgrade changes what this module relies on.

What it relies on beyond KServe's public API:
- `kserve` parses `sys.argv` when imported, so it is imported with our command line hidden;
- `kserve.model_server.app`, the module-level FastAPI app its REST server serves;
- `RESTServer._add_middlewares`, overridden to leave out KServe's per-request timing, and
  `RESTServer._add_exception_handlers`, overridden to answer with `errors.STATUSES` and log one
  line (KServe's handlers log a trace for every refused request);
- `Model.enable_latency_logging`, set off (KServe logs three `kserve.trace` lines per request);
- `ModelServer.register_model` (what KServe's own
  `_register_and_check_atleast_one_model_is_ready` does, for every model, ready or not; not
  `Model.start`, which would mark a model waiting for its first version ready), and the
  server's `dataplane`, `model_repository_extension`, `grace_period` and `timeout_keep_alive` handed
  to `RESTServer`;
- `RESTServer.config.host`, set after construction (KServe binds 0.0.0.0);
- `kserve.protocol.grpc.servicer.InferenceServicer`, KServe's V2 gRPC service, added to our own gRPC
  server (KServe's binds [::] and serves nothing else), its model calls' errors given their codes
  (KServe lets them out as UNKNOWN).
"""

from __future__ import annotations

import sys

from fastapi import Request
from fastapi.responses import JSONResponse

from emotion_ai.serving.errors import STATUSES, answered, logged, message_of


def _import_kserve():
    """Imports kserve with our own command line hidden (kserve parses sys.argv on import)."""
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        from kserve.model_server import app
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
        from kserve.protocol.grpc.servicer import InferenceServicer
        from kserve.protocol.infer_type import InferRequest, InferResponse
        from kserve.protocol.rest.server import RESTServer
    finally:
        sys.argv = saved
    return (
        kserve,
        app,
        RESTServer,
        InferRequest,
        InferResponse,
        InferenceServicer,
        grpc_predict_v2_pb2_grpc,
    )


(
    kserve,
    kserve_app,
    RESTServer,
    InferRequest,
    InferResponse,
    InferenceServicer,
    grpc_predict_v2_pb2_grpc,
) = _import_kserve()
Model = kserve.Model
"""The base class of every servable."""


class QuietRESTServer(RESTServer):
    """KServe's REST server without its per-request timing middleware, which logs three lines and
    makes four `getrusage` calls (each walks all of TensorFlow's threads) per request: a fifth of
    the server's time under load (predict latency is on /metrics, `emotion_ai_predict_seconds`);
    and with one handler for every error, which answers with the status `errors.STATUSES` gives it
    and logs one line."""

    def _add_middlewares(self, app) -> None:
        """None (KServe adds only its timing here, and the access-log format we never set)."""

    def _add_exception_handlers(self, app) -> None:
        """One handler for each error type the table knows (Starlette hands a handler of
        `Exception` itself the unexpected errors only, and logs their trace besides)."""
        for kind in (*(kind for kind, _ in STATUSES), Exception):
            app.add_exception_handler(kind, _error_answer)


async def _error_answer(request: Request, error: Exception) -> JSONResponse:
    status = logged(error, f"{request.method} {request.url.path}")
    return JSONResponse({"error": message_of(error)}, status.http)


class LoopbackModelServer(kserve.ModelServer):
    """KServe's ModelServer, REST only, bound to a chosen address (KServe binds 0.0.0.0)."""

    def __init__(self, host: str, http_port: int) -> None:
        super().__init__(http_port=http_port, enable_grpc=False, workers=1)
        self.host = host

    def rest_server(self, models: list[Model], add_routes, wrap_app) -> QuietRESTServer:
        """Registers `models`, ready or not (KServe registers only ready ones, and refuses to start
        with none: a model waiting for its first version must still answer that it waits), calls
        `add_routes(app, repository)` ahead of KServe's own routes, and returns the REST server of
        `wrap_app(app, repository)`, the outermost ASGI app."""
        for model in models:
            self.register_model(model)
            model.enable_latency_logging = False
        add_routes(kserve_app, self.registered_models)
        server = QuietRESTServer(
            wrap_app(kserve_app, self.registered_models),
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            grace_period=self.grace_period,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        server.config.host = self.host
        return server


class AnsweringInferenceServicer(InferenceServicer):
    """KServe's V2 gRPC service, each model call's errors given their gRPC codes."""

    async def ModelInfer(self, request, context):
        work = super().ModelInfer(request, context)
        return await answered(context, f"V2 gRPC infer on {request.model_name}", work)

    async def ModelMetadata(self, request, context):
        work = super().ModelMetadata(request, context)
        return await answered(context, f"V2 gRPC metadata of {request.name}", work)

    async def ModelReady(self, request, context):
        work = super().ModelReady(request, context)
        return await answered(context, f"V2 gRPC ready of {request.name}", work)


def add_open_inference_service(model_server: kserve.ModelServer, grpc_server) -> None:
    """Adds KServe's V2 gRPC service for `model_server`'s models to a gRPC server."""
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        AnsweringInferenceServicer(model_server.dataplane, model_server.model_repository_extension),
        grpc_server,
    )
