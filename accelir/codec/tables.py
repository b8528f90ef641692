"""JPEG constants: zigzag order, IJG quality-scaled quantisation tables, Annex K Huffman tables.

Only data and the quality → table rule live here; nothing here reads or writes bytes.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: ZIGZAG[k] is the natural (row-major) index of the k-th coefficient in zigzag order.
ZIGZAG = np.array(
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ],
    dtype=np.intp,
)  # fmt: skip

# ITU-T T.81 Annex K.1, natural order.
_STD_LUMA_QUANT = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int32,
)  # fmt: skip
_STD_CHROMA_QUANT = np.full(64, 99, dtype=np.int32)
_STD_CHROMA_QUANT[[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 24, 25]] = [
    17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 47, 66,
]  # fmt: skip

MIN_QUALITY = 1
MAX_QUALITY = 100


def quality_scale(quality: int) -> int:
    """The IJG percentage scaling of the standard tables for a quality in 1..100."""
    if not MIN_QUALITY <= quality <= MAX_QUALITY:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    return 5000 // quality if quality < 50 else 200 - 2 * quality


@cache
def natural_quant_tables(quality: int) -> np.ndarray:
    """(2, 64) luma and chroma tables in *natural* (row-major) order, as libjpeg's
    ``jpeg_set_quality`` builds them with ``force_baseline`` (values clamped to 1..255) and as
    it stores them in memory."""
    scale = quality_scale(quality)
    tables = np.stack([_STD_LUMA_QUANT, _STD_CHROMA_QUANT])
    out = np.clip((tables * scale + 50) // 100, 1, 255).astype(np.int32)
    out.setflags(write=False)
    return out


@cache
def quant_tables(quality: int) -> np.ndarray:
    """The same tables in *zigzag* order, as DQT markers carry them."""
    out = natural_quant_tables(quality)[:, ZIGZAG]
    out.setflags(write=False)
    return out


# ITU-T T.81 Annex K.3: (bits[1..16], huffval) for DC luma, AC luma, DC chroma, AC chroma.
STD_DC_LUMA = (
    (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    bytes(range(12)),
)
STD_DC_CHROMA = (
    (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    bytes(range(12)),
)
STD_AC_LUMA = (
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125),
    bytes.fromhex(
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
        "2433627282090a161718191a25262728292a3435363738393a43444546474849"
        "4a535455565758595a636465666768696a737475767778797a83848586878889"
        "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5"
        "c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8"
        "f9fa"
    ),
)
STD_AC_CHROMA = (
    (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119),
    bytes.fromhex(
        "000102031104052131061241510761711322328108144291a1b1c109233352f0"
        "156272d10a162434e125f11718191a262728292a35363738393a434445464748"
        "494a535455565758595a636465666768696a737475767778797a828384858687"
        "88898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
        "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8"
        "f9fa"
    ),
)
#: Table slots in the order the container and the entropy coder use them.
STD_TABLES = (STD_DC_LUMA, STD_AC_LUMA, STD_DC_CHROMA, STD_AC_CHROMA)
