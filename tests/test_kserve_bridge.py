"""What `emotion_ai.serving.kserve_bridge` relies on in KServe's internals: this fails loudly when a
KServe upgrade changes any of it."""

import inspect

from fastapi import FastAPI

from emotion_ai.serving.kserve_bridge import (
    AnsweringInferenceServicer,
    InferenceServicer,
    LoopbackModelServer,
    QuietRESTServer,
    RESTServer,
    kserve,
    kserve_app,
)


def test_kserve_still_has_the_internals_the_bridge_uses():
    assert isinstance(kserve_app, FastAPI)
    assert callable(getattr(kserve.ModelServer, "register_model", None))
    assert callable(getattr(RESTServer, "_add_middlewares", None))
    assert callable(getattr(RESTServer, "_add_exception_handlers", None))
    assert hasattr(kserve.Model("any"), "enable_latency_logging")
    for method in ("ModelInfer", "ModelMetadata", "ModelReady"):
        assert getattr(AnsweringInferenceServicer, method) is not getattr(InferenceServicer, method)
    parameters = list(inspect.signature(RESTServer.__init__).parameters)
    assert parameters[1:5] == ["app", "data_plane", "model_repository_extension", "http_port"]
    assert {"grace_period", "timeout_keep_alive"} <= set(parameters)


def test_the_server_binds_loopback_and_builds_a_quiet_rest_server():
    server = LoopbackModelServer("127.0.0.1", 18501)
    for attribute in (
        "dataplane",
        "model_repository_extension",
        "registered_models",
        "grace_period",
        "timeout_keep_alive",
        "http_port",
    ):
        assert hasattr(server, attribute), attribute
    added = []

    class Ready(kserve.Model):
        def __init__(self):
            super().__init__("ready")
            self.ready = True

    class Waiting(kserve.Model):
        """A model with no version yet: registered all the same, so that it can say so."""

    assert hasattr(server, "enable_latency_logging")
    rest = server.rest_server(
        [Ready(), Waiting("waiting")],
        lambda app, repository: added.append(repository),
        lambda app, _: app,
    )
    assert isinstance(rest, QuietRESTServer) and rest.config.host == "127.0.0.1"
    assert not any(model.enable_latency_logging for model in added[0].get_models().values())
    assert added and added[0].get_model("ready") is not None
    assert added[0].get_model("waiting") is not None and not added[0].get_model("waiting").ready
    middleware_names = [middleware.cls.__name__ for middleware in kserve_app.user_middleware]
    assert not any("Timing" in name for name in middleware_names), middleware_names
    rest.create_application()  # what start() does first: KServe's routes and error handlers
    handlers = kserve_app.exception_handlers
    kserve_kinds = [
        kind for kind in handlers if getattr(kind, "__module__", "").startswith("kserve")
    ]
    assert kserve_kinds and all(handlers[kind].__name__ == "_error_answer" for kind in kserve_kinds)
    assert handlers[Exception].__name__ == "_error_answer"
