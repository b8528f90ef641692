"""JPEG marker segments, and standalone baseline JPEGs rebuilt from one block's scan data.

Every block of a container becomes a complete JFIF file: SOI, APP0, DQT (the block's quality),
SOF0 (the block's visible size, 3 components), DHT (the container's shared tables), SOS, the block's
entropy-coded segment (byte-stuffed by ``stuff`` where the container stores it unstuffed), EOI.
Any JPEG decoder opens it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from accelir.codec.huffman import HuffmanTable
from accelir.codec.layout import Layout
from accelir.codec.tables import quant_tables

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
_APP0_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
# DHT class/id byte of each table slot: DC luma, AC luma, DC chroma, AC chroma.
_DHT_IDS = (0x00, 0x10, 0x01, 0x11)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def dqt(tables_zigzag: np.ndarray) -> bytes:
    """DQT with 8-bit luma (id 0) and chroma (id 1) tables given in zigzag order."""
    body = b"".join(bytes([i]) + bytes(t.astype(np.uint8)) for i, t in enumerate(tables_zigzag))
    return _segment(0xDB, body)


def sof0(height: int, width: int, layout: Layout) -> bytes:
    f = layout.h_factor
    comps = bytes([1, (f << 4) | f, 0, 2, 0x11, 1, 3, 0x11, 1])
    return _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + comps)


def dht(tables: Sequence[HuffmanTable]) -> bytes:
    return _segment(
        0xC4, b"".join(bytes([i]) + t.dht_payload() for i, t in zip(_DHT_IDS, tables, strict=True))
    )


def stuff(segment: bytes) -> bytes:
    """A stored segment as JPEG scan data: a 0x00 after every 0xFF (T.81 F.1.2.3), so that no
    byte of it reads as a marker."""
    return segment.replace(b"\xff", b"\xff\x00")


def sos() -> bytes:
    return _segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))


@lru_cache(maxsize=512)
def block_header(
    quality: int,
    layout: Layout,
    tables: tuple[HuffmanTable, ...],
    shape: tuple[int, int] | None = None,
) -> bytes:
    """Everything of a standalone block JPEG that precedes its scan data; ``shape`` is the
    block's (height, width), a whole block by default (cached: a container has at most 100
    qualities times 4 shapes)."""
    height, width = shape or (layout.block, layout.block)
    return b"".join(
        (
            SOI,
            _APP0_JFIF,
            dqt(quant_tables(quality)),
            sof0(height, width, layout),
            dht(tables),
            sos(),
        )
    )
