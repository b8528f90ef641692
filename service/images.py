"""Untrusted uploads: format sniffed from magic bytes, size limits checked from the header, then
a bounded decode of the first frame only.

Only JPEG, PNG and WebP are accepted (SVG and everything else is refused whatever the declared
content type says). Width × height is read from the header with Pillow's lazy ``Image.open`` and
checked against ``max_pixels``/``max_side`` before any pixel is decoded, so a decompression bomb
costs a few hundred bytes of parsing. Animated images are reduced to their first frame. Pillow's
own ``MAX_IMAGE_PIXELS`` guard is left in place (never set to None). Used by the gateway (to
refuse bad uploads with a 4xx) and again by the encoder worker (defence in depth).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageFormat = Literal["jpeg", "png", "webp"]
_PIL_FORMATS: dict[ImageFormat, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


class ImageRejected(ValueError):
    """An upload that is refused; ``status`` and ``reason`` say how the gateway answers."""

    def __init__(
        self, status: int, reason: Literal["too_large", "bad_input"], kind: str, detail: str
    ):
        super().__init__(detail)
        self.status, self.reason, self.kind, self.detail = status, reason, kind, detail


@dataclass(frozen=True)
class ImageHeader:
    format: ImageFormat
    width: int
    height: int
    frames: int


def sniff(data: bytes) -> ImageFormat:
    """The format from the magic bytes, or ``ImageRejected`` (415)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        raise ImageRejected(
            415, "bad_input", "unsupported-media-type", "SVG images are not accepted"
        )
    if not data:
        raise ImageRejected(422, "bad_input", "invalid-image", "the uploaded file is empty")
    raise ImageRejected(
        415,
        "bad_input",
        "unsupported-media-type",
        "unsupported image format: only JPEG, PNG and WebP are accepted (sniffed from the bytes)",
    )


def _open(data: bytes, fmt: ImageFormat) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            422, "too_large", "too-many-pixels", "the image has too many pixels"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            422, "bad_input", "invalid-image", f"the {fmt.upper()} header cannot be read: {exc}"
        ) from None


def _check_size(header: ImageHeader, max_pixels: int, max_side: int) -> None:
    w, h = header.width, header.height
    if w < 1 or h < 1:
        raise ImageRejected(422, "bad_input", "invalid-image", "the image has no pixels")
    if w * h > max_pixels or max(w, h) > max_side:
        raise ImageRejected(
            422,
            "too_large",
            "too-many-pixels",
            f"the image is {w}×{h} pixels; the limit is {max_pixels} pixels and {max_side} per side",
        )


def inspect(data: bytes, *, max_pixels: int, max_side: int) -> ImageHeader:
    """Format, size and frame count from the header only (nothing decoded)."""
    fmt = sniff(data)
    with _open(data, fmt) as im:
        header = ImageHeader(fmt, im.width, im.height, int(getattr(im, "n_frames", 1) or 1))
    _check_size(header, max_pixels, max_side)
    return header


def decode(data: bytes, *, max_pixels: int, max_side: int) -> np.ndarray:
    """The first frame as H×W×3 uint8 RGB (EXIF orientation applied), after the header checks."""
    fmt = sniff(data)
    with _open(data, fmt) as im:
        header = ImageHeader(fmt, im.width, im.height, 1)
        _check_size(header, max_pixels, max_side)
        try:
            im.seek(0)
            im.load()
            oriented = ImageOps.exif_transpose(im) if fmt == "jpeg" else im
            _check_size(ImageHeader(fmt, oriented.width, oriented.height, 1), max_pixels, max_side)
            rgb = oriented.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(
                422, "too_large", "too-many-pixels", "the image has too many pixels"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            raise ImageRejected(
                422,
                "bad_input",
                "invalid-image",
                f"the {fmt.upper()} data cannot be decoded: {exc}",
            ) from None
        return np.asarray(rgb, dtype=np.uint8).copy()
