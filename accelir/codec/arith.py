"""The range coder of container version 5 and its code for grids of signed integers
(the block index and the first-DC map, docs/format.md "Block section").

A binary range coder (the LZMA one: 32-bit range, carry propagated through a cached byte,
12-bit probabilities) codes each value ``v`` of a grid with a two-sided geometric law
``P(v) ∝ θ^|v|`` whose ``θ`` depends on the value's *context*: how large the residuals of its left
and upper neighbours were. The writer picks, per context, the ``θ`` out of 32 fixed ones that
codes the grid shortest and sends its number (5 bits); nothing adapts while coding, so a grid
of a few hundred values pays no learning cost. The value is binarised as: is it zero; its sign;
then ``|v| − 1`` as a Golomb code with the ``k`` that suits ``θ``: the quotient in unary, the
``k`` remainder bits — each binary decision coded with its exact probability under the law.
The probabilities are computed once, with IEEE-754 double operations only (square roots,
products, one division), so every reader derives the same integers.
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np

from accelir.codec.bitio import ContainerError

PROB_BITS = 12
_ONE = 1 << PROB_BITS
#: Number of laws a context can choose from (the parameter is 5 bits).
N_LAWS = 32
PARAM_BITS = 5
#: Contexts per grid: 0 for a value without coded neighbours, then 1 + the number of ``edges``
#: that the sum of the neighbours' magnitudes (doubled when only one neighbour exists) reaches.
N_CONTEXTS = 6
_MAX_K = 16
#: Columns of the law table: P(nonzero), k, P(quotient goes on), P(remainder bit j = 1), j < k.
_T_NONZERO, _T_K, _T_GO_ON, _T_BITS = 0, 1, 2, 3
_MAX_QUOTIENT = 1 << 20
_MAX_MAGNITUDE = 1 << 40


def _thetas() -> list[float]:
    """The 32 values of θ, increasing: ``h_e = 0.5^(2^-e)`` for e = −3 … 13 (squares of 0.5
    below e = 0, repeated square roots above), and the geometric mean of each neighbouring
    pair between them."""
    h = [0.5**8, 0.5**4, 0.5**2, 0.5]
    while len(h) < 17:
        h.append(math.sqrt(h[-1]))
    out: list[float] = []
    for i in range(N_LAWS):
        out.append(h[i // 2] if i % 2 == 0 else math.sqrt(h[i // 2] * h[i // 2 + 1]))
    return out


def _probability(p: float) -> int:
    """A probability as a 12-bit integer in 1 … 4095."""
    return min(_ONE - 1, max(1, int(p * _ONE + 0.5)))


@cache
def law_table() -> np.ndarray:
    """(32, 3 + 16) int64: per law, 12-bit P(v ≠ 0), the Golomb parameter k, 12-bit P(the
    quotient goes on), and 12-bit P(remainder bit j is 1) for j = 0 … k − 1."""
    table = np.zeros((N_LAWS, _T_BITS + _MAX_K), dtype=np.int64)
    for i, theta in enumerate(_thetas()):
        powers = [theta]  # θ^(2^j) by repeated squaring
        while len(powers) <= _MAX_K:
            powers.append(powers[-1] * powers[-1])
        k = next(j for j, t in enumerate(powers) if t <= 0.5)
        table[i, _T_NONZERO] = _probability(2 * theta / (1 + theta))
        table[i, _T_K] = k
        table[i, _T_GO_ON] = _probability(powers[k])
        for j in range(k):
            table[i, _T_BITS + j] = _probability(powers[j] / (1 + powers[j]))
    return table


# ---------------------------------------------------------------------------------------------
# The range coder: state arrays so that compiled helpers can share it.
# Encoder state: [low, range, cache, cache_size, pos]; decoder state: [code, range, pos, overrun]


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _shift_low(state: np.ndarray, out: np.ndarray) -> None:
    low = state[0]
    if low < 0xFF000000 or low >= 1 << 32:
        carry = low >> 32
        temp = state[2]
        while True:
            out[state[4]] = (temp + carry) & 0xFF
            state[4] += 1
            temp = 0xFF
            state[3] -= 1
            if state[3] == 0:
                break
        state[2] = (low >> 24) & 0xFF
    state[3] += 1
    state[0] = (low & 0x00FFFFFF) << 8


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _put(state: np.ndarray, out: np.ndarray, bit: int, p1: int) -> None:
    """Code ``bit`` whose probability of being 1 is ``p1`` / 4096."""
    bound = (state[1] >> PROB_BITS) * (_ONE - p1)
    if bit == 0:
        state[1] = bound
    else:
        state[0] += bound
        state[1] -= bound
    while state[1] < 1 << 24:
        state[1] <<= 8
        _shift_low(state, out)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _get(
    s: tuple[int, int, int, int], data: np.ndarray, p1: int
) -> tuple[int, tuple[int, int, int, int]]:
    """(bit, new state) from decoder state ``s`` = (code, range, next byte, read past the end);
    kept in registers by the callers, stored back once per grid."""
    code, rng, pos, past = s
    bound = (rng >> PROB_BITS) * (_ONE - p1)
    if code < bound:
        rng = bound
        bit = 0
    else:
        code -= bound
        rng -= bound
        bit = 1
    while rng < 1 << 24:
        rng <<= 8
        byte = 0
        if pos < data.size:
            byte = data[pos]
        else:
            past = 1
        pos += 1
        code = ((code << 8) | byte) & 0xFFFFFFFF
    return bit, (code, rng, pos, past)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _context(grid: np.ndarray, r: int, c: int, edges: np.ndarray) -> int:
    """The context of value (r, c) from the magnitudes of its left and upper neighbours."""
    if r == 0 and c == 0:
        return 0
    if r == 0:
        s = 2 * abs(grid[r, c - 1])
    elif c == 0:
        s = 2 * abs(grid[r - 1, c])
    else:
        s = abs(grid[r, c - 1]) + abs(grid[r - 1, c])
    ctx = 1
    for e in edges:
        if s >= e:
            ctx += 1
    return ctx


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _put_value(state: np.ndarray, out: np.ndarray, v: int, table: np.ndarray, i: int) -> None:
    """Code ``v`` with law ``i`` of ``table``."""
    _put(state, out, 1 if v != 0 else 0, table[i, _T_NONZERO])
    if v == 0:
        return
    _put(state, out, 1 if v < 0 else 0, _ONE // 2)
    a = abs(v) - 1
    k = table[i, _T_K]
    go_on = table[i, _T_GO_ON]
    for _ in range(a >> k):
        _put(state, out, 1, go_on)
    _put(state, out, 0, go_on)
    for j in range(k - 1, -1, -1):
        _put(state, out, (a >> j) & 1, table[i, _T_BITS + j])


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _get_value(
    s: tuple[int, int, int, int], data: np.ndarray, table: np.ndarray, i: int
) -> tuple[int, bool, tuple[int, int, int, int]]:
    """A value coded with law ``i``, whether it stayed within the coder's limits, and the new
    decoder state."""
    nonzero, s = _get(s, data, table[i, _T_NONZERO])
    if nonzero == 0:
        return 0, True, s
    negative, s = _get(s, data, _ONE // 2)
    k = table[i, _T_K]
    go_on = table[i, _T_GO_ON]
    q = 0
    while True:
        more, s = _get(s, data, go_on)
        if not more:
            break
        q += 1
        if q > _MAX_QUOTIENT or s[3]:
            return 0, False, s
    a = q << k
    for j in range(k - 1, -1, -1):
        bit, s = _get(s, data, table[i, _T_BITS + j])
        a |= bit << j
    if a >= _MAX_MAGNITUDE:
        return 0, False, s
    return (-(a + 1) if negative else a + 1), True, s


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _choose_laws(grid: np.ndarray, edges: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per context, the law that codes the grid's values of that context in the fewest bits.
    What a law spends on a context follows from a few sums over its values: how many are
    zero, and for the nonzero ones (``a = |v| − 1``) the sums of ``a >> k`` and the counts of
    each set bit of ``a``."""
    zeros = np.zeros(N_CONTEXTS)
    nonzero = np.zeros(N_CONTEXTS)
    quotients = np.zeros((N_CONTEXTS, _MAX_K + 1))
    ones = np.zeros((N_CONTEXTS, _MAX_K))
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            ctx = _context(grid, r, c, edges)
            v = grid[r, c]
            if v == 0:
                zeros[ctx] += 1
                continue
            nonzero[ctx] += 1
            a = abs(v) - 1
            for k in range(_MAX_K + 1):
                quotients[ctx, k] += a >> k
            for j in range(_MAX_K):
                ones[ctx, j] += (a >> j) & 1
    out = np.zeros(N_CONTEXTS, dtype=np.int64)
    for ctx in range(N_CONTEXTS):
        best = np.inf
        for i in range(N_LAWS):
            p = table[i, _T_NONZERO] / _ONE
            go = table[i, _T_GO_ON] / _ONE
            k = table[i, _T_K]
            bits = -zeros[ctx] * np.log2(1 - p)
            bits += nonzero[ctx] * (1 - np.log2(p) - np.log2(1 - go))
            bits -= quotients[ctx, k] * np.log2(go)
            for j in range(k):
                pj = table[i, _T_BITS + j] / _ONE
                bits -= ones[ctx, j] * np.log2(pj) + (nonzero[ctx] - ones[ctx, j]) * np.log2(1 - pj)
            if bits < best:
                best, out[ctx] = bits, i
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _decisions(grid: np.ndarray, edges: np.ndarray, table: np.ndarray, laws: np.ndarray) -> int:
    """How many binary decisions ``_put_grid`` makes (to size the output), or -1 where a value
    is beyond what a reader accepts (a quotient over 2^20, a magnitude of 2^40)."""
    n = N_CONTEXTS * PARAM_BITS
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            v = grid[r, c]
            n += 1
            if v:
                k = table[laws[_context(grid, r, c, edges)], _T_K]
                q = (abs(v) - 1) >> k
                if q > _MAX_QUOTIENT or abs(v) - 1 >= _MAX_MAGNITUDE:
                    return -1
                n += 2 + q + k
    return n


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _put_grid(
    state: np.ndarray, out: np.ndarray, grid: np.ndarray, edges: np.ndarray, table: np.ndarray,
    laws: np.ndarray,
) -> None:  # fmt: skip
    for ctx in range(N_CONTEXTS):
        for j in range(PARAM_BITS - 1, -1, -1):
            _put(state, out, (laws[ctx] >> j) & 1, _ONE // 2)
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            _put_value(state, out, grid[r, c], table, laws[_context(grid, r, c, edges)])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _get_grid(
    state: np.ndarray, data: np.ndarray, grid: np.ndarray, edges: np.ndarray, table: np.ndarray
) -> bool:
    s = (state[0], state[1], state[2], state[3])
    laws = np.zeros(N_CONTEXTS, dtype=np.int64)
    for ctx in range(N_CONTEXTS):
        for _ in range(PARAM_BITS):
            bit, s = _get(s, data, _ONE // 2)
            laws[ctx] = (laws[ctx] << 1) | bit
    ok = True
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            v, ok, s = _get_value(s, data, table, laws[_context(grid, r, c, edges)])
            if not ok:
                break
            grid[r, c] = v
        if not ok:
            break
    state[0], state[1], state[2], state[3] = s
    return ok and s[3] == 0


class Encoder:
    """Writes grids and single bits into one range-coded stream."""

    def __init__(self) -> None:
        self._out = np.zeros(1024, dtype=np.uint8)
        self._state = np.array([0, 0xFFFFFFFF, 0, 1, 0], dtype=np.int64)

    def _reserve(self, decisions: int) -> None:
        """Room for ``decisions`` more binary decisions (each emits at most PROB_BITS bits;
        bytes held back for a carry and the flush come on top)."""
        need = int(self._state[4] + self._state[3]) + decisions * PROB_BITS // 8 + 16
        if need > self._out.size:
            grown = np.zeros(max(need, 2 * self._out.size), dtype=np.uint8)
            grown[: self._out.size] = self._out
            self._out = grown

    def grid(self, grid: np.ndarray, edges: np.ndarray) -> None:
        """Code ``grid`` (2-D int64) in raster order, contexts from ``edges``."""
        grid = np.ascontiguousarray(grid, np.int64)
        table = law_table()
        laws = _choose_laws(grid, edges, table)
        decisions = _decisions(grid, edges, table, laws)
        if decisions < 0:
            raise ValueError("a value too large for the range coder")
        self._reserve(decisions)
        _put_grid(self._state, self._out, grid, edges, table, laws)

    def bits(self, bits: np.ndarray, p1: np.ndarray) -> None:
        """Code each of ``bits`` with its own 12-bit probability of being 1."""
        self._reserve(bits.size)
        _put_bits(self._state, self._out, bits.astype(np.int64), p1.astype(np.int64))

    def finish(self) -> bytes:
        for _ in range(5):
            _shift_low(self._state, self._out)
        return self._out[: self._state[4]].tobytes()


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _put_bits(state: np.ndarray, out: np.ndarray, bits: np.ndarray, p1: np.ndarray) -> None:
    for i in range(bits.size):
        _put(state, out, bits[i], p1[i])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _get_bits(state: np.ndarray, data: np.ndarray, p1: np.ndarray, out: np.ndarray) -> None:
    s = (state[0], state[1], state[2], state[3])
    for i in range(p1.size):
        out[i], s = _get(s, data, p1[i])
    state[0], state[1], state[2], state[3] = s


class Decoder:
    """Reads what ``Encoder`` wrote, from untrusted bytes: anything that does not decode
    within the coder's limits, or that ends early or late, is a ``ContainerError``."""

    def __init__(self, data: bytes, what: str) -> None:
        self._what = what
        self._data = np.frombuffer(data, dtype=np.uint8)
        if self._data.size < 5 or self._data[0] != 0:
            raise ContainerError(f"{what}: malformed range-coded stream")
        code = int.from_bytes(data[1:5], "big")
        self._state = np.array([code, 0xFFFFFFFF, 5, 0], dtype=np.int64)

    def grid(self, rows: int, cols: int, edges: np.ndarray) -> np.ndarray:
        out = np.zeros((rows, cols), dtype=np.int64)
        if not _get_grid(self._state, self._data, out, edges, law_table()):
            raise ContainerError(f"{self._what}: value out of range or stream too short")
        return out

    def bits(self, p1: np.ndarray) -> np.ndarray:
        out = np.zeros(p1.size, dtype=np.int64)
        _get_bits(self._state, self._data, p1.astype(np.int64), out)
        if self._state[3]:
            raise ContainerError(f"{self._what}: stream too short")
        return out

    def finish(self) -> None:
        """The stream must end exactly where the coder's last byte was read."""
        if self._state[2] != self._data.size:
            raise ContainerError(f"{self._what}: trailing bytes")
