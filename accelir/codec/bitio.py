"""Byte-level primitives of the container format: its error type, LEB128 varints, a
bounds-checked reader, the Rice code used for grids of small integers (the block index and the
first-DC map of version 4, docs/format.md), and the JPEG-LS median predictor both predict with.

A Rice stream codes zigzag-mapped values ``z`` with one parameter ``k`` (0–23): a byte ``k``,
``uvarint m`` and ``m`` bytes of unary parts (``z >> k`` one-bits then a zero-bit per value,
padded with one-bits), then ``ceil(n·k / 8)`` bytes of the ``k``-bit remainders (padded with
zero-bits), both most-significant bit first — so both directions run without a per-value loop.
"""

from __future__ import annotations

import numba
import numpy as np

MAX_RICE_PARAMETER = 23


class ContainerError(ValueError):
    """The bytes are not a valid AccelIR container (truncated, malformed or over a limit)."""


def uvarint(value: int) -> bytes:
    """``value`` ≥ 0 as unsigned LEB128 (7 bits a byte, low group first)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Reader:
    """Reads fields off untrusted bytes; anything short or oversized is a ``ContainerError``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ContainerError(
                f"truncated container: {what} needs {n} bytes at offset {self.pos}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def uvarint(self, what: str, maximum: int) -> int:
        value, shift = 0, 0
        while True:
            byte = self.u8(what)
            value |= (byte & 0x7F) << shift
            if value > maximum:
                raise ContainerError(f"{what} exceeds the limit {maximum}")
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ContainerError(f"{what}: malformed varint")

    def at_end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise ContainerError(f"{what}: trailing bytes")


@numba.njit(cache=True, nogil=True, inline="always")
def median_predictor(a: int, b: int, d: int) -> int:
    """JPEG-LS's median predictor from the left ``a``, upper ``b`` and upper-left ``d``
    neighbours: ``min(a, b)`` if ``d ≥ max(a, b)``, ``max(a, b)`` if ``d ≤ min(a, b)``, else
    ``a + b − d``."""
    if d >= max(a, b):
        return min(a, b)
    if d <= min(a, b):
        return max(a, b)
    return a + b - d


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed → unsigned: 0, −1, 1, −2, … → 0, 1, 2, 3, …"""
    return np.where(values < 0, -2 * values - 1, 2 * values).astype(np.int64)


def unzigzag(values: np.ndarray) -> np.ndarray:
    return np.where(values & 1, -((values + 1) >> 1), values >> 1)


def rice_encode(z: np.ndarray) -> bytes:
    """A Rice stream of the values ``z`` ≥ 0 with the parameter that makes it shortest."""
    z = np.asarray(z, dtype=np.int64).reshape(-1)
    ks = np.arange(MAX_RICE_PARAMETER + 1, dtype=np.int64)
    k = int(np.argmin((z[None, :] >> ks[:, None]).sum(axis=1) + z.size * (ks + 1)))
    quotient = z >> k
    unary = np.ones(int(quotient.sum()) + z.size, dtype=np.uint8)
    unary[np.cumsum(quotient + 1) - 1] = 0
    unary_bytes = np.packbits(np.pad(unary, (0, -unary.size % 8), constant_values=1)).tobytes()
    shifts = np.arange(k - 1, -1, -1, dtype=np.int64)
    remainder = ((z[:, None] >> shifts[None, :]) & 1).astype(np.uint8).reshape(-1)
    return bytes([k]) + uvarint(len(unary_bytes)) + unary_bytes + np.packbits(remainder).tobytes()


def rice_decode(reader: Reader, n: int, what: str) -> np.ndarray:
    """``n`` values of a Rice stream read from ``reader`` (int64, ≥ 0)."""
    k = reader.u8(f"{what} parameter")
    if k > MAX_RICE_PARAMETER:
        raise ContainerError(f"{what}: bad Rice parameter")
    unary_size = reader.uvarint(f"{what} size", len(reader.data))
    unary = np.frombuffer(reader.take(unary_size, what), dtype=np.uint8)
    remainders = np.frombuffer(reader.take(-(-n * k // 8), what), dtype=np.uint8)
    out = np.empty(n, dtype=np.int64)
    status = _rice_values(unary, remainders, k, out)
    if status == 1:
        raise ContainerError(f"{what}: malformed unary part")
    if status == 2:
        raise ContainerError(f"{what}: value out of range")
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rice_values(unary: np.ndarray, remainders: np.ndarray, k: int, out: np.ndarray) -> int:
    """Decode ``out.size`` values; 0, or 1 (the unary stream holds another count of values or
    more than 7 padding bits), or 2 (a value past 2^40)."""
    n = out.size
    bit, end = 0, 8 * unary.size
    for i in range(n):
        q = 0
        while True:
            if bit >= end:
                return 1
            one = (unary[bit >> 3] >> (7 - (bit & 7))) & 1
            bit += 1
            if one == 0:
                break
            q += 1
            if q > 1 << 20:
                return 2
        out[i] = q << k
    if end - bit >= 8:
        return 1
    while bit < end:  # padding: one-bits only
        if ((unary[bit >> 3] >> (7 - (bit & 7))) & 1) == 0:
            return 1
        bit += 1
    if k:
        pos = 0
        for i in range(n):
            r = 0
            for _ in range(k):
                r = (r << 1) | ((remainders[pos >> 3] >> (7 - (pos & 7))) & 1)
                pos += 1
            out[i] |= r
    return 0
