"""Conditional and range requests for immutable, content-addressed representations.

``immutable_response`` answers a GET for bytes whose strong ETag is their digest: 304 when
``If-None-Match`` matches, 206 with ``Content-Range`` for one satisfiable byte range (only when
``If-Range``, if present, equals the ETag), 416 with ``Content-Range: bytes */N`` when no byte of
the range exists, else 200. Several ranges in one header get the whole representation (allowed
by RFC 9110 §14.2) and malformed ``Range`` headers are ignored, as the RFC says.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

from service.problems import ProblemError

CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def strong_etag(digest: str) -> str:
    return f'"{digest}"'


def _etag_listed(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"."""
    if header.strip() == "*":
        return True
    tags = [t.strip() for t in header.split(",")]
    return any(t.removeprefix("W/") == etag for t in tags)


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end inclusive); None to ignore the header; False when unsatisfiable."""
    header = header.strip().replace(" ", "")
    if "," in header:
        return None
    match = _RANGE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        return False
    return start, end


def immutable_response(request: Request, data: bytes, digest: str, media_type: str) -> Response:
    etag = strong_etag(digest)
    headers = {"ETag": etag, "Cache-Control": CACHE_IMMUTABLE, "Accept-Ranges": "bytes"}
    inm = request.headers.get("if-none-match")
    if inm is not None and _etag_listed(inm, etag):
        return Response(status_code=304, headers=headers)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header and (if_range is None or if_range.strip() == etag):
        parsed = parse_range(range_header, len(data))
        if parsed is False:
            raise ProblemError(
                416,
                "range-not-satisfiable",
                f"the representation has {len(data)} bytes; no byte of {range_header!r} exists",
                headers={"Content-Range": f"bytes */{len(data)}", **headers},
                reason="bad_input",
            )
        if isinstance(parsed, tuple):
            start, end = parsed
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(
                data[start : end + 1], status_code=206, headers=headers, media_type=media_type
            )
    return Response(data, status_code=200, headers=headers, media_type=media_type)
