"""Block geometry of the container: block size, chroma subsampling, MCUs and 8×8 units.

A *block* (16, 32 or 64 pixels square) is the unit that gets its own JPEG quality and its own
entropy-coded segment. Inside a block the data is a plain baseline JPEG scan: MCUs in raster
order, each MCU holding its luma units (2×2 for 4:2:0, one for 4:4:4) then one Cb and one Cr unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_SIZES = (16, 32, 64)
SUBSAMPLINGS = ("4:2:0", "4:4:4")


@dataclass(frozen=True)
class Layout:
    """Geometry shared by encoder, decoder and the standalone-JPEG builder."""

    block: int = 32
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        if self.block not in BLOCK_SIZES:
            raise ValueError(f"block must be one of {BLOCK_SIZES}, got {self.block}")
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {self.subsampling!r}")

    @property
    def h_factor(self) -> int:
        """Luma sampling factor (both directions): 2 for 4:2:0, 1 for 4:4:4."""
        return 2 if self.subsampling == "4:2:0" else 1

    @property
    def mcu(self) -> int:
        """MCU side in pixels."""
        return 8 * self.h_factor

    @property
    def mcus_per_side(self) -> int:
        return self.block // self.mcu

    @property
    def luma_per_mcu(self) -> int:
        return self.h_factor * self.h_factor

    @property
    def units_per_mcu(self) -> int:
        return self.luma_per_mcu + 2

    @property
    def units_per_block(self) -> int:
        return self.mcus_per_side**2 * self.units_per_mcu

    @property
    def chroma_side(self) -> int:
        """Side of a block's chroma planes in samples."""
        return self.block // self.h_factor

    def unit_components(self) -> np.ndarray:
        """Component (0 = Y, 1 = Cb, 2 = Cr) of each unit of one block, in scan order."""
        mcu = np.array([0] * self.luma_per_mcu + [1, 2], dtype=np.uint8)
        return np.tile(mcu, self.mcus_per_side**2)

    def first_units(self) -> np.ndarray:
        """Positions of the first Y, Cb and Cr unit of a block (all in its first MCU)."""
        return np.array([0, self.luma_per_mcu, self.luma_per_mcu + 1], dtype=np.int64)

    def row_end_units(self) -> np.ndarray:
        """Positions of the Y, Cb and Cr unit that end a block's first row of MCUs (the Y unit
        in the top row of the last MCU, touching the next block): version 5 predicts the next
        block's first DCs from theirs."""
        last = (self.mcus_per_side - 1) * self.units_per_mcu
        luma = self.luma_per_mcu
        return np.array([last + self.h_factor - 1, last + luma, last + luma + 1], dtype=np.int64)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of blocks covering an image."""
        return -(-height // self.block), -(-width // self.block)

    def edge_extents(self, height: int, width: int) -> tuple[int, int]:
        """Visible (height of the last row of blocks, width of the last column): a block's
        standalone JPEG, and the MCUs its segment codes, cover only its visible part."""
        rows, cols = self.grid(height, width)
        return height - (rows - 1) * self.block, width - (cols - 1) * self.block

    def absent_units(self, height: int, width: int) -> np.ndarray:
        """(blocks, units per block) mask of the units of MCUs lying wholly outside the image:
        edge blocks' segments leave them out (a JPEG of the visible size has no such MCUs)."""
        rows, cols = self.grid(height, width)
        m = self.mcus_per_side
        last_h, last_w = self.edge_extents(height, width)
        mcu_rows = np.full(rows, m)
        mcu_rows[-1] = -(-last_h // self.mcu)
        mcu_cols = np.full(cols, m)
        mcu_cols[-1] = -(-last_w // self.mcu)
        my, mx = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
        outside = (my.reshape(1, 1, -1) >= mcu_rows.reshape(-1, 1, 1)) | (
            mx.reshape(1, 1, -1) >= mcu_cols.reshape(1, -1, 1)
        )
        per_unit = np.repeat(outside.reshape(rows * cols, m * m), self.units_per_mcu, axis=1)
        return np.ascontiguousarray(per_unit)

    def max_segment_bytes(self) -> int:
        """An upper bound on one block's entropy-coded bytes (for validating untrusted sizes).

        A unit codes at most a 16-bit code plus 11 extra bits for DC and 63 × (16 + 10) bits for
        AC; every byte may need a stuffed zero.
        """
        bits_per_unit = 27 + 63 * 26
        return 2 * (self.units_per_block * bits_per_unit // 8 + 1)
