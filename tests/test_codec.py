"""The block container: round trips, agreement with Pillow, manifest, edges, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accelir import codec
from accelir.codec.jfif import stuff
from accelir.codec.layout import Layout

Q_SET = (10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def _random_qualities(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(Q_SET, size=shape)


def _pasted_blocks(data: bytes) -> np.ndarray:
    """Decode every standalone block JPEG with Pillow and paste them, cropping at the edges."""
    meta = codec.info(data)
    canvas = Image.new("RGB", (meta.width, meta.height))
    for r in range(meta.rows):
        for c in range(meta.cols):
            block = Image.open(io.BytesIO(codec.block_jpeg(data, r, c)))
            canvas.paste(block, (c * meta.block, r * meta.block))
    return np.asarray(canvas)


@pytest.mark.parametrize("block", [16, 32, 64])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_decode_equals_pasted_pillow_blocks(
    photo: np.ndarray, block: int, subsampling: str
) -> None:
    image = np.ascontiguousarray(photo[:203, :301])  # odd sizes, partial edge blocks
    q = _random_qualities(Layout(block, subsampling).grid(203, 301), seed=block)
    data = codec.encode(image, q, block=block, subsampling=subsampling)
    decoded = codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - _pasted_blocks(data)).max() <= 1


def test_quality_controls_fidelity_and_size(small_photo: np.ndarray) -> None:
    grid = Layout().grid(*small_photo.shape[:2])
    sizes, psnrs = [], []
    for q in (20, 50, 80, 95):
        data = codec.encode(small_photo, np.full(grid, q))
        sizes.append(len(data))
        psnrs.append(_psnr(codec.decode(data), small_photo))
    assert sizes == sorted(sizes) and psnrs == sorted(psnrs)
    assert psnrs[-1] > 38


def test_mixed_map_spends_bytes_where_asked(small_photo: np.ndarray) -> None:
    grid = Layout().grid(*small_photo.shape[:2])
    q = np.full(grid, 20)
    q[:, : grid[1] // 2] = 95
    meta = codec.info(codec.encode(small_photo, q))
    assert np.array_equal(meta.quality_map, q)
    assert meta.lengths[:, : grid[1] // 2].sum() > 2 * meta.lengths[:, grid[1] // 2 :].sum()


def test_same_pixels_as_pillow_whole_image_at_uniform_quality(photo: np.ndarray) -> None:
    """At one quality our coefficients are libjpeg's: the decoded image is as good as Pillow's
    whole-image JPEG (block-local chroma upsampling differs only along block edges)."""
    image = photo[:256, :384]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=75, subsampling=2)
    pillow = np.asarray(Image.open(buf))
    ours = codec.decode(codec.encode(image, np.full(Layout().grid(256, 384), 75)))
    assert abs(_psnr(ours, image) - _psnr(pillow, image)) < 0.1


def test_size_close_to_pillow_optimized(photo: np.ndarray) -> None:
    """Regression guard for the size bar (the measured ratios live in docs/benchmarks.md)."""
    image = np.asarray(Image.fromarray(photo).resize((640, 400), Image.BICUBIC))
    for q in (50, 90):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=q, optimize=True, subsampling=2)
        ours = codec.encode(image, np.full(Layout().grid(400, 640), q))
        assert len(ours) <= 1.025 * buf.tell()


def test_standard_tables_are_valid_and_not_smaller(small_photo: np.ndarray) -> None:
    q = np.full(Layout().grid(*small_photo.shape[:2]), 60)
    optimized = codec.encode(small_photo, q)
    standard = codec.encode(small_photo, q, huffman_tables="standard")
    assert (
        codec.info(standard).huffman == "standard" and codec.info(optimized).huffman == "optimized"
    )
    assert len(standard) > len(optimized)
    assert np.abs(codec.decode(standard).astype(int) - codec.decode(optimized)).max() == 0


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 40), (37, 53), (64, 64), (65, 33), (40, 3), (70, 2), (34, 66)]
)
def test_any_size(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    q = _random_qualities(Layout().grid(*shape))
    out = codec.decode(codec.encode(image, q))
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - _pasted_blocks(codec.encode(image, q))).max() <= 1


def test_flat_image_is_exact_at_high_quality() -> None:
    image = np.full((40, 70, 3), (200, 30, 90), dtype=np.uint8)
    out = codec.decode(codec.encode(image, np.full((2, 3), 100), subsampling="4:4:4"))
    assert np.abs(out.astype(int) - image).max() <= 1


def test_info_byte_ranges_tile_the_payload(small_photo: np.ndarray) -> None:
    data = codec.encode(small_photo, _random_qualities(Layout().grid(*small_photo.shape[:2])))
    meta = codec.info(data)
    starts, ends = meta.offsets.reshape(-1), (meta.offsets + meta.lengths).reshape(-1)
    assert starts[0] == meta.header_bytes and ends[-1] == len(data) == meta.total_bytes
    assert np.array_equal(starts[1:], ends[:-1])
    start, end = meta.block_range(1, 2)
    assert len(codec.block_jpeg(data, 1, 2)) > end - start
    manifest = meta.to_dict()
    assert manifest["rows"] == meta.rows and len(manifest["byte_ranges"]) == meta.rows
    assert (meta.width, meta.height, meta.block, meta.subsampling) == (140, 100, 32, "4:2:0")


@pytest.mark.parametrize(
    ("block", "subsampling", "shape"),
    [(32, "4:2:0", (600, 960)), (16, "4:4:4", (203, 301)), (64, "4:2:0", (77, 131))],
)
def test_stored_segments_rebuild_the_standalone_scans(
    photo: np.ndarray, block: int, subsampling: str, shape: tuple[int, int]
) -> None:
    """Versions 4 and 5 store each segment without its first Y, Cb and Cr DC code words and without
    byte stuffing: exactly its coded bits less those, rounded up to bytes. The scans that
    ``block_jpeg`` and the decoders rebuild from them are byte for byte the stuffed segments
    of the whole scans (written here directly); the tables read back are the encoder's."""
    from accelir.codec import _entropy_code, entropy, transform
    from accelir.codec.huffman import optimal_table
    from accelir.codec.scan import rebuild

    layout = Layout(block, subsampling)
    image = np.ascontiguousarray(photo[: shape[0], : shape[1]])
    q = _random_qualities(layout.grid(*shape))
    data = codec.encode(image, q, block, subsampling)
    meta = codec.info(data)
    assert meta.version == codec.container.VERSION >= 4
    assert not meta.stuffed and meta.omits_first_dc
    dct = transform.block_dct(image, layout)
    coefs = transform.quantise(dct, q)
    counts = entropy.count_symbols(coefs, layout.unit_components(), dct.absent)
    tables = codec._parsed(data, None).tables  # stored as code lengths: the encoder's tables
    assert tables == tuple(optimal_table(c) for c in counts)
    lengths = np.stack([t.lengths for t in tables])
    bits = entropy.segment_bits(coefs, layout.unit_components(), dct.absent, lengths)
    omitted = entropy.first_dc_bits(coefs, layout.first_units(), lengths)
    assert np.array_equal(meta.lengths.reshape(-1), -(-(bits - omitted) // 8))
    assert np.array_equal(meta.scan_lengths.reshape(-1), -(-bits // 8))
    assert np.array_equal(meta.first_dc.reshape(-1, 3), coefs[:, layout.first_units(), 0])
    whole, whole_lengths, _ = _entropy_code(dct, coefs, counts, tables, omit_first_dc=False)
    ends = np.cumsum(whole_lengths)
    expected = [stuff(whole[e - n : e]) for e, n in zip(ends, whole_lengths, strict=True)]
    scans, offsets, scan_bytes = rebuild(codec._parsed(data, None))
    rebuilt = [stuff(scans[o : o + n]) for o, n in zip(offsets, scan_bytes, strict=True)]
    assert rebuilt == expected
    assert sum(s.count(b"\xff\x00") for s in expected) > 0  # stuffing exercised
    decoded = codec.decode(data)
    for engine in codec.ENGINES:  # the C engine rebuilds the scans itself, in C
        for threads in (1, 2):
            assert np.array_equal(codec.decode(data, engine=engine, threads=threads), decoded)
    for i in np.random.default_rng(0).choice(len(expected), min(8, len(expected)), replace=False):
        r, c = divmod(int(i), meta.cols)
        jpeg = codec.block_jpeg(data, r, c)
        assert jpeg.endswith(expected[i] + b"\xff\xd9")
        pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
        h, w = pixels.shape[:2]
        assert (
            np.abs(pixels - decoded[block * r : block * r + h, block * c : block * c + w]).max()
            <= 1
        )


def test_block_jpeg_is_a_baseline_jpeg(small_photo: np.ndarray) -> None:
    data = codec.encode(small_photo, np.full((4, 5), 70))
    jpeg = codec.block_jpeg(data, 3, 4)
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9" and b"\xff\xc0" in jpeg
    im = Image.open(io.BytesIO(jpeg))
    # the corner block of 140×100 shows its visible 12×4 pixels; an inner block is whole
    assert im.format == "JPEG" and im.size == (12, 4) and im.mode == "RGB"
    assert np.array_equal(np.asarray(im), codec.decode(data)[96:, 128:])
    assert Image.open(io.BytesIO(codec.block_jpeg(data, 2, 3))).size == (32, 32)
    assert codec.info(data).block_shape(3, 0) == (4, 32)
    with pytest.raises(IndexError):
        codec.block_jpeg(data, 4, 0)


def test_edge_blocks_code_only_their_visible_part(photo: np.ndarray) -> None:
    """A bottom row 16 pixels high codes one row of MCUs: fewer bytes than the same pixels
    padded to the whole block, which is what version 1 coded."""
    image = np.ascontiguousarray(photo[:48, :96])
    padded = np.concatenate([image, np.repeat(image[-1:], 16, axis=0)])
    q = np.full((2, 3), 50)
    trimmed, whole = (  # Annex K tables: the same codes for both
        codec.info(codec.encode(x, q, huffman_tables="standard")) for x in (image, padded)
    )
    assert np.array_equal(trimmed.lengths[0], whole.lengths[0])
    assert np.all(trimmed.lengths[1] < whole.lengths[1])
    assert trimmed.version == codec.container.VERSION >= 2


@pytest.mark.parametrize(
    "name", [f"v{v}_{layout}" for v in (1, 2, 3, 4) for layout in ("b32_420", "b16_444")]
)
def test_older_containers_still_decode(name: str) -> None:
    """Containers of earlier versions — 1: edge blocks coded whole; 2: segments stored
    byte-stuffed; 3: whole scans, no first-DC map; 4: the first-DC map predicted from the
    first units of neighbouring blocks, Rice-coded — decode to the pixels they decoded to then,
    by every route (fixtures made on 2026-11-28 with the last commit writing each version)."""
    fixtures = Path(__file__).parent / "fixtures"
    data = (fixtures / f"{name}.air").read_bytes()
    meta = codec.info(data)
    assert meta.version == int(name[1]) and meta.stuffed == (meta.version < 3)
    assert meta.omits_first_dc == (meta.first_dc is not None) == (meta.version >= 4)
    assert (meta.coded_edges() == (meta.block, meta.block)) == (meta.version == 1)
    expected = np.asarray(Image.open(fixtures / f"{name}_decoded.png"))
    for engine in codec.ENGINES:
        assert np.array_equal(codec.decode(data, engine=engine), expected)
    if codec.SEAMLESS:
        seamless = np.asarray(Image.open(fixtures / f"{name}_seamless.png"))
        assert np.array_equal(codec.decode(data, seamless=True), seamless)
    corner = Image.open(io.BytesIO(codec.block_jpeg(data, meta.rows - 1, meta.cols - 1)))
    assert corner.size == meta.block_shape(meta.rows - 1, meta.cols - 1)[::-1]
    assert np.abs(_pasted_blocks(data).astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block": 24}, "block must be"),
        ({"subsampling": "4:2:2"}, "subsampling must be"),
        ({"huffman_tables": "fast"}, "huffman_tables"),
    ],
)
def test_encode_rejects_bad_options(small_photo: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.encode(small_photo, np.full((4, 5), 50), **kwargs)


def test_encode_rejects_bad_inputs(small_photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(small_photo.astype(np.float32), np.full((4, 5), 50))
    with pytest.raises(ValueError, match="H×W×3"):
        codec.encode(small_photo[..., 0], np.full((4, 5), 50))
    with pytest.raises(ValueError, match="shape"):
        codec.encode(small_photo, np.full((5, 5), 50))
    with pytest.raises(ValueError, match=r"1\.\.100"):
        codec.encode(small_photo, np.full((4, 5), 101))
    with pytest.raises(ValueError, match="integers"):
        codec.encode(small_photo, np.full((4, 5), 50.5))
