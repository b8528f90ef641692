"""Signed, expiring URLs for edge nodes (the imgproxy model).

A signed URL is ``<path>?expires=<unix seconds>&sig=<base64url>`` where
``sig = base64url(HMAC-SHA256(key, salt ‖ path ‖ "?expires=" ‖ expires))`` without padding.
Keys and salts are hex-encoded in the settings; the first pair signs and every pair verifies, so
a new key can be rolled out before the old one is retired. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from enum import StrEnum


class Verdict(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signature(key: bytes, salt: bytes, path: str, expires: int) -> str:
    message = salt + path.encode() + b"?expires=" + str(expires).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def sign_path(
    path: str, pairs: Sequence[tuple[bytes, bytes]], ttl_s: int, now: float | None = None
) -> str:
    """``path?expires=..&sig=..`` signed with the first (key, salt) pair."""
    if not pairs:
        raise ValueError("no signing key configured (ACCELIR_SIGNING_KEYS / ACCELIR_SIGNING_SALTS)")
    if not path.startswith("/"):
        raise ValueError("sign an absolute path such as /v1/images/<id>/container")
    expires = int((time.time() if now is None else now) + ttl_s)
    key, salt = pairs[0]
    return f"{path}?expires={expires}&sig={signature(key, salt, path, expires)}"


def verify(
    path: str,
    expires: str | None,
    sig: str | None,
    pairs: Sequence[tuple[bytes, bytes]],
    now: float | None = None,
) -> Verdict:
    """Whether ``sig`` signs ``path`` and ``expires`` with any pair, and has not expired."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12 or len(sig) > 64:
        return Verdict.INVALID
    good = False
    for key, salt in pairs:  # every pair is tried: the time taken does not tell which matched
        expected = signature(key, salt, path, int(expires))
        good |= hmac.compare_digest(expected.encode(), sig.encode())
    if not good:
        return Verdict.INVALID
    if int(expires) < (time.time() if now is None else now):
        return Verdict.EXPIRED
    return Verdict.VALID
