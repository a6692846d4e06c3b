"""What each serving error is called on every protocol: one table from our (and KServe's) exceptions
to an HTTP status and a gRPC code, used by TF Serving's REST and gRPC APIs and by KServe's V2 routes
and V2 gRPC service alike. Clients get the error's own words; the log gets one line per error, the
trace only for the unexpected (a 500)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from kserve.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)

logger = logging.getLogger(__name__)
Answer = TypeVar("Answer")


class RequestTooLarge(InvalidInput):
    """A request over one of the server's limits."""


class NotServed(ModelNotFound):
    """A model, version or label that is not served."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoVersionYet(ModelNotReady):
    """A model that has no loadable version yet (see `SavedModelServable.missing_message`)."""

    def __init__(self, message: str) -> None:
        super().__init__("")
        self.message = message

    def __str__(self) -> str:
        return self.message


class RestOnly(NotImplementedError):
    """A model asked for over gRPC that answers TF Serving's REST predict only."""


def not_found_message(name: str, version: str | None = None, label: str | None = None) -> str:
    """TF Serving's words for a model, version or label that is not served."""
    wanted = (
        f"Specific({name}, {version})"
        if version
        else f"Labelled({name}, {label})"
        if label
        else f"Latest({name})"
    )
    return f"Servable not found for request: {wanted}"


def unserved(model, name: str, version: str | None, label: str | None) -> Exception:
    """The error for a request whose model or version is not served: for a model that has no
    version yet, how to give it one (503), else TF Serving's words (404)."""
    if model is not None and not model.ready:
        return NoVersionYet(model.missing_message())
    return NotServed(not_found_message(name, version, label))


@dataclass(frozen=True)
class Status:
    http: int
    grpc: grpc.StatusCode


STATUSES: tuple[tuple[type[BaseException], Status], ...] = (
    (RequestTooLarge, Status(413, grpc.StatusCode.RESOURCE_EXHAUSTED)),
    (InvalidInput, Status(400, grpc.StatusCode.INVALID_ARGUMENT)),
    (ModelNotFound, Status(404, grpc.StatusCode.NOT_FOUND)),
    (ModelNotReady, Status(503, grpc.StatusCode.UNAVAILABLE)),
    (ServerNotReady, Status(503, grpc.StatusCode.UNAVAILABLE)),
    (ServerNotLive, Status(503, grpc.StatusCode.UNAVAILABLE)),
    (TimeoutError, Status(408, grpc.StatusCode.DEADLINE_EXCEEDED)),
    (NotImplementedError, Status(501, grpc.StatusCode.UNIMPLEMENTED)),
    (UnsupportedProtocol, Status(501, grpc.StatusCode.UNIMPLEMENTED)),
)
"""The first entry whose exception type matches wins (a RequestTooLarge is an InvalidInput too)."""
UNEXPECTED = Status(500, grpc.StatusCode.INTERNAL)


def status_of(error: BaseException) -> Status:
    """The HTTP status and gRPC code of `error`."""
    return next((status for kind, status in STATUSES if isinstance(error, kind)), UNEXPECTED)


def message_of(error: BaseException) -> str:
    """What the client is told: the error's words, and its type only when it was unexpected."""
    if status_of(error) is UNEXPECTED:
        return f"{type(error).__name__}: {error}"
    return str(error)


def logged(error: BaseException, where: str) -> Status:
    """Logs `error` as one line (with its trace when unexpected) and returns its status."""
    status = status_of(error)
    if status is UNEXPECTED:
        logger.error("%s failed", where, exc_info=error)
    else:
        logger.info("%s: %s %s", where, status.http, message_of(error))
    return status


async def answered(
    context: grpc.aio.ServicerContext, where: str, work: Awaitable[Answer]
) -> Answer:
    """`work`'s answer to a gRPC call; an error aborts the call with its code and words (logged as
    one line)."""
    try:
        return await work
    except Exception as error:  # noqa: BLE001 - every error gets its code, the unexpected INTERNAL
        status = logged(error, where)
        await context.abort(status.grpc, message_of(error))
