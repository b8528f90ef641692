"""Optimal Huffman tables: the table written into containers and the fast lengths used for
rate estimation agree on cost, and both are valid baseline-JPEG codes."""

from __future__ import annotations

import numpy as np
import pytest

from accelir.codec.huffman import MAX_CODE_LENGTH, HuffmanTable, code_lengths, optimal_table


def _counts(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 257))
    freq = np.zeros(256, np.int64)
    heavy = 0.6 if seed % 2 else 2.0  # heavy tails force lengths past 16 bits, then folding
    freq[rng.choice(256, n, replace=False)] = (rng.pareto(heavy, n) * 10 + 1).astype(np.int64)
    return freq


@pytest.mark.parametrize("seed", range(40))
def test_fast_lengths_match_the_written_table(seed: int) -> None:
    freq = _counts(seed)
    fast, table = code_lengths(freq), optimal_table(freq).lengths
    used = freq > 0
    assert np.array_equal(fast > 0, used) and np.array_equal(table > 0, used)
    for lengths in (fast, table):
        assert lengths.max() <= MAX_CODE_LENGTH
        assert sum(2.0 ** -int(n) for n in lengths[used]) < 1  # the all-ones word stays free
    cost_fast, cost_table = int((freq * fast).sum()), int((freq * table).sum())
    assert abs(cost_fast - cost_table) <= max(2, 0.002 * cost_table)


@pytest.mark.parametrize("seed", range(10))
def test_written_tables_are_canonical_and_their_lengths_rebuild_them(seed: int) -> None:
    """The container stores a table as its code lengths (version 3): the written table lists
    equal-length symbols in increasing order, so the lengths give back the same codes."""
    table = optimal_table(_counts(seed))
    assert table.canonical
    rebuilt = HuffmanTable.from_lengths(table.lengths)
    listed = HuffmanTable(table.bits, table.values)  # codes assigned symbol by symbol (Annex C)
    assert rebuilt == table == listed
    assert np.array_equal(rebuilt.codes, listed.codes)
    assert np.array_equal(rebuilt.lengths, listed.lengths)
    i = 0
    for count in table.bits:
        assert list(table.values[i : i + count]) == sorted(table.values[i : i + count])
        i += count


def test_from_lengths_rejects_invalid_codes() -> None:
    with pytest.raises(ValueError, match="over-subscribes"):
        HuffmanTable.from_lengths(np.array([1, 1, 1] + [0] * 253))
    with pytest.raises(ValueError, match=r"0\.\.16"):
        HuffmanTable.from_lengths(np.array([17] + [0] * 255))
    with pytest.raises(ValueError, match="256"):
        HuffmanTable.from_lengths(np.array([1, 1]))


def test_empty_slot_gets_one_symbol() -> None:
    assert code_lengths(np.zeros(256, np.int64))[0] == 1
    assert optimal_table(np.zeros(256, np.int64)).lengths[0] == 1


@pytest.mark.parametrize(
    ("size", "subsampling"), [((70, 100), "4:2:0"), ((64, 96), "4:4:4"), ((33, 17), "4:2:0")]
)
def test_fused_block_rates_equal_the_step_by_step_path(
    size: tuple[int, int], subsampling: str
) -> None:
    """``block_rates`` (one compiled pass) counts exactly the bits of quantise → count symbols →
    code lengths → segment bits less the first DC code words, hidden and absent units included."""
    from accelir.codec import entropy
    from accelir.codec.layout import Layout
    from accelir.codec.rates import block_rates
    from accelir.codec.transform import block_dct, quantise

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    image[::2] //= 3  # some structure next to the noise
    dct = block_dct(image, Layout(32, subsampling))
    comps = dct.layout.unit_components()
    qualities = (10, 50, 75, 95)
    fused = block_rates(dct, qualities)
    for k, q in enumerate(qualities):
        coefs = quantise(dct, np.full(dct.grid, q))
        counts = entropy.count_symbols(coefs, comps, dct.absent)
        lengths = np.stack([code_lengths(c) for c in counts])
        bits = entropy.segment_bits(coefs, comps, dct.absent, lengths)
        bits -= entropy.first_dc_bits(coefs, dct.layout.first_units(), lengths)
        np.testing.assert_array_equal(fused[:, k], np.ceil(bits / 8))
