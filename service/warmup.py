"""Warm-up at start, before the gateway takes traffic: the first requests of a cold process would
otherwise pay for lazy imports (Pillow's format plugins), the Redis connection pool growing under
the first burst, and a NOSCRIPT round trip per Lua script.

``warm_decoders()`` decodes one tiny image of each accepted format (in a worker thread, as
uploads are); ``warm_redis(redis, connections)`` loads the Lua scripts into Redis and opens
``connections`` pooled connections.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import anyio
from PIL import Image

from service import images, store

_PIL_SAVE = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def _decode_each_format() -> None:
    for fmt in _PIL_SAVE.values():
        buffer = io.BytesIO()
        Image.new("RGB", (2, 2), (128, 64, 32)).save(buffer, fmt)
        images.decode(buffer.getvalue(), max_pixels=4, max_side=2)


async def warm_redis(redis: Any, connections: int) -> None:
    """Load the Lua scripts and open ``connections`` pooled connections concurrently."""
    await store.load_scripts(redis)
    await asyncio.gather(*(redis.ping() for _ in range(connections)))


async def warm_decoders() -> None:
    """Decode a 2×2 image of every accepted format through the upload path."""
    await anyio.to_thread.run_sync(_decode_each_format)
