"""``Annotated`` dependencies of the routes: settings, clients, auth, signed reads, rate limits.

- ``ClientDep`` — a valid ``Authorization: Bearer <key>`` (constant-time comparison against every
  configured key; 401 otherwise). The key itself is never stored or logged: the client is known
  by a short hash of it.
- ``ReadAccessDep`` — for container, manifest and blocks: a valid key, or a valid signature
  (``?expires=&sig=`` over the path; 403 when bad or expired), or nothing at all when the
  development setting ``ACCELIR_ALLOW_UNSIGNED_READS`` is on.
- ``RateLimitedClientDep`` — a client under its request rate (429 with Retry-After otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service import store
from service.blobs import BlobStore
from service.catalog import ModelCatalog
from service.metrics import GatewayMetrics
from service.problems import ProblemError
from service.settings import Settings
from service.signing import Verdict, verify

bearer = HTTPBearer(auto_error=False, description="An API key from ACCELIR_API_KEYS")


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _redis(request: Request) -> Any:
    return request.app.state.redis


async def _blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


async def _metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


async def _catalog(request: Request) -> ModelCatalog:
    return request.app.state.catalog


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[Any, Depends(_redis)]
BlobsDep = Annotated[BlobStore, Depends(_blobs)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
CatalogDep = Annotated[ModelCatalog, Depends(_catalog)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Client:
    """An authenticated API client, known by a hash of its key."""

    id: str


def _match_key(settings: Settings, presented: str) -> Client | None:
    found = False
    candidate = presented.encode()
    for key in settings.api_keys:  # no early exit: timing does not reveal which key matched
        found |= hmac.compare_digest(candidate, key.get_secret_value().encode())
    if not found:
        return None
    return Client(hashlib.sha256(candidate).hexdigest()[:16])


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}, reason="auth"
    )


async def require_client(settings: SettingsDep, credentials: BearerDep) -> Client:
    if credentials is None:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    client = _match_key(settings, credentials.credentials)
    if client is None:
        raise _unauthorized("unknown API key")
    return client


ClientDep = Annotated[Client, Depends(require_client)]


async def rate_limited_client(client: ClientDep, settings: SettingsDep, redis: RedisDep) -> Client:
    retry_after = await store.hit_rate_limit(
        redis, client.id, settings.rate_limit_requests, settings.rate_limit_window_s
    )
    if retry_after:
        raise ProblemError(
            429,
            "rate-limited",
            f"more than {settings.rate_limit_requests} requests in {settings.rate_limit_window_s} s",
            headers={"Retry-After": str(retry_after)},
            reason="rate_limit",
        )
    return client


RateLimitedClientDep = Annotated[Client, Depends(rate_limited_client)]


async def read_access(
    request: Request,
    settings: SettingsDep,
    credentials: BearerDep,
    expires: Annotated[
        str | None,
        Query(description="Signed URLs: expiry (Unix seconds)"),
    ] = None,
    sig: Annotated[
        str | None,
        Query(description="Signed URLs: base64url HMAC-SHA256 of salt, path and expiry"),
    ] = None,
) -> None:
    if credentials is not None:
        if _match_key(settings, credentials.credentials) is None:
            raise _unauthorized("unknown API key")
        return
    if expires is not None or sig is not None:
        verdict = verify(request.url.path, expires, sig, settings.signing_pairs)
        if verdict is Verdict.VALID:
            return
        detail = "the signed URL has expired" if verdict is Verdict.EXPIRED else "invalid signature"
        raise ProblemError(403, "bad-signature", detail, reason="signature")
    if settings.allow_unsigned_reads:
        return
    raise _unauthorized("an API key or a signed URL (?expires=&sig=) is required")


ReadAccessDep = Annotated[None, Depends(read_access)]
