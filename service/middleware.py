"""ASGI middleware of the gateway: request metrics, body size limit and I/O timeouts.

- Every answer counts in ``accelir_http_requests_total{route,method,status}`` and
  ``accelir_http_request_duration_seconds{route,method}`` — ``route`` is the matched route
  template (``/v1/jobs/{job_id}``), or ``unmatched``; never a raw path.
- Request bodies are counted as they stream in: a declared ``Content-Length`` over the limit is
  refused before reading, and a body that grows past it is cut off at that point — 413 either
  way, without buffering the rest. Bytes received on uploads feed ``accelir_upload_bytes_total``.
- Each read of the body must arrive within ``body_read_timeout_s`` (408 otherwise) and each write
  of the response within ``send_timeout_s`` (the connection is dropped otherwise).
- ``precheck`` refuses an upload before its body is read (missing or unknown API key, a content
  type other than multipart/form-data), so an anonymous client cannot make the gateway parse
  megabytes; the route's own dependencies check again.
- Refusals by reason (``accelir_requests_rejected_total``) are counted here from
  ``request.state.reject_reason``, which the problem handlers set.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import GatewayMetrics
from service.problems import PROBLEM_MEDIA_TYPE, TITLES, TYPE_PREFIX

UPLOAD_PATH = "/v1/images"
SMALL_BODY_LIMIT = 64 * 1024  # JSON bodies of the other routes


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "the request body exceeds the upload limit")


class BodyTimeout(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, "the request body was not received in time")


Refusal = tuple[int, str, str, dict[str, str], str]  # status, kind, detail, headers, reason
Precheck = Callable[[Scope], Refusal | None]
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _problem(
    status: int, kind: str, detail: str, path: str, headers: dict[str, str]
) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "type": TYPE_PREFIX + kind,
            "title": TITLES[kind],
            "status": status,
            "detail": detail,
            "instance": path,
        }
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics,
        max_upload_bytes: int,
        body_read_timeout_s: float,
        send_timeout_s: float = 30.0,
        precheck: Precheck | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_upload_bytes = max_upload_bytes
        self.read_timeout = body_read_timeout_s
        self.send_timeout = send_timeout_s
        self.precheck = precheck

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope["accelir.t0"] = t0
        method, path = scope["method"], scope["path"]
        method = method if method in _METHODS else "other"
        is_upload = method == "POST" and path == UPLOAD_PATH
        limit = self.max_upload_bytes if is_upload else SMALL_BODY_LIMIT
        status: dict[str, Any] = {"code": 500, "started": False, "refusal": None}
        received = 0

        declared = dict(scope.get("headers", [])).get(b"content-length")
        if is_upload and self.precheck is not None:
            status["refusal"] = self.precheck(scope)
        if (
            not status["refusal"]
            and declared is not None
            and declared.isdigit()
            and int(declared) > limit
        ):
            detail = f"the request body of {int(declared)} bytes exceeds the limit of {limit} bytes"
            status["refusal"] = (413, "payload-too-large", detail, {}, "too_large")

        async def limited_receive() -> Message:
            nonlocal received
            if status["refusal"]:
                raise BodyTooLarge()
            try:
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                status["refusal"] = (
                    408,
                    "request-timeout",
                    "the request body was not received in time",
                    {},
                    "bad_input",
                )
                raise BodyTimeout() from None
            if message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                received += chunk
                if is_upload:
                    self.metrics.upload_bytes.inc(chunk)
                if received > limit:
                    detail = f"the request body exceeds the limit of {limit} bytes"
                    status["refusal"] = (413, "payload-too-large", detail, {}, "too_large")
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if status["refusal"] and not status["started"]:
                    return  # replaced below by the refusal
                status["started"] = True
                status["code"] = message["status"]
            elif status["refusal"] and not status["started"]:
                return
            async with asyncio.timeout(self.send_timeout):
                await send(message)

        try:
            if not status["refusal"]:
                await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not status["refusal"] or status["started"]:
                self._observe(scope, method, 500, t0, is_upload)
                raise
        if status["refusal"] and not status["started"]:
            code, kind, detail, headers, reason = status["refusal"]
            status["code"] = code
            scope.setdefault("state", {})["reject_reason"] = reason
            for message in _problem(code, kind, detail, path, headers):
                await send(message)
        self._observe(scope, method, status["code"], t0, is_upload)

    def _observe(self, scope: Scope, method: str, code: int, t0: float, is_upload: bool) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or (UPLOAD_PATH if is_upload else "unmatched")
        self.metrics.http_requests.labels(template, method, str(code)).inc()
        self.metrics.http_duration.labels(template, method).observe(time.perf_counter() - t0)
        reason = (scope.get("state") or {}).get("reject_reason")
        if reason:
            self.metrics.rejected.labels(reason).inc()
