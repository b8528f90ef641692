"""RFC 9457 problem details: the one error body of the API, its exception, and its handlers.

Every 4xx/5xx answer is ``application/problem+json`` with ``type`` (``urn:accelir:problem:<kind>``,
listed in docs/service.md), ``title``, ``status``, ``detail`` and ``instance`` (the request path).
Unexpected exceptions become a plain 500 problem: the traceback goes to the log, never to the
client. ``problem_responses`` documents the errors a route can answer in OpenAPI.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("accelir.service")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:accelir:problem:"

TITLES: dict[str, str] = {
    "unauthorized": "Missing or invalid API key",
    "bad-signature": "Invalid or expired signature",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "not-acceptable": "Not acceptable",
    "not-ready": "The job has not produced this yet",
    "idempotency-in-progress": "A request with this Idempotency-Key is still being processed",
    "idempotency-mismatch": "Idempotency-Key reused with a different request",
    "request-timeout": "Request timeout",
    "payload-too-large": "Upload too large",
    "unsupported-media-type": "Unsupported media type",
    "range-not-satisfiable": "Range not satisfiable",
    "invalid-request": "Invalid request",
    "invalid-image": "Invalid image",
    "invalid-container": "Invalid container",
    "too-many-pixels": "Image too large",
    "rate-limited": "Too many requests",
    "backlog-full": "Queue full",
    "internal-error": "Internal server error",
    "service-unavailable": "Service unavailable",
    "timeout": "Processing timed out",
}
_STATUS_KINDS = {
    400: "invalid-request",
    401: "unauthorized",
    403: "bad-signature",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    408: "request-timeout",
    413: "payload-too-large",
    415: "unsupported-media-type",
    416: "range-not-satisfiable",
    422: "invalid-request",
    429: "rate-limited",
    503: "service-unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[TYPE_PREFIX + "payload-too-large"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str


class ProblemError(Exception):
    """Raised anywhere in the gateway to answer with a problem (``reason`` feeds the
    ``accelir_requests_rejected_total`` counter)."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.headers = headers or {}
        self.reason = reason
        self.extra = extra or {}


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = {
        "type": TYPE_PREFIX + kind,
        "title": TITLES.get(kind, kind),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _note_reason(request: Request, reason: str | None) -> None:
    if reason:
        request.state.reject_reason = reason


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    _note_reason(request, exc.reason)
    return problem_response(request, exc.status, exc.kind, exc.detail, exc.headers, exc.extra)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _STATUS_KINDS.get(
        exc.status_code, "internal-error" if exc.status_code >= 500 else "invalid-request"
    )
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(kind, "error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route for {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(request, exc.status_code, kind, detail, dict(exc.headers or {}))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _note_reason(request, "bad_input")
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem_response(
        request, 422, "invalid-request", f"invalid request: {summary}", extra={"errors": errors}
    )


async def _on_redis(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        503,
        "service-unavailable",
        "the job store is unavailable, try again",
        {"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, 500, "internal-error", "an internal error occurred")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(RedisError, _on_redis)
    app.add_exception_handler(Exception, _on_unexpected)


_DESCRIPTIONS = {
    304: "Not modified (If-None-Match matched the ETag)",
    400: "Malformed request",
    401: "Missing or unknown API key",
    403: "Invalid or expired URL signature",
    404: "No such job, image or restoration",
    406: "No acceptable representation",
    408: "The request body was not received in time",
    409: "Not ready yet, or an Idempotency-Key request is still in progress",
    413: "Upload larger than the limit",
    415: "Unsupported media type (only JPEG, PNG, WebP uploads; multipart/form-data)",
    416: "Range not satisfiable",
    422: "Invalid parameters, image or container",
    429: "Rate limit or queue backlog exceeded (see Retry-After)",
    500: "Internal error (no details are disclosed)",
    503: "The job store is unavailable",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for error codes, all with the problem schema (the schema
    itself is added to the components by ``service.app``)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 400, 500, 503}):
        if code == 304:
            out[code] = {"description": _DESCRIPTIONS[code]}
            continue
        out[code] = {
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out
