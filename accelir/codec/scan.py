"""Standalone JPEG scans rebuilt from the stored segments of container versions 4 and 5, and the
first-MCU-row parse that version 5's first-DC map needs.

A version-4 (or 5) segment is a block's scan without the DC code words of its first Y, Cb and
Cr unit (their values are in the first-DC map, ``accelir.codec.dcmap``) and without byte
stuffing. The container's parse Huffman-decodes each block's first MCU far enough to find where
each missing code word belongs (the Y code word opens the segment; Cb's and Cr's follow the
MCU's luma units) — for version 5 on to the end of the block's first MCU row, whose last units' DCs
predict the next block's (``first_mcus``). To rebuild the scan, the code words are put back at
those bits and the rest of the segment is copied shifted by what was inserted, cut or padded
with one-bits to the scan's length (known from the map): one compiled pass over all blocks, for
``block_jpeg`` and the simplejpeg engine; the C engine does the same with the same positions
while it assembles its strips (``rebuild_scan`` in ``_blockdecode.c``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

from accelir.codec.bitio import ContainerError
from accelir.codec.entropy import category, extra_bits, put_bits
from accelir.codec.huffman import HuffmanTable
from accelir.codec.layout import Layout

if TYPE_CHECKING:
    from accelir.codec.container import Parsed


_LOOKUP_BITS = 11


# Offsets into the flat Huffman arrays (``huffman_arrays``; the C engine's H_FIRST … H_LENGTHS):
# per slot (DC luma, AC luma, DC chroma, AC chroma) the canonical decoding arrays by code length
# 1..16, the symbols in code order, a lookup of the next ``_LOOKUP_BITS`` bits packing the bits to
# skip (code word and extra bits) | run step << 8 | end of block << 16 for AC tables, the bits to
# skip | size << 8 for DC tables (0 where the code word is longer), and each symbol's code and
# code length.
_H_FIRST, _H_LAST, _H_START = 0, 4 * 17, 8 * 17
_H_VALUES = 12 * 17
_H_FAST = _H_VALUES + 4 * 256
_H_CODES = _H_FAST + 4 * (1 << _LOOKUP_BITS)
_H_LENGTHS = _H_CODES + 4 * 256
_H_SIZE = _H_LENGTHS + 4 * 256


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _fill(data: np.ndarray, ip: int, end: int, buf: int, nb: int):
    """Top the bit buffer up to at least 32 bits (bytes past ``end`` read as ones); the
    buffer keeps only its ``nb`` low bits meaningful."""
    if nb >= 32:
        return ip, buf, nb
    if ip + 4 <= end:  # the common case: four bytes at once
        word = (data[ip] << 24) | (data[ip + 1] << 16) | (data[ip + 2] << 8) | data[ip + 3]
        buf = ((buf << 32) | word) & ((1 << 63) - 1)
        return ip + 4, buf, nb + 32
    while nb < 32:
        buf = ((buf << 8) | (data[ip] if ip < end else 0xFF)) & ((1 << 63) - 1)
        ip += 1
        nb += 8
    return ip, buf, nb


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _byte(data: np.ndarray, base: int, stored: int, i: int) -> int:
    """Byte ``i`` of a segment; past its end, one-bits (the padding)."""
    return data[base + i] if i < stored else 0xFF


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _read(data: np.ndarray, base: int, stored: int, p: int, n: int) -> int:
    """``n`` ≤ 16 bits of a segment from bit ``p``."""
    i = p >> 3
    w = (
        (_byte(data, base, stored, i) << 16)
        | (_byte(data, base, stored, i + 1) << 8)
        | _byte(data, base, stored, i + 2)
    )
    return (w >> (24 - (p & 7) - n)) & ((1 << n) - 1)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _copy(
    data: np.ndarray, base: int, stored: int, p: int, n_bits: int,
    out: np.ndarray, pos: int, acc: int, n_acc: int,
):  # fmt: skip
    """Append ``n_bits`` of a segment from bit ``p``: to a byte boundary of the output, then
    whole bytes, shifted, then the rest."""
    n = min((8 - n_acc) & 7, n_bits)
    if n:
        pos, acc, n_acc = put_bits(out, pos, acc, n_acc, _read(data, base, stored, p, n), n)
        p += n
        n_bits -= n
    shift, i, n_bytes = p & 7, p >> 3, n_bits >> 3
    inside = max(0, min(n_bytes, stored - 1 - i))  # both source bytes inside the segment
    src = base + i  # (indices, not slices: a slice costs numba a reference count)
    if shift == 0:
        for j in range(inside):
            out[pos + j] = data[src + j]
    else:
        for j in range(inside):
            out[pos + j] = ((data[src + j] << shift) | (data[src + j + 1] >> (8 - shift))) & 0xFF
    pos += inside
    i += inside
    for _ in range(n_bytes - inside):
        word = (_byte(data, base, stored, i) << 8) | _byte(data, base, stored, i + 1)
        out[pos] = (word >> (8 - shift)) & 0xFF
        pos += 1
        i += 1
    p += n_bits & ~7
    n = n_bits & 7
    if n:
        pos, acc, n_acc = put_bits(out, pos, acc, n_acc, _read(data, base, stored, p, n), n)
    return pos, acc, n_acc


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _canonical(buf: int, nb: int, huff: np.ndarray, table: int) -> tuple[int, int]:
    """(symbol, code length) of the code word at the top of the bit buffer (≥ 16 bits in it)
    by canonical search, or (-1, 0) where no code word of ``table`` matches."""
    for length in range(1, 17):
        code = (buf >> (nb - length)) & ((1 << length) - 1)
        if code <= huff[_H_LAST + table * 17 + length]:
            index = (
                huff[_H_START + table * 17 + length] + code - huff[_H_FIRST + table * 17 + length]
            )
            return huff[_H_VALUES + table * 256 + index], length
    return -1, 0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rebuild(
    data: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    scan_lengths: np.ndarray,
    levels: np.ndarray,
    insert_at: np.ndarray,
    huff: np.ndarray,
    out: np.ndarray,
    out_offsets: np.ndarray,
) -> int:
    """Every block's standalone scan (unstuffed) into ``out`` at ``out_offsets``, which the
    caller sets from the scan lengths: the stored segment's pieces between the bits where the
    three code words belong (``insert_at``, from ``first_mcus``) and the code words of the
    ``levels``, cut or padded with one-bits to the scan's length. Returns -1, or the first block
    whose scan length does not fit what it holds."""
    for b in range(offsets.shape[0]):
        base, stored = offsets[b], lengths[b]
        # bits past the stored bytes read as one-bits: the padding
        pos, acc, n_acc = out_offsets[b], 0, 0
        remaining = 8 * scan_lengths[b]
        p = 0
        for comp in range(3):
            if insert_at[b, comp] < p or insert_at[b, comp] > 8 * stored:
                return b
            piece = min(insert_at[b, comp] - p, remaining)
            pos, acc, n_acc = _copy(data, base, stored, p, piece, out, pos, acc, n_acc)
            remaining -= piece
            p = insert_at[b, comp]
            slot = 0 if comp == 0 else 2
            v = levels[b, comp]
            cat = category(v)
            length = huff[_H_LENGTHS + slot * 256 + cat]
            n = length + cat
            if length == 0 or n > remaining:
                return b
            code = huff[_H_CODES + slot * 256 + cat]
            pos, acc, n_acc = put_bits(out, pos, acc, n_acc, (code << cat) | extra_bits(v, cat), n)
            remaining -= n
        pos, acc, n_acc = _copy(data, base, stored, p, remaining, out, pos, acc, n_acc)
        if n_acc != 0 or pos - out_offsets[b] != scan_lengths[b]:
            return b
    return -1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _first_mcus(
    data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, cols: int, mcus_per_row: int,
    mcu_components: np.ndarray, last_luma: int, huff: np.ndarray, row_ends: bool,
    insert_at: np.ndarray, right: np.ndarray,
) -> int:  # fmt: skip
    """``first_mcus`` on flat arrays; returns -1, or the first block whose data does not
    decode (a bad code word, a run past 63, or data that ends early)."""
    size = 1 << _LOOKUP_BITS
    mask = size - 1
    n_units = mcu_components.shape[0]
    rel = np.zeros(3, dtype=np.int64)
    for b in range(offsets.shape[0]):
        whole_row = row_ends and b % cols != cols - 1
        n_mcus = mcus_per_row if whole_row else 1
        base, stored = offsets[b], lengths[b]
        ip, end, end_bits = base, base + stored, 8 * stored
        buf, nb, p = 0, 0, 0  # bit buffer, bits in it, bits consumed
        rel[:] = 0
        for m in range(n_mcus):
            last_mcu = m == n_mcus - 1
            for u in range(n_units):
                comp = mcu_components[u]
                slot = 0 if comp == 0 else 2
                if m == 0 and (u == 0 or comp != mcu_components[u - 1]):
                    insert_at[b, comp] = p  # the component's first unit: its DC word left out
                else:
                    ip, buf, nb = _fill(data, ip, end, buf, nb)
                    entry = huff[_H_FAST + slot * size + ((buf >> (nb - _LOOKUP_BITS)) & mask)]
                    if entry:
                        cat = entry >> 8
                        n = (entry & 0xFF) - cat
                    else:
                        cat, n = _canonical(buf, nb, huff, slot)
                    if cat < 0 or p + n + cat > end_bits:
                        return b
                    extra = (buf >> (nb - n - cat)) & ((1 << cat) - 1)
                    if cat and extra < 1 << (cat - 1):
                        extra -= (1 << cat) - 1
                    rel[comp] += extra
                    nb -= n + cat
                    p += n + cat
                if whole_row and last_mcu and (u == last_luma or comp > 0):
                    right[b, comp] = rel[comp]
                if last_mcu and comp == 2:
                    break  # Cr's code word is placed (and its DC read): its AC is not needed
                k = 1  # skip the unit's AC coefficients
                while k < 64:
                    ip, buf, nb = _fill(data, ip, end, buf, nb)
                    entry = huff[
                        _H_FAST + (slot + 1) * size + ((buf >> (nb - _LOOKUP_BITS)) & mask)
                    ]
                    if entry == 0:
                        symbol, n = _canonical(buf, nb, huff, slot + 1)
                        if symbol < 0:
                            return b
                        step = 16 if symbol == 0xF0 else (symbol >> 4) + 1
                        entry = (
                            (n + (symbol & 0x0F)) | (step << 8) | (1 << 16 if symbol == 0 else 0)
                        )
                    total = entry & 0xFF
                    if total > 26 or p + total > end_bits:
                        return b
                    nb -= total
                    p += total
                    if entry >> 16:
                        break
                    k += (entry >> 8) & 0xFF
                if k > 64:
                    return b
    return -1


def first_mcus(
    data: bytes, offsets: np.ndarray, lengths: np.ndarray, layout: Layout, cols: int,
    huff: np.ndarray, row_ends: bool,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """What the first MCUs of stored segments (versions 4 and 5) say, Huffman-decoded:
    ``insert_at`` (blocks, 3) int64, the bits where each block's first Y (0), Cb and Cr DC code
    words belong when its scan is rebuilt (``huff``: the tables' ``huffman_arrays``); with
    ``row_ends`` (version 5), ``right`` (blocks, 3)
    int64, the DC of the Y, Cb and Cr units that end the block's first MCU row (the Y unit at
    the row's right end, top row of its MCU) relative to the block's first DCs — zeros in the
    last column, which no block follows. Version 5 predicts the next block's first DCs from it
    (``dcmap``). Raises ``ContainerError`` naming the first block whose data does not decode."""
    n = offsets.size
    insert_at = np.zeros((n, 3), dtype=np.int64)
    right = np.zeros((n, 3), dtype=np.int64)
    mcu = layout.unit_components()[: layout.units_per_mcu].astype(np.int64)
    failed = _first_mcus(
        np.frombuffer(data, dtype=np.uint8), offsets.reshape(-1).astype(np.int64),
        lengths.reshape(-1).astype(np.int64), cols, layout.mcus_per_side, mcu,
        layout.h_factor - 1, huff, row_ends, insert_at, right,
    )  # fmt: skip
    if failed >= 0:
        row, col = divmod(failed, cols)
        what = "first MCU row" if row_ends and col != cols - 1 else "first MCU"
        raise ContainerError(f"block ({row}, {col}): corrupt scan data (its {what})")
    return insert_at, right


def huffman_arrays(tables: tuple[HuffmanTable, ...]) -> np.ndarray:
    """The decoding and coding arrays of the four tables flattened into one int32 buffer, in
    the layout the C engine's ``rebuild_scan`` reads (``H_FIRST`` … ``H_LENGTHS`` in
    ``_blockdecode.c``; its lookup packs each entry's bits, run step and end of block)."""
    return _huffman_arrays(np.stack([t.lengths for t in tables]).astype(np.int64))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _huffman_arrays(lengths: np.ndarray) -> np.ndarray:
    """``huffman_arrays`` from the (4, 256) code lengths of canonical tables."""
    size = 1 << _LOOKUP_BITS
    out = np.zeros(_H_SIZE, dtype=np.int32)
    first, last, start, values = _H_FIRST, _H_LAST, _H_START, _H_VALUES
    fast, codes, code_lengths = _H_FAST, _H_CODES, _H_LENGTHS
    for slot in range(4):
        code, k = 0, 0
        for length in range(1, 17):
            out[first + slot * 17 + length] = code
            out[start + slot * 17 + length] = k
            count = 0
            for symbol in range(256):
                if lengths[slot, symbol] == length:
                    out[values + slot * 256 + k] = symbol
                    out[codes + slot * 256 + symbol] = code
                    out[code_lengths + slot * 256 + symbol] = length
                    if length <= _LOOKUP_BITS:
                        if slot % 2 == 0:  # DC: the size is the extra bits (and kept)
                            entry = (length + symbol) | (symbol << 8)
                        else:
                            step = 16 if symbol == 0xF0 else (symbol >> 4) + 1
                            entry = (length + (symbol & 0x0F)) | (step << 8)
                            if symbol == 0:
                                entry |= 1 << 16
                        lo = code << (_LOOKUP_BITS - length)
                        for j in range(lo, lo + (1 << (_LOOKUP_BITS - length))):
                            out[fast + slot * size + j] = entry
                    code += 1
                    k += 1
                    count += 1
            out[last + slot * 17 + length] = code - 1 if count else -1
            code <<= 1
    return out


def rebuild(
    parsed: Parsed, blocks: np.ndarray | None = None
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(scans, offsets, lengths): the standalone scans of ``blocks`` (raster indices; all by
    default) of a container of version 4 or 5, without byte stuffing (``jfif.stuff`` adds it),
    laid end to end. Raises ``ContainerError`` naming the first block whose scan length does
    not fit what it holds."""
    meta = parsed.info
    if (
        meta.first_dc is None
        or meta.scan_lengths is None
        or parsed.insert_at is None
        or parsed.huff is None
    ):
        raise ValueError("only containers of version 4 on store segments without first DC")
    index = np.arange(meta.rows * meta.cols) if blocks is None else np.asarray(blocks)
    offsets = meta.offsets.reshape(-1)[index]
    lengths = meta.lengths.reshape(-1)[index]
    scan_lengths = meta.scan_lengths.reshape(-1)[index].astype(np.int64)
    out_offsets = np.concatenate([[0], np.cumsum(scan_lengths)[:-1]]).astype(np.int64)
    total = int(scan_lengths.sum())
    out = np.empty(total, dtype=np.uint8)  # the kernel writes no more than each scan's length
    levels = meta.first_dc.reshape(-1, 3)[index].astype(np.int64)
    insert_at = parsed.insert_at[index]
    data = np.frombuffer(parsed.data, dtype=np.uint8)
    huff = parsed.huff
    failed = _rebuild(
        data, offsets, lengths, scan_lengths, levels, insert_at, huff, out, out_offsets
    )
    if failed >= 0:
        row, col = divmod(int(index[failed]), meta.cols)
        raise ContainerError(f"block ({row}, {col}): corrupt scan data (its scan length)")
    return out[:total].tobytes(), out_offsets, scan_lengths
